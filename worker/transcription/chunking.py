"""Splitting long recordings at pauses so several workers can transcribe one file at once.

Cuts go in the middle of a pause found by Silero VAD (shipped inside faster-whisper, offline),
never through a word; a chunk runs from one cut to the next, so nothing is dropped and chunk
offsets add up to the recording's own timeline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from faster_whisper.vad import VadOptions, get_speech_timestamps

from .audio import SAMPLE_RATE

# A pause must be at least this long to cut in: shorter gaps are often inside a phrase.
MIN_PAUSE_MS = 300


@dataclass(frozen=True)
class Chunk:
    index: int
    start: float  # seconds into the recording
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


def pauses(samples: np.ndarray) -> list[tuple[float, float]]:
    """(start, end) seconds of the silences between speech, from Silero VAD."""
    speech = get_speech_timestamps(
        samples, VadOptions(min_silence_duration_ms=MIN_PAUSE_MS, speech_pad_ms=0), sampling_rate=SAMPLE_RATE
    )
    gaps, previous_end = [], 0.0
    for span in speech:
        start = span["start"] / SAMPLE_RATE
        if start > previous_end:
            gaps.append((previous_end, start))
        previous_end = span["end"] / SAMPLE_RATE
    total = len(samples) / SAMPLE_RATE
    if total > previous_end:
        gaps.append((previous_end, total))
    return gaps


def plan(gaps: list[tuple[float, float]], duration: float, target: float) -> list[Chunk]:
    """Chunks of about `target` seconds (between 0.5x and 1.5x), cut at the middle of a pause.

    Near the target, a longer pause is preferred (sentence ends beat breaths). With no pause in the
    window (continuous speech or music) the cut falls at the target itself.
    """
    if duration <= target * 1.5:
        return [Chunk(0, 0.0, duration)]
    cuts: list[float] = []
    start = 0.0
    while duration - start > target * 1.5:
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
        cut = best if best is not None else min(start + target, hi)
        cuts.append(cut)
        start = cut
    edges = [0.0, *(round(c, 3) for c in cuts), duration]  # the end stays exact: no sample dropped
    return [Chunk(i, a, b) for i, (a, b) in enumerate(zip(edges, edges[1:]))]


def split(samples: np.ndarray, target: float) -> list[Chunk]:
    return plan(pauses(samples), len(samples) / SAMPLE_RATE, target)


def cut(samples: np.ndarray, chunk: Chunk) -> np.ndarray:
    return samples[round(chunk.start * SAMPLE_RATE) : round(chunk.end * SAMPLE_RATE)]
