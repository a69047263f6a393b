"""The transcribe-queue consumer: one message at a time, idempotent, retried by receive count.

Per message the fate is one of: deleted (done, duplicate, or a permanent input error that failed the
job), hidden for a retry delay (a transient error), or made visible at once (unreadable, or the last
attempt failed) so SQS's redrive moves it to the dead-letter queue on its next receive.
Exactly once comes from the job record: only the caller that wins a terminal transition notifies.
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from hark import aws, keys
from hark.jobs import Job, JobStatus, TransitionRefused
from hark.messages import BrokenMessage, ChunkMessage, NotifyMessage, UploadEvent, parse_transcribe_body
from hark.settings import Settings
from hark.transcript import CONTENT_TYPES, RENDERERS, Transcript

from . import audio, chunking
from .audio import PermanentError
from .engine import Engine

SERVICE = "transcription-worker"
logger = Logger(service=SERVICE)
metrics = Metrics(namespace="Hark", service=SERVICE)
ALREADY_WRITTEN = ("PreconditionFailed", "ConditionalRequestConflict")


def describe(err: Exception) -> str:
    """A short, user-readable cause for a transient error (it ends up in the job's error field)."""
    if isinstance(err, ClientError):
        code = err.response.get("Error", {}).get("Code", "error")
        return f"a storage or queue service error ({code})"
    if isinstance(err, BotoCoreError):
        return "a network error reaching the storage or queue service"
    return f"an internal error ({type(err).__name__})"


def seconds_since(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        then = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0.0, time.time() - then.timestamp())


class Message:
    def __init__(self, raw: dict):
        self.id: str = raw["MessageId"]
        self.receipt: str = raw["ReceiptHandle"]
        self.body: str = raw.get("Body", "")
        self.receive_count = int(raw.get("Attributes", {}).get("ApproximateReceiveCount", "1"))


class Heartbeat:
    """Keeps a message hidden while long work runs, re-extending it every third of the lease."""

    def __init__(self, worker: Worker, message: Message):
        self.worker, self.message = worker, message
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(self.worker.lease / 3):
            try:
                self.worker.set_visibility(self.message, self.worker.lease, quiet=True)
            except Exception:  # a missed beat only risks a duplicate, which claims absorb
                logger.warning("heartbeat failed", exc_info=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


class Worker:
    def __init__(self, settings: Settings, engine: Engine):
        self.settings, self.engine = settings, engine
        self.res = aws.stack_resources()
        self.sqs, self.s3 = aws.client("sqs"), aws.client("s3")
        self.store = aws.job_store()
        self.queue_url = aws.queue_url(self.res.transcribe_queue.name)
        self.notify_url = aws.queue_url(self.res.notify_queue.name)
        self.lease = settings.visibility_lease_seconds or self.res.transcribe_queue.visibility_timeout_seconds
        self.stopping = threading.Event()
        self.finished = threading.Event()
        self._lock = threading.Lock()  # guards `current` against the SIGTERM hand-back
        self.current: Message | None = None
        self.polling = False  # inside an idle long poll: nothing in hand to finish or hand back
        self._metrics_added = False
        logger.append_keys(worker=f"{socket.gethostname()}:{os.getpid()}")

    # -- the loop --------------------------------------------------------------------------------
    def run(self) -> None:
        logger.info("worker ready", model=self.engine.name, device=self.engine.device,
                    compute_type=self.engine.compute_type, load_seconds=round(self.engine.load_seconds, 2))
        try:
            while not self.stopping.is_set():
                try:
                    self.polling = True
                    reply = self.sqs.receive_message(
                        QueueUrl=self.queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=self.settings.poll_wait_seconds,
                        VisibilityTimeout=self.lease, AttributeNames=["ApproximateReceiveCount"],
                    )
                    self.polling = False
                except (ClientError, BotoCoreError):
                    self.polling = False
                    logger.exception("receive failed; polling again shortly")
                    self.stopping.wait(2)
                    continue
                for raw in reply.get("Messages", []):
                    message = Message(raw)
                    if self.stopping.is_set():  # received during the last poll: not started, give it back
                        self.set_visibility(message, 0)
                        logger.info("stopping: message handed back unstarted", message_id=message.id)
                        continue
                    self.handle(message)
        finally:
            self.finished.set()
            logger.info("worker stopped")

    def stop(self) -> None:
        self.stopping.set()

    def hand_back(self) -> None:
        """Out of time after SIGTERM: make the in-flight message visible again for another worker."""
        with self._lock:
            message, self.current = self.current, None
            if message is not None:
                try:
                    self.sqs.change_message_visibility(QueueUrl=self.queue_url, ReceiptHandle=message.receipt,
                                                       VisibilityTimeout=0)
                    logger.warning("out of time: message handed back", message_id=message.id)
                except Exception:
                    logger.exception("hand-back failed; the message returns when its lease expires")

    # -- one message -----------------------------------------------------------------------------
    def handle(self, message: Message) -> None:
        logger.remove_keys(["job_id", "chunk"])
        with self._lock:
            self.current = message
        job_id: str | None = None
        try:
            try:
                work = parse_transcribe_body(message.body)
            except BrokenMessage as err:
                logger.error("unreadable message: left for the dead-letter queue", message_id=message.id,
                             reason=str(err), receive_count=message.receive_count)
                self.set_visibility(message, 0)
                return
            try:
                with Heartbeat(self, message):
                    if isinstance(work, ChunkMessage):
                        job_id = work.job_id
                        logger.append_keys(job_id=job_id, chunk=work.index)
                        self.handle_chunk(message, work)
                    else:
                        if not work:
                            logger.info("no uploads in message (S3 test event): deleted", message_id=message.id)
                        for event in work:
                            job_id = event.job_id
                            logger.append_keys(job_id=job_id)
                            self.handle_upload(message, event)
            except Exception as err:
                self.on_transient(message, job_id, err)
                return
            self.delete(message)
        finally:
            with self._lock:
                self.current = None
            self.flush_metrics()
            logger.remove_keys(["job_id", "chunk"])

    def on_transient(self, message: Message, job_id: str | None, err: Exception) -> None:
        reason = describe(err)
        attempt = message.receive_count
        delays = self.settings.retry_delays_seconds
        last = min(self.res.transcribe_queue.max_receive_count, len(delays) + 1)
        self.metric("Attempts", attempt, MetricUnit.Count)
        if attempt < last:
            delay = delays[attempt - 1]
            logger.warning("attempt failed; retrying later", attempt=attempt, retry_in_seconds=delay,
                           reason=reason, exc_info=err)
            if job_id:
                self.store.record_attempt_error(job_id, reason)
            self.set_visibility(message, delay)
            return
        logger.error("last attempt failed: job failed, message left for the dead-letter queue",
                     attempt=attempt, reason=reason, exc_info=err)
        if job_id:
            try:
                self.fail_job(job_id, f"transcription failed after {attempt} attempts: {reason}")
            except Exception:
                logger.exception("could not record the failure; the dead-letter queue keeps the message")
        self.set_visibility(message, 0)

    # -- uploads -----------------------------------------------------------------------------------
    def handle_upload(self, message: Message, event: UploadEvent) -> None:
        job = self.store.get(event.job_id)
        if job is None:
            logger.warning("upload for a job that does not exist (deleted, or not ours): dropped", key=event.key)
            return
        if job.user_id != event.user_id or job.audio_key != event.key:
            logger.warning("upload does not match its job's record: dropped", key=event.key, expected=job.audio_key)
            return
        if job.status == JobStatus.UPLOADING:
            try:
                self.store.mark_queued(job.job_id, event.event_time)
            except TransitionRefused:
                pass  # another delivery of this event got there first
        try:
            job = self.store.claim(job.job_id, message.id)
        except TransitionRefused:
            self.refused_claim(message, job.job_id)
            return
        logger.info("job claimed", attempt=job.attempts, receive_count=message.receive_count, key=event.key)
        if job.attempts == 1 and (wait := seconds_since(job.queued_at)) is not None:
            self.metric("QueueWaitSeconds", wait, MetricUnit.Seconds)
        self.process_upload(message, job, event)

    def refused_claim(self, message: Message, job_id: str) -> None:
        item = self.store.table.get_item(Key={"job_id": job_id}, ConsistentRead=True).get("Item") or {}
        status = item.get("status")
        if status in (JobStatus.COMPLETED, JobStatus.FAILED) and item.get("owner_message_id") == message.id \
                and not item.get("notified_at"):
            # This message finished the job but its worker died before deleting it: the notify may not
            # have gone out. The notifier sends one email per job whatever it receives.
            logger.info("job finished by an earlier delivery of this message: notification re-sent", status=status)
            self.notify(job_id)
            return
        logger.info("duplicate event: the job is owned by another message or finished; dropped",
                    status=status, message_id=message.id)

    def process_upload(self, message: Message, job: Job, event: UploadEvent) -> None:
        started = time.monotonic()
        try:
            with tempfile.TemporaryDirectory(prefix="hark-") as tmp:
                path = audio.download(self.s3, event.bucket, event.key, Path(tmp) / "upload",
                                      self.settings.max_upload_bytes)
                samples = audio.load(path, self.settings.max_audio_seconds)
        except PermanentError as err:
            self.fail_job(job.job_id, err.reason, attempt=message.receive_count)
            return
        duration = len(samples) / audio.SAMPLE_RATE
        if duration > self.settings.chunk_threshold_seconds:
            self.fan_out(job, samples)
            return
        logger.info("transcribing", audio_seconds=round(duration, 2), language=job.language)
        transcript = self.engine.transcribe(samples, job.language)
        spent = time.monotonic() - started
        self.record_speed(duration, spent)
        self.publish(job, transcript, attempt=message.receive_count)

    # -- long audio ----------------------------------------------------------------------------
    def fan_out(self, job: Job, samples) -> None:
        duration = len(samples) / audio.SAMPLE_RATE
        chunks = chunking.split(samples, self.settings.chunk_target_seconds)
        language = job.language
        if language == "auto":  # once for the whole file, so every chunk uses the same language
            language, probability = self.engine.detect_language(samples)
            logger.info("language detected for chunks", language=language, probability=round(probability, 3))
        bucket = self.res.audio_bucket.name
        for chunk in chunks:
            self.s3.put_object(Bucket=bucket, Key=keys.chunk_key(job.user_id, job.job_id, chunk.index),
                               Body=audio.encode_flac(chunking.cut(samples, chunk)), ContentType="audio/flac")
        self.store.set_chunks(job.job_id, len(chunks), duration)
        bodies = [
            ChunkMessage(job_id=job.job_id, user_id=job.user_id, index=c.index, total=len(chunks), offset=c.start,
                         duration=c.duration, key=keys.chunk_key(job.user_id, job.job_id, c.index),
                         language=language).model_dump_json()
            for c in chunks
        ]
        for i in range(0, len(bodies), 10):
            reply = self.sqs.send_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(n), "MessageBody": b} for n, b in enumerate(bodies[i:i + 10])],
            )
            if reply.get("Failed"):
                raise RuntimeError(f"could not queue {len(reply['Failed'])} chunk messages")
        logger.info("split into chunks", chunks=len(chunks), audio_seconds=round(duration, 2),
                    chunk_seconds=[round(c.duration, 1) for c in chunks])
        self.metric("ChunksQueued", len(chunks), MetricUnit.Count)

    def handle_chunk(self, message: Message, chunk: ChunkMessage) -> None:
        job = self.store.get(chunk.job_id)
        if job is not None and job.status.finished and not job.notified_at:
            # The assembling worker may have died between finishing the job and queueing its
            # notification; queueing it again is safe because the notifier sends one email per job.
            logger.info("chunk of a finished job not yet notified: notification re-sent", status=job.status)
            self.notify(job.job_id)
            return
        if job is None or job.status != JobStatus.PROCESSING:
            logger.info("chunk of a job that is gone or finished: dropped",
                        status=job.status if job else None)
            return
        bucket = self.res.transcripts_bucket.name
        part = keys.part_key(chunk.user_id, chunk.job_id, chunk.index)
        if self.exists(bucket, part):
            logger.info("chunk already transcribed by an earlier attempt", index=chunk.index)
        else:
            started = time.monotonic()
            try:
                with tempfile.TemporaryDirectory(prefix="hark-") as tmp:
                    path = audio.download(self.s3, self.res.audio_bucket.name, chunk.key, Path(tmp) / "chunk.flac",
                                          self.settings.max_upload_bytes)
                    samples = audio.load(path, self.settings.max_audio_seconds)
            except PermanentError as err:
                self.fail_job(chunk.job_id, err.reason, attempt=message.receive_count)
                return
            transcript = self.engine.transcribe(samples, chunk.language)
            transcript = transcript.model_copy(update={"duration": chunk.duration})
            self.s3.put_object(Bucket=bucket, Key=part, Body=transcript.model_dump_json().encode(),
                               ContentType="application/json", Metadata={"offset": repr(chunk.offset)})
            spent = time.monotonic() - started
            self.record_speed(chunk.duration, spent)
            logger.info("chunk transcribed", index=chunk.index, total=chunk.total, offset=chunk.offset,
                        audio_seconds=round(chunk.duration, 2), seconds=round(spent, 2))
        try:
            job = self.store.chunk_done(chunk.job_id, chunk.index)
        except TransitionRefused:
            logger.info("job finished while this chunk ran: dropped")
            return
        logger.info("chunk recorded", done=job.chunks_done, total=job.chunks_total)
        if job.chunks_total and job.chunks_done >= job.chunks_total:
            self.assemble(job, attempt=message.receive_count)

    def assemble(self, job: Job, attempt: int) -> None:
        bucket = self.res.transcripts_bucket.name
        parts = []
        for index in range(job.chunks_total or 0):
            obj = self.s3.get_object(Bucket=bucket, Key=keys.part_key(job.user_id, job.job_id, index))
            parts.append((float(obj["Metadata"]["offset"]), Transcript.model_validate_json(obj["Body"].read())))
        transcript = Transcript.joined(parts, duration=job.duration_seconds or sum(t.duration for _, t in parts),
                                       model=self.engine.name)
        logger.info("assembling chunks", chunks=len(parts))
        self.publish(job, transcript, attempt=attempt)

    # -- endings -------------------------------------------------------------------------------
    def publish(self, job: Job, transcript: Transcript, attempt: int) -> None:
        bucket = self.res.transcripts_bucket.name
        for fmt, render in RENDERERS.items():
            try:
                # Conditional: a duplicate assembly or a retry never replaces a transcript once written.
                self.s3.put_object(Bucket=bucket, Key=keys.transcript_key(job.user_id, job.job_id, fmt),
                                   Body=render(transcript).encode("utf-8"), ContentType=CONTENT_TYPES[fmt],
                                   IfNoneMatch="*")
            except ClientError as err:
                if err.response.get("Error", {}).get("Code") not in ALREADY_WRITTEN:
                    raise
        try:
            self.store.complete(job.job_id, transcript.language, transcript.duration)
        except TransitionRefused:
            if self.store.get(job.job_id) is None:
                # Deleted by its owner while we worked: what we just wrote must not outlive the job.
                for fmt in RENDERERS:
                    self.s3.delete_object(Bucket=bucket, Key=keys.transcript_key(job.user_id, job.job_id, fmt))
                logger.info("job deleted while it ran: its transcripts removed")
                return
            logger.info("another worker finished this job first")
            return
        self.notify(job.job_id)
        self.metric("JobsCompleted", 1, MetricUnit.Count)
        self.metric("Attempts", attempt, MetricUnit.Count)
        logger.info("job completed", language=transcript.language, audio_seconds=transcript.duration,
                    segments=len(transcript.segments))

    def fail_job(self, job_id: str, reason: str, attempt: int | None = None) -> None:
        try:
            self.store.fail(job_id, reason)
        except TransitionRefused:
            logger.info("job already finished; failure not recorded", reason=reason)
            return
        self.notify(job_id)
        self.metric("JobsFailed", 1, MetricUnit.Count)
        if attempt:
            self.metric("Attempts", attempt, MetricUnit.Count)
        logger.warning("job failed", reason=reason)

    def notify(self, job_id: str) -> None:
        self.sqs.send_message(QueueUrl=self.notify_url, MessageBody=NotifyMessage(job_id=job_id).model_dump_json())

    # -- small helpers -------------------------------------------------------------------------
    def exists(self, bucket: str, key: str) -> bool:
        try:
            self.s3.head_object(Bucket=bucket, Key=key)
            return True
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def delete(self, message: Message) -> None:
        self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message.receipt)

    def set_visibility(self, message: Message, seconds: int, quiet: bool = False) -> None:
        with self._lock:
            if quiet and self.current is not message:
                return  # handed back or finished meanwhile: a late heartbeat must not hide it again
            self.sqs.change_message_visibility(QueueUrl=self.queue_url, ReceiptHandle=message.receipt,
                                               VisibilityTimeout=int(seconds))

    def record_speed(self, audio_seconds: float, spent: float) -> None:
        self.metric("AudioSeconds", audio_seconds, MetricUnit.Seconds)
        self.metric("ProcessingSeconds", spent, MetricUnit.Seconds)
        if audio_seconds > 0:
            self.metric("RealTimeFactor", spent / audio_seconds, MetricUnit.NoUnit)

    def metric(self, name: str, value: float, unit: MetricUnit) -> None:
        metrics.add_metric(name=name, unit=unit, value=value)
        self._metrics_added = True

    def flush_metrics(self) -> None:
        if self._metrics_added:
            metrics.flush_metrics()
            self._metrics_added = False
