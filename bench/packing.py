"""Where issue 15's CPU headroom figure comes from: the 14 short English clips joined into one recording
(with short silences) against the same clips one at a time, both through faster-whisper's
BatchedInferencePipeline (same model, batch size, beam; language detected, word timestamps). Counts the
encoder windows (30 s each) each way and the time inside every model call, and scores WER.

Joined, VAD packs several clips' speech into each 30 s window (collect_chunks), so the recording needs
about a quarter of the encoder passes; one at a time, every clip is at least one window, plus the
language-detection pass. The worker cannot do the first for separate jobs without changing their
transcripts (and mixing tenants' audio in one decoder context): docs/benchmarks.md.

    HARK_SPEECH_DIR=... .venv/bin/python bench/packing.py [--gap 0.5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from faster_whisper import BatchedInferencePipeline, WhisperModel, decode_audio  # noqa: E402

from bench.throughput import TimedModel, spent  # noqa: E402
from bench.transcription import SPEECH, clips, machine  # noqa: E402
from hark import bundled_model  # noqa: E402
from hark.domain.settings import Settings  # noqa: E402
from hark.evaluation.wer import word_errors  # noqa: E402

RATE = 16000


def run(pipeline: BatchedInferencePipeline, timed: TimedModel, audios: list[np.ndarray], settings: Settings):
    before, started, texts = timed.snapshot(), time.perf_counter(), []
    for samples in audios:
        segments, _ = pipeline.transcribe(
            samples, batch_size=settings.batch_size, beam_size=settings.beam_size, word_timestamps=True
        )
        texts.append(" ".join(s.text.strip() for s in segments))
    return texts, time.perf_counter() - started, spent(timed, before)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gap", type=float, default=0.5, help="seconds of silence between joined clips")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    settings = Settings(model_dir=os.environ.get("HARK_MODEL_DIR"))
    model_dir = settings.model_dir or str(bundled_model.install(settings.model_name))
    model = WhisperModel(model_dir, device="cpu", compute_type="int8", cpu_threads=settings.cpu_threads)
    timed = TimedModel(model.model)
    model.model = timed
    pipeline = BatchedInferencePipeline(model)
    rows = [r for r in clips() if r["language"] == "en" and r["duration"] <= 90]
    audios = [decode_audio(str(SPEECH / r["file"]), sampling_rate=RATE) for r in rows]
    gap = np.zeros(int(args.gap * RATE), dtype=np.float32)
    joined = np.concatenate([part for a in audios for part in (a, gap)][:-1])
    audio_seconds = sum(len(a) for a in audios) / RATE
    run(pipeline, timed, audios[:1], settings)  # warm-up, untimed

    report: dict = {"machine": machine(), "clips": len(rows), "audio_seconds": round(audio_seconds, 1)}
    for name, inputs in (("one_at_a_time", audios), ("joined", [joined])):
        texts, wall, parts = run(pipeline, timed, inputs, settings)
        reference = [" ".join(r["reference"] for r in rows)] if name == "joined" else [r["reference"] for r in rows]
        errors = words = 0
        for ref, text in zip(reference, texts, strict=True):
            e, w = word_errors(ref, text, "en")
            errors, words = errors + e, words + w
        report[name] = {
            "wall_seconds": round(wall, 2),
            "speed": round(audio_seconds / wall, 1),
            "wer": round(errors / max(1, words), 4),
            "model": parts,
        }
        print(f"{name}: {report[name]}", file=sys.stderr, flush=True)
    report["ratio"] = round(report["joined"]["speed"] / report["one_at_a_time"]["speed"], 2)
    print(json.dumps(report, indent=2) if args.json else report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
