"""Hark: self-hosted, event-driven audio transcription on AWS.

Packages by audience (each `__init__` says what it holds and who imports it):
- `hark.domain`: the shared domain every deployable imports (settings, resources, jobs, keys, messages,
  transcripts);
- `hark.api`: the API side, what the Lambda functions in `lambdas/` run;
- `hark.client`: the client side (the Python SDK, the `hark` CLI, the smoke test, the deploy check, the
  generated typed layer);
- `hark.ops`: operations (dead-letter replay, the scaling policy, the Lambda runtime's facts);
- `hark.evaluation`: word and diarization error rates, for the smoke test, the tests and bench/;
- `hark.local`: the embedded default stack (`make up`).
The workers live in `worker/`, the Lambda entry points in `lambdas/`, the CDK app in `infra/`.
The Lambda asset holds `hark.domain`, `hark.api` and `lambdas/` only (infra/lambda_bundle.py).
"""

__version__ = "0.1.0"
