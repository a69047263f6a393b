"""Quality checks on decoded segments: repetition loops and hallucinated text.

Whisper fails in a few recognisable ways, each visible in faster-whisper's segment fields:
  repetition      a decoding loop ("de los de los de los ..."): an n-gram repeated many times in a row,
                  or text that gzip compresses far better than speech does (compression ratio, as Whisper's
                  own temperature fallback uses it);
  low_confidence  the decoder was unsure of the whole segment (average token log-probability);
  no_speech       the window probably held no speech and the text was invented (Whisper's no-speech
                  probability together with a low log-probability, Whisper's own rule for dropping it).
The engine re-decodes a segment that fails (worker/transcription/engine.py); what still fails is
flagged in the transcript (segments[].flags), and the viewer marks it.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

from hark.domain.settings import Settings

_WORD = re.compile(r"\w+(?:'\w+)?")


@dataclass(frozen=True)
class Thresholds:
    compression_ratio: float = 2.4
    min_avg_logprob: float = -1.0
    no_speech_prob: float = 0.6
    max_repeats: int = 4

    @classmethod
    def of(cls, settings: Settings) -> Thresholds:
        return cls(
            settings.quality_compression_ratio,
            settings.quality_min_avg_logprob,
            settings.quality_no_speech_prob,
            settings.quality_max_repeats,
        )


def compression_ratio(text: str) -> float:
    """Whisper's measure: UTF-8 length over zlib-compressed length (speech is ~1.2-2; loops far above 2.4)."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def longest_repeat(text: str, max_n: int = 8) -> tuple[int, int]:
    """(times, n): the most consecutive repetitions of any n-gram of words (n <= max_n), case and
    punctuation ignored. "de los de los de los" -> (3, 2)."""
    words = [w.lower() for w in _WORD.findall(text)]
    best = (1, 1)
    for n in range(1, max_n + 1):
        for i in range(len(words) - 2 * n + 1):
            gram, times, j = words[i : i + n], 1, i + n
            while words[j : j + n] == gram:
                times, j = times + 1, j + n
            if times > best[0]:
                best = (times, n)
    return best


def is_loop(text: str, thresholds: Thresholds) -> bool:
    """A phrase said `max_repeats` times in a row, covering at least 8 words ("no, no, no, no" is speech)."""
    times, n = longest_repeat(text)
    return times >= thresholds.max_repeats and times * n >= 8


def flags(
    text: str,
    avg_logprob: float | None,
    no_speech_prob: float | None,
    thresholds: Thresholds,
    ratio: float | None = None,
) -> list[str]:
    """What is doubtful about one decoded segment (hark.domain.transcript.FLAGS); [] when nothing is."""
    if not text.strip():
        return []
    out = []
    ratio = compression_ratio(text) if ratio is None else ratio
    if is_loop(text, thresholds) or ratio > thresholds.compression_ratio:
        out.append("repetition")
    unsure = avg_logprob is not None and avg_logprob < thresholds.min_avg_logprob
    if unsure and no_speech_prob is not None and no_speech_prob > thresholds.no_speech_prob:
        out.append("no_speech")
    elif unsure:
        out.append("low_confidence")
    return out
