"""An uploaded recording: check it against its job record, claim the job, then transcribe it in one
pass or, past HARK_CHUNK_THRESHOLD_SECONDS, fan it out in chunks."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from aws_lambda_powertools.metrics import MetricUnit

from hark.domain.arrivals import receive_upload
from hark.domain.jobs import Job, TransitionRefused
from hark.domain.messages import UploadEvent
from worker.runtime import Delivery

from . import audio
from .audio import PermanentError
from .context import Context, logger, seconds_since
from .engine import DecodeOptions
from .fanout import fan_out
from .publishing import fail_job, notify, publish, with_speakers


def take_upload(ctx: Context, delivery: Delivery, event: UploadEvent) -> None:
    # The upload-status function has usually seen this upload already (QUEUED, orphans deleted);
    # the same idempotent step here covers an event this worker happens to see first.
    arrival = receive_upload(ctx.store, ctx.s3, event)
    if arrival.job is None:
        logger.warning(arrival.orphan_reason, key=event.key, bytes=event.size)
        ctx.metric("OrphanUploadsDeleted", 1, MetricUnit.Count)
        return
    job = arrival.job
    try:
        job = ctx.store.claim(job.job_id, delivery.id)
    except TransitionRefused:
        refused_claim(ctx, delivery, job.job_id)
        return
    logger.info("job claimed", attempt=job.attempts, receive_count=delivery.receive_count, key=event.key)
    # Earlier claims that neither failed (retried) nor finished: a worker died with this message in hand.
    if (died := job.attempts - 1 - job.failed_attempts) > 0:
        logger.warning("a worker stopped while this message was in hand", times=died)
        if delivery.receive_count >= ctx.last_attempt:
            fail_job(ctx, job.job_id, stopped_workers(died), attempt=delivery.receive_count)
            return
    if job.attempts == 1 and (wait := seconds_since(job.queued_at)) is not None:
        ctx.metric("QueueWaitSeconds", wait, MetricUnit.Seconds)
    transcribe_upload(ctx, delivery, job, event)


def stopped_workers(times: int) -> str:
    return (
        f"transcription failed: the worker stopped {times} time{'s' if times > 1 else ''} while working on "
        "this recording (it may need more memory or time than a worker has)"
    )


def refused_claim(ctx: Context, delivery: Delivery, job_id: str) -> None:
    job = ctx.store.get(job_id)
    if job is not None and job.status.finished and job.owner_message_id == delivery.id and not job.notified_at:
        # This message finished the job but its worker died before deleting it: the notify may not
        # have gone out. The notifier sends one email per job whatever it receives.
        logger.info("job finished by an earlier delivery of this message: notification re-sent", status=job.status)
        notify(ctx, job)
        return
    logger.info(
        "duplicate event: the job is owned by another message or finished; dropped", status=job.status if job else None
    )


def transcribe_upload(ctx: Context, delivery: Delivery, job: Job, event: UploadEvent) -> None:
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="hark-") as tmp:
            path = audio.download(
                ctx.s3,
                event.bucket,
                event.key,
                Path(tmp) / "upload",
                ctx.settings.max_upload_bytes,
                declared_bytes=job.size_bytes,
            )
            # Decoded to PCM on disk by a child with a memory limit, its length counted as decoded: the
            # header decides nothing (issue 21). A recording to be split is then read a window at a time,
            # and counts against the engine's audio budget for that window until its chunks are queued; a
            # shorter one is read whole and counts once it is inside the engine.
            pcm = audio.decode(path, Path(tmp) / "pcm", ctx.settings.max_audio_seconds)
            logger.info("decoded", audio_seconds=round(pcm.seconds, 2), decoder_peak_rss_bytes=pcm.peak_rss_bytes)
            if pcm.seconds > ctx.settings.chunk_threshold_seconds:
                with ctx.engine.budget.hold(ctx.settings.chunk_target_seconds * 1.5):
                    fan_out(ctx, job, pcm)
                return
            samples = pcm.read()
    except PermanentError as err:
        if err.decoder_peak_rss_bytes is not None:
            logger.info("decoded", audio_seconds=None, decoder_peak_rss_bytes=err.decoder_peak_rss_bytes)
        fail_job(ctx, job.job_id, err.reason, attempt=delivery.receive_count, uploaded_bytes=err.uploaded_bytes)
        return
    duration = len(samples) / audio.SAMPLE_RATE
    logger.info("transcribing", audio_seconds=round(duration, 2), language=job.language)
    result = ctx.engine.run(samples, DecodeOptions(language=job.language, task=job.task, prompt=job.prompt))
    # transcription alone; diarization logs its own time
    ctx.record_speed(result.audio_seconds, result.model_seconds, time.monotonic() - started)
    logger.info(
        "transcribed",
        audio_seconds=result.audio_seconds,
        model_seconds=round(result.model_seconds, 3),
        batch_jobs=result.batch_jobs,
    )
    transcript = result.transcript
    if job.speaker_labels:
        labelled = with_speakers(ctx, job, transcript, samples, attempt=delivery.receive_count)
        if labelled is None:
            return
        transcript = labelled
    publish(ctx, job, transcript, attempt=delivery.receive_count, model_seconds=result.model_seconds)
