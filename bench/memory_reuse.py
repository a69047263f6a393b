"""Benchmark of the engine's memory reuse (worker/transcription/engine.py, keep_freed_memory).

The same engine, the same clips, in fresh processes side by side, rounds alternating:
  glibc defaults  malloc as glibc sets it up (keep_freed_memory replaced by a no-op): the baseline;
  kept            as the worker runs: one arena, freed buffers kept for the next batch.
For each: median speed over the short real clips (audio seconds per wall second, the engine as the worker
configures it by default), the 3.9-minute long-form clip's time, the kernel's share of the CPU time, minor page
faults, and peak memory; the transcripts must be the same word for word. Results print as a table and
replace the "Memory reuse" section of docs/benchmarks.md when --write is given.

    .venv/bin/python bench/memory_reuse.py [--rounds 2] [--write]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.transcription import SPEECH, clips, machine, write_section  # noqa: E402

DOC = REPO / "docs" / "benchmarks.md"
BEGIN, END = "<!-- memory-reuse-bench:begin -->", "<!-- memory-reuse-bench:end -->"
MODES = ("glibc defaults", "kept")
LONG_CLIP_SECONDS = 90  # above: the long-form clip, timed on its own


def child(mode: str) -> dict:
    from faster_whisper import decode_audio

    from hark.domain.settings import Settings
    from worker.transcription import engine

    if mode == "glibc defaults":
        engine.keep_freed_memory = lambda: False
    rows = clips()
    audio = {r["file"]: decode_audio(str(SPEECH / r["file"]), sampling_rate=16000) for r in rows}
    e = engine.Engine(Settings())
    e.transcribe(audio[rows[0]["file"]], "auto")  # warm: the first batch's allocations are not the steady state
    before, texts, speeds, long_seconds = resource.getrusage(resource.RUSAGE_SELF), {}, [], 0.0
    for row in rows:
        started = time.perf_counter()
        texts[row["file"]] = e.transcribe(audio[row["file"]], "auto").text
        took = time.perf_counter() - started
        if row["duration"] > LONG_CLIP_SECONDS:
            long_seconds = took
        else:
            speeds.append(row["duration"] / took)
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "speeds": speeds,
        "long_seconds": long_seconds,
        "user": after.ru_utime - before.ru_utime,
        "sys": after.ru_stime - before.ru_stime,
        "faults": after.ru_minflt - before.ru_minflt,
        "max_rss_mb": after.ru_maxrss / 1024,
        "texts": texts,
    }


def run(mode: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--write", action="store_true", help="replace the section in docs/benchmarks.md")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return 0

    results: dict[str, list[dict]] = {mode: [] for mode in MODES}
    for round_ in range(args.rounds):
        for mode in MODES if round_ % 2 == 0 else reversed(MODES):
            results[mode].append(run(mode))
            print(f"round {round_ + 1}: {mode} done", file=sys.stderr)
    texts = {mode: [r["texts"] for r in runs] for mode, runs in results.items()}
    same = all(t == texts["kept"][0] for runs in texts.values() for t in runs)

    rows, summary = [], {}
    for mode, runs in results.items():
        speed = statistics.median(s for r in runs for s in r["speeds"])
        long_seconds = statistics.median(r["long_seconds"] for r in runs)
        sys_share = sum(r["sys"] for r in runs) / sum(r["user"] + r["sys"] for r in runs)
        faults = statistics.median(r["faults"] for r in runs)
        rss = max(r["max_rss_mb"] for r in runs)
        summary[mode] = (speed, long_seconds)
        rows.append(
            f"| {mode} | {speed:.1f}x real time | {long_seconds:.1f} s | {sys_share:.0%} | {faults:,.0f} | {rss:.0f} MB |"
        )
    (base_speed, base_long), (kept_speed, kept_long) = summary["glibc defaults"], summary["kept"]
    table = "\n".join(
        [
            f"Machine: {machine()}; the engine as the worker runs it by default (device cpu, int8, "
            f"two replicas); {args.rounds} fresh processes per mode, alternating.",
            f"Audio: {len(results['kept'][0]['speeds'])} short real clips and the 3.9-minute long-form clip, "
            "each transcribed once per process after one warm-up.",
            "",
            "| malloc | median speed, short clips | long clip | kernel's share of CPU time | minor page faults |"
            " peak memory |",
            "| --- | --- | --- | --- | --- | --- |",
            *rows,
            "",
            f"Kept / glibc defaults: {kept_speed / base_speed:.2f}x the speed on short clips, "
            f"{kept_long / base_long:.2f}x the long clip's time; transcripts "
            f"{'the same word for word' if same else 'DIFFERENT'}.",
        ]
    )
    print(table)
    if args.write:
        write_section(DOC, BEGIN, END, table, "Memory reuse: the engine's freed buffers (`bench/memory_reuse.py`)")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
