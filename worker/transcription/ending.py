"""The one place a transcription job ends.

Every step of the worker returns what became of the job (a `JobOutcome`) and the consumer hands it here,
once per job per message: a transcript (labelled with speakers first when the job asked for them; no
speech when it says nothing), a failure with a reason a person can read, a finished job whose
notification may not have gone out, or nothing to end yet. This module alone writes the transcripts,
makes the terminal transition, queues the notifications and counts JobsCompleted / JobsFailed. Only the
caller that wins the terminal transition notifies, so a duplicate delivery ends in one notification.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from hark.domain import keys
from hark.domain.jobs import Job, TransitionRefused
from hark.domain.messages import NotifyMessage, WebhookMessage
from hark.domain.transcript import CONTENT_TYPES, RENDERERS, Transcript

from .context import Context, logger

# What S3 answers a conditional put (IfNoneMatch) when the object is already there.
ALREADY_WRITTEN = ("PreconditionFailed", "ConditionalRequestConflict")


@dataclass(frozen=True)
class Transcribed:
    """The job's transcript is ready. `samples` is the whole recording, for speaker labels (None: none to
    label, or not asked for); `model_seconds` the job's share of the model's time."""

    job: Job
    transcript: Transcript
    model_seconds: float | None = None
    samples: np.ndarray | None = None


@dataclass(frozen=True)
class Failed:
    """The job cannot be transcribed: `reason` is shown to its owner; `uploaded_bytes` is the upload's real
    size when that is the problem."""

    job_id: str
    reason: str
    uploaded_bytes: int | None = None


def stopped_workers(times: int) -> str:
    """The reason a job fails with on its message's last receive after workers died holding it."""
    return (
        f"transcription failed: the worker stopped {times} time{'s' if times > 1 else ''} while working on "
        "this recording (it may need more memory or time than a worker has)"
    )


@dataclass(frozen=True)
class Renotify:
    """The job was finished by an earlier delivery whose worker died before its notification surely went
    out: queue it again (the notifier sends one email per job, the webhook worker delivers once)."""

    job: Job


@dataclass(frozen=True)
class Ongoing:
    """Nothing ends here: chunks queued, a chunk counted, a duplicate or an orphan dropped."""


ONGOING = Ongoing()

JobOutcome = Transcribed | Failed | Renotify | Ongoing


def end_job(ctx: Context, outcome: JobOutcome, attempt: int | None = None) -> None:
    """Do what `outcome` means for the job: the record, the notifications and the metrics, once. `attempt`
    (the delivery's receive count) is counted in the Attempts metric; None when the caller counted it."""
    if isinstance(outcome, Transcribed):
        labelled = with_speakers(outcome)
        if isinstance(labelled, Failed):
            fail(ctx, labelled, attempt)
        else:
            complete(ctx, outcome.job, labelled, attempt, outcome.model_seconds)
    elif isinstance(outcome, Failed):
        fail(ctx, outcome, attempt)
    elif isinstance(outcome, Renotify):
        notify(ctx, outcome.job)


def with_speakers(outcome: Transcribed) -> Transcript | Failed:
    """The transcript with speaker labels when the job asked for them; Failed when this worker cannot label
    speakers (a retry elsewhere would find the same image)."""
    job, transcript = outcome.job, outcome.transcript
    if not job.speaker_labels or outcome.samples is None:
        return transcript
    from . import diarization  # only a job that asks loads it

    started = time.monotonic()
    try:
        labelled = diarization.label(
            transcript, outcome.samples, job.speakers_expected, job.min_speakers, job.max_speakers
        )
    except diarization.DiarizationUnavailable as err:
        return Failed(job.job_id, str(err))
    speakers = sorted({s.speaker for s in labelled.segments if s.speaker})
    logger.info("speakers labelled", speakers=len(speakers), seconds=round(time.monotonic() - started, 2))
    return labelled


def complete(ctx: Context, job: Job, transcript: Transcript, attempt: int | None, model_seconds: float | None) -> None:
    """Write the transcripts, then PROCESSING -> COMPLETED; the winner notifies and counts."""
    # Silence, noise or music: VAD finds no speech and Whisper says nothing. The job completes with
    # an explicit "no speech detected" and claims no language (the model's guess on nothing is noise).
    no_speech = not transcript.text
    if no_speech:
        transcript = transcript.model_copy(update={"language": None, "language_probability": None})
    write_transcripts(ctx, job, transcript)
    try:
        finished = ctx.store.jobs.complete(
            job.job_id,
            transcript.language,
            transcript.duration,
            no_speech=no_speech,
            model_seconds=None if model_seconds is None else round(model_seconds, 3),
            cost_usd=None if model_seconds is None else ctx.cost_usd(model_seconds),
            confidence=transcript.confidence,
            low_confidence_share=transcript.low_confidence_share,
        )
    except TransitionRefused:
        if ctx.store.jobs.get(job.job_id) is None:
            remove_transcripts(ctx, job)  # what we just wrote must not outlive the job
            return
        logger.info("another worker finished this job first")
        return
    notify(ctx, finished)
    if finished.rendition:
        delete_video(ctx, finished)
    ctx.metric("JobsCompleted", 1, MetricUnit.Count)
    if attempt:
        ctx.metric("Attempts", attempt, MetricUnit.Count)
    ctx.record_confidence(transcript)
    logger.info(
        "job completed",
        language=transcript.language,
        no_speech=no_speech,
        audio_seconds=transcript.duration,
        model_seconds=None if model_seconds is None else round(model_seconds, 3),
        segments=len(transcript.segments),
    )


def delete_video(ctx: Context, job: Job) -> None:
    """A completed video's rendition plays in its place: the video goes now, not after the uploads' 30 days
    (docs/scaling.md). Nothing reads it after completion (a chunked job's speaker labels read it before).
    The job is done, so a failure here is logged and the video left to the lifecycle rule."""
    try:
        ctx.s3.delete_object(Bucket=ctx.res.audio_bucket.name, Key=job.audio_key)
    except (ClientError, BotoCoreError):
        logger.exception("the video of a completed job could not be deleted: it expires with the uploads")
        return
    logger.info("video deleted: its rendition plays in its place")


def fail(ctx: Context, failure: Failed, attempt: int | None) -> None:
    """Any unfinished state -> FAILED with the reason; the winner notifies and counts."""
    try:
        job = ctx.store.jobs.fail(failure.job_id, failure.reason, uploaded_bytes=failure.uploaded_bytes)
    except TransitionRefused:
        logger.info("job already finished; failure not recorded", reason=failure.reason)
        return
    notify(ctx, job)
    ctx.metric("JobsFailed", 1, MetricUnit.Count)
    if attempt:
        ctx.metric("Attempts", attempt, MetricUnit.Count)
    logger.warning("job failed", reason=failure.reason)


def notify(ctx: Context, job: Job) -> None:
    """Queue the job's notifications as it asked for them (POST /jobs `notify`): the email (the notifier
    sends one per job whatever it receives) and the webhook (worker/webhooks delivers it once)."""
    if "email" in job.notify:
        ctx.sqs.send_message(QueueUrl=ctx.notify_url, MessageBody=NotifyMessage(job_id=job.job_id).model_dump_json())
    if "webhook" in job.notify and job.webhook_url:
        ctx.sqs.send_message(QueueUrl=ctx.webhook_url, MessageBody=WebhookMessage(job_id=job.job_id).model_dump_json())


def write_transcripts(ctx: Context, job: Job, transcript: Transcript) -> None:
    """Every rendering, each a conditional put: a duplicate assembly or a retry never replaces a transcript
    once written."""
    for fmt, render in RENDERERS.items():
        try:
            ctx.s3.put_object(
                Bucket=ctx.res.transcripts_bucket.name,
                Key=keys.transcript_key(job.user_id, job.job_id, fmt),
                Body=render(transcript).encode("utf-8"),
                ContentType=CONTENT_TYPES[fmt],
                IfNoneMatch="*",
            )
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") not in ALREADY_WRITTEN:
                raise


def remove_transcripts(ctx: Context, job: Job) -> None:
    """A job deleted by its owner while it ran leaves nothing behind: remove the transcripts just written."""
    for fmt in RENDERERS:
        ctx.s3.delete_object(
            Bucket=ctx.res.transcripts_bucket.name, Key=keys.transcript_key(job.user_id, job.job_id, fmt)
        )
    logger.info("job deleted while it ran: its transcripts removed")
