"""The speech engine: one CTranslate2 Whisper model per process, batched inference -> Transcript.

The batched pipeline cuts the audio at VAD pauses into independent windows of at most 30 s and
decodes them without conditioning on earlier text, so a long recording cannot drift into invented
text the way sequential decoding with default settings can. Measured speed and accuracy, and how
they were measured: docs/benchmarks.md.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from faster_whisper import BatchedInferencePipeline, WhisperModel
from faster_whisper.audio import pad_or_trim
from faster_whisper.tokenizer import _LANGUAGE_CODES
from faster_whisper.vad import VadOptions, get_speech_timestamps

from hark import bundled_model
from hark.settings import Settings
from hark.transcript import Segment, Transcript, Word, dominant_language

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


class Engine:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.model_dir = Path(settings.model_dir) if settings.model_dir else bundled_model.install(settings.model_name)
        self.device = resolve_device(settings.device)
        per_window = settings.language_per_window
        self.language_per_window = per_window if per_window is not None else self.device == "cuda"
        self.compute_type = resolve_compute_type(settings.compute_type, self.device)
        started = time.monotonic()
        self.model = WhisperModel(
            str(self.model_dir),
            device=self.device,
            compute_type=self.compute_type,
            cpu_threads=settings.cpu_threads,
            local_files_only=True,
        )
        self.pipeline = BatchedInferencePipeline(self.model)
        self.load_seconds = time.monotonic() - started
        self.name = settings.model_name

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
        language, probability, _ = self.model.detect_language(samples, vad_filter=True, language_detection_segments=2)
        return language, float(probability)

    # -- speech windows and their languages ------------------------------------------------------------
    def speech_windows(self, samples: np.ndarray) -> list[Window]:
        """The stretches of speech between pauses (Silero VAD, the pipeline's options; each <= 30 s): the
        language is identified in each, so a recording that switches language at a pause gets both."""
        options = VadOptions(max_speech_duration_s=WINDOW_SECONDS, min_silence_duration_ms=160)
        return [
            Window(c["start"], c["end"], samples[c["start"] : c["end"]])
            for c in get_speech_timestamps(samples, options)
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

    # -- decoding --------------------------------------------------------------------------------------------
    def _batched(
        self,
        samples: np.ndarray,
        language: str,
        spans: list[tuple[float, float]] | None = None,
        steer: Steering | None = None,
    ) -> list[Decoded]:
        """The batched pipeline: at VAD pauses by itself, or exactly the given (start, end) spans in seconds."""
        segments, _ = self.pipeline.transcribe(
            samples,
            language=language,
            **(steer or Steering()).options(),
            batch_size=self.settings.batch_size,
            beam_size=self.settings.beam_size,
            word_timestamps=True,
            vad_filter=spans is None,
            clip_timestamps=[{"start": a, "end": b} for a, b in spans] if spans else None,
        )
        return [Decoded.of(s, language) for s in segments]  # a generator: decoding happens while iterating

    def _redecode(
        self, samples: np.ndarray, bad: Decoded, forced: str | None, steer: Steering | None = None
    ) -> list[Decoded]:
        """A doubtful segment decoded again on its own: at rising temperatures (Whisper's fallback), then,
        if the language was forced, in the language the audio itself sounds like. The first result with
        nothing doubtful wins; else the least doubtful of all, the first decoding on a tie."""
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
                **(steer or Steering()).options(),
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

    def transcribe(
        self, samples: np.ndarray, language: str | None = "auto", steer: Steering | None = None
    ) -> Transcript:
        """`steer`: the job's prompt and task. With translate, segments are English and each segment's (and
        the transcript's) language stays the one spoken: that is what was identified in the audio."""
        duration = len(samples) / SAMPLE_RATE
        forced = self._language(language) if self.multilingual else "en"
        windows: list[Window] = []
        if forced:
            decoded = self._batched(samples, forced, steer=steer)
        elif not self.language_per_window:
            code, _ = self.detect_language(samples)
            decoded = self._batched(samples, code, steer=steer)
            windows = [Window(0, len(samples), samples, code, 1.0)]
        else:
            windows = self.speech_windows(samples)
            if not self.identify(windows):
                code, probability = self.detect_language(samples)
                for w in windows:
                    w.language, w.probability = code, probability
            languages = {w.language for w in windows}
            if len(languages) <= 1:  # one language: the pipeline as it always runs
                decoded = self._batched(samples, languages.pop() if languages else "en", steer=steer)
            else:  # each run of windows in one language decoded in it, in spans of at most 30 s
                decoded = []
                for code, spans in language_spans(windows).items():
                    decoded += self._batched(samples, code, spans, steer)
                decoded.sort(key=lambda d: d.start)
        thresholds = quality.Thresholds.of(self.settings)
        if self.settings.quality_redecode:
            checked: list[Decoded] = []
            for d in decoded:
                checked += self._redecode(samples, d, forced, steer) if d.doubt(thresholds) else [d]
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
            duration=round(duration, 3),
            model=self.name,
            segments=segments,
        )


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


@dataclass(frozen=True)
class Steering:
    """A job's decode options (issue 11): names and terms as Whisper's initial prompt, and the task.

    The prompt is given as `initial_prompt` only, not also as `hotwords`: in faster-whisper both become the
    same previous-text tokens before <|startoftranscript|>, so passing both would repeat it."""

    prompt: str | None = None
    task: str = "transcribe"  # or "translate": to English

    def options(self) -> dict:
        return {"initial_prompt": self.prompt or None, "task": self.task}


# Temperatures of Whisper's fallback: the batched pipeline decodes at the first (beam search); a doubtful
# segment is decoded again at the next ones (sampling), as Whisper's sequential decoding does.
FALLBACK_TEMPERATURES = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
WINDOW_SECONDS = 30
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
        )
