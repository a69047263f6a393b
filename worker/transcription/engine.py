"""The speech engine: one CTranslate2 Whisper model per process (in HARK_MODEL_REPLICAS replicas), batched
inference -> Transcript.

Like faster-whisper's BatchedInferencePipeline, it cuts the audio at VAD pauses into independent pieces
of at most 30 s and decodes them without conditioning on earlier text, so a long recording cannot drift
into invented text the way sequential decoding with default settings can. Unlike it, the batches are
shared by every job in flight (cross-job batching): each job is planned in its own thread (VAD,
language, features: `Engine.plan`), its pieces queue at the Batcher, whose threads (one per model replica)
each fill a batch round-robin from the jobs waiting (a long job cannot hold back short ones) and decode it
in one encoder pass and one `generate` call with a prompt per piece (its job's language, task and initial
prompt); each job's transcript is then assembled and checked (quality.py, re-decoding) in its own thread again.
Measured speed and accuracy, and how they were measured: docs/benchmarks.md.
"""

from __future__ import annotations

import ctypes
import functools
import inspect
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from math import ceil
from pathlib import Path
from typing import TypeVar

import ctranslate2
import numpy as np
from faster_whisper import BatchedInferencePipeline, WhisperModel
from faster_whisper.audio import pad_or_trim
from faster_whisper.tokenizer import _LANGUAGE_CODES, Tokenizer
from faster_whisper.transcribe import Segment as FwSegment
from faster_whisper.transcribe import Word as FwWord
from faster_whisper.transcribe import get_compression_ratio, get_suppressed_tokens, restore_speech_timestamps
from faster_whisper.vad import VadOptions, collect_chunks, get_speech_timestamps

from hark.domain import bundled_model
from hark.domain.settings import Settings
from hark.domain.transcript import Segment, Transcript, Word, dominant_language

from . import quality
from .audio import SAMPLE_RATE


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import ctranslate2

    return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"


def resolve_compute_type(compute_type: str, device: str) -> str:
    if compute_type != "default":
        return compute_type
    return "float16" if device == "cuda" else "int8"


def resolve_replicas(replicas: int, device: str) -> int:
    """0: two on the CPU (two batches at once, each on half the cores, beat one batch on all of them on a
    shared 2-core machine: docs/benchmarks.md), one on a GPU."""
    if replicas > 0:
        return replicas
    return 2 if device == "cpu" and (os.cpu_count() or 1) >= 2 else 1


def replica_threads(cpu_threads: int, replicas: int) -> int:
    """Intra-op threads per replica: the cores (HARK_CPU_THREADS, or all) shared among the replicas."""
    if replicas <= 1:
        return cpu_threads
    return max(1, (cpu_threads or os.cpu_count() or 1) // replicas)


# glibc's malloc options (malloc.h) and the values the engine runs with (keep_freed_memory).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8
# 1 GiB: at 256 MiB a long recording's larger steps were still mapped afresh (docs/benchmarks.md).
KEEP_FREED_BYTES = 1 << 30


@functools.cache  # once per process
def keep_freed_memory() -> bool:
    """Have glibc's malloc keep the buffers a batch frees for the next batch, instead of handing them back.

    Every decoding step allocates and frees buffers of tens of megabytes (features, encoder output). By
    default glibc maps those afresh (above its mmap threshold, or in a thread's own 64 MiB arena, which
    cannot hold them) and unmaps them when freed, so each batch faults its pages in and zeroes them again:
    on the 2-core machine 17% of a transcription's CPU time went to the kernel. One arena and
    thresholds of KEEP_FREED_BYTES keep them in the heap for reuse, at a lower peak memory
    (docs/benchmarks.md, "Memory reuse"). Once per process, before the model's threads start; glibc only
    (elsewhere nothing changes). Returns whether the options are in force."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (macOS): its allocator, as it is
        return False
    options = ((M_ARENA_MAX, 1), (M_MMAP_THRESHOLD, KEEP_FREED_BYTES), (M_TRIM_THRESHOLD, KEEP_FREED_BYTES))
    return all(mallopt(option, value) == 1 for option, value in options)


class Engine:
    def __init__(self, settings: Settings):
        self.settings = settings
        keep_freed_memory()  # before WhisperModel starts CTranslate2's threads
        self.model_dir = Path(settings.model_dir) if settings.model_dir else bundled_model.install(settings.model_name)
        self.device = resolve_device(settings.device)
        per_window = settings.language_per_window
        self.language_per_window = per_window if per_window is not None else self.device == "cuda"
        self.compute_type = resolve_compute_type(settings.compute_type, self.device)
        self.replicas = resolve_replicas(settings.model_replicas, self.device)
        started = time.monotonic()
        self.model = WhisperModel(
            str(self.model_dir),
            device=self.device,
            compute_type=self.compute_type,
            cpu_threads=replica_threads(settings.cpu_threads, self.replicas),
            num_workers=self.replicas,  # CTranslate2 inter_threads: calls from that many threads run at once
            local_files_only=True,
        )
        self.load_seconds = time.monotonic() - started
        self.name = settings.model_name
        self._tokenizers: dict[tuple[str, str], Tokenizer] = {}
        # The pipeline's default suppress_tokens ([-1]: the non-speech symbols); the same for every language.
        self._suppress = get_suppressed_tokens(self._tokenizer("transcribe", "en"), [-1])
        self.slots = ModelSlots(self.replicas)
        self.batcher = Batcher(self)
        self.budget = AudioBudget(settings.max_audio_seconds_in_flight)

    @property
    def multilingual(self) -> bool:
        return self.model.model.is_multilingual

    def _language(self, language: str | None) -> str | None:
        """None asks the model to detect; unknown codes are detected too rather than failing the job."""
        if not language or language == "auto" or language not in _LANGUAGE_CODES:
            return None
        return language

    def detect_language(self, samples: np.ndarray) -> tuple[str, float]:
        """The language of a whole recording, looked for in its speech only (chunks then agree)."""
        if not self.multilingual:
            return "en", 1.0
        with self.slots:  # also called outside a job's charge (fan-out of a long recording)
            language, probability, _ = self.model.detect_language(
                samples, vad_filter=True, language_detection_segments=2
            )
        return language, float(probability)

    # -- speech windows and their languages ------------------------------------------------------------
    def speech_windows(self, samples: np.ndarray) -> list[Window]:
        """The stretches of speech between pauses (Silero VAD, the pipeline's options; each <= 30 s): the
        language is identified in each, so a recording that switches language at a pause gets both."""
        return [
            Window(c["start"], c["end"], samples[c["start"] : c["end"]])
            for c in get_speech_timestamps(samples, PIECE_VAD)
        ]

    def identify(self, windows: list[Window]) -> bool:
        """Each window's language and its probability, in batches of the encoder (one pass per window);
        False when no window could be identified with confidence."""
        extractor = self.model.feature_extractor
        heard = [w for w in windows if w.seconds >= MIN_IDENTIFY_SECONDS]
        for i in range(0, len(heard), max(1, self.settings.batch_size)):
            batch = heard[i : i + max(1, self.settings.batch_size)]
            features = np.stack([pad_or_trim(extractor(w.audio)[..., :-1]) for w in batch])
            encoded = self.model.encode(features)
            for window, ranked in zip(batch, self.model.model.detect_language(encoded), strict=True):
                token, probability = ranked[0]
                window.language, window.probability = token[2:-2], float(probability)
        # An unsure or very short window (a cough, a name, a word) speaks like the nearest window that was
        # identified with confidence; with none, the language heard longest.
        floor = self.settings.language_window_min_probability
        confident = [w for w in windows if w.probability >= floor]
        for w in windows:
            if w.probability < floor and confident:
                w.language = min(confident, key=lambda c: max(c.begin - w.stop, w.begin - c.stop)).language
        if not confident:  # nothing long or clear enough to tell by: the caller detects one language
            return False
        # A run of windows in another language than the main one is a switch only when it is long enough.
        main = spoken_longest(windows)
        runs: list[list[Window]] = []
        previous: Window | None = None
        for w in windows:
            if w.language != main:
                if previous is not None and previous.language == w.language:
                    runs[-1].append(w)
                else:
                    runs.append([w])
            previous = w
        for run in runs:
            if sum(r.seconds for r in run) < self.settings.language_switch_min_seconds:
                for r in run:
                    r.language = main
        return True

    # -- planning: the CPU side of a job ---------------------------------------------------------------------
    def plan(
        self, samples: np.ndarray, options: DecodeOptions, per_window: bool | None = None, interactive: bool = False
    ) -> JobRun:
        """What the model must decode for one job, found without the batch: speech (Silero VAD), the language
        of the recording or of each window, and the log-Mel features of each piece of at most 30 s. Pieces of
        many jobs then share the model's batches (Batcher). Model calls made here (language identification)
        are charged to the job."""
        forced = self._language(options.language) if self.multilingual else "en"
        run = self._job_run(samples, options, interactive, forced)
        if forced:
            self._plan_speech(run, forced)
        elif not (self.language_per_window if per_window is None else per_window):
            # One piece (a short recording): its language is identified from the encoder pass of its own
            # batch (DETECT), not a separate pass; longer ones are identified first, on their first minute.
            self._plan_speech(run, DETECT)
            code = ""
            if len(run.pieces) != 1:
                code, _ = run.charge(self.detect_language, samples)
                for group in run.groups:
                    group.language = code
            run.windows = [Window(0, len(samples), samples, code, 1.0)]
        else:
            windows = self.speech_windows(samples)
            if not run.charge(self.identify, windows):
                code, probability = run.charge(self.detect_language, samples)
                for w in windows:
                    w.language, w.probability = code, probability
            run.windows = windows
            languages = {w.language for w in windows}
            if len(languages) <= 1:  # one language: the pipeline's pieces, as it always cuts them
                self._plan_speech(run, languages.pop() if languages else "en")
            else:  # each run of windows in one language decoded in it, in spans of at most 30 s
                for code, spans in language_spans(windows).items():
                    self._plan_spans(run, code, spans)
        return run

    def _job_run(self, samples: np.ndarray, options: DecodeOptions, interactive: bool, forced: str | None) -> JobRun:
        return JobRun(
            samples=samples,
            options=options,
            prompt_tokens=self._prompt_tokens(options),
            slots=self.slots,
            interactive=interactive,
            forced=forced,
        )

    def _plan_speech(self, run: JobRun, language: str) -> None:
        """Speech found and joined into pieces of at most 30 s exactly as BatchedInferencePipeline does
        (its VAD options and faster-whisper's collect_chunks); times are mapped back after decoding."""
        samples = run.samples
        speech = get_speech_timestamps(samples, PIECE_VAD)
        if not speech:
            return
        chunks, metadata = collect_chunks(samples, speech, max_duration=WINDOW_SECONDS)
        group = Group(language=language, speech=speech)
        for chunk, meta in zip(chunks, metadata, strict=True):
            group.pieces.append(Piece(run, group, self._features(chunk), meta["offset"], meta["duration"]))
        run.groups.append(group)

    def _plan_spans(self, run: JobRun, language: str, spans: list[tuple[float, float]]) -> None:
        """Exactly the given (start, end) spans in seconds, as the pipeline's clip_timestamps."""
        group = Group(language=language, speech=None)
        for start, end in spans:
            a, b = int(start * SAMPLE_RATE), int(end * SAMPLE_RATE)
            group.pieces.append(
                Piece(run, group, self._features(run.samples[a:b]), a / SAMPLE_RATE, (b - a) / SAMPLE_RATE)
            )
        run.groups.append(group)

    def _features(self, audio: np.ndarray) -> np.ndarray:
        return self.model.feature_extractor(audio)[..., :-1]

    # -- decoding: one batch of pieces from any jobs -------------------------------------------------------------
    def _tokenizer(self, task: str, language: str) -> Tokenizer:
        key = (task, language)
        if key not in self._tokenizers:
            self._tokenizers[key] = Tokenizer(self.model.hf_tokenizer, self.multilingual, task=task, language=language)
        return self._tokenizers[key]

    def _prompt_tokens(self, options: DecodeOptions) -> int:
        """How many tokens come before <|startoftranscript|> in this job's prompts (get_prompt keeps the last
        max_length // 2 - 1 of the initial prompt after <|startofprev|>). CTranslate2's generate needs it
        equal across a batch, so the Batcher only batches jobs that agree on it."""
        if not options.prompt:
            return 0
        tokens = self._tokenizer(options.task, "en").encode(options.prompt)
        return 1 + min(len(tokens), self.model.max_length // 2 - 1) if tokens else 0

    def decode(self, pieces: list[Piece]) -> None:
        """One encoder pass and one `generate` call for pieces of any jobs, each with its own prompt (language,
        task, initial prompt), then each job's text and word timings, as BatchedInferencePipeline.forward
        makes them for a batch of one file. The batch's time (over the replicas: one replica is that share of
        the cores) is shared among the pieces by audio seconds."""
        started = time.monotonic()
        model = self.model
        encoded = model.encode(np.stack([pad_or_trim(p.features) for p in pieces]))
        if any(p.group.language == DETECT for p in pieces):
            for piece, ranked in zip(pieces, model.model.detect_language(encoded), strict=True):
                if piece.group.language == DETECT:
                    piece.group.language = piece.run.windows[0].language = ranked[0][0][2:-2]
        tokenizers = [self._tokenizer(p.run.options.task, p.group.language) for p in pieces]
        prompts = [
            model.get_prompt(
                t,
                previous_tokens=t.encode(p.run.options.prompt) if p.run.options.prompt else [],
                without_timestamps=True,
            )
            for t, p in zip(tokenizers, pieces, strict=True)
        ]
        results = model.model.generate(
            encoded,
            prompts,
            beam_size=self.settings.beam_size,
            patience=1,
            length_penalty=1,
            max_length=model.max_length,
            suppress_blank=True,
            suppress_tokens=self._suppress,
            return_scores=True,
            return_no_speech_prob=True,
            sampling_temperature=FALLBACK_TEMPERATURES[0],
            repetition_penalty=1,
            no_repeat_ngram_size=0,
        )
        outputs: list[list[dict]] = []
        sizes: list[int] = []
        for piece, tokenizer, result in zip(pieces, tokenizers, results, strict=True):
            tokens = result.sequences_ids[0]
            avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)  # length_penalty 1, as the pipeline
            size = int(ceil(piece.duration) * model.frames_per_second)
            subsegments, _, _ = model._split_segments_by_timestamps(
                tokenizer=tokenizer,
                tokens=tokens,
                time_offset=piece.offset,
                segment_size=size,
                segment_duration=piece.duration,
                seek=0,
            )
            outputs.append(
                [
                    {
                        "text": tokenizer.decode(s["tokens"]),
                        "avg_logprob": avg_logprob,
                        "no_speech_prob": result.no_speech_prob,
                        "tokens": s["tokens"],
                        "start": s["start"],
                        "end": s["end"],
                        "compression_ratio": get_compression_ratio(tokenizer.decode(s["tokens"])),
                        "seek": int(piece.offset * model.frames_per_second),
                    }
                    for s in subsegments
                ]
            )
            sizes.append(size)
        # Word timings per group (one job, one language), with the group's own sot sequence and its last
        # speech time carried from its earlier pieces, as the pipeline carries it within one file. Another
        # replica may be decoding the group's earlier pieces: their timings come first (Group.in_turn).
        groups: dict[int, list[int]] = {}
        for row, piece in enumerate(pieces):
            groups.setdefault(id(piece.group), []).append(row)
        waited = 0.0
        for rows in groups.values():
            group = pieces[rows[0]].group
            with group.in_turn(pieces[rows[0]], len(rows)) as seconds_waited:
                waited += seconds_waited
                group.last_speech = (
                    model.add_word_timestamps(
                        [outputs[r] for r in rows],
                        tokenizers[rows[0]],
                        encoded if len(groups) == 1 else _rows(encoded, rows),
                        [sizes[r] for r in rows],
                        PUNCTUATION["prepend_punctuations"],
                        PUNCTUATION["append_punctuations"],
                        group.last_speech,
                    )
                    or group.last_speech
                )
        spent = (time.monotonic() - started - waited) / self.replicas
        total = sum(p.duration for p in pieces)
        jobs = len({id(p.run) for p in pieces})
        for piece, output in zip(pieces, outputs, strict=True):
            piece.segments = [
                FwSegment(
                    id=0,
                    seek=s["seek"],
                    start=round(s["start"], 3),
                    end=round(s["end"], 3),
                    text=s["text"],
                    tokens=s["tokens"],
                    avg_logprob=s["avg_logprob"],
                    compression_ratio=s["compression_ratio"],
                    no_speech_prob=s["no_speech_prob"],
                    words=[FwWord(**w) for w in s["words"]],
                    temperature=FALLBACK_TEMPERATURES[0],
                )
                for s in output
            ]
            piece.run.add_model_seconds(spent * (piece.duration / total if total > 0 else 1 / len(pieces)))
            piece.run.batch_jobs = max(piece.run.batch_jobs, jobs)

    def _redecode(self, samples: np.ndarray, bad: Decoded, forced: str | None, options: DecodeOptions) -> list[Decoded]:
        """A doubtful segment decoded again on its own: at rising temperatures (Whisper's fallback), then,
        if the language was forced, in the language the audio itself sounds like. The first result with
        nothing doubtful wins; else the least doubtful of all, the first decoding on a tie. The job's task
        and prompt hold here too (a translated job stays English)."""
        thresholds = quality.Thresholds.of(self.settings)
        start, end = max(0.0, bad.start), min(len(samples) / SAMPLE_RATE, bad.end)
        piece = samples[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)]
        tries: list[tuple[str | None, list[float]]] = [(bad.language, FALLBACK_TEMPERATURES[1:])]
        if forced and self.multilingual:
            # A forced language the audio does not sound like is the likeliest cause: that goes first.
            heard, probability, _ = self.model.detect_language(audio=piece)
            if heard != forced and probability >= self.settings.language_window_min_probability:
                tries.insert(0, (heard, FALLBACK_TEMPERATURES))
        best, best_doubt = [bad], bad.doubt(thresholds)
        for language, temperatures in tries:
            segments, info = self.model.transcribe(
                piece,
                language=language,
                task=options.task,
                initial_prompt=options.prompt or None,
                beam_size=self.settings.beam_size,
                temperature=temperatures,
                compression_ratio_threshold=thresholds.compression_ratio,
                log_prob_threshold=thresholds.min_avg_logprob,
                no_speech_threshold=thresholds.no_speech_prob,
                condition_on_previous_text=False,
                word_timestamps=True,
                vad_filter=False,
            )
            decoded = [Decoded.of(s, info.language, offset=start) for s in segments]
            doubt = sum(d.doubt(thresholds) for d in decoded)
            if doubt < best_doubt:
                best, best_doubt = decoded, doubt
            if doubt == 0:
                break
        return best

    # -- a job end to end ------------------------------------------------------------------------------------
    def transcribe(self, samples: np.ndarray, language: str | None = "auto") -> Transcript:
        return self.run(samples, DecodeOptions(language=language)).transcript

    def run(self, samples: np.ndarray, options: DecodeOptions, interactive: bool = False) -> Result:
        """One job: planned in the calling thread, its pieces decoded in shared batches, its transcript
        assembled and checked here. Many threads may call this at once: that is how jobs share batches.
        `interactive` (a caller waits on the answer): its pieces take the batcher's priority lane and it does
        not wait for the audio budget behind batch work (the live service bounds its own requests)."""
        seconds = len(samples) / SAMPLE_RATE
        with self.budget.hold(0 if interactive else seconds):
            job = self._decode(samples, options, interactive=interactive)
            transcript, model_seconds, batch_jobs = self.finish(job), job.model_seconds, job.batch_jobs
            if (
                job.forced is None
                and job.groups
                and job.groups[0].speech is not None
                and uncovered_speech_seconds(job.groups[0].speech, transcript)
                >= self.settings.language_switch_min_seconds
            ):
                # One language for the whole recording (per-window identification off) and speech left
                # without words: Whisper decodes only the window's main language of a mixed window and
                # drops the rest silently. Decode again with a language per speech window; keep the
                # transcript with more words (speech without words may also be noise or music).
                again = self._decode(samples, options, per_window=True, interactive=interactive)
                retried = self.finish(again)
                model_seconds += again.model_seconds
                batch_jobs = max(batch_jobs, again.batch_jobs)
                if word_count(retried) > word_count(transcript):
                    transcript = retried
            elif job.forced is not None and job.groups and job.groups[0].speech is not None:
                # The language is given (a chunk of a long recording, or the user's choice), so the check
                # above does not apply, but Whisper also ends a piece early now and then: its last words
                # cover part of the window and the rest of its speech is dropped without a trace (seen:
                # 12 s of one chunk). Decode such speech again on its own and add what it says, unless
                # Whisper's own rule says it heard no speech there (VAD also takes noise for speech).
                gaps = [
                    (a, b) for a, b in uncovered_spans(job.groups[0].speech, transcript) if b - a >= MIN_GAP_SECONDS
                ]
                if sum(b - a for a, b in gaps) >= self.settings.language_switch_min_seconds:
                    again = self._decode_spans(samples, options, job.forced, gaps, interactive)
                    model_seconds += again.model_seconds
                    batch_jobs = max(batch_jobs, again.batch_jobs)
                    heard = [seg for seg in self.finish(again).segments if "no_speech" not in seg.flags]
                    transcript = transcript.with_segments(heard)
        return Result(transcript, round(seconds, 3), model_seconds, batch_jobs)

    def _decode_spans(
        self,
        samples: np.ndarray,
        options: DecodeOptions,
        language: str,
        spans: list[tuple[float, float]],
        interactive: bool,
    ) -> JobRun:
        """Exactly the given (start, end) seconds, each in pieces of at most 30 s, in `language`."""
        job = self._job_run(samples, options, interactive, language)
        pieces = [(t, min(t + WINDOW_SECONDS, b)) for a, b in spans for t in np.arange(a, b, WINDOW_SECONDS)]
        self._plan_spans(job, language, pieces)
        return self._decoded(job)

    def _decode(
        self, samples: np.ndarray, options: DecodeOptions, per_window: bool | None = None, interactive: bool = False
    ) -> JobRun:
        return self._decoded(self.plan(samples, options, per_window, interactive))

    def _decoded(self, job: JobRun) -> JobRun:
        """`job` once the batches have decoded its pieces."""
        if job.pieces:
            self.batcher.submit(job)
            job.wait()
        return job

    def finish(self, job: JobRun) -> Transcript:
        samples, forced, windows = job.samples, job.forced, job.windows
        decoded: list[Decoded] = []
        for group in job.groups:
            segments: Iterable[FwSegment] = (s for p in group.pieces for s in (p.segments or []))
            if group.speech is not None:
                segments = restore_speech_timestamps(segments, group.speech, SAMPLE_RATE)
            decoded += [Decoded.of(s, group.language) for s in segments]
        if len(job.groups) > 1:
            decoded.sort(key=lambda d: d.start)
        thresholds = quality.Thresholds.of(self.settings)
        if self.settings.quality_redecode:
            checked: list[Decoded] = []
            for d in decoded:
                checked += job.charge(self._redecode, samples, d, forced, job.options) if d.doubt(thresholds) else [d]
            decoded = checked
        segments = [d.segment(thresholds) for d in decoded]
        main, share = dominant_language(segments)
        if forced:
            code, probability = forced, 1.0
        elif main:
            code = main
            spoken = [w for w in windows if w.language == main]
            probability = sum(w.probability * w.seconds for w in spoken) / max(sum(w.seconds for w in spoken), 1e-9)
        else:  # no speech: the language that the (silent) audio is closest to, as the pipeline reported it
            code, probability = (windows[0].language, windows[0].probability) if windows else ("en", 0.0)
        return Transcript(
            language=code,
            language_probability=round(probability, 4),
            language_share=share,
            duration=round(len(samples) / SAMPLE_RATE, 3),
            model=self.name,
            segments=segments,
        )


def word_count(transcript: Transcript) -> int:
    return sum(len(s.words) for s in transcript.segments)


def uncovered_spans(speech: list[dict], transcript: Transcript, margin: float = 0.5) -> list[tuple[float, float]]:
    """(start, end) seconds of VAD speech (faster-whisper's sample-index spans) farther than `margin` from any word."""
    words = sorted((w.start - margin, w.end + margin) for s in transcript.segments for w in s.words)
    covered: list[list[float]] = []
    for start, end in words:  # merged, so no second is counted twice
        if covered and start <= covered[-1][1]:
            covered[-1][1] = max(covered[-1][1], end)
        else:
            covered.append([start, end])
    spans: list[tuple[float, float]] = []
    for span in speech:
        a, b = span["start"] / SAMPLE_RATE, span["end"] / SAMPLE_RATE
        for start, end in covered:
            if end <= a or start >= b:
                continue
            if start > a:
                spans.append((a, start))
            a = max(a, end)
        if b > a:
            spans.append((a, b))
    return spans


def uncovered_speech_seconds(speech: list[dict], transcript: Transcript, margin: float = 0.5) -> float:
    """Seconds of VAD speech farther than `margin` from any word."""
    return sum(b - a for a, b in uncovered_spans(speech, transcript, margin))


def spoken_longest(windows: list[Window]) -> str:
    seconds: dict[str, float] = {}
    for w in windows:
        seconds[w.language] = seconds.get(w.language, 0.0) + w.seconds
    return max(seconds, key=lambda code: seconds[code]) if seconds else ""


def language_spans(windows: list[Window]) -> dict[str, list[tuple[float, float]]]:
    """Per language, (start, end) seconds covering its windows: neighbouring windows of one language
    joined while the span stays within 30 s, never across another language's speech."""
    spans: dict[str, list[tuple[float, float]]] = {}
    previous = None
    for w in windows:
        start, end = w.begin / SAMPLE_RATE, w.stop / SAMPLE_RATE
        mine = spans.setdefault(w.language, [])
        if previous is not None and previous.language == w.language and end - mine[-1][0] <= WINDOW_SECONDS:
            mine[-1] = (mine[-1][0], end)
        else:
            mine.append((start, end))
        previous = w
    return spans


# The pipeline's own defaults for word timings (punctuation joined to the word next to it).
PUNCTUATION = {
    name: parameter.default
    for name, parameter in inspect.signature(BatchedInferencePipeline.transcribe).parameters.items()
    if name in ("prepend_punctuations", "append_punctuations")
}
# Temperatures of Whisper's fallback: the batched pipeline decodes at the first (beam search); a doubtful
# segment is decoded again at the next ones (sampling), as Whisper's sequential decoding does.
FALLBACK_TEMPERATURES = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
WINDOW_SECONDS = 30
# BatchedInferencePipeline's VAD options: speech in stretches of at most one window (never mutated).
PIECE_VAD = VadOptions(max_speech_duration_s=WINDOW_SECONDS, min_silence_duration_ms=160)
DETECT = ""  # a group's language until its batch identifies it
# Speech without words shorter than this is a breath or a word's tail, not a dropped phrase: not decoded again.
MIN_GAP_SECONDS = 2.0
MIN_IDENTIFY_SECONDS = 1.0  # shorter speech is too little to tell a language by: it takes the main one


@dataclass
class Window:
    """One stretch of speech: its sample range and audio, and the language identified in it."""

    begin: int
    stop: int
    audio: np.ndarray
    language: str = ""
    probability: float = 0.0

    @property
    def seconds(self) -> float:
        return len(self.audio) / SAMPLE_RATE


@dataclass
class Decoded:
    """One decoded segment with the fields the quality checks read."""

    start: float
    end: float
    text: str
    words: list[Word]
    language: str
    avg_logprob: float | None
    no_speech_prob: float | None
    compression_ratio: float | None
    tokens: list[int] = field(default_factory=list)
    temperature: float | None = None

    @classmethod
    def of(cls, s, language: str, offset: float = 0.0) -> Decoded:
        words = [
            Word(
                start=round(w.start + offset, 3),
                end=round(w.end + offset, 3),
                word=w.word,
                probability=round(w.probability, 4),
            )
            for w in (s.words or [])
        ]
        return cls(
            start=round(s.start + offset, 3),
            end=round(s.end + offset, 3),
            text=s.text.strip(),
            words=words,
            language=language,
            avg_logprob=s.avg_logprob,
            no_speech_prob=s.no_speech_prob,
            compression_ratio=s.compression_ratio,
            tokens=list(s.tokens),
            temperature=s.temperature,
        )

    def flags(self, thresholds: quality.Thresholds) -> list[str]:
        return quality.flags(self.text, self.avg_logprob, self.no_speech_prob, thresholds, self.compression_ratio)

    def doubt(self, thresholds: quality.Thresholds) -> float:
        """How much doubtful text: seconds x flags (0 when nothing is doubtful)."""
        return len(self.flags(thresholds)) * max(self.end - self.start, 0.01)

    def segment(self, thresholds: quality.Thresholds) -> Segment:
        return Segment(
            start=self.start,
            end=self.end,
            text=self.text,
            words=self.words,
            language=self.language,
            flags=self.flags(thresholds),
            tokens=self.tokens,
            temperature=self.temperature,
            avg_logprob=_rounded(self.avg_logprob),
            compression_ratio=_rounded(self.compression_ratio),
            no_speech_prob=_rounded(self.no_speech_prob),
        )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


@dataclass(frozen=True)
class DecodeOptions:
    """What a job asks of the decoder; each piece of a shared batch carries its job's own."""

    language: str | None = "auto"  # a code, or "auto"/None to identify it
    task: str = "transcribe"  # or "translate" (to English)
    prompt: str | None = None  # an initial prompt: names, spellings, the style of the text


@dataclass(frozen=True)
class Result:
    transcript: Transcript
    audio_seconds: float
    model_seconds: float  # this job's share of the model's time (batches shared by audio seconds)
    batch_jobs: int = 0  # the most jobs a batch with this job's pieces held (1: it had its batches alone)


@dataclass(eq=False)
class Group:
    """Pieces of one job decoded in one language: what one BatchedInferencePipeline.transcribe call covers."""

    language: str
    speech: list[dict] | None  # the VAD speech timestamps to map times back; None: times already absolute
    pieces: list[Piece] = field(default_factory=list)
    last_speech: float = 0.0  # word timing state carried from piece to piece, as the pipeline does
    _timed: int = 0  # pieces whose word timings are done, in order
    _failed: bool = False  # a batch with some of its pieces failed: later ones cannot be timed
    _turn: threading.Condition = field(default_factory=threading.Condition)

    @contextmanager
    def in_turn(self, first: Piece, count: int) -> Iterator[float]:
        """Word timings of `count` pieces from `first` on, once every earlier piece of the group has its own
        (two replicas may decode one job's batches at once); yields the seconds it waited."""
        index = next(i for i, p in enumerate(self.pieces) if p is first)
        started = time.monotonic()
        with self._turn:
            self._turn.wait_for(lambda: self._timed == index or self._failed)
            if self._failed:
                raise RuntimeError("an earlier batch of this recording failed")
        waited = time.monotonic() - started
        try:
            yield waited
        except BaseException:
            self.fail()
            raise
        with self._turn:
            self._timed = index + count
            self._turn.notify_all()

    def fail(self) -> None:
        """Pieces waiting for this group's turn give up (a batch with its earlier pieces failed)."""
        with self._turn:
            self._failed = True
            self._turn.notify_all()


@dataclass(eq=False)
class Piece:
    """At most 30 s of one job's speech: one item of a batch."""

    run: JobRun
    group: Group
    features: np.ndarray
    offset: float
    duration: float
    segments: list[FwSegment] | None = None


T = TypeVar("T")


class ModelSlots:
    """The model runs at most one call per replica at a time: a batch, or one job's own call. Re-entrant per
    thread (a charged call may call another entry point that takes a slot, such as detect_language)."""

    def __init__(self, size: int):
        self.size = max(1, size)
        self._free = threading.BoundedSemaphore(self.size)
        self._held = threading.local()

    def __enter__(self) -> None:
        depth = getattr(self._held, "depth", 0)
        if depth == 0:
            self._free.acquire()
        self._held.depth = depth + 1

    def __exit__(self, *exc: object) -> None:
        self._held.depth -= 1
        if self._held.depth == 0:
            self._free.release()


@dataclass(eq=False)
class JobRun:
    """One job inside the engine: its audio and options, its pieces, and the model time charged to it."""

    samples: np.ndarray
    options: DecodeOptions
    prompt_tokens: int = 0  # tokens before <|startoftranscript|>: one batch holds jobs with the same count
    slots: ModelSlots = field(default_factory=lambda: ModelSlots(1))
    interactive: bool = False  # a caller waits on it (the live service): the batcher's priority lane
    forced: str | None = None
    windows: list[Window] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    model_seconds: float = 0.0
    batch_jobs: int = 0
    error: BaseException | None = None
    _left: int = 0
    _done: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def pieces(self) -> list[Piece]:
        return [p for g in self.groups for p in g.pieces]

    def charge(self, call: Callable[..., T], *args) -> T:
        """A model call made for this job alone: all its time (over the replicas, as a batch's) is the job's.
        One model call per replica at a time (the slots): more would only share the cores, and each job's
        model seconds would count the others'."""
        with self.slots:
            started = time.monotonic()
            try:
                return call(*args)
            finally:
                self.add_model_seconds((time.monotonic() - started) / self.slots.size)

    def add_model_seconds(self, seconds: float) -> None:
        with self._lock:
            self.model_seconds += seconds

    def decoded(self, count: int = 1, error: BaseException | None = None) -> None:
        with self._lock:
            self._left -= count
            self.error = self.error or error
            if self._left <= 0 or self.error:
                self._done.set()

    def wait(self) -> None:
        self._done.wait()
        if self.error:
            raise self.error


class Batcher:
    """The threads that run the model's batches, one per model replica: each fills its batch with up to
    `batch_size` pieces taken round-robin from the jobs waiting (one piece per job per turn), so short jobs
    share batches with each other and with a long job instead of queueing behind it. Pieces are taken in
    order, and no batch takes more than its share of what is waiting (so a long job alone is split across
    the replicas); a job's batches may run at once, and only their word timings wait for each other
    (Group.in_turn: timings carry from piece to piece, as in the pipeline). Interactive jobs (a caller waits on
    the answer: the live service's requests) have a lane of their own, packed before batch work, so they never
    wait behind the queue's backlog, only for the batch being decoded. Started on the first job."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.size = max(1, engine.settings.batch_size)
        self._ready = threading.Condition()
        self._interactive: deque[tuple[JobRun, deque[Piece]]] = deque()  # the priority lane: a caller is waiting
        self._waiting: deque[tuple[JobRun, deque[Piece]]] = deque()  # batch work (queued jobs and chunks)
        self._threads: list[threading.Thread] = []
        self.batches = 0  # decoded so far (the bench reports the fill)
        self.pieces = 0
        self.busy_seconds = 0.0
        self._decoding = 0  # batches being decoded now

    def submit(self, run: JobRun) -> None:
        pieces = run.pieces
        run._left = len(pieces)
        with self._ready:
            (self._interactive if run.interactive else self._waiting).append((run, deque(pieces)))
            if not self._threads:
                self._threads = [
                    threading.Thread(target=self._loop, name=f"batcher-{i}", daemon=True)
                    for i in range(self.engine.replicas)
                ]
                for thread in self._threads:
                    thread.start()
            self._ready.notify()

    def _takeable(self) -> bool:
        return bool(self._interactive or self._waiting)

    def _take(self) -> list[Piece]:
        """The next batch: at most batch_size pieces, and at most an even share of the pieces waiting over the
        replicas not decoding now; interactive pieces first (the priority lane), then batch work. Its jobs agree
        on prompt_tokens (CTranslate2 needs <|startoftranscript|> at one position in a batch); jobs passed over
        keep their place at the front of their lane."""
        waiting = sum(len(pieces) for lane in (self._interactive, self._waiting) for _, pieces in lane)
        idle = max(1, self.engine.replicas - self._decoding)  # this thread and the others free to take one
        size = min(self.size, -(-waiting // idle))
        batch: list[Piece] = []
        for lane in (self._interactive, self._waiting):
            passed: list[tuple[JobRun, deque[Piece]]] = []
            while lane and len(batch) < size:
                run, pieces = lane.popleft()
                if batch and run.prompt_tokens != batch[0].run.prompt_tokens:
                    passed.append((run, pieces))
                    continue
                batch.append(pieces.popleft())
                if pieces:
                    lane.append((run, pieces))  # to the back: the next job's turn
            lane.extendleft(reversed(passed))
        self._decoding += 1
        return batch

    def _loop(self) -> None:
        while True:
            with self._ready:
                self._ready.wait_for(self._takeable)
                batch = self._take()
            started = time.monotonic()
            try:
                with self.engine.slots:
                    self.engine.decode(batch)
                error: BaseException | None = None
            except Exception as err:  # the jobs in this batch fail (their threads raise it); others go on
                error = err
                for piece in batch:  # their pieces in other batches stop waiting for these word timings
                    piece.group.fail()
            failed = {id(p.run) for p in batch} if error else set()
            with self._ready:
                self.busy_seconds += time.monotonic() - started
                self.batches, self.pieces = self.batches + 1, self.pieces + len(batch)
                self._decoding -= 1
                if failed:  # a failed job's other pieces are not decoded
                    self._interactive = deque((r, q) for r, q in self._interactive if id(r) not in failed)
                    self._waiting = deque((r, q) for r, q in self._waiting if id(r) not in failed)
                self._ready.notify_all()
            for piece in batch:
                piece.run.decoded(error=error if id(piece.run) in failed else None)


class AudioBudget:
    """A bound on the audio seconds inside the engine at once (memory: samples, features): a job waits
    until it fits, and runs alone when it is bigger than the whole budget."""

    def __init__(self, limit_seconds: float):
        self.limit = limit_seconds
        self.used = 0.0
        self._changed = threading.Condition()

    @contextmanager
    def hold(self, seconds: float) -> Iterator[None]:
        if seconds <= 0:  # nothing to hold: never waits, even while a job bigger than the budget runs
            yield
            return
        with self._changed:
            self._changed.wait_for(lambda: self.used == 0 or self.used + seconds <= self.limit)
            self.used += seconds
        try:
            yield
        finally:
            with self._changed:
                self.used -= seconds
                self._changed.notify_all()


def _rows(encoded: ctranslate2.StorageView, rows: list[int]) -> ctranslate2.StorageView:
    """Some rows of an encoder output (the word alignment of one group in a mixed batch)."""
    on_gpu = encoded.device == "cuda"
    host = encoded.to_device(ctranslate2.Device.cpu) if on_gpu else encoded
    picked = ctranslate2.StorageView.from_array(np.ascontiguousarray(np.asarray(host)[rows]))
    return picked.to_device(ctranslate2.Device.cuda) if on_gpu else picked
