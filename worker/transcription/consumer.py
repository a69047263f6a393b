"""The transcribe-queue handler: what one delivery means, and what becomes of it after a failure.

Per message the fate is one of (worker/runtime.py settles it): DONE (done, duplicate, or a permanent
input error that failed the job), RETRY after a delay (a transient error), or DEAD_LETTER (unreadable,
or the last attempt failed) so SQS's redrive moves it to the dead-letter queue on its next receive.
Exactly once comes from the job record: only the caller that wins a terminal transition notifies.

The steps live in modules named for what they do: uploads (claims), fanout, chunks, publishing, cleanup.
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from hark.messages import BrokenMessage, ChunkMessage, parse_transcribe_body
from hark.settings import Settings
from worker.runtime import DEAD_LETTER, DONE, Backoff, Delivery, Outcome, QueueConsumer, retry

from .chunks import transcribe_chunk
from .context import Context, logger
from .engine import Engine
from .publishing import fail_job
from .uploads import take_upload


def describe(err: Exception) -> str:
    """A short, user-readable cause for a transient error (it ends up in the job's error field)."""
    if isinstance(err, ClientError):
        code = err.response.get("Error", {}).get("Code", "error")
        return f"a storage or queue service error ({code})"
    if isinstance(err, BotoCoreError):
        return "a network error reaching the storage or queue service"
    return f"an internal error ({type(err).__name__})"


class TranscribeHandler:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.backoff = Backoff.listed(ctx.settings.retry_delays_seconds)
        # The receive after which a failure is final: the queue's redrive count, or sooner if fewer
        # retry delays are configured.
        self.last_attempt = min(ctx.res.transcribe_queue.max_receive_count, len(ctx.settings.retry_delays_seconds) + 1)

    def __call__(self, delivery: Delivery) -> Outcome:
        try:
            work = parse_transcribe_body(delivery.body)
        except BrokenMessage as err:
            logger.error(
                "unreadable message: left for the dead-letter queue",
                reason=str(err),
                receive_count=delivery.receive_count,
            )
            return DEAD_LETTER
        job_id: str | None = None
        try:
            if isinstance(work, ChunkMessage):
                job_id = work.job_id
                logger.thread_safe_append_keys(job_id=job_id, chunk=work.index)
                transcribe_chunk(self.ctx, delivery, work)
            else:
                if not work:
                    logger.info("no uploads in message (S3 test event): deleted")
                for event in work:
                    job_id = event.job_id
                    logger.thread_safe_append_keys(job_id=job_id)
                    take_upload(self.ctx, delivery, event)
        except Exception as err:
            return self.on_transient(delivery, job_id, err)
        return DONE

    def on_transient(self, delivery: Delivery, job_id: str | None, err: Exception) -> Outcome:
        reason = describe(err)
        attempt = delivery.receive_count
        self.ctx.metric("Attempts", attempt, MetricUnit.Count)
        if attempt < self.last_attempt:
            delay = self.backoff.delay(attempt)
            logger.warning(
                "attempt failed; retrying later", attempt=attempt, retry_in_seconds=delay, reason=reason, exc_info=err
            )
            if job_id:
                self.ctx.store.record_attempt_error(job_id, reason)
            return retry(delay)
        logger.error(
            "last attempt failed: job failed, message left for the dead-letter queue",
            attempt=attempt,
            reason=reason,
            exc_info=err,
        )
        if job_id:
            try:
                fail_job(self.ctx, job_id, f"transcription failed after {attempt} attempts: {reason}")
            except Exception:
                logger.exception("could not record the failure; the dead-letter queue keeps the message")
        return DEAD_LETTER


def transcribe_consumer(settings: Settings, engine: Engine) -> QueueConsumer:
    ctx = Context.create(settings, engine)
    handler = TranscribeHandler(ctx)
    return QueueConsumer(
        queue_url=ctx.transcribe_url,
        handler=handler,
        settings=settings,
        telemetry=ctx.telemetry,
        backoff=handler.backoff,
        # Several messages at once: their pieces share the model's batches (engine.py).
        concurrency=settings.max_messages_in_flight,
        message_keys=("job_id", "chunk"),
    )
