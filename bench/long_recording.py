"""A 4-hour recording through the local stack (`hark up`, as `make up` runs it): wall time and the peak
memory of each worker (issue 21, item 7).

    .venv/bin/python bench/long_recording.py [--hours 4] [--speech-rounds 4] [--port 8300] [--split-only]

The recording is made from the real recordings in ../shared/testdata/speech (HARK_SPEECH_DIR): all of
them in turn, each followed by an equal share of silence, `--speech-rounds` times over, to `--hours`
(16 kHz mono FLAC, written a recording at a time). The script starts its own stack on `--port` and
`--port`+1 with a fresh HARK_HOME, signs in as a dev user, uploads, and waits for the job's email in the
outbox. It reads each worker's VmHWM (peak resident memory since it started) from /proc when the stack
is ready and when the email is there, and samples the RSS of the workers every 0.2 s; the decoding
child's own peak comes from the worker's "decoded" log line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import av
import numpy as np
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hark.client import Hark  # noqa: E402
from hark.client.cli import fetch_dev_token  # noqa: E402
from worker.transcription import audio  # noqa: E402

SPEECH = Path(os.environ.get("HARK_SPEECH_DIR", REPO.parent / "shared" / "testdata" / "speech"))
RATE = audio.SAMPLE_RATE
MB = 1024 * 1024


def make_recording(dest: Path, hours: float, rounds: int) -> tuple[float, float]:
    """(seconds in all, seconds of speech) of the FLAC written to `dest`."""
    files = sorted(p for p in SPEECH.iterdir() if p.suffix in {".flac", ".ogg", ".wav", ".opus", ".mp3"})
    voices = [audio.load(p, 3600) for p in files]
    speech = sum(len(v) for v in voices) * rounds
    total = int(hours * 3600 * RATE)
    gap = max(0, (total - speech) // (len(voices) * rounds))
    silence = np.zeros(gap, dtype=np.float32)
    written = 0
    with av.open(str(dest), mode="w", format="flac") as container:
        stream = container.add_stream("flac", rate=RATE, layout="mono")

        def put(samples: np.ndarray) -> None:
            nonlocal written
            pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16)
            for start in range(0, len(pcm), RATE * 10):
                frame = av.AudioFrame.from_ndarray(pcm[None, start : start + RATE * 10], format="s16", layout="mono")
                frame.sample_rate = RATE
                for packet in stream.encode(frame):
                    container.mux(packet)
            written += len(pcm)

        for _ in range(rounds):
            for voice in voices:
                put(voice)
                put(silence)
        put(np.zeros(max(0, total - written), dtype=np.float32))
        for packet in stream.encode(None):
            container.mux(packet)
    return written / RATE, speech / RATE


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def workers_of(stack: psutil.Process) -> dict[str, psutil.Process]:
    found = {}
    for child in stack.children():
        cmd = " ".join(child.cmdline())
        for name in ("worker.transcription", "worker.notification", "worker.webhooks"):
            if cmd.endswith(name):
                found[name] = child
    return found


def ready_logs(home: Path) -> int:
    return sum('"worker ready"' in log.read_text(errors="replace") for log in (home / "logs").glob("*.log"))


class Sampler(threading.Thread):
    """The highest RSS seen of each worker, every 0.2 s (a check on VmHWM). Not the decoding child's: until
    its exec, a forked child's RSS counts the worker's own pages; its VmHWM after the exec is logged."""

    def __init__(self, workers: dict[str, psutil.Process]):
        super().__init__(daemon=True)
        self.workers, self.peaks = workers, dict.fromkeys(workers, 0)
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.2):
            for name, proc in self.workers.items():
                try:
                    self.peaks[name] = max(self.peaks[name], proc.memory_info().rss)
                except psutil.Error:
                    pass


def split_only(hours: float, rounds: int) -> None:
    """What an upload's own path holds, without the engine: the decoding child, then the split (a window at
    a time, the VAD a block at a time) and each chunk's FLAC, as fanout.py does, in this process."""
    from hark.domain.settings import Settings
    from worker.transcription import chunking

    target = Settings().chunk_target_seconds
    with tempfile.TemporaryDirectory(prefix="hark-long-") as tmp:
        recording = Path(tmp) / "long.flac"
        seconds, speech = make_recording(recording, hours, rounds)
        chunking.pauses(np.zeros(RATE, dtype=np.float32))  # the VAD model loaded, as in a worker
        before = status_kb(os.getpid(), "VmHWM") * 1024
        started = time.monotonic()
        pcm = audio.decode(recording, Path(tmp) / "pcm", seconds + 1)
        count = sum(
            1 for piece in chunking.split_stream(pcm.read, pcm.seconds, target) if audio.encode_flac(piece.samples)
        )
        after = status_kb(os.getpid(), "VmHWM") * 1024
    print(f"recording: {seconds / 3600:.2f} h ({speech / 60:.1f} min of speech); {count} chunks")
    print(f"decoding child: peak RSS {pcm.peak_rss_bytes / MB:.0f} MB")
    print(
        f"this process: VmHWM {before / MB:.0f} MB before, {after / MB:.0f} MB after the split; {time.monotonic() - started:.0f} s"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hours", type=float, default=4)
    p.add_argument("--speech-rounds", type=int, default=4)
    p.add_argument("--port", type=int, default=8300)
    p.add_argument("--split-only", action="store_true", help="no stack: decode and split in this process")
    args = p.parse_args()
    if args.split_only:
        split_only(args.hours, args.speech_rounds)
        return

    with tempfile.TemporaryDirectory(prefix="hark-long-") as tmp:
        home = Path(tmp) / "home"
        recording = Path(tmp) / f"long-{args.hours:g}h.flac"
        seconds, speech = make_recording(recording, args.hours, args.speech_rounds)
        print(
            f"recording: {seconds / 3600:.2f} h ({speech / 60:.1f} min of speech), {recording.stat().st_size / MB:.1f} MB FLAC"
        )
        env = {**os.environ, "HARK_HOME": str(home), "HARK_PORT": str(args.port)}
        env["HARK_EMULATOR_PORT"] = str(args.port + 1)
        stack = subprocess.Popen(
            [str(REPO / ".venv/bin/hark"), "up"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            assert stack.stdout is not None
            for line in stack.stdout:
                if "Hark is running" in line:
                    break
            else:
                raise SystemExit("the stack stopped before it was ready")
            threading.Thread(target=lambda: [None for _ in stack.stdout], daemon=True).start()  # type: ignore[union-attr]
            workers = workers_of(psutil.Process(stack.pid))
            while len(workers) < 3 or ready_logs(home) < 3:  # each worker logs "worker ready" once its model is in
                time.sleep(0.2)
                workers = workers_of(psutil.Process(stack.pid))
            ready = {name: status_kb(w.pid, "VmHWM") * 1024 for name, w in workers.items()}
            sampler = Sampler(workers)
            sampler.start()

            server = f"http://127.0.0.1:{args.port}"
            with Hark(server, fetch_dev_token(server, "long-bench@example.com")) as client:
                with recording.open("rb") as f:
                    created = client.create(recording.name, recording.stat().st_size, language="en")
                    client.upload(created.upload, f, filename=recording.name)
                uploaded = time.monotonic()
                email = home / "outbox" / f"{created.job.job_id}.eml"
                while not email.exists():
                    time.sleep(0.5)
                wall = time.monotonic() - uploaded
                job = client.get(created.job.job_id)
            sampler.done.set()
            peaks = {name: status_kb(w.pid, "VmHWM") * 1024 for name, w in workers.items()}
            lines = [
                json.loads(line)
                for log in (home / "logs").glob("*.log")
                for line in log.read_text(errors="replace").splitlines()
                if line.startswith("{")
            ]
            decoded = [line for line in lines if line.get("message") == "decoded"]
            split = [line for line in lines if line.get("message") == "split into chunks"]
        finally:
            os.killpg(stack.pid, signal.SIGINT)
            stack.wait()

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "")
    print(f"machine: {os.cpu_count()} cores ({cpu or platform.machine()}), Python {platform.python_version()}")
    overrides = {k: v for k, v in os.environ.items() if k.startswith("HARK_") and k not in ("HARK_HOME", "HARK_PORT")}
    print(f"settings: {overrides or 'the defaults'}")
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"job: {job.status.value}, {job.duration_seconds} s of audio" + (f", {job.error}" if job.error else ""))
    for line in split:
        print(f"split into {line['chunks']} chunks of {min(line['chunk_seconds'])}-{max(line['chunk_seconds'])} s")
    print(f"upload end -> email in the outbox: {wall:.0f} s ({wall / 60:.1f} min)")
    for name in workers:
        print(
            f"{name}: VmHWM {ready[name] / MB:.0f} MB when ready, {peaks[name] / MB:.0f} MB at the end "
            f"(+{(peaks[name] - ready[name]) / MB:.0f} MB); highest RSS sampled during the job {sampler.peaks[name] / MB:.0f} MB"
        )
    for line in decoded:
        print(
            f"decoding child: peak RSS {line['decoder_peak_rss_bytes'] / MB:.0f} MB for {line['audio_seconds']:.0f} s"
        )


if __name__ == "__main__":
    main()
