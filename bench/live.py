"""The live WebSocket measured (issue 24): first-partial time, final lag, WER against batch, and how many
real-time streams one worker holds before the median final lag passes 3 s.

    .venv/bin/python bench/live.py [--clips en_jfk.flac ...] [--max-streams 4] [--lag-limit 3]

The service runs in this process as it runs deployed (worker.live's app: one Engine, uvicorn, the real
WebSocket protocol), with the bundled Whisper base on this machine's CPU (int8) and a credential check that
admits the bench; the clients are hark.client.live, sending 100 ms frames in real time.

- first partial: seconds from the stream's start to the first `partial`, and from the audio start of the
  first word to it;
- final lag: a final's arrival minus its `end` (both in stream seconds): median and p95 over every final;
- WER against batch: the `done` text against the engine's batch transcript of the same clip (Engine.run),
  and each against the reference text;
- capacity: 1, 2, ... streams of the clips at once (staggered by a second), until the median final lag
  passes --lag-limit. On a shared machine run it briefly (--max-streams) and say so.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import statistics
import threading
import time
from pathlib import Path

import numpy as np
import uvicorn

from hark.api.auth import Identity
from hark.client.live import Heard, paced, pcm, session
from hark.domain.settings import get_settings
from hark.domain.wer import word_error_rate
from worker.live.app import create_app
from worker.live.service import live_engine
from worker.transcription.engine import DecodeOptions, Engine

SPEECH = Path(os.environ.get("HARK_SPEECH_DIR") or Path(__file__).resolve().parents[2] / "shared/testdata/speech")
CLIPS = ["en_jfk.flac", "en_librispeech_2412-153948-0000.flac", "en_fleurs_000.ogg", "en_fleurs_002.ogg"]
RATE = 16000


def serve(engine: Engine) -> str:
    """The live app on a free loopback port, in a thread; returns its ws:// base once it listens."""
    app = create_app(engine=engine, authenticate=lambda headers: Identity(user_id="bench", email="bench@example.com"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"ws://127.0.0.1:{port}"


async def stream(base: str, audio: bytes, delay: float = 0.0) -> Heard:
    await asyncio.sleep(delay)
    return await session(
        f"{base}/v1/live?sample_rate={RATE}", {"Authorization": "Bearer bench.bench.bench"}, paced(audio, RATE)
    )


def lags(heard: Heard) -> list[float]:
    return [t - m["end"] for m, t in zip(heard.of("final"), heard.arrived("final"), strict=True)]


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def single(base: str, engine: Engine, names: list[str]) -> list[float]:
    """One stream at a time: per clip, its first partial, lags and WERs; returns every final's lag."""
    every: list[float] = []
    print(
        "| clip | s | first partial after start / after first word (s) | finals | lag median / max (s) | WER live vs batch | WER live / batch vs reference |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in names:
        audio = pcm(SPEECH / name, RATE)
        heard = asyncio.run(stream(base, audio))
        assert heard.close_code == 1000, heard.messages
        live = heard.of("done")[0]["text"]
        samples = np.frombuffer(audio, "<i2").astype(np.float32) / 32768
        batch = engine.run(samples, DecodeOptions()).transcript.text
        reference = (SPEECH / name).with_suffix(".txt").read_text()
        first = heard.arrived("partial")[0] if heard.of("partial") else float("nan")
        first_word = heard.of("final")[0]["start"] if heard.of("final") else 0.0
        mine = lags(heard)
        every += mine
        print(
            f"| {name} | {len(audio) / 2 / RATE:.1f} | {first:.2f} / {first - first_word:.2f} | {len(mine)} | "
            f"{statistics.median(mine):.2f} / {max(mine):.2f} | {word_error_rate(batch, live, 'en'):.3f} | "
            f"{word_error_rate(reference, live, 'en'):.3f} / {word_error_rate(reference, batch, 'en'):.3f} |"
        )
    return every


def capacity(base: str, names: list[str], most: int, limit: float) -> None:
    print("\n| streams at once | finals | lag median / p95 (s) |")
    print("| --- | --- | --- |")
    audios = [pcm(SPEECH / n, RATE) for n in names]

    async def together(count: int) -> list[Heard]:
        return await asyncio.gather(*(stream(base, audios[i % len(audios)], delay=i * 1.0) for i in range(count)))

    for count in range(1, most + 1):
        every = [lag for heard in asyncio.run(together(count)) for lag in lags(heard)]
        median = statistics.median(every)
        print(f"| {count} | {len(every)} | {median:.2f} / {p95(every):.2f} |")
        if median > limit:
            print(f"\nthe median lag passed {limit} s at {count} streams: this worker holds {count - 1}")
            return
    print(f"\nthe median lag stayed under {limit} s up to {most} streams (--max-streams): the limit was not reached")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", nargs="+", default=CLIPS)
    p.add_argument("--max-streams", type=int, default=4)
    p.add_argument("--lag-limit", type=float, default=3.0)
    args = p.parse_args()
    engine = live_engine(get_settings())
    base = serve(engine)
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "")
    print(
        f"machine: {os.cpu_count()} cores ({cpu or platform.machine()}), load {os.getloadavg()[0]:.1f}; "
        f"model {engine.name} on {engine.device} ({engine.compute_type}), {engine.replicas} replicas\n"
    )
    every = single(base, engine, args.clips)
    print(
        f"\nall finals of single streams: lag median {statistics.median(every):.2f} s, p95 {p95(every):.2f} s ({len(every)} finals)"
    )
    capacity(base, args.clips, args.max_streams, args.lag_limit)


if __name__ == "__main__":
    main()
