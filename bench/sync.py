"""Latency of synchronous requests (the OpenAI-compatible endpoint) on the running local stack, alone and
while batch jobs are queued: the sync request must not wait behind them (issue 23, part 4).

    make up                                   # in another terminal
    .venv/bin/python bench/sync.py [FILE] [--seconds 30] [--requests 20] [--batch-jobs 20] [--server URL]

FILE (default: the first 30 s of the LJ Speech recording in ../shared/testdata/speech) is cut to
--seconds and sent as FLAC. Phase 1: --requests POST /v1/audio/transcriptions, one at a time, each timed
from the request to the whole answer. Phase 2: --batch-jobs jobs of the same clip are created and uploaded
(the batch path: queue, transcription worker), then the same sync requests run while they are worked off;
the jobs still unfinished after the last sync request are counted, so the figure says whether the backlog
was really there. Prints every request, p50 and p95 of each phase, and the machine.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from hark.client import Hark
from hark.client.cli_base import fetch_dev_token
from hark.domain.jobs import JobStatus
from worker.transcription import audio

SPEECH = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "speech"
DEFAULT_FILE = SPEECH / "en_ljspeech_LJ001-0001-0032_long.flac"


def clip(path: Path, seconds: float) -> bytes:
    """The first `seconds` of the recording, as 16 kHz mono FLAC."""
    with tempfile.TemporaryDirectory() as tmp:
        samples = audio.decode(path, Path(tmp) / "pcm", max_seconds=24 * 3600).read(0, seconds)
    return audio.encode_flac(samples)


def sync_latencies(server: str, token: str, flac: bytes, count: int) -> list[float]:
    times = []
    with httpx.Client(base_url=f"{server}/v1", headers={"Authorization": f"Bearer {token}"}, timeout=600) as http:
        for i in range(count):
            started = time.monotonic()
            answer = http.post(
                "/audio/transcriptions",
                files={"file": ("clip.flac", io.BytesIO(flac), "audio/flac")},
                data={"model": "whisper-1", "language": "en"},
            )
            answer.raise_for_status()
            times.append(time.monotonic() - started)
            print(f"  request {i + 1}: {times[-1]:.2f} s ({len(answer.json()['text'])} characters)", flush=True)
    return times


def queue_batch_jobs(client: Hark, flac: bytes, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        created = client.create("clip.flac", len(flac), language="en")
        client.upload(created.upload, io.BytesIO(flac), filename="clip.flac")
        ids.append(created.job.job_id)
    return ids


def unfinished(client: Hark, ids: list[str]) -> int:
    return sum(client.get(i).status not in (JobStatus.COMPLETED, JobStatus.FAILED) for i in ids)


def summary(name: str, times: list[float]) -> str:
    p95 = statistics.quantiles(times, n=20, method="inclusive")[-1]
    return f"{name}: p50 {statistics.median(times):.2f} s, p95 {p95:.2f} s over {len(times)} requests"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("file", type=Path, nargs="?", default=DEFAULT_FILE)
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--requests", type=int, default=20)
    p.add_argument("--batch-jobs", type=int, default=20)
    p.add_argument("--server", default="http://127.0.0.1:8000")
    args = p.parse_args()
    flac = clip(args.file, args.seconds)
    token = fetch_dev_token(args.server, "sync-bench@example.com")
    sync_latencies(args.server, token, flac, 1)  # the live service loads its engine at its first request
    print("alone:")
    alone = sync_latencies(args.server, token, flac, args.requests)
    with Hark(args.server, fetch_dev_token(args.server, "sync-bench-batch@example.com")) as client:
        ids = queue_batch_jobs(client, flac, args.batch_jobs)
        print(
            f"with {args.batch_jobs} batch jobs queued ({unfinished(client, ids)} unfinished when the requests start):"
        )
        loaded = sync_latencies(args.server, token, flac, args.requests)
        left = unfinished(client, ids)
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "")
    print(f"machine: {os.cpu_count()} cores ({cpu or platform.machine()}), Python {platform.python_version()}")
    print(f"clip: {args.seconds:.0f} s of {args.file.name}")
    print(summary("alone", alone))
    print(summary(f"with {args.batch_jobs} batch jobs queued", loaded))
    print(f"batch jobs still unfinished after the last sync request: {left} of {args.batch_jobs}")


if __name__ == "__main__":
    main()
