"""The accuracy gate (issue 11, item 7): every real recording in the test data, per language, through the
pipeline (the worker's Engine.transcribe, as configured by default) and through the raw model
(faster-whisper's WhisperModel.transcribe: the same loaded model, the same beam, its own defaults) in the
same run. The pipeline's word error rate for a language may not be worse than the raw model's by more than
0.5 point. Corpus WER: errors summed over a language's clips / its reference words (hark/domain/wer.py).

The long-form LJ Speech clip is left out (3.9 min; sequential decoding of it alone takes minutes on two
cores); bench/transcription.py scores it, side by side, for docs/benchmarks.md."""

from __future__ import annotations

import csv
from collections import defaultdict

import pytest

from hark.domain.settings import Settings
from hark.domain.wer import word_errors
from tests.conftest import SHARED_SPEECH
from worker.transcription.audio import load

MAX_WORSE = 0.005  # 0.5 point of WER
MAX_CLIP_SECONDS = 90  # as hark/domain/wer.py's scoring CLI: long-form clips are the benchmark's


def recordings() -> list[dict]:
    manifest = SHARED_SPEECH / "MANIFEST.tsv"
    if not manifest.exists():
        pytest.fail(f"{manifest} is missing: the tests read the real recordings (HARK_SPEECH_DIR)")
    with open(manifest) as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if float(r["duration_seconds"]) <= MAX_CLIP_SECONDS]
    for row in rows:
        row["reference"] = (SHARED_SPEECH / row["file"]).with_suffix(".txt").read_text().strip()
    return rows


@pytest.mark.slow  # 100-155 s of CPU by the machine (26 clips, decoded twice; docs/testing.md)
def test_the_pipeline_is_never_worse_than_the_raw_model_by_more_than_half_a_point(model_dir):
    from worker.transcription.engine import Engine

    settings = Settings(model_dir=str(model_dir))
    engine = Engine(settings)
    rows = recordings()
    assert {r["language"] for r in rows} >= {"en", "es"} and len(rows) >= 20, rows
    errors: dict[str, dict[str, list[int]]] = {
        "pipeline": defaultdict(lambda: [0, 0]),
        "raw": defaultdict(lambda: [0, 0]),
    }
    for row in rows:
        samples = load(SHARED_SPEECH / row["file"], 3600)
        language = row["language"]
        pipeline = engine.transcribe(samples, "auto").text
        segments, _ = engine.model.transcribe(samples, beam_size=settings.beam_size)
        raw = " ".join(s.text.strip() for s in segments)
        for name, text in (("pipeline", pipeline), ("raw", raw)):
            wrong, total = word_errors(row["reference"], text, language)
            errors[name][language][0] += wrong
            errors[name][language][1] += total
        print(f"{row['file']}: pipeline {pipeline!r}\n  raw {raw!r}")

    report = []
    for language in sorted(errors["raw"]):
        wer = {name: errors[name][language][0] / errors[name][language][1] for name in errors}
        report.append((language, wer["pipeline"], wer["raw"]))
        print(f"{language}: pipeline WER {wer['pipeline']:.2%}, raw model {wer['raw']:.2%}")
    worse = [(lang, p, r) for lang, p, r in report if p > r + MAX_WORSE]
    assert not worse, "pipeline worse than the raw model by more than 0.5 point: " + ", ".join(
        f"{lang} {p:.2%} vs {r:.2%}" for lang, p, r in worse
    )
