"""An uploaded recording: check it against its job record, claim the job, then transcribe it in one
pass or, past HARK_CHUNK_THRESHOLD_SECONDS, split it into chunk messages (long_audio.py). Returns what
became of the job; ending.py does the rest."""

from __future__ import annotations

import time

from aws_lambda_powertools.metrics import MetricUnit

from hark.domain import keys
from hark.domain.arrivals import receive_upload
from hark.domain.jobs import Job, TransitionRefused
from hark.domain.messages import UploadEvent
from hark.domain.uploads import is_video
from worker.runtime import Delivery

from . import audio
from .audio import PermanentError
from .channels import transcribe_channels
from .context import Context, logger, seconds_since
from .ending import ONGOING, Failed, JobOutcome, Renotify, Transcribed, stopped_workers
from .engine import DecodeOptions
from .long_audio import fan_out


def take_upload(ctx: Context, delivery: Delivery, event: UploadEvent) -> JobOutcome:
    # The upload-status function has usually seen this upload already (QUEUED, orphans deleted);
    # the same idempotent step here covers an event this worker happens to see first.
    arrival = receive_upload(ctx.store, ctx.s3, event)
    if arrival.job is None:
        logger.warning(arrival.orphan_reason, key=event.key, bytes=event.size)
        ctx.metric("OrphanUploadsDeleted", 1, MetricUnit.Count)
        return ONGOING
    job = arrival.job
    try:
        job = ctx.store.jobs.claim(job.job_id, delivery.id)
    except TransitionRefused:
        return refused_claim(ctx, delivery, job.job_id)
    logger.info("job claimed", attempt=job.attempts, receive_count=delivery.receive_count, key=event.key)
    # The earlier claims lost (Job.claims_lost less this one): a worker died with this message in hand.
    if (died := job.claims_lost - 1) > 0:
        logger.warning("a worker stopped while this message was in hand", times=died)
        if delivery.receive_count >= ctx.last_attempt:
            return Failed(job.job_id, stopped_workers(died))
    if job.attempts == 1 and (wait := seconds_since(job.queued_at)) is not None:
        ctx.metric("QueueWaitSeconds", wait, MetricUnit.Seconds)
    return transcribe_upload(ctx, job, event)


def refused_claim(ctx: Context, delivery: Delivery, job_id: str) -> JobOutcome:
    job = ctx.store.jobs.get(job_id)
    if job is not None and job.status.finished and job.owner_message_id == delivery.id and not job.notified_at:
        # This message finished the job but its worker died before deleting it: the notify may not
        # have gone out. The notifier sends one email per job whatever it receives.
        logger.info("job finished by an earlier delivery of this message: notification re-sent", status=job.status)
        return Renotify(job)
    logger.info(
        "duplicate event: the job is owned by another message or finished; dropped", status=job.status if job else None
    )
    return ONGOING


def transcribe_upload(ctx: Context, job: Job, event: UploadEvent) -> JobOutcome:
    started = time.monotonic()
    options = DecodeOptions(language=job.language, task=job.task, prompt=job.prompt)
    track = job.audio_track or 0  # which audio stream of the file (a video may have several)
    try:
        # Decoded to PCM on disk by a child with a memory limit, its length counted as decoded: the header
        # decides nothing (issue 21). A recording to be split is then read a window at a time, and counts
        # against the engine's audio budget for that window until its chunks are queued; a shorter one is
        # read whole and counts once it is inside the engine. A multichannel job's channels are each
        # transcribed on their own (channels.py).
        with audio.fetched(
            ctx.s3,
            event.bucket,
            event.key,
            ctx.settings,
            declared_bytes=job.size_bytes,
            content_type=job.content_type,
            track=track,
            split_channels=job.multichannel,
        ) as pcms:
            if is_video(job.content_type) and not job.rendition:
                keep_rendition(ctx, job, pcms)
            if job.multichannel:
                channels = transcribe_channels(ctx, pcms, options)
                ctx.record_speed(channels.audio_seconds, channels.model_seconds, time.monotonic() - started)
                return Transcribed(job, channels.transcript, channels.model_seconds)
            (pcm,) = pcms
            logger.info("decoded", audio_seconds=round(pcm.seconds, 2), decoder_peak_rss_bytes=pcm.peak_rss_bytes)
            if pcm.seconds > ctx.settings.chunk_threshold_seconds:
                with ctx.engine.budget.hold(ctx.settings.chunk_target_seconds * 1.5):
                    fan_out(ctx, job, pcm)
                return ONGOING
            samples = pcm.read()
    except PermanentError as err:
        if err.decoder_peak_rss_bytes is not None:
            logger.info("decoded", audio_seconds=None, decoder_peak_rss_bytes=err.decoder_peak_rss_bytes)
        return Failed(job.job_id, err.reason, err.uploaded_bytes)
    duration = len(samples) / audio.SAMPLE_RATE
    logger.info("transcribing", audio_seconds=round(duration, 2), language=job.language)
    result = ctx.engine.run(samples, options)
    # transcription alone; diarization logs its own time
    ctx.record_speed(result.audio_seconds, result.model_seconds, time.monotonic() - started)
    logger.info(
        "transcribed",
        audio_seconds=result.audio_seconds,
        model_seconds=round(result.model_seconds, 3),
        batch_jobs=result.batch_jobs,
    )
    return Transcribed(job, result.transcript, result.model_seconds, samples if job.speaker_labels else None)


def keep_rendition(ctx: Context, job: Job, pcms: list[audio.Pcm]) -> None:
    """Store a video's audio rendition and mark the job as having one (docs/scaling.md, "Video: what is kept").
    Playback only: any failure is logged and the job goes on, its video kept and played instead."""
    key = keys.rendition_key(job.user_id, job.job_id)
    try:
        path = audio.encode_rendition(pcms, pcms[0].path.with_name("rendition.m4a"))
        with path.open("rb") as body:
            ctx.s3.put_object(
                Bucket=ctx.res.audio_bucket.name, Key=key, Body=body, ContentType=keys.RENDITION_CONTENT_TYPE
            )
    except Exception:  # the rendition is an extra: nothing in it may fail the transcription
        logger.exception("no rendition: the video is kept for playback")
        return
    try:
        ctx.store.jobs.set_rendition(job.job_id)
    except TransitionRefused:
        if ctx.store.jobs.get(job.job_id) is None:  # deleted meanwhile: nothing of it may stay
            ctx.s3.delete_object(Bucket=ctx.res.audio_bucket.name, Key=key)
        return
    logger.info("rendition stored", bytes=path.stat().st_size)
