"""Upload-to-email latency of the running local stack (`make up`): the README's "10-second clip" figure.

    make up                                   # in another terminal
    .venv/bin/python bench/latency.py FILE [--runs 3] [--server http://127.0.0.1:8000] [--outbox .hark/outbox]

Each run creates a job for FILE as a dev user, uploads it to its presigned POST, and measures from the
moment the upload's HTTP answer came back to the moment the job's email (`{job_id}.eml`) is in the
outbox, polled every 20 ms. Prints every run and the median (seconds). Runs one at a time: the figure
is one user's wait on an idle stack, not throughput (bench/throughput.py is that).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

from hark.client import Hark
from hark.client.cli_base import fetch_dev_token

POLL_SECONDS = 0.02
GIVE_UP_SECONDS = 600


def one_run(client: Hark, file: Path, outbox: Path, language: str) -> float:
    with file.open("rb") as f:
        size = file.stat().st_size
        created = client.create(file.name, size, language=language)
        client.upload(created.upload, f, filename=file.name)
    uploaded = time.monotonic()
    email = outbox / f"{created.job.job_id}.eml"
    while not email.exists():
        if time.monotonic() - uploaded > GIVE_UP_SECONDS:
            raise SystemExit(f"no email for job {created.job.job_id} after {GIVE_UP_SECONDS} s: is the stack running?")
        time.sleep(POLL_SECONDS)
    return time.monotonic() - uploaded


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("file", type=Path)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--server", default="http://127.0.0.1:8000")
    p.add_argument("--outbox", type=Path, default=Path(".hark/outbox"))
    p.add_argument("--language", default="auto")
    args = p.parse_args()
    token = fetch_dev_token(args.server, "latency-bench@example.com")
    with Hark(args.server, token) as client:
        times = [one_run(client, args.file, args.outbox, args.language) for _ in range(args.runs)]
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "")
    print(f"machine: {os.cpu_count()} cores ({cpu or platform.machine()}), Python {platform.python_version()}")
    for i, t in enumerate(times, 1):
        print(f"run {i}: {t:.2f} s")
    print(f"median upload-to-email: {statistics.median(times):.2f} s over {len(times)} runs")


if __name__ == "__main__":
    main()
