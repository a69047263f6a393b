"""Chunk work: transcribe one chunk of a long recording into parts/, record it in the job (a set of
indices, so a redelivered chunk counts once), and assemble when the last one is in."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from hark.domain import aws, keys
from hark.domain.jobs import JobStatus, TransitionRefused
from hark.domain.messages import ChunkMessage
from worker.runtime import Delivery

from . import audio
from .audio import PermanentError
from .context import Context, logger
from .engine import DecodeOptions
from .publishing import assemble, fail_job, notify


def transcribe_chunk(ctx: Context, delivery: Delivery, chunk: ChunkMessage) -> None:
    job = ctx.store.get(chunk.job_id)
    if job is not None and job.status.finished and not job.notified_at:
        # The assembling worker may have died between finishing the job and queueing its
        # notification; queueing it again is safe because the notifier sends one email per job.
        logger.info("chunk of a finished job not yet notified: notification re-sent", status=job.status)
        notify(ctx, job)
        return
    if job is None or job.status != JobStatus.PROCESSING:
        logger.info("chunk of a job that is gone or finished: dropped", status=job.status if job else None)
        return
    bucket = ctx.res.transcripts_bucket.name
    part = keys.part_key(chunk.user_id, chunk.job_id, chunk.index)
    if _exists(ctx, bucket, part):
        logger.info("chunk already transcribed by an earlier attempt", index=chunk.index)
    else:
        started = time.monotonic()
        try:
            with tempfile.TemporaryDirectory(prefix="hark-") as tmp:
                path = audio.download(
                    ctx.s3,
                    ctx.res.audio_bucket.name,
                    chunk.key,
                    Path(tmp) / "chunk.flac",
                    ctx.settings.max_upload_bytes,
                )
                samples = audio.load(path, ctx.settings.max_audio_seconds)
        except PermanentError as err:
            fail_job(ctx, chunk.job_id, err.reason, attempt=delivery.receive_count)
            return
        # The prompt and task are the job's, read from its record (the language is the message's: detected
        # once for the whole recording).
        result = ctx.engine.run(samples, DecodeOptions(language=chunk.language, task=job.task, prompt=job.prompt))
        transcript = result.transcript.model_copy(update={"duration": chunk.duration})
        ctx.s3.put_object(
            Bucket=bucket,
            Key=part,
            Body=transcript.model_dump_json().encode(),
            ContentType="application/json",
            # The chunk's model time travels with it: the assembly sums the job's cost from the parts.
            Metadata={"offset": repr(chunk.offset), "model_seconds": repr(result.model_seconds)},
        )
        spent = time.monotonic() - started
        ctx.record_speed(chunk.duration, result.model_seconds, spent)
        logger.info(
            "chunk transcribed",
            index=chunk.index,
            total=chunk.total,
            offset=chunk.offset,
            audio_seconds=round(chunk.duration, 2),
            seconds=round(spent, 2),
        )
    try:
        job = ctx.store.chunk_done(chunk.job_id, chunk.index)
    except TransitionRefused:
        logger.info("job finished while this chunk ran: dropped")
        return
    logger.info("chunk recorded", done=job.chunks_done, total=job.chunks_total)
    if job.chunks_total and job.chunks_done >= job.chunks_total:
        assemble(ctx, job, attempt=delivery.receive_count)


def _exists(ctx: Context, bucket: str, key: str) -> bool:
    try:
        ctx.s3.head_object(Bucket=bucket, Key=key)
        return True
    except Exception as err:
        if aws.s3_not_found(err):
            return False
        raise
