"""Word error rate for tests: one normaliser for every test that scores a transcript.

Lower case, punctuation and symbols removed (accents kept: Spanish words differ by them), hyphens
and apostrophe-less splits treated as spaces, whitespace collapsed. Numbers are not spelled out.
"""

from __future__ import annotations

import re
import unicodedata

import jiwer

_DROP = re.compile(r"[^\w\s']|_", re.UNICODE)


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFC", text).lower()
    text = text.replace("-", " ").replace("\u2019", "'")
    text = _DROP.sub(" ", text)
    text = re.sub(r"(?<!\w)'|'(?!\w)", " ", text)  # quotes, not apostrophes inside words
    return " ".join(text.split())


def word_error_rate(reference: str, hypothesis: str) -> float:
    """WER as a fraction (0.05 is 5%) after normalising both sides; an empty reference is an error."""
    ref, hyp = normalise(reference), normalise(hypothesis)
    if not ref:
        raise ValueError("empty reference")
    return jiwer.wer(ref, hyp) if hyp else 1.0
