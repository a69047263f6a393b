"""Long audio: split at pauses into chunks, store each as FLAC, and queue one chunk message per chunk
on the transcribe queue, so every idle worker takes one (docs/architecture.md, Long audio)."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit

from hark.domain import keys
from hark.domain.jobs import Job
from hark.domain.messages import ChunkMessage

from . import audio, chunking
from .context import Context, logger

SQS_BATCH = 10  # SendMessageBatch's limit
MIN_SPEECH_FOR_LANGUAGE = 1.0  # seconds of speech a chunk needs for the recording's language to be told from it
# No speech anywhere: the chunks are transcribed (to nothing) in the model's first language.
NO_SPEECH_LANGUAGE = "en"


def fan_out(ctx: Context, job: Job, pcm: audio.Pcm) -> None:
    """Read a window at a time (chunking.split_stream): memory stays about 1.5 chunk targets of samples
    whatever the recording's length."""
    duration = pcm.seconds
    language = None if job.language == "auto" else job.language
    bucket = ctx.res.audio_bucket.name
    chunks = []
    for piece in chunking.split_stream(pcm.read, duration, ctx.settings.chunk_target_seconds):
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
    ctx.store.set_chunks(job.job_id, len(chunks), duration)
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
