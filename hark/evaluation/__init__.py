"""Measuring transcripts against references: word error rate (`wer`) and diarization error rate (`der`),
for `hark smoke`, the tests and bench/. Not deployed."""

__all__ = ["der", "wer"]
