"""The accuracy metrics (issue 26): one definition for the code that emits them (the transcription worker's
confidence, the API's corrections) and the dashboard and alarm that read them (infra/hark_infra/monitoring.py).

Each is an EMF metric in the workers' namespace with two dimensions: `service` (the emitter's Powertools
service name) and `language` (the transcript's detected language), one value per job.
"""

from __future__ import annotations

NAMESPACE = "Hark"
LANGUAGE_DIMENSION = "language"
# From the transcription worker when a job with speech completes (hark.domain.transcript.confidence).
CONFIDENCE = "Confidence"  # the job's duration-weighted mean word probability
LOW_CONFIDENCE_SHARE = "LowConfidenceShare"  # the share of its words' time below LOW_CONFIDENCE_PROBABILITY
JOBS_BY_LANGUAGE = "JobsByLanguage"  # 1 per completed job: the language distribution
# From the API when a person saves a correction: the model transcript's WER against it.
CORRECTION_WORD_ERROR_RATE = "CorrectionWordErrorRate"
