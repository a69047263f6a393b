"""Measuring speaker labels against references: the diarization error rate (`der`), for the tests and
bench/. Not deployed. (The word error rate is the domain's, hark.domain.wer: the API scores corrections with it.)"""

__all__ = ["der"]
