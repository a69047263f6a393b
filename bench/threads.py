"""How to spend the CPU cores on the engine's batches: one model whose batches run one at a time on all
cores (intra_threads = cores, the engine's way), or one replica per core (CTranslate2 inter_threads =
cores, intra 1: WhisperModel num_workers) with as many batches decoded at once from as many threads.
The same batches of the short real clips (English and Spanish, each prompted in its own language) go
through encode, generate (beam 5) and align each way; prints the wall time of each and whether the
outputs are identical.

    HARK_SPEECH_DIR=... .venv/bin/python bench/threads.py [--batches 4] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from faster_whisper import WhisperModel, decode_audio  # noqa: E402
from faster_whisper.audio import pad_or_trim  # noqa: E402
from faster_whisper.tokenizer import Tokenizer  # noqa: E402

from bench.transcription import SPEECH, clips, machine  # noqa: E402
from hark import bundled_model  # noqa: E402
from hark.domain.settings import Settings  # noqa: E402
from worker.transcription.engine import _rows  # noqa: E402


def decode_batch(model: WhisperModel, features: np.ndarray, languages: list[str], beam: int) -> list:
    encoded = model.encode(features)
    tokenizers = [Tokenizer(model.hf_tokenizer, True, task="transcribe", language=code) for code in languages]
    prompts = [model.get_prompt(t, previous_tokens=[], without_timestamps=True) for t in tokenizers]
    results = model.model.generate(encoded, prompts, beam_size=beam, max_length=model.max_length, suppress_blank=True)
    texts = [r.sequences_ids[0] for r in results]
    eot = tokenizers[0].eot
    for row, tokens in enumerate(texts):  # one align per piece, as the engine does per job
        picked = [t for t in tokens if t < eot]
        if picked:
            model.model.align(_rows(encoded, [row]), tokenizers[row].sot_sequence, [picked], [3000])
    return texts


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    settings = Settings(model_dir=os.environ.get("HARK_MODEL_DIR"))
    model_dir = settings.model_dir or str(bundled_model.install(settings.model_name))
    cores = os.cpu_count() or 2
    rows = [r for r in clips() if r["duration"] <= 30]
    wanted = args.batches * args.batch_size
    rows = [rows[i % len(rows)] for i in range(wanted)]
    probe = WhisperModel(model_dir, device="cpu", compute_type="int8", cpu_threads=cores)
    features = np.stack(
        [
            pad_or_trim(probe.feature_extractor(decode_audio(str(SPEECH / r["file"]), sampling_rate=16000))[..., :-1])
            for r in rows
        ]
    )
    languages = [r["language"] for r in rows]
    size = args.batch_size
    batches = [(features[i : i + size], languages[i : i + size]) for i in range(0, wanted, size)]
    print(f"{machine()}; {len(batches)} batches of {size}; load average {os.getloadavg()[0]:.1f}", flush=True)
    outputs = {}
    for name, intra, inter in (("one model, all cores", cores, 1), ("a replica per core", 1, cores)):
        model = (
            probe
            if inter == 1
            else WhisperModel(model_dir, device="cpu", compute_type="int8", cpu_threads=intra, num_workers=inter)
        )
        decode_batch(model, batches[0][0][:1], batches[0][1][:1], 5)  # warm-up
        started = time.perf_counter()
        with ThreadPoolExecutor(inter) as pool:
            outputs[name] = list(pool.map(lambda b: decode_batch(model, b[0], b[1], 5), batches))  # noqa: B023
        print(f"{name} (intra {intra}, inter {inter}): {time.perf_counter() - started:.1f} s", flush=True)
    first, second = outputs.values()
    print("identical outputs:", first == second)
    return 0


if __name__ == "__main__":
    sys.exit(main())
