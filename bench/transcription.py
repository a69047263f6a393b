"""Benchmark of the transcription engine on the real recordings in ../shared/testdata/speech.

Compares, on the same decoded audio and the same model, side by side:
  baseline  faster-whisper's sequential WhisperModel.transcribe with its defaults (beam 5),
            what a first implementation would call;
  plain     the worker's Engine (batched pipeline, VAD, word timestamps) with one language for the
            whole recording and no quality checks (HARK_LANGUAGE_PER_WINDOW and HARK_QUALITY_REDECODE
            off): what production ran before both;
  hark      the worker's Engine as production runs it: language per speech window, doubtful segments
            re-decoded (worker/transcription/quality.py).
For each: real-time factor (audio seconds per wall second; median over the short clips, and the
3.9-minute long-form clip on its own), word error rate per language (normalised as in hark/evaluation/wer.py),
and language detection accuracy. Results print as a table and replace the "Transcription" section
of docs/benchmarks.md when --write is given.

    .venv/bin/python bench/transcription.py [--write] [--device cpu|cuda] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from faster_whisper import decode_audio  # noqa: E402

from hark.domain.settings import Settings  # noqa: E402
from hark.evaluation.wer import word_errors  # noqa: E402
from worker.transcription.engine import Engine  # noqa: E402

SPEECH = Path(os.environ.get("HARK_SPEECH_DIR") or REPO.parent / "shared" / "testdata" / "speech")
DOC = REPO / "docs" / "benchmarks.md"
BEGIN, END = "<!-- transcription-bench:begin -->", "<!-- transcription-bench:end -->"


def clips() -> list[dict]:
    with open(SPEECH / "MANIFEST.tsv") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    for row in rows:
        row["reference"] = (SPEECH / Path(row["file"]).with_suffix(".txt").name).read_text().strip()
        row["duration"] = float(row["duration_seconds"])
    return rows


def write_section(doc: Path, begin: str, end: str, table: str, heading: str) -> None:
    """The bench's table between its markers in `doc`, or a new section with `heading` at the end."""
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    section = f"{begin}\n{table}\n{end}"
    if begin in text:
        text = text[: text.index(begin)] + section + text[text.index(end) + len(end) :]
    else:
        text += f"\n## {heading}\n\n{section}\n"
    doc.write_text(text)


def run_baseline(engine: Engine, samples, language=None):
    segments, info = engine.model.transcribe(samples, language=language, beam_size=5)
    return " ".join(s.text.strip() for s in segments), info.language


def run_hark(engine: Engine, samples, language=None):
    """Every check on: quality re-decoding and a language per speech window (the default on a GPU)."""
    engine.language_per_window = True
    t = engine.transcribe(samples, language or "auto")
    return t.text, t.language


def run_plain(engine: Engine, samples, language=None):
    full = engine.settings
    engine.settings = full.model_copy(update={"quality_redecode": False})
    engine.language_per_window = False
    try:
        t = engine.transcribe(samples, language or "auto")
        return t.text, t.language
    finally:
        engine.settings = full


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    return f"{os.cpu_count()} cores ({cpu}), {platform.python_implementation()} {platform.python_version()}"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compute-type", default="default")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--write", action="store_true", help="replace the section in docs/benchmarks.md")
    parser.add_argument("--limit", type=int, default=0, help="only the first N short clips per language (quick runs)")
    args = parser.parse_args()

    settings = Settings(
        device=args.device,
        compute_type=args.compute_type,
        batch_size=args.batch_size,
        model_dir=os.environ.get("HARK_MODEL_DIR"),
    )
    engine = Engine(settings)
    rows = clips()
    if args.limit:
        keep, seen = [], {}
        for r in rows:
            if r["duration"] > 90 or seen.get(r["language"], 0) < args.limit:
                keep.append(r)
                seen[r["language"]] = seen.get(r["language"], 0) + 1
        rows = keep
    audio = {r["file"]: decode_audio(str(SPEECH / r["file"]), sampling_rate=16000) for r in rows}
    engine.transcribe(audio[rows[0]["file"]][: 16000 * 5])  # warm-up, untimed

    results: dict[str, dict] = {}
    for mode, fn in (("baseline", run_baseline), ("plain", run_plain), ("hark", run_hark)):
        per = results.setdefault(mode, {"rtf_short": [], "long": None, "errors": {}, "words": {}, "lang_ok": 0, "n": 0})
        for r in rows:
            started = time.perf_counter()
            text, language = fn(engine, audio[r["file"]])
            wall = time.perf_counter() - started
            errors, words = word_errors(r["reference"], text, r["language"])
            rtf = r["duration"] / wall
            long_form = r["duration"] > 90
            if long_form:
                per["long"] = (rtf, errors / words)
            else:
                per["rtf_short"].append(rtf)
                per["errors"][r["language"]] = per["errors"].get(r["language"], 0) + errors
                per["words"][r["language"]] = per["words"].get(r["language"], 0) + words
            per["lang_ok"] += language == r["language"]
            per["n"] += 1
            print(
                f"{mode:8} {r['file']:42} {r['duration']:7.1f}s  {rtf:6.1f}x  WER {errors / words:6.1%}  {language}",
                flush=True,
            )

    lines = [
        f"Machine: {machine()}; device {engine.device}, {engine.compute_type}; model {engine.name} "
        f"({engine.model_dir.name}), load {engine.load_seconds:.2f} s; batch size {args.batch_size}, beam 5.",
        f"Audio: {sum(1 for r in rows if r['duration'] <= 90)} short real clips (4-21 s, English and Spanish, "
        "LibriSpeech, FLEURS, MLS, JFK) and one 3.9-minute long-form clip (LJ Speech), decoded once, untimed.",
        "",
        "| engine | median speed, short clips | long clip speed | long clip WER | WER en | WER es | language right |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for mode, per in results.items():
        long_rtf, long_wer = per["long"] or (float("nan"), float("nan"))
        wer_en = per["errors"].get("en", 0) / max(1, per["words"].get("en", 0))
        wer_es = per["errors"].get("es", 0) / max(1, per["words"].get("es", 0))
        lines.append(
            f"| {mode} | {statistics.median(per['rtf_short']):.1f}x real time | {long_rtf:.1f}x | {long_wer:.1%} | "
            f"{wer_en:.1%} | {wer_es:.1%} | {per['lang_ok']}/{per['n']} |"
        )
    b, p, h = results["baseline"], results["plain"], results["hark"]
    if b["long"] and h["long"] and p["long"]:
        lines += [
            "",
            f"Speed hark / baseline: {statistics.median(h['rtf_short']) / statistics.median(b['rtf_short']):.2f}x "
            f"on short clips, {h['long'][0] / b['long'][0]:.2f}x on the long clip; hark / plain (the cost of the "
            f"language per window and the quality checks): {statistics.median(h['rtf_short']) / statistics.median(p['rtf_short']):.2f}x "
            f"and {h['long'][0] / p['long'][0]:.2f}x.",
        ]
    table = "\n".join(lines)
    print("\n" + table)
    if args.write:
        write_section(DOC, BEGIN, END, table, "Transcription engine (`bench/transcription.py`)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
