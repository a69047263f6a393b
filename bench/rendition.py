"""A video's audio rendition (docs/scaling.md, "Video: what is kept"): the worker's encoding time and the
file's size for a recording of `--minutes`.

    .venv/bin/python bench/rendition.py [--minutes 60] [--runs 3]

The recording is the real recordings in ../shared/testdata/speech (HARK_SPEECH_DIR) in turn, repeated to
`--minutes`, decoded to 16 kHz mono PCM on disk as the worker decodes an upload; each run times
`worker.transcription.audio.encode_rendition` (AAC 32 kbit/s in an .m4a) on it. Medians are printed with the
machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from worker.transcription import audio  # noqa: E402

SPEECH = Path(os.environ.get("HARK_SPEECH_DIR", REPO.parent / "shared" / "testdata" / "speech"))


def recording(dest: Path, minutes: float) -> audio.Pcm:
    clips = [audio.load(p, 3600) for p in sorted(SPEECH.iterdir()) if p.suffix in (".flac", ".wav", ".ogg", ".mp3")]
    want = int(minutes * 60 * audio.SAMPLE_RATE)
    written = 0
    with dest.open("wb") as out:
        while written < want:
            for clip in clips:
                piece = (np.clip(clip[: want - written], -1, 1) * 32767).astype("<i2")
                out.write(piece.tobytes())
                written += len(piece)
                if written >= want:
                    break
    return audio.Pcm(dest, written, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hark-bench-") as tmp:
        pcm = recording(Path(tmp) / "pcm", args.minutes)
        times, size = [], 0
        for _ in range(args.runs):
            started = time.perf_counter()
            size = audio.encode_rendition([pcm], Path(tmp) / "rendition.m4a").stat().st_size
            times.append(time.perf_counter() - started)
    median = statistics.median(times)
    print(f"recording: {pcm.seconds / 60:.1f} minutes of 16 kHz mono")
    print(f"encoding: median {median:.1f} s of {args.runs} ({', '.join(f'{t:.1f}' for t in times)} s), ", end="")
    print(f"{pcm.seconds / median:.0f}x real time")
    print(f"rendition: {size / 1e6:.1f} MB, {size * 8 / pcm.seconds / 1000:.1f} kbit/s")
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "")
    print(
        f"machine: {os.cpu_count()} cores ({cpu or platform.machine()}), Python {platform.python_version()}, ", end=""
    )
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
