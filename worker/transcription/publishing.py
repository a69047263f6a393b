"""The endings of a job: assembling chunk transcripts, publishing the transcript, failing the job, and
queueing the one notification. Only the caller that wins the terminal transition notifies."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError

from hark.domain import keys
from hark.domain.jobs import Job, TransitionRefused
from hark.domain.messages import NotifyMessage, WebhookMessage
from hark.domain.transcript import CONTENT_TYPES, RENDERERS, Transcript

from . import audio
from .cleanup import remove_transcripts
from .context import Context, logger

# What S3 answers a conditional put (IfNoneMatch) when the object is already there.
ALREADY_WRITTEN = ("PreconditionFailed", "ConditionalRequestConflict")


def assemble(ctx: Context, job: Job, attempt: int) -> None:
    """Join every chunk's transcript (parts/) into one with continuous timestamps, then publish it."""
    bucket = ctx.res.transcripts_bucket.name
    parts = []
    model_seconds = 0.0
    for index in range(job.chunks_total or 0):
        obj = ctx.s3.get_object(Bucket=bucket, Key=keys.part_key(job.user_id, job.job_id, index))
        parts.append((float(obj["Metadata"]["offset"]), Transcript.model_validate_json(obj["Body"].read())))
        model_seconds += float(obj["Metadata"].get("model_seconds", 0))
    transcript = Transcript.joined(
        parts, duration=job.duration_seconds or sum(t.duration for _, t in parts), model=ctx.engine.name
    )
    logger.info("assembling chunks", chunks=len(parts))
    if job.speaker_labels and transcript.text:
        # One set of speakers for the whole recording: the assembling worker diarizes all of it (the
        # upload is still in S3), so labels agree across chunk boundaries. Its cost: this one worker
        # downloads and decodes the recording again and diarizes it alone (about 1/25 of its length
        # in CPU time, docs/diarization.md), after the chunks ran in parallel.
        try:
            with tempfile.TemporaryDirectory(prefix="hark-") as tmp:
                path = audio.download(
                    ctx.s3,
                    ctx.res.audio_bucket.name,
                    job.audio_key,
                    Path(tmp) / "upload",
                    ctx.settings.max_upload_bytes,
                    declared_bytes=job.size_bytes,
                )
                samples = audio.load(path, ctx.settings.max_audio_seconds)
        except audio.PermanentError as err:
            fail_job(ctx, job.job_id, err.reason, attempt=attempt, uploaded_bytes=err.uploaded_bytes)
            return
        labelled = with_speakers(ctx, job, transcript, samples, attempt=attempt)
        if labelled is None:
            return
        transcript = labelled
    publish(ctx, job, transcript, attempt=attempt, model_seconds=model_seconds)


def with_speakers(ctx: Context, job: Job, transcript: Transcript, samples, attempt: int) -> Transcript | None:
    """The transcript with speaker labels; None when this worker cannot label speakers (the job is failed
    with the reason: a retry elsewhere would find the same image)."""
    from . import diarization

    started = time.monotonic()
    try:
        labelled = diarization.label(transcript, samples, job.speakers_expected, job.min_speakers, job.max_speakers)
    except diarization.DiarizationUnavailable as err:
        fail_job(ctx, job.job_id, str(err), attempt=attempt)
        return None
    speakers = sorted({s.speaker for s in labelled.segments if s.speaker})
    logger.info("speakers labelled", speakers=len(speakers), seconds=round(time.monotonic() - started, 2))
    return labelled


def publish(ctx: Context, job: Job, transcript: Transcript, attempt: int, model_seconds: float | None = None) -> None:
    bucket = ctx.res.transcripts_bucket.name
    # Silence, noise or music: VAD finds no speech and Whisper says nothing. The job completes with
    # an explicit "no speech detected" and claims no language (the model's guess on nothing is noise).
    no_speech = not transcript.text
    if no_speech:
        transcript = transcript.model_copy(update={"language": None, "language_probability": None})
    for fmt, render in RENDERERS.items():
        try:
            # Conditional: a duplicate assembly or a retry never replaces a transcript once written.
            ctx.s3.put_object(
                Bucket=bucket,
                Key=keys.transcript_key(job.user_id, job.job_id, fmt),
                Body=render(transcript).encode("utf-8"),
                ContentType=CONTENT_TYPES[fmt],
                IfNoneMatch="*",
            )
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") not in ALREADY_WRITTEN:
                raise
    try:
        finished = ctx.store.complete(
            job.job_id,
            transcript.language,
            transcript.duration,
            no_speech=no_speech,
            model_seconds=None if model_seconds is None else round(model_seconds, 3),
            cost_usd=None if model_seconds is None else ctx.cost_usd(model_seconds),
        )
    except TransitionRefused:
        if ctx.store.get(job.job_id) is None:
            remove_transcripts(ctx, job)  # what we just wrote must not outlive the job
            return
        logger.info("another worker finished this job first")
        return
    notify(ctx, finished)
    ctx.metric("JobsCompleted", 1, MetricUnit.Count)
    ctx.metric("Attempts", attempt, MetricUnit.Count)
    logger.info(
        "job completed",
        language=transcript.language,
        no_speech=no_speech,
        audio_seconds=transcript.duration,
        model_seconds=None if model_seconds is None else round(model_seconds, 3),
        segments=len(transcript.segments),
    )


def fail_job(
    ctx: Context, job_id: str, reason: str, attempt: int | None = None, uploaded_bytes: int | None = None
) -> None:
    try:
        job = ctx.store.fail(job_id, reason, uploaded_bytes=uploaded_bytes)
    except TransitionRefused:
        logger.info("job already finished; failure not recorded", reason=reason)
        return
    notify(ctx, job)
    ctx.metric("JobsFailed", 1, MetricUnit.Count)
    if attempt:
        ctx.metric("Attempts", attempt, MetricUnit.Count)
    logger.warning("job failed", reason=reason)


def notify(ctx: Context, job: Job) -> None:
    """Queue the job's notifications as it asked for them (POST /jobs `notify`): the email (the notifier
    sends one per job whatever it receives) and the webhook (worker/webhooks delivers it once)."""
    if "email" in job.notify:
        ctx.sqs.send_message(QueueUrl=ctx.notify_url, MessageBody=NotifyMessage(job_id=job.job_id).model_dump_json())
    if "webhook" in job.notify and job.webhook_url:
        ctx.sqs.send_message(QueueUrl=ctx.webhook_url, MessageBody=WebhookMessage(job_id=job.job_id).model_dump_json())
