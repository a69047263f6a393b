"""Wall time and CPU time of the test suite, in one process and on pytest-xdist workers: the README's `make test`
figure.

    .venv/bin/python bench/suite.py [--runs 1] [--workers 0 4] [-- PYTEST_ARGS...]

For each run, each worker count in turn (alternating, so both see the same load on a shared machine):
`pytest -n N --dist loadgroup` (N = 0: one process, no xdist) with PYTEST_ARGS (default: the whole suite),
timed from start to exit, and the CPU-seconds it used (pytest and every process it waited for, the workers'
children included: `getrusage(RUSAGE_CHILDREN)`), a measure that other work on the machine hardly moves. Prints
each run, the medians per worker count, the outcome line pytest printed, and the machine (CPU, cores, the
vector instructions CTranslate2 can pick its kernels by, the load average before and after each run). A run that
fails is reported and left out of the medians.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def cpuinfo(field: str) -> str:
    """The first CPU's `field` in /proc/cpuinfo ("" where there is none)."""
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith(field)), "")


def cpu_model() -> str:
    return cpuinfo("model name") or platform.processor() or "unknown CPU"


def vector_isa() -> str:
    """The widest x86 vector instructions the CPU has: the suite's speed and the model's exact words follow it
    (docs/testing.md, "Where the time goes")."""
    flags = set(cpuinfo("flags").split())
    return next((isa for isa in ("avx512f", "avx2", "avx") if isa in flags), "no AVX")


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_run(workers: int, pytest_args: list[str]) -> tuple[float, float, int, str]:
    """(seconds, CPU-seconds, exit code, pytest's last line)."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", str(workers)]
    if workers:
        command += ["--dist", "loadgroup"]
    started, cpu_before = time.monotonic(), children_cpu_seconds()
    done = subprocess.run([*command, *pytest_args], cwd=REPO, capture_output=True, text=True)
    seconds, cpu_seconds = time.monotonic() - started, children_cpu_seconds() - cpu_before
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    return seconds, cpu_seconds, done.returncode, lines[-1] if lines else done.stderr[-300:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 4])
    parser.add_argument("pytest_args", nargs="*", help="after --: what pytest runs (default: everything)")
    args = parser.parse_args()

    print(f"{cpu_model()} ({vector_isa()}), {os.cpu_count()} cores, {platform.system()} {platform.release()}")
    times: dict[int, list[tuple[float, float]]] = {n: [] for n in args.workers}
    for run in range(1, args.runs + 1):
        for workers in args.workers:
            before = os.getloadavg()[0]
            seconds, cpu_seconds, code, last = one_run(workers, args.pytest_args)
            after = os.getloadavg()[0]
            print(
                f"run {run}, -n {workers}: {seconds / 60:.1f} min, {cpu_seconds:.0f} CPU-s "
                f"(load {before:.1f} -> {after:.1f}): {last}"
            )
            if code == 0:
                times[workers].append((seconds, cpu_seconds))
    for workers, measured in times.items():
        if not measured:
            print(f"-n {workers}: no passing run")
            continue
        wall = statistics.median(m[0] for m in measured) / 60
        cpu = statistics.median(m[1] for m in measured)
        print(f"-n {workers}: median {wall:.1f} min, {cpu:.0f} CPU-s, of {len(measured)} passing run(s)")


if __name__ == "__main__":
    main()
