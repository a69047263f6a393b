"""`hark transcribe` over the whole local stack: several real recordings, every format, --output-dir."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hark.client.cli import ALL_FORMATS, EXIT_OK
from hark.evaluation.wer import word_error_rate

pytestmark = pytest.mark.e2e

SAID = {
    "budget": "The budget meeting moves to Thursday afternoon.",
    "travel": "Please book the train tickets for the conference.",
}


def test_several_recordings_in_every_format_into_an_output_dir(live_stack, speech, tmp_path):
    files = []
    for name, text in SAID.items():
        path = tmp_path / f"{name}.wav"
        path.write_bytes(speech(text, "en", "wav").read_bytes())
        files.append(str(path))
    out_dir = tmp_path / "transcripts"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "hark.client.cli",
            "transcribe",
            *files,
            "--format",
            "all",
            "--output-dir",
            str(out_dir),
        ],
        env=live_stack.env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == EXIT_OK, run.stderr
    written = [out_dir / f"{name}.{fmt}" for name in SAID for fmt in ALL_FORMATS]
    assert run.stdout.splitlines() == [str(p) for p in written]
    assert "Traceback" not in run.stderr and "elapsed" not in run.stderr  # no progress: stderr is not a terminal
    for name, text in SAID.items():
        assert word_error_rate(text, (out_dir / f"{name}.txt").read_text(), "en") <= 0.3
        assert json.loads((out_dir / f"{name}.json").read_text())["segments"]
        assert (out_dir / f"{name}.srt").read_text().startswith("1\n")
        assert (out_dir / f"{name}.vtt").read_text().startswith("WEBVTT")
