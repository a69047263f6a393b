"""The transcribe-queue handler: what one delivery means, and what becomes of it after a failure.

Per message the fate is one of (worker/runtime.py settles it): DONE (done, duplicate, or a permanent
input error that failed the job), RETRY after a delay (a transient error), or DEAD_LETTER (unreadable,
or the last attempt failed) so SQS's redrive moves it to the dead-letter queue on its next receive.
Exactly once comes from the job record: only the caller that wins a terminal transition notifies.
A message received before (ApproximateReceiveCount > 1) may be what killed a worker, unless its job shows
every earlier claim of the upload, or receive of the chunk, retried or handed back (Job.claims_lost,
Job.chunk_deaths): such a one runs alone, so another death takes no other job with it (on its last receive,
uploads.py and long_audio.py answer Failed for a job whose message killed workers).

A message's walk: this handler -> uploads.py (an upload: claim, decode, transcribe or split) or
long_audio.py (a chunk: transcribe it, assemble the last) -> back here with what became of the job ->
ending.py, the one place a job ends (record, notifications, metrics). No step calls back up.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from hark.domain.messages import BrokenMessage, ChunkMessage, UploadEvent, parse_transcribe_body
from hark.domain.settings import Settings
from worker.runtime import DEAD_LETTER, DONE, Backoff, Delivery, Outcome, QueueConsumer, retry

from .context import Context, logger
from .ending import Failed, end_job
from .engine import Engine
from .long_audio import transcribe_chunk
from .uploads import take_upload


def describe(err: Exception) -> str:
    """A short, user-readable cause for a transient error (it ends up in the job's error field)."""
    if isinstance(err, ClientError):
        code = err.response.get("Error", {}).get("Code", "error")
        return f"a storage or queue service error ({code})"
    if isinstance(err, BotoCoreError):
        return "a network error reaching the storage or queue service"
    return f"an internal error ({type(err).__name__})"


class Isolation:
    """Messages run side by side (shared), except one that runs alone: it waits for those in hand to
    finish, and no other starts until it is done (a waiting one goes first, so it cannot starve)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._running = 0
        self._alone_waiting = 0
        self._alone_running = False

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._changed:
            self._changed.wait_for(lambda: not self._alone_running and not self._alone_waiting)
            self._running += 1
        try:
            yield
        finally:
            with self._changed:
                self._running -= 1
                self._changed.notify_all()

    @contextmanager
    def alone(self) -> Iterator[None]:
        with self._changed:
            self._alone_waiting += 1
            self._changed.wait_for(lambda: not self._alone_running and not self._running)
            self._alone_waiting -= 1
            self._alone_running = True
        try:
            yield
        finally:
            with self._changed:
                self._alone_running = False
                self._changed.notify_all()


class TranscribeHandler:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.backoff = Backoff.listed(ctx.settings.retry_delays_seconds)
        self.last_attempt = ctx.last_attempt
        self.isolation = Isolation()

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
        chunk = work if isinstance(work, ChunkMessage) else None
        suspect = self.may_have_killed(delivery, work)  # then nothing else runs beside it
        if suspect:
            logger.info("received before: running alone", receive_count=delivery.receive_count)
        with self.isolation.alone() if suspect else self.isolation.shared():
            try:
                if isinstance(work, ChunkMessage):
                    job_id = work.job_id
                    logger.thread_safe_append_keys(job_id=job_id, chunk=work.index)
                    end_job(self.ctx, transcribe_chunk(self.ctx, delivery, work), attempt=delivery.receive_count)
                else:
                    if not work:
                        logger.info("no uploads in message (S3 test event): deleted")
                    for event in work:
                        job_id = event.job_id
                        logger.thread_safe_append_keys(job_id=job_id)
                        end_job(self.ctx, take_upload(self.ctx, delivery, event), attempt=delivery.receive_count)
            except Exception as err:
                return self.on_transient(delivery, job_id, err, chunk)
        return DONE

    def may_have_killed(self, delivery: Delivery, work: ChunkMessage | list[UploadEvent]) -> bool:
        """Received before, and a worker may have died with it in hand: its job counts a receive of this chunk,
        or a claim of this upload, that was neither retried after an error nor handed back by a stopping
        worker. Those only retried or handed back (a scale-in's) share the batches again."""
        if delivery.receive_count <= 1:
            return False
        try:
            if isinstance(work, ChunkMessage):
                job = self.ctx.store.jobs.get(work.job_id)
                return (
                    job is not None
                    and not job.status.finished
                    and job.chunk_deaths(work.index, delivery.receive_count) > 0
                )
            jobs = [self.ctx.store.jobs.get(event.job_id) for event in work]
            return any(job is not None and job.claims_lost > 0 for job in jobs)
        except (ClientError, BotoCoreError):  # the job cannot be read now: as careful as with a death
            logger.warning("could not read the job: running alone", exc_info=True)
            return True

    def record_hand_back(self, delivery: Delivery) -> None:
        """A stopping worker gives a message back unfinished: recorded on its job, so that its next receive
        does not count this one as a worker's death (uploads.py, long_audio.py)."""
        work = parse_transcribe_body(delivery.body)
        if isinstance(work, ChunkMessage):
            self.ctx.store.jobs.record_chunk_return(work.job_id, work.index, delivery.receive_count)
            return
        for event in work:
            self.ctx.store.jobs.record_hand_back(event.job_id, delivery.id)

    def on_transient(
        self, delivery: Delivery, job_id: str | None, err: Exception, chunk: ChunkMessage | None = None
    ) -> Outcome:
        reason = describe(err)
        attempt = delivery.receive_count
        self.ctx.metric("Attempts", attempt, MetricUnit.Count)
        if attempt < self.last_attempt:
            delay = self.backoff.delay(attempt)
            logger.warning(
                "attempt failed; retrying later", attempt=attempt, retry_in_seconds=delay, reason=reason, exc_info=err
            )
            if chunk:
                self.ctx.store.jobs.record_chunk_return(chunk.job_id, chunk.index, attempt, reason)
            elif job_id:
                self.ctx.store.jobs.record_attempt_error(job_id, reason)
            return retry(delay)
        logger.error(
            "last attempt failed: job failed, message left for the dead-letter queue",
            attempt=attempt,
            reason=reason,
            exc_info=err,
        )
        if job_id:
            try:
                # Attempts is counted above: not again.
                end_job(self.ctx, Failed(job_id, f"transcription failed after {attempt} attempts: {reason}"))
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
        on_hand_back=handler.record_hand_back,
    )
