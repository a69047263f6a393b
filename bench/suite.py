"""Wall time of the test suite, in one process and on pytest-xdist workers: the README's `make test` figure.

    .venv/bin/python bench/suite.py [--runs 1] [--workers 0 2] [-- PYTEST_ARGS...]

For each run, each worker count in turn (alternating, so both see the same load on a shared machine):
`pytest -n N --dist loadgroup` (N = 0: one process, no xdist) with PYTEST_ARGS (default: the whole suite),
timed from start to exit. Prints each run, the median per worker count, the outcome line pytest printed,
and the machine (CPU, cores, the load average before and after each run: other work on the machine
counts). A run that fails is reported and left out of the median.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def one_run(workers: int, pytest_args: list[str]) -> tuple[float, int, str]:
    """(seconds, exit code, pytest's last line)."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", str(workers)]
    if workers:
        command += ["--dist", "loadgroup"]
    started = time.monotonic()
    done = subprocess.run([*command, *pytest_args], cwd=REPO, capture_output=True, text=True)
    seconds = time.monotonic() - started
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    return seconds, done.returncode, lines[-1] if lines else done.stderr[-300:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("pytest_args", nargs="*", help="after --: what pytest runs (default: everything)")
    args = parser.parse_args()

    print(f"{cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}")
    times: dict[int, list[float]] = {n: [] for n in args.workers}
    for run in range(1, args.runs + 1):
        for workers in args.workers:
            before = os.getloadavg()[0]
            seconds, code, last = one_run(workers, args.pytest_args)
            after = os.getloadavg()[0]
            print(f"run {run}, -n {workers}: {seconds / 60:.1f} min (load {before:.1f} -> {after:.1f}): {last}")
            if code == 0:
                times[workers].append(seconds)
    for workers, measured in times.items():
        median = f"{statistics.median(measured) / 60:.1f} min" if measured else "no passing run"
        print(f"-n {workers}: median {median} of {len(measured)} passing run(s)")


if __name__ == "__main__":
    main()
