"""Throughput of the worker's engine against faster-whisper's BatchedInferencePipeline (issue 15).

Two streams of jobs made of the real recordings in the test data (HARK_SPEECH_DIR, or ../shared/testdata/
speech beside the checkout): `short`, the short clips (4-21 s, English and Spanish) repeated to --jobs jobs,
and `long`, the long-form clip(s) repeated --long times mixed into a quarter as many short ones. Each stream
goes, in one run on one machine, through:
  pipeline  faster-whisper's BatchedInferencePipeline, one file at a time, each in its own language
            (detected), word timestamps: what a worker did per message before the engine;
  engine    the worker's Engine as the worker runs it: HARK_MAX_MESSAGES_IN_FLIGHT jobs at once, each in
            its own thread (audio decoding, VAD, features), their pieces sharing the model's batches, with
            the quality checks and re-decoding on.
Same model, beam size and batch size for both. Each job starts from the compressed file (decoding it is
part of the job); downloads from S3 are not. Reported per stream and engine: audio seconds per wall
second, per-job overhead (a job's wall time minus its model time), model-busy share (time inside
CTranslate2's encode/generate/align/detect_language over the wall time), WER and languages right.

    .venv/bin/python bench/throughput.py [--jobs 200] [--long 3] [--json] [--write] [--device cpu|cuda]

`--json` prints {"ratio_short", "ratio_long", "wer_delta_pt", ...}; `--write` replaces the throughput
section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from faster_whisper import BatchedInferencePipeline, WhisperModel, decode_audio  # noqa: E402

from bench.transcription import SPEECH, clips, machine, write_section  # noqa: E402
from hark.domain.settings import Settings  # noqa: E402
from hark.evaluation.wer import word_errors  # noqa: E402
from worker.transcription.engine import DecodeOptions, Engine  # noqa: E402

DOC = REPO / "docs" / "benchmarks.md"
BEGIN, END = "<!-- throughput-bench:begin -->", "<!-- throughput-bench:end -->"
TIMED = ("encode", "generate", "align", "detect_language")


class TimedModel:
    """CTranslate2's Whisper with the time inside its model calls added up (thread-safe), per call and in
    all, and the encoder windows it encoded (rows of `encode`). Calls made while a thread is re-decoding a
    doubtful segment (`redecoding`) are counted apart, under "redecode"."""

    def __init__(self, inner):
        self._inner, self.seconds, self._lock = inner, 0.0, threading.Lock()
        self.parts: dict[str, float] = {}
        self.windows = 0
        self._local = threading.local()

    @contextmanager
    def redecoding(self) -> Iterator[None]:
        self._local.redecode = True
        try:
            yield
        finally:
            self._local.redecode = False

    def snapshot(self) -> dict:
        with self._lock:
            return {"seconds": self.seconds, "windows": self.windows, **self.parts}

    def __getattr__(self, name):
        value = getattr(self._inner, name)
        if name not in TIMED:
            return value

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return value(*args, **kwargs)
            finally:
                spent = time.perf_counter() - started
                key = "redecode" if getattr(self._local, "redecode", False) else name
                with self._lock:
                    self.seconds += spent
                    self.parts[key] = self.parts.get(key, 0.0) + spent
                    if name == "encode":
                        self.windows += args[0].shape[0]

        return timed


def spent(timed: TimedModel, before: dict) -> dict:
    """Model seconds per call (and encoder windows) since `before` (a snapshot)."""
    now = timed.snapshot()
    return {key: round(value - before.get(key, 0), 2) for key, value in now.items()}


def timed_engine(engine: Engine) -> TimedModel:
    """The engine's model timed, its re-decoding counted apart."""
    timed = TimedModel(engine.model.model)
    engine.model.model = timed
    redecode = engine._redecode

    def redecode_timed(*args, **kwargs):
        with timed.redecoding():
            return redecode(*args, **kwargs)

    engine._redecode = redecode_timed  # type: ignore[method-assign]
    return timed


def stream(rows: list[dict], count: int) -> list[dict]:
    return [rows[i % len(rows)] for i in range(count)]


def run_pipeline(model: WhisperModel, timed: TimedModel, jobs: list[dict], settings: Settings) -> dict:
    pipeline = BatchedInferencePipeline(model)
    results, started, model_start, parts = [], time.perf_counter(), timed.seconds, timed.snapshot()
    for row in jobs:
        job_started, model_before = time.perf_counter(), timed.seconds
        samples = decode_audio(str(SPEECH / row["file"]), sampling_rate=16000)
        segments, info = pipeline.transcribe(
            samples, batch_size=settings.batch_size, beam_size=settings.beam_size, word_timestamps=True
        )
        text = " ".join(s.text.strip() for s in segments)
        results.append((row, text, info.language, time.perf_counter() - job_started, timed.seconds - model_before))
    wall = time.perf_counter() - started
    return {"results": results, "wall": wall, "model": timed.seconds - model_start, "parts": spent(timed, parts)}


def run_engine(engine: Engine, timed: TimedModel, jobs: list[dict], in_flight: int) -> dict:
    def one(row: dict):
        job_started = time.perf_counter()
        samples = decode_audio(str(SPEECH / row["file"]), sampling_rate=16000)
        result = engine.run(samples, DecodeOptions(language="auto"))
        return (
            row,
            result.transcript.text,
            result.transcript.language,
            time.perf_counter() - job_started,
            result.model_seconds,
        )

    model_before, started, parts = timed.seconds, time.perf_counter(), timed.snapshot()
    batches_before, pieces_before = engine.batcher.batches, engine.batcher.pieces
    with ThreadPoolExecutor(in_flight) as pool:
        results = list(pool.map(one, jobs))
    wall = time.perf_counter() - started
    return {
        "results": results,
        "wall": wall,
        "model": timed.seconds - model_before,
        "parts": spent(timed, parts),
        "batches": engine.batcher.batches - batches_before,
        "pieces": engine.batcher.pieces - pieces_before,
    }


def combine(runs: list[dict], replicas: int = 1) -> dict:
    """One mode's rounds together: their jobs, wall times, model seconds and calls summed."""
    out = summary(
        [r for run in runs for r in run["results"]],
        sum(run["wall"] for run in runs),
        sum(run["model"] for run in runs),
        replicas,
    )
    keys = {k for run in runs for k in run["parts"]}
    out["model_parts"] = {k: round(sum(run["parts"].get(k, 0) for run in runs), 2) for k in sorted(keys)}
    if "batches" in runs[0]:
        out["pieces_per_batch"] = round(sum(r["pieces"] for r in runs) / max(1, sum(r["batches"] for r in runs)), 2)
    return out


def summary(results: list, wall: float, model_seconds: float, replicas: int = 1) -> dict:
    audio = sum(r[0]["duration"] for r in results)
    errors = words = right = 0
    for row, text, language, _, _ in results:
        e, w = word_errors(row["reference"], text, row["language"])
        errors, words, right = errors + e, words + w, right + (language == row["language"])
    return {
        "jobs": len(results),
        "audio_seconds": round(audio, 1),
        "wall_seconds": round(wall, 2),
        "speed": round(audio / wall, 2),  # audio seconds per wall second
        # Per job, its wall time minus its model time: download-free I/O, decoding, VAD, features, waiting for
        # the model (with jobs in flight, the batches of the others) and the checks.
        "overhead_seconds": round(statistics.mean(r[3] - r[4] for r in results), 3),
        "model_busy": round(model_seconds / wall / replicas, 3),  # of the replicas' time together
        "wer": errors / max(1, words),
        "errors": errors,
        "words": words,
        "languages_right": f"{right}/{len(results)}",
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=200, help="jobs in the short stream")
    parser.add_argument("--long", type=int, default=3, help="long-form jobs in the long stream")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compute-type", default="default")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--in-flight", type=int, default=0, help="jobs at once (default HARK_MAX_MESSAGES_IN_FLIGHT)")
    parser.add_argument(
        "--replicas",
        default="",
        help="also run the engine with these HARK_MODEL_REPLICAS (comma-separated), beside the default",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="each stream cut into this many parts, each run by every mode in turn (the machine's load "
        "drifts: this spreads it over all modes alike)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON only")
    parser.add_argument("--write", action="store_true", help="replace the section in docs/benchmarks.md")
    return parser.parse_args()


def load_models(settings: Settings, replicas: str) -> tuple[dict[str, Engine], WhisperModel, TimedModel]:
    """The engines by mode ("engine", and one per other --replicas count) and the timed baseline model."""
    engine = Engine(settings)
    # The pipeline runs as a worker ran it before the engine: one model, all cores (HARK_CPU_THREADS).
    baseline = WhisperModel(
        str(engine.model_dir),
        device=engine.device,
        compute_type=engine.compute_type,
        cpu_threads=settings.cpu_threads,
        local_files_only=True,
    )
    baseline_timed = TimedModel(baseline.model)
    baseline.model = baseline_timed
    engines = {"engine": engine}
    for count in (int(n) for n in replicas.split(",") if n.strip()):
        if count != engine.replicas:
            engines[f"engine, {count} replica{'s' if count > 1 else ''}"] = Engine(
                Settings(**{**settings.model_dump(), "model_replicas": count})
            )
    return engines, baseline, baseline_timed


def make_streams(short: list[dict], long: list[dict], jobs: int, long_jobs: int) -> dict[str, list[dict]]:
    streams = {
        "short": stream(short, jobs),
        "long": stream(long, long_jobs) + stream(short, max(1, jobs // 4)),
    }
    # Each round of the long stream: one long clip and its share of the short ones, all in flight at once.
    mixed = -(-(len(streams["long"]) - long_jobs) // max(1, long_jobs))
    streams["long"] = [
        job
        for i in range(long_jobs)
        for job in [streams["long"][i], *streams["long"][long_jobs + i * mixed : long_jobs + (i + 1) * mixed]]
    ]
    return streams


def run_stream(
    name: str,
    jobs: list[dict],
    rounds_wanted: int,
    pipeline: tuple[WhisperModel, TimedModel, Settings],
    engines: dict[str, Engine],
    timers: dict[str, TimedModel],
    in_flight: int,
    log,
) -> dict[str, dict]:
    """One stream cut into rounds, each run by every mode in turn; each mode's rounds combined."""
    rounds: dict[str, list[dict]] = {mode: [] for mode in ("pipeline", *engines)}
    size = -(-len(jobs) // max(1, rounds_wanted))
    for part in (jobs[i : i + size] for i in range(0, len(jobs), size)):
        rounds["pipeline"].append(run_pipeline(*pipeline[:2], part, pipeline[2]))
        for mode, e in engines.items():
            rounds[mode].append(run_engine(e, timers[mode], part, in_flight))
        print(f"{name}: a round of {len(part)} jobs; load average {os.getloadavg()[0]:.1f}", file=log, flush=True)
    results = {mode: combine(runs, engines[mode].replicas if mode in engines else 1) for mode, runs in rounds.items()}
    for mode, r in results.items():
        print(f"{name} {mode} {r}", file=log, flush=True)
    return results


def make_report(
    results: dict[str, dict[str, dict]], args: argparse.Namespace, settings: Settings, engine: Engine, in_flight: int
) -> dict:
    def ratio(name: str) -> float:
        return round(results[name]["engine"]["speed"] / results[name]["pipeline"]["speed"], 2)

    wer = {
        mode: sum(r[mode]["errors"] for r in results.values()) / max(1, sum(r[mode]["words"] for r in results.values()))
        for mode in ("pipeline", "engine")
    }
    return {
        "ratio_short": ratio("short"),
        "ratio_long": ratio("long"),
        "wer_delta_pt": round(100 * (wer["engine"] - wer["pipeline"]), 2),
        "machine": machine(),
        "device": engine.device,
        "compute_type": engine.compute_type,
        "model": engine.name,
        "batch_size": args.batch_size,
        "beam_size": settings.beam_size,
        "in_flight": in_flight,
        "replicas": engine.replicas,
        "load_average": [round(x, 1) for x in os.getloadavg()],
        "streams": results,
    }


def markdown(
    report: dict,
    streams: dict[str, list[dict]],
    args: argparse.Namespace,
    settings: Settings,
    engine: Engine,
    in_flight: int,
) -> str:
    """docs/benchmarks.md's section: the run's conditions, a table per stream and mode, the ratios."""
    results = report["streams"]
    lines = [
        f"Machine: {report['machine']}; device {engine.device}, {engine.compute_type}; model {engine.name}; "
        f"batch size {args.batch_size}, beam {settings.beam_size}; engine with {in_flight} jobs in flight and "
        f"{engine.replicas} model replica(s); load average {report['load_average'][0]} at the end of the run.",
        f"Streams: short = {len(streams['short'])} jobs of the short real clips (4-21 s, English and Spanish) in "
        f"turn; long = {args.long} x the 3.9-minute long-form clip with {len(streams['long']) - args.long} short ones.",
        f"Run in rounds (short: {args.rounds}, long: {args.long}), each through every mode in turn, so the load of the "
        "shared machine falls on all modes alike; times summed over the rounds.",
        "",
        "| stream | engine | jobs | audio s | wall s | audio s per wall s | overhead per job (wall - model) "
        "| model busy | WER | languages right |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, modes in results.items():
        for mode, r in modes.items():
            lines.append(
                f"| {name} | {mode} | {r['jobs']} | {r['audio_seconds']:.0f} | {r['wall_seconds']:.1f} | "
                f"{r['speed']:.1f}x | {r['overhead_seconds']:.2f} s | {r['model_busy']:.0%} | {r['wer']:.1%} | "
                f"{r['languages_right']} |"
            )
    lines += [
        "",
        "Model seconds by call (summed over the replicas; redecode: every call made re-decoding doubtful "
        "segments) and encoder windows (30 s each):",
        "",
        "| stream | engine | encode | generate | align (word timings) | detect_language | redecode | windows |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, modes in results.items():
        for mode, r in modes.items():
            m = r["model_parts"]
            lines.append(
                f"| {name} | {mode} | "
                + " | ".join(
                    f"{m.get(k, 0):.1f} s" for k in ("encode", "generate", "align", "detect_language", "redecode")
                )
                + f" | {m['windows']:.0f} |"
            )
    lines += [
        "",
        f"Engine / pipeline: {report['ratio_short']:.2f}x on the short stream, {report['ratio_long']:.2f}x on the "
        f"long stream; WER difference {report['wer_delta_pt']:+.2f} points (both streams' words together).",
    ]
    return "\n".join(lines)


def main() -> int:
    args = parse_args()
    settings = Settings(
        device=args.device,
        compute_type=args.compute_type,
        batch_size=args.batch_size,
        model_dir=os.environ.get("HARK_MODEL_DIR"),
    )
    in_flight = args.in_flight or settings.max_messages_in_flight
    engines, baseline, baseline_timed = load_models(settings, args.replicas)
    engine = engines["engine"]
    timers = {name: timed_engine(e) for name, e in engines.items()}
    rows = clips()
    short = [r for r in rows if r["duration"] <= 90]
    long = [r for r in rows if r["duration"] > 90]
    warm = decode_audio(str(SPEECH / short[0]["file"]), sampling_rate=16000)
    for e in engines.values():  # warm-up, untimed
        e.transcribe(warm)
    run_pipeline(baseline, baseline_timed, short[:1], settings)
    streams = make_streams(short, long, args.jobs, args.long)
    log = sys.stderr if args.json else sys.stdout
    results = {
        name: run_stream(
            name,
            jobs,
            args.rounds if name == "short" else args.long,
            (baseline, baseline_timed, settings),
            engines,
            timers,
            in_flight,
            log,
        )
        for name, jobs in streams.items()
    }
    report = make_report(results, args, settings, engine, in_flight)
    if args.json:
        print(json.dumps(report, indent=2))
    table = markdown(report, streams, args, settings, engine, in_flight)
    if not args.json:
        print("\n" + table)
    if args.write:
        write_section(DOC, BEGIN, END, table, "Throughput: the engine across jobs (`bench/throughput.py`)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
