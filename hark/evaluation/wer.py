"""Word error rate: one normaliser for every place that scores a transcript (`hark smoke`, the tests,
the benchmarks).

English goes through Whisper's own English normaliser (whisper-normalizer: numbers, spellings,
contractions), so "twelve percent" and "12%" count as the same words. Other languages: lower case,
punctuation and symbols removed, accents kept (Spanish words differ by them), whitespace collapsed.
"""

from __future__ import annotations

import re
import unicodedata

import jiwer
from whisper_normalizer.english import EnglishTextNormalizer

_DROP = re.compile(r"[^\w\s']|_", re.UNICODE)
_ENGLISH = EnglishTextNormalizer()


def normalise(text: str, language: str | None = None) -> str:
    if language == "en":
        return " ".join(_ENGLISH(text).split())
    text = unicodedata.normalize("NFC", text).lower()
    text = text.replace("-", " ").replace("\u2019", "'")
    text = _DROP.sub(" ", text)
    text = re.sub(r"(?<!\w)'|'(?!\w)", " ", text)  # quotes, not apostrophes inside words
    return " ".join(text.split())


def words(text: str, language: str | None = None) -> list[str]:
    return normalise(text, language).split()


def word_error_rate(reference: str, hypothesis: str, language: str | None = None) -> float:
    """WER as a fraction (0.05 is 5%) after normalising both sides; an empty reference is an error."""
    ref, hyp = normalise(reference, language), normalise(hypothesis, language)
    if not ref:
        raise ValueError("empty reference")
    return jiwer.wer(ref, hyp) if hyp else 1.0


def word_errors(reference: str, hypothesis: str, language: str | None = None) -> tuple[int, int]:
    """(errors, reference words) after normalising both sides: summed over clips they give a corpus WER, in
    which every word counts once whatever the clip's length."""
    ref, hyp = normalise(reference, language), normalise(hypothesis, language)
    if not ref:
        raise ValueError("empty reference")
    if not hyp:
        return len(ref.split()), len(ref.split())
    out = jiwer.process_words(ref, hyp)
    return out.substitutions + out.deletions + out.insertions, len(ref.split())
