"""A 1-hour meeting video through the local stack (`hark up`, as `make up` runs it): the upload in parts,
the audio's extraction, and peak memory (issue 25, item 4).

    .venv/bin/python bench/meeting.py [--minutes 60] [--port 8400] [--runs 3] [--transcribe]

The video is made here with PyAV from the real recordings in ../shared/testdata/speech (HARK_SPEECH_DIR):
an MP4 of 320x180 pictures that change every frame (noise: the encoder spends ~1.1 Mbit/s on them, a 720p
call's rate, ~500 MB an hour) at 5 frames a second, and AAC audio: all the recordings in turn, each followed by an equal
share of silence, to `--minutes`. The script starts its own stack on `--port` and `--port`+1 with a fresh
HARK_HOME and, `--runs` times, submits the video as a dev user with `hark.client.Hark.submit` (over the
multipart threshold: S3 multipart, a presigned PUT per part), timing the upload, then waits for the
worker's "decoded" log line of that job: extraction is the time from the worker's claim to it (the
download from the emulator's S3 and the decoding child's pass over the audio stream). The decoding
child's peak memory is from the same line; the worker's from /proc (VmHWM) after the last run. With
`--transcribe` it also waits for each job's email. Medians of the runs are printed with the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hark.client import Hark  # noqa: E402
from hark.client.cli_base import fetch_dev_token  # noqa: E402
from worker.transcription import audio  # noqa: E402

SPEECH = Path(os.environ.get("HARK_SPEECH_DIR", REPO.parent / "shared" / "testdata" / "speech"))
RATE = audio.SAMPLE_RATE
FPS = 5
WIDTH, HEIGHT = 320, 180  # noise at this size and rate comes to ~1.1 Mbit/s, a 720p call's rate
MB = 1024 * 1024


def make_meeting(dest: Path, minutes: float) -> float:
    """An MP4 (MPEG-4 video, AAC audio) of `minutes`; returns its seconds of speech."""
    files = sorted(p for p in SPEECH.iterdir() if p.suffix in {".flac", ".ogg", ".wav", ".opus"})
    voices = [audio.load(p, 3600) for p in files]
    total = int(minutes * 60 * RATE)
    rounds = max(1, total // (sum(len(v) for v in voices) * 4))  # a quarter of the time speech, as in a meeting
    gap = max(0, (total - sum(len(v) for v in voices) * rounds) // (len(voices) * rounds))
    track = np.zeros(total, np.float32)
    at = spoken = 0
    for _ in range(rounds):
        for voice in voices:
            piece = voice[: max(0, total - at)]
            track[at : at + len(piece)] = piece
            at, spoken = at + len(voice) + gap, spoken + len(piece)
    rng = np.random.default_rng(25)
    with av.open(str(dest), mode="w") as container:
        picture = container.add_stream("mpeg4", rate=FPS)
        picture.width, picture.height, picture.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        sound = container.add_stream("aac", rate=RATE)
        sound.bit_rate = 64_000
        pcm = (np.clip(track, -1, 1) * 32767).astype(np.int16)
        seconds = total // RATE
        noise = [rng.integers(0, 255, (HEIGHT * 3 // 2, WIDTH), dtype=np.uint8) for _ in range(8)]  # yuv420p planes
        for second in range(seconds):
            frame = av.AudioFrame.from_ndarray(
                pcm[None, second * RATE : (second + 1) * RATE], format="s16", layout="mono"
            )
            frame.sample_rate, frame.pts, frame.time_base = RATE, second * RATE, Fraction(1, RATE)
            container.mux(sound.encode(frame))
            for i in range(FPS):
                image = av.VideoFrame.from_ndarray(noise[(second * FPS + i) % len(noise)], format="yuv420p")
                image.pts, image.time_base = second * FPS + i, Fraction(1, FPS)
                container.mux(picture.encode(image))
        container.mux(sound.encode(None))
        container.mux(picture.encode(None))
    return spoken / RATE


def worker_lines(home: Path, message: str, job_id: str) -> list[dict]:
    lines = []
    for log in (home / "logs").glob("*.log"):
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("{") and f'"{message}"' in line and job_id in line:
                lines.append(json.loads(line))
    return lines


def stamp(line: dict) -> float:
    return datetime.strptime(line["timestamp"], "%Y-%m-%d %H:%M:%S,%f%z").timestamp()


def transcription_worker_pid(stack_pid: int) -> int:
    for child in Path("/proc").iterdir():
        if child.name.isdigit():
            try:
                cmd = (child / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                ppid = int((child / "stat").read_text().split()[3])
            except OSError:
                continue
            if ppid == stack_pid and cmd.strip().endswith("worker.transcription"):
                return int(child.name)
    raise SystemExit("no transcription worker under the stack")


def vm_hwm(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=60)
    p.add_argument("--port", type=int, default=8400)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--transcribe", action="store_true", help="also wait for each job's email")
    args = p.parse_args()

    with tempfile.TemporaryDirectory(prefix="hark-meeting-") as tmp:
        home, video = Path(tmp) / "home", Path(tmp) / f"meeting-{args.minutes:g}min.mp4"
        started = time.monotonic()
        speech = make_meeting(video, args.minutes)
        size = video.stat().st_size
        print(
            f"video: {args.minutes:g} min, {size / MB:.0f} MB ({size * 8 / args.minutes / 60 / 1e6:.2f} Mbit/s), "
            f"{speech / 60:.1f} min of speech; made in {time.monotonic() - started:.0f} s"
        )
        env = {
            **os.environ,
            "HARK_HOME": str(home),
            "HARK_PORT": str(args.port),
            "HARK_EMULATOR_PORT": str(args.port + 1),
        }
        stack = subprocess.Popen(
            [str(REPO / ".venv/bin/hark"), "up"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        uploads, extractions, peaks, parts = [], [], [], 0
        try:
            assert stack.stdout is not None
            for line in stack.stdout:
                if "Hark is running" in line:
                    break
            else:
                raise SystemExit("the stack stopped before it was ready")
            threading.Thread(target=lambda: [None for _ in stack.stdout], daemon=True).start()  # type: ignore[union-attr]
            server = f"http://127.0.0.1:{args.port}"
            with Hark(server, fetch_dev_token(server, "meeting-bench@example.com")) as client:
                totals: list[int] = []  # parts in all, as the client reports them
                for _ in range(args.runs):
                    begun = time.monotonic()
                    job = client.submit(video, language="en", on_part=lambda done, total: totals.append(total))
                    uploads.append(time.monotonic() - begun)
                    parts = totals[-1] if totals else 0
                    while not (decoded := worker_lines(home, "decoded", job.job_id)):
                        time.sleep(0.2)
                    claimed = worker_lines(home, "job claimed", job.job_id)
                    extractions.append(stamp(decoded[0]) - stamp(claimed[0]))
                    peaks.append(decoded[0]["decoder_peak_rss_bytes"])
                    if args.transcribe:
                        while not (home / "outbox" / f"{job.job_id}.eml").exists():
                            time.sleep(0.5)
                    else:
                        # Deleted once decoded: its chunks are dropped unread, so the next run does not share the
                        # machine with an hour's transcription (only with this one's split into chunks).
                        client.delete(job.job_id)
            worker_peak = vm_hwm(transcription_worker_pid(stack.pid))
        finally:
            os.killpg(stack.pid, signal.SIGINT)
            stack.wait()

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "")
    print(
        f"machine: {os.cpu_count()} cores ({cpu or platform.machine()}), Python {platform.python_version()}, "
        f"shared with other work (load average at the end {' '.join(f'{x:.1f}' for x in os.getloadavg())})"
    )
    print(
        f"upload in {parts} parts (hark.client, presigned PUTs to the emulator's S3): median "
        f"{statistics.median(uploads):.1f} s of {', '.join(f'{u:.1f}' for u in uploads)}"
    )
    print(
        f"extraction (claim -> decoded: download + the decoding child): median {statistics.median(extractions):.1f} s "
        f"of {', '.join(f'{e:.1f}' for e in extractions)}"
    )
    print(
        f"decoding child peak RSS: median {statistics.median(peaks) / MB:.0f} MB; "
        f"transcription worker VmHWM after the runs: {worker_peak / MB:.0f} MB"
    )


if __name__ == "__main__":
    main()
