"""Cleanup after a delete: a job deleted by its owner while it ran must leave nothing behind."""

from __future__ import annotations

from hark.domain import keys
from hark.domain.jobs import Job
from hark.domain.transcript import RENDERERS

from .context import Context, logger


def remove_transcripts(ctx: Context, job: Job) -> None:
    """Remove the transcripts just written for a job that no longer exists."""
    bucket = ctx.res.transcripts_bucket.name
    for fmt in RENDERERS:
        ctx.s3.delete_object(Bucket=bucket, Key=keys.transcript_key(job.user_id, job.job_id, fmt))
    logger.info("job deleted while it ran: its transcripts removed")
