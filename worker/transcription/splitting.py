"""Splitting long recordings at pauses so several workers can transcribe one file at once.

Cuts go in the middle of a pause found by Silero VAD (shipped inside faster-whisper, offline),
never through a word; a chunk runs from one cut to the next, so nothing is dropped and chunk
offsets add up to the recording's own timeline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from faster_whisper.vad import VadOptions, get_speech_timestamps

from .audio import SAMPLE_RATE

# A pause must be at least this long to cut in: shorter gaps are often inside a phrase.
MIN_PAUSE_MS = 300
VAD_BLOCK_SECONDS = 60  # ~20 MB of VAD memory per block


@dataclass(frozen=True)
class Chunk:
    index: int
    start: float  # seconds into the recording
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


def pauses(samples: np.ndarray) -> list[tuple[float, float]]:
    """(start, end) seconds of the silences between speech, from Silero VAD.

    The VAD runs on blocks of VAD_BLOCK_SECONDS: faster-whisper's Silero runs up to 10,000 windows (320 s)
    in one encoder call, ~340 KB of memory per second of audio. A pause shorter than MIN_PAUSE_MS where
    two blocks meet is the blocks' seam, not a pause."""
    options = VadOptions(min_silence_duration_ms=MIN_PAUSE_MS, speech_pad_ms=0)
    block = VAD_BLOCK_SECONDS * SAMPLE_RATE
    speech: list[tuple[float, float]] = []
    for first in range(0, len(samples), block):
        for span in get_speech_timestamps(samples[first : first + block], options, sampling_rate=SAMPLE_RATE):
            speech.append(((first + span["start"]) / SAMPLE_RATE, (first + span["end"]) / SAMPLE_RATE))
    gaps, previous_end = [], 0.0
    for i, (start, end) in enumerate(speech):
        if start > previous_end and (i == 0 or start - previous_end >= MIN_PAUSE_MS / 1000):
            gaps.append((previous_end, start))
        previous_end = max(previous_end, end)
    total = len(samples) / SAMPLE_RATE
    if total > previous_end:
        gaps.append((previous_end, total))
    return gaps


def plan(gaps: list[tuple[float, float]], duration: float, target: float) -> list[Chunk]:
    """Chunks of about `target` seconds (between 0.5x and 1.5x), cut at the middle of a pause.

    Near the target, a longer pause is preferred (sentence ends beat breaths). With no pause in the
    window (continuous speech or music) the cut falls at the target itself.
    """
    cuts: list[float] = []
    start = 0.0
    while (cut := next_cut(gaps, start, duration, target)) is not None:
        cuts.append(cut)
        start = cut
    edges = [0.0, *cuts, duration]  # the end stays exact: no sample dropped
    return [Chunk(i, a, b) for i, (a, b) in enumerate(zip(edges, edges[1:]))]


def next_cut(gaps: list[tuple[float, float]], start: float, duration: float, target: float) -> float | None:
    """Where the chunk beginning at `start` ends; None when the rest is one chunk (at most 1.5 targets)."""
    if duration - start <= target * 1.5:
        return None
    # The last chunk must not end up a sliver: leave at least half a target after the cut.
    lo, hi = start + target * 0.5, min(start + target * 1.5, duration - target * 0.5)
    best, best_score = None, None
    for gap_start, gap_end in gaps:
        middle = (gap_start + gap_end) / 2
        if not lo <= middle <= hi:
            continue
        # Distance from the target, less a bonus for long pauses (capped at 2 s).
        score = abs(middle - (start + target)) / target - 0.25 * min(gap_end - gap_start, 2.0)
        if best_score is None or score < best_score:
            best, best_score = middle, score
    return round(best if best is not None else min(start + target, hi), 3)


def split(samples: np.ndarray, target: float) -> list[Chunk]:
    return plan(pauses(samples), len(samples) / SAMPLE_RATE, target)


@dataclass(frozen=True)
class Piece:
    chunk: Chunk
    samples: np.ndarray
    speech_seconds: float  # what VAD heard in it


def split_stream(read: Callable[[float, float], np.ndarray], duration: float, target: float) -> Iterator[Piece]:
    """`split` for a recording read a window at a time (`read(start, end)` gives seconds start to end):
    each cut is chosen from the pauses of the next 1.5 targets, so memory stays that window's whatever
    the recording's length. The same rule as `plan`; only a pause running past a window's end is seen
    shorter (still a pause to cut in)."""
    start, index = 0.0, 0
    while True:
        window = read(start, min(duration, start + target * 1.5))
        gaps = [(start + a, start + b) for a, b in pauses(window)]
        end = next_cut(gaps, start, duration, target)
        if end is None:
            end = duration
        samples = window[: round(end * SAMPLE_RATE) - round(start * SAMPLE_RATE)]
        silent = sum(max(0.0, min(b, end) - max(a, start)) for a, b in gaps)
        yield Piece(Chunk(index, start, end), samples, max(0.0, end - start - silent))
        if end >= duration:
            return
        start, index = end, index + 1


def cut(samples: np.ndarray, chunk: Chunk) -> np.ndarray:
    return samples[round(chunk.start * SAMPLE_RATE) : round(chunk.end * SAMPLE_RATE)]
