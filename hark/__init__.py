"""Hark: self-hosted, event-driven audio transcription on AWS.

The shared domain every deployable imports: settings, resource definitions, the job model and its
state machine, the S3 key layout, event parsing, the transcript model and its renderers.
"""

__version__ = "0.1.0"
