"""Measuring transcripts against references: word error rate (`wer`) and diarization error rate (`der`),
for `hark smoke`, the tests and bench/. Not deployed, but for `wer`: the API scores people's corrections with it
(issue 26), so the Lambda asset carries that one module (infra/lambda_bundle.py)."""

__all__ = ["der", "wer"]
