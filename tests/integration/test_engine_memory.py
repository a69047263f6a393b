"""The engine reuses the memory a batch frees (worker/transcription/engine.py, keep_freed_memory).

A process's minor page faults count the pages the kernel had to map (and zero) for it. Transcribing the same
recording a second time needs no new memory if freed buffers are reused; with glibc's defaults each batch maps
its buffers afresh. The bound: fewer faults than the pages of one 30-second window's log-mel features (the
smallest buffer a batch allocates), so a single buffer mapped again would exceed it. Each case runs in a fresh
process: malloc's options hold for a whole process.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import SHARED_SPEECH

CLIP = SHARED_SPEECH / "en_fleurs_001.ogg"
MEL_BINS, WINDOW_FRAMES, FLOAT32_BYTES, PAGE_BYTES = 80, 3000, 4, 4096  # Whisper's features of one window
ONE_WINDOW_OF_FEATURES_PAGES = MEL_BINS * WINDOW_FRAMES * FLOAT32_BYTES // PAGE_BYTES

SECOND_TRANSCRIPTION_FAULTS = """
import json, resource, sys
from hark.domain.settings import Settings
from worker.transcription import engine
from worker.transcription.audio import load
model_dir, clip, keep = sys.argv[1:4]
if keep == "no":
    engine.keep_freed_memory = lambda: False  # glibc's defaults: the baseline
audio = load(clip, 3600)
e = engine.Engine(Settings(model_dir=model_dir, cpu_threads=2))
first = e.transcribe(audio, "en").text
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
second = e.transcribe(audio, "en").text
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"faults": faults, "same_text": first == second, "words": len(second.split())}))
"""


def second_transcription(model_dir, keep: str) -> dict:
    run = subprocess.run(
        [sys.executable, "-c", SECOND_TRANSCRIPTION_FAULTS, str(model_dir), str(CLIP), keep],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_a_second_transcription_maps_no_new_memory_where_glibc_defaults_map_every_batch_again(model_dir):
    kept = second_transcription(model_dir, "yes")
    baseline = second_transcription(model_dir, "no")
    print(f"page faults of a second transcription: {kept['faults']} kept, {baseline['faults']} glibc defaults")
    assert kept["words"] > 0 and kept["same_text"] and baseline["same_text"]
    assert kept["faults"] < ONE_WINDOW_OF_FEATURES_PAGES <= baseline["faults"]
