"""A long recording, transcribed by many workers at once (docs/architecture.md, Long audio).

Three steps, each on whichever worker takes the message:
  fan_out           the claiming worker splits the decoded recording at pauses (splitting.py), stores each
                    chunk as FLAC under chunks/ and queues one chunk message per chunk on the transcribe
                    queue, so every idle worker takes one;
  transcribe_chunk  a chunk's transcript goes to parts/ and its index into the job's set of done chunks
                    (a set, so a redelivered chunk counts once);
  assemble          the worker whose chunk completes the set joins the parts into one transcript with
                    continuous timestamps.
Each returns what became of the job; ending.py does the rest.
"""

from __future__ import annotations

import time

from aws_lambda_powertools.metrics import MetricUnit

from hark.domain import aws, keys
from hark.domain.jobs import Job, JobStatus, TransitionRefused
from hark.domain.messages import ChunkMessage
from hark.domain.transcript import Transcript
from worker.runtime import Delivery

from . import audio, splitting
from .audio import PermanentError
from .context import Context, logger
from .ending import ONGOING, Failed, JobOutcome, Renotify, Transcribed, stopped_workers
from .engine import DecodeOptions

SQS_BATCH = 10  # SendMessageBatch's limit
MIN_SPEECH_FOR_LANGUAGE = 1.0  # seconds of speech a chunk needs for the recording's language to be told from it
# No speech anywhere: the chunks are transcribed (to nothing) in the model's first language.
NO_SPEECH_LANGUAGE = "en"


def fan_out(ctx: Context, job: Job, pcm: audio.Pcm) -> None:
    """Read a window at a time (splitting.split_stream): memory stays about 1.5 chunk targets of samples
    whatever the recording's length."""
    duration = pcm.seconds
    language = None if job.language == "auto" else job.language
    bucket = ctx.res.audio_bucket.name
    chunks = []
    for piece in splitting.split_stream(pcm.read, duration, ctx.settings.chunk_target_seconds):
        if language is None and piece.speech_seconds >= MIN_SPEECH_FOR_LANGUAGE:
            # Once, from the first chunk with speech, so every chunk uses the same language.
            language, probability = ctx.engine.detect_language(piece.samples)
            logger.info("language detected for chunks", language=language, probability=round(probability, 3))
        ctx.s3.put_object(
            Bucket=bucket,
            Key=keys.chunk_key(job.user_id, job.job_id, piece.chunk.index),
            Body=audio.encode_flac(piece.samples),
            ContentType="audio/flac",
        )
        chunks.append(piece.chunk)
    language = language or NO_SPEECH_LANGUAGE
    ctx.store.jobs.set_chunks(job.job_id, len(chunks), duration)
    bodies = [
        ChunkMessage(
            job_id=job.job_id,
            user_id=job.user_id,
            index=c.index,
            total=len(chunks),
            offset=c.start,
            duration=c.duration,
            key=keys.chunk_key(job.user_id, job.job_id, c.index),
            language=language,
        ).model_dump_json()
        for c in chunks
    ]
    for i in range(0, len(bodies), SQS_BATCH):
        reply = ctx.sqs.send_message_batch(
            QueueUrl=ctx.transcribe_url,
            Entries=[{"Id": str(n), "MessageBody": b} for n, b in enumerate(bodies[i : i + SQS_BATCH])],
        )
        if reply.get("Failed"):
            raise RuntimeError(f"could not queue {len(reply['Failed'])} chunk messages")
    logger.info(
        "split into chunks",
        chunks=len(chunks),
        audio_seconds=round(duration, 2),
        chunk_seconds=[round(c.duration, 1) for c in chunks],
    )
    ctx.metric("ChunksQueued", len(chunks), MetricUnit.Count)


def transcribe_chunk(ctx: Context, delivery: Delivery, chunk: ChunkMessage) -> JobOutcome:
    job = ctx.store.jobs.get(chunk.job_id)
    if job is not None and job.status.finished and not job.notified_at:
        # The assembling worker may have died between finishing the job and queueing its
        # notification; queueing it again is safe because the notifier sends one email per job.
        logger.info("chunk of a finished job not yet notified: notification re-sent", status=job.status)
        return Renotify(job)
    if job is None or job.status != JobStatus.PROCESSING:
        logger.info("chunk of a job that is gone or finished: dropped", status=job.status if job else None)
        return ONGOING
    # Earlier receives of this chunk neither retried after an error nor handed back: a worker died with it.
    if (died := job.chunk_deaths(chunk.index, delivery.receive_count)) > 0:
        logger.warning("a worker stopped while this chunk was in hand", times=died, index=chunk.index)
        if delivery.receive_count >= ctx.last_attempt:  # another death would leave the job PROCESSING for good
            return Failed(chunk.job_id, stopped_workers(died))
    bucket = ctx.res.transcripts_bucket.name
    part = keys.part_key(chunk.user_id, chunk.job_id, chunk.index)
    if _exists(ctx, bucket, part):
        logger.info("chunk already transcribed by an earlier attempt", index=chunk.index)
    else:
        started = time.monotonic()
        try:
            with audio.fetched(ctx.s3, ctx.res.audio_bucket.name, chunk.key, ctx.settings) as (pcm,):
                samples = pcm.read()
        except PermanentError as err:
            return Failed(chunk.job_id, err.reason)  # the chunk's size is not the upload's: not recorded
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
        job = ctx.store.jobs.chunk_done(chunk.job_id, chunk.index)
    except TransitionRefused:
        logger.info("job finished while this chunk ran: dropped")
        return ONGOING
    logger.info("chunk recorded", done=job.chunks_done, total=job.chunks_total)
    if job.chunks_total and job.chunks_done >= job.chunks_total:
        return assemble(ctx, job)
    return ONGOING


def assemble(ctx: Context, job: Job) -> JobOutcome:
    """Join every chunk's transcript (parts/) into one with continuous timestamps."""
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
    if not (job.speaker_labels and transcript.text):
        return Transcribed(job, transcript, model_seconds)
    # One set of speakers for the whole recording: the assembling worker diarizes all of it (the upload is
    # still in S3), so labels agree across chunk boundaries. Its cost: this one worker downloads and decodes
    # the recording again and diarizes it alone (about 1/25 of its length in CPU time, docs/diarization.md),
    # after the chunks ran in parallel.
    try:
        with audio.fetched(
            ctx.s3,
            ctx.res.audio_bucket.name,
            job.audio_key,
            ctx.settings,
            declared_bytes=job.size_bytes,
            content_type=job.content_type,
            track=job.audio_track or 0,
        ) as (pcm,):
            samples = pcm.read()
    except PermanentError as err:
        return Failed(job.job_id, err.reason, err.uploaded_bytes)
    return Transcribed(job, transcript, model_seconds, samples)


def _exists(ctx: Context, bucket: str, key: str) -> bool:
    try:
        ctx.s3.head_object(Bucket=bucket, Key=key)
        return True
    except Exception as err:
        if aws.s3_not_found(err):
            return False
        raise
