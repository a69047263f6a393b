"""The shared domain: what the API, every worker, the CLI and infra agree on.

It imports nothing from the other hark packages, so every deployable (the Lambda asset, each worker
image) can carry it whole.
"""

__all__ = [
    "api_schemas",  # the API's request and response models; the job view is also the webhook payload
    "arrivals",  # what an upload's arrival means for its job
    "aws",  # boto3 clients, one factory
    "bundled_model",  # where the bundled Whisper model is installed
    "jobs",  # the job record, its state machine and JobStore
    "keys",  # the S3 key layout
    "languages",  # language codes and names
    "links",  # signed, expiring transcript links
    "messages",  # what travels on the queues
    "resources",  # every AWS resource's name and shape
    "settings",  # every HARK_* setting
    "transcript",  # the transcript model and its renderings
    "uploads",  # what may be uploaded (types, sizes)
    "webhooks",  # which webhook URLs may be called; delivery signing
]
