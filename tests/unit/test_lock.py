"""The one lock is current: uv.lock resolves pyproject.toml as it stands (`uv lock --check`), and each
environment's requirements file is exactly its part of the lock (tools/lock.py --check)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_lock_and_every_requirements_file_are_current():
    done = subprocess.run([sys.executable, "tools/lock.py", "--check"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_package_is_pinned_with_hashes():
    from tools.lock import TARGETS

    for target in TARGETS:
        text = (REPO / "requirements" / f"{target}.txt").read_text()
        requirements = re.split(r"\n(?=\S)", text.split("\n", 1)[1].strip())  # one entry per package
        assert requirements, target
        for entry in requirements:
            if entry.startswith("#"):
                continue
            assert re.match(r"[A-Za-z0-9._-]+==\S+", entry), (target, entry)
            assert "--hash=sha256:" in entry, (target, entry)


def test_faster_whisper_and_ctranslate2_are_pinned_exactly():
    # The engine calls faster-whisper's internals (tests/integration/test_faster_whisper_internals.py).
    import tomllib

    worker = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["worker"]
    assert {r for r in worker if r.startswith(("faster-whisper", "ctranslate2"))} == {
        "faster-whisper==1.2.1",
        "ctranslate2==4.8.5",
    }
