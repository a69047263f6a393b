"""The jobs table: the job record and its state machine, and the per-user items beside it, in DynamoDB.

`JobStore` holds one small class per concern, each over the one gateway to the table (`JobsTable`):
`Jobs` (the records and their state machine), `Quota` (a user's unfinished jobs), `NotificationLease`
(the email's send right), `WebhookDelivery` (a job's webhook attempts) and `UserWebhookSettings` (a user's
signing secret and default URL).

States only move forward, each step one conditional write:
    UPLOADING -> QUEUED -> PROCESSING -> COMPLETED | FAILED
S3 and SQS deliver at least once, so every transition says which states it may start from and
reports whether *this* call made it: only the caller that wins a terminal transition sends the
notification, which is how a duplicate event or a retried message ends in exactly one email.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError
from pydantic import BaseModel, Field

from hark.domain.keys import revision_name
from hark.domain.resources import ACTIVE_JOBS_INDEX, JOBS_BY_USER_INDEX

# The per-user quota of unfinished jobs: one item per user in the jobs table, keyed QUOTA_PREFIX + user
# id, holding the ids of that user's unfinished jobs as a string set. Taking a place is one conditional
# update (ADD the id if the set is smaller than the limit), which DynamoDB applies atomically, so N
# parallel creates at limit-1 give exactly one place. A place is given back when the job completes,
# fails or is deleted; places whose job is gone (TTL) or finished are swept when the set is full
# (Quota.sweep). The item has no user_id, so it is in neither index.
QUOTA_PREFIX = "quota#"
RECORD_TTL_SECONDS = 400 * 24 * 3600
# A job whose upload never arrives (a closed tab, a failed upload) expires through DynamoDB's TTL a
# day after its upload form does, which also frees its place in the user's quota. The upload's
# arrival gives the record the full lifetime.
ABANDONED_UPLOAD_TTL_SECONDS = 24 * 3600
# A filtered list (GET /jobs?status=) reads at most this many of the user's jobs per page.
LIST_MAX_READ = 1000


class JobStatus(StrEnum):
    UPLOADING = "UPLOADING"
    QUEUED = "QUEUED"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED)


UNFINISHED = (JobStatus.UPLOADING, JobStatus.QUEUED, JobStatus.PROCESSING)

# How a job's owner hears that it finished (POST /jobs `notify`): any subset, [] for neither.
NotifyChannel = Literal["email", "webhook"]
NOTIFY_CHANNELS: tuple[str, ...] = ("email", "webhook")


def email_only() -> list[NotifyChannel]:
    """The default of `notify` (jobs created before it existed, and the web page's)."""
    return ["email"]


# A user's webhook settings: one item per user in the jobs table, keyed WEBHOOK_PREFIX + user id, holding
# the signing secret (and, for a day after a rotation, the previous one) and the default receiver URL. Like
# the quota item it has no user_id, so it is in neither index; the table's encryption at rest covers it.
WEBHOOK_PREFIX = "webhook#"


def now_iso(at: float | None = None) -> str:
    """ISO 8601 UTC with microseconds and Z (now, or the epoch time `at`): one format, so times compare as strings."""
    moment = datetime.now(UTC) if at is None else datetime.fromtimestamp(at, UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def new_job_id() -> str:
    # uuid4 hex: unguessable, and safe in S3 keys and URLs.
    return uuid.uuid4().hex


# Whisper's two tasks: transcribe in the spoken language, or translate to English.
Task = Literal["transcribe", "translate"]


class WebhookAttempt(BaseModel):
    """One delivery attempt of a job's webhook, as recorded on the job (GET /jobs/{id} shows them)."""

    at: str  # ISO 8601, UTC
    status_code: int | None = None  # the receiver's HTTP status; None when there was no answer
    error: str | None = None  # no answer (refused, timeout, TLS), or a URL refused at delivery
    next_attempt_at: str | None = None  # None: no further attempt (delivered, or given up)


# The most revisions a transcript keeps (each a write id in the record: about 40 bytes of DynamoDB's 400 KB).
MAX_TRANSCRIPT_REVISIONS = 1000


class Corrections(BaseModel):
    """What people's corrections say about the model's transcript (issue 26)."""

    word_error_rate: float | None = Field(
        description="The model transcript's WER against the latest correction (hark.domain.wer: normalised words); "
        "null when the correction emptied the transcript."
    )
    edited_segments: int = Field(description="Segments whose text the latest correction changed.")


class Job(BaseModel):
    job_id: str
    user_id: str
    email: str | None = None
    filename: str
    content_type: str
    size_bytes: int
    language: str = "auto"  # as asked at creation
    prompt: str | None = None  # names and terms: Whisper's initial prompt (hark.domain.api_schemas.CreateJobRequest)
    task: Task = "transcribe"  # or "translate" (to English); `detected_language` stays the spoken language
    speaker_labels: bool = False  # label who spoke when (issue 14: worker/transcription/diarization.py)
    speakers_expected: int | None = None  # with speaker_labels: the number of speakers, if the user knows it
    min_speakers: int | None = None  # with speaker_labels and no speakers_expected: the estimate's range
    max_speakers: int | None = None
    audio_track: int | None = None  # which audio stream to transcribe (from 0); None: the first (issue 25)
    multichannel: bool = False  # each channel transcribed on its own, words tagged with it (issue 25)
    # A big upload in parts (issue 25, hark.domain.uploads): S3's multipart upload id and the part size, set
    # while UPLOADING by whoever starts it first; the parts themselves are S3's to keep (ListParts).
    multipart_upload_id: str | None = None
    multipart_part_bytes: int | None = None
    audio_key: str
    # A video's audio rendition is stored (hark.domain.keys.rendition_key): playback serves it, and the video
    # itself is deleted once the job completes (docs/scaling.md, "Video: what is kept").
    rendition: bool = False
    status: JobStatus
    created_at: str
    updated_at: str
    queued_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    detected_language: str | None = None  # None when nothing was said: no language is claimed
    duration_seconds: float | None = None
    # The object's real size as it arrived in S3 (the S3 event, or the worker's HEAD); `size_bytes` stays
    # what the client declared, so a difference is visible (and fails the job: worker/transcription/audio.py).
    uploaded_bytes: int | None = None
    no_speech: bool = False  # COMPLETED, but no speech was detected (silence, noise, music)
    # What transcribing it took (issue 13, cost per job): its share of the model's time (batches shared
    # with other jobs are apportioned by audio seconds; chunks summed) and that time at the configured
    # instance price (Settings.usd_per_model_second). Set when it COMPLETED.
    model_seconds: float | None = None
    cost_usd: float | None = None
    # The model's own confidence in its transcript (hark.domain.transcript.confidence), set when it COMPLETED.
    confidence: float | None = None
    low_confidence_share: float | None = None
    # People's corrections (PUT /jobs/{id}/transcript): the write id of each revision, oldest first (revision
    # n is transcript_revisions[n - 1]; its files are under hark.domain.keys.revision_name), and what they measure.
    transcript_revisions: list[str] = Field(default_factory=list)
    corrections: Corrections | None = None
    error: str | None = None  # why it FAILED, for the user
    last_error: str | None = None  # why the latest attempt failed (retried), for operators
    attempts: int = 0
    # Attempts that ended in an error and were retried.
    failed_attempts: int = 0
    # Claims a stopping worker gave back unfinished (SIGTERM: scale-in, a deploy). A claim counted in neither
    # and not finished was a worker dying with the message in hand (claims_lost, worker/transcription/uploads.py).
    handed_back: int = 0
    # Receives of chunk messages that ended without a worker's death, as "index:receive": a retried error or
    # a stopping worker's hand-back (a chunk has no claim to count them by; chunk_deaths).
    chunk_returns: set[str] = Field(default_factory=set)
    owner_message_id: str | None = None  # the SQS message whose deliveries may claim it (Jobs.claim)
    chunks_total: int | None = None
    chunks_done: int = 0
    notify_lease_until: int | None = None  # epoch seconds: a sender holds the right to email until then
    notified_at: str | None = None
    email_message_id: str | None = None  # SES's id of the one email sent
    notify: list[NotifyChannel] = Field(default_factory=email_only)
    webhook_url: str | None = None  # where the finished job is POSTed, when notify has "webhook"
    webhook_attempts: list[WebhookAttempt] = Field(default_factory=list)
    webhook_delivered_at: str | None = None
    webhook_owner: str | None = None  # the SQS message whose attempts deliver it (WebhookDelivery.claim)
    webhook_gave_up: bool = False  # the owner's last attempt failed: a replayed copy may take over

    @property
    def claims_lost(self) -> int:
        """Claims of an unfinished job that neither failed (retried), nor were handed back, nor finished:
        each a worker that died with the message in hand. Counts a claim still in progress, too."""
        return 0 if self.status.finished else self.attempts - self.failed_attempts - self.handed_back

    def chunk_deaths(self, index: int, receive_count: int) -> int:
        """Receives of chunk `index` before receive `receive_count` that neither ended in a retried error nor
        were handed back: each a worker that died with the chunk in hand."""
        returned = sum(f"{index}:{receive}" in self.chunk_returns for receive in range(1, receive_count))
        return receive_count - 1 - returned

    @property
    def transcript_revision(self) -> int:
        """The latest revision of the transcript: 0 is the model's own."""
        return len(self.transcript_revisions)

    def revision_folder(self, revision: int) -> str:
        """Revision `revision`'s folder name for hark.domain.keys ("" for the model's own)."""
        return revision_name(revision, self.transcript_revisions[revision - 1]) if revision else ""

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Job:
        data = {k: _plain(v) for k, v in item.items()}
        done = data.pop("chunks_done_set", None)
        data["chunks_done"] = len(done) if done else 0
        return cls.model_validate(data)


def _record_expiry() -> int:
    return int(time.time()) + RECORD_TTL_SECONDS


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, set):
        return sorted(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _dynamo(value: Any) -> Any:
    return Decimal(str(value)) if isinstance(value, float) else value


def _dynamo_deep(value: dict[str, Any]) -> dict[str, Any]:
    return {k: _dynamo(v) for k, v in value.items()}


class TransitionRefused(Exception):
    """The job was not in a state this transition may start from (or does not exist)."""


class QuotaFull(Exception):
    """The user has `unfinished` unfinished jobs, the limit: no place for another."""

    def __init__(self, unfinished: int):
        super().__init__(f"{unfinished} unfinished jobs")
        self.unfinished = unfinished


class ConditionFailed(Exception):
    """A conditional write's condition did not hold (DynamoDB's ConditionalCheckFailedException)."""


class JobsTable:
    """The one gateway to the jobs table (a boto3 DynamoDB Table resource): consistent reads, and writes
    whose failed condition is ConditionFailed rather than a botocore error for every caller to decode.
    The concerns below (the job records, the quota, the notification lease, webhook delivery, a user's
    webhook settings) each hold this gateway and touch the table only through it."""

    def __init__(self, table):
        self.table = table

    def get(self, key: dict[str, str], **kwargs: Any) -> dict[str, Any] | None:
        return self.table.get_item(Key=key, ConsistentRead=True, **kwargs).get("Item")

    def query(self, **kwargs: Any) -> dict[str, Any]:
        return self.table.query(**kwargs)

    def put(self, item: dict[str, Any], **kwargs: Any) -> None:
        self._conditional(self.table.put_item, Item=item, **kwargs)

    def update(self, key: dict[str, str], expression: str, **kwargs: Any) -> dict[str, Any]:
        """UpdateItem; the item as written when `ReturnValues="ALL_NEW"` is asked for."""
        reply = self._conditional(self.table.update_item, Key=key, UpdateExpression=expression, **kwargs)
        return reply.get("Attributes") or {}

    def delete(self, key: dict[str, str], **kwargs: Any) -> dict[str, Any] | None:
        """DeleteItem; the item as it was when `ReturnValues="ALL_OLD"` is asked for."""
        return self._conditional(self.table.delete_item, Key=key, **kwargs).get("Attributes")

    @staticmethod
    def _conditional(call, **kwargs: Any) -> dict[str, Any]:
        try:
            return call(**kwargs)
        except ClientError as err:
            if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise ConditionFailed from None
            raise


class Quota:
    """The per-user quota of unfinished jobs (see QUOTA_PREFIX): one item per user holding the ids of the
    user's unfinished jobs as a string set. A place is taken with one conditional update, given back by
    whatever ends a job (a set DELETE, idempotent), and places no code gave back are swept when the set
    is full."""

    def __init__(self, table: JobsTable):
        self.table = table

    def take(self, job: Job, limit: int) -> None:
        """A place for `job` if its owner has fewer than `limit`, sweeping stale places once when full;
        QuotaFull if there is none."""
        for sweep_first in (False, True):
            if sweep_first and not self.sweep(job.user_id):
                break  # nothing to sweep: the set is full of jobs still running
            try:
                self.table.update(
                    _quota_key(job.user_id),
                    "ADD unfinished :job",
                    ConditionExpression="attribute_not_exists(unfinished) OR size(unfinished) < :limit",
                    ExpressionAttributeValues={":job": {job.job_id}, ":limit": limit},
                )
                return
            except ConditionFailed:
                pass
        raise QuotaFull(len(self.places(job.user_id)))

    def places(self, user_id: str) -> set[str]:
        """The ids holding a place in the user's quota (consistent read)."""
        item = self.table.get(_quota_key(user_id)) or {}
        return set(item.get("unfinished") or ())

    def release(self, user_id: str, job_id: str) -> None:
        """Give back a job's place (idempotent: a set DELETE of an id that is not there does nothing)."""
        try:
            self.table.update(
                _quota_key(user_id),
                "DELETE unfinished :job",
                ConditionExpression="attribute_exists(job_id)",  # never create a quota item to empty it
                ExpressionAttributeValues={":job": {job_id}},
            )
        except ConditionFailed:
            pass

    def sweep(self, user_id: str, now: float | None = None) -> int:
        """Give back the places of jobs that are no longer unfinished; how many were given back.

        A place is stale when its job is gone (deleted, or removed by the TTL), finished (a release
        that did not happen: the process stopped between the transition and the release), or an
        upload that never arrived: still UPLOADING past its expiry (ABANDONED_UPLOAD_TTL_SECONDS, long
        after its form stopped working). That record is deleted here, as the TTL would, and only if it
        is still UPLOADING, so an upload landing at that moment keeps its job and its place."""
        places = sorted(self.places(user_id))
        if not places:
            return 0
        at = int(time.time() if now is None else now)
        jobs: dict[str, dict[str, Any]] = {}
        for job_id in places:  # at most `limit` consistent reads, and only when the set is full
            item = self.table.get(
                {"job_id": job_id},
                ProjectionExpression="job_id, #status, expires_at",
                ExpressionAttributeNames={"#status": "status"},
            )
            if item:
                jobs[job_id] = item
        stale = []
        for job_id in places:
            item = jobs.get(job_id)
            if item is None or JobStatus(item["status"]).finished:
                stale.append(job_id)
            elif item["status"] == JobStatus.UPLOADING.value and int(item.get("expires_at", at + 1)) <= at:
                try:
                    self.table.delete(
                        {"job_id": job_id},
                        ConditionExpression="#status = :uploading AND expires_at <= :now",
                        ExpressionAttributeNames={"#status": "status"},
                        ExpressionAttributeValues={":uploading": JobStatus.UPLOADING.value, ":now": at},
                    )
                    stale.append(job_id)
                except ConditionFailed:
                    pass
        for job_id in stale:
            self.release(user_id, job_id)
        return len(stale)


class Jobs:
    """The job records and their state machine: creation (within the quota), reads, and the forward-only
    transitions, each one conditional write naming the states it may start from (module docstring). The
    calls that end a job (complete, fail, delete) give back its quota place."""

    def __init__(self, table: JobsTable, quota: Quota):
        self.table = table
        self.quota = quota

    # -- creation and reads --------------------------------------------------------------------
    def create(self, job: Job) -> Job:
        item = {k: _dynamo(v) for k, v in job.model_dump(exclude_none=True).items()}
        item.pop("chunks_done", None)
        for empty in ("webhook_attempts", "transcript_revisions", "chunk_returns"):  # not stored empty (no empty set)
            if not item.get(empty):
                item.pop(empty, None)
        item["active_user_id"] = job.user_id
        item["expires_at"] = int(time.time()) + ABANDONED_UPLOAD_TTL_SECONDS
        self.table.put(item, ConditionExpression="attribute_not_exists(job_id)")
        return job

    def create_within_quota(self, job: Job, limit: int) -> Job:
        """Create the job if its owner has fewer than `limit` unfinished jobs; QuotaFull if not.

        The record is written first and the place taken second, so every id in the set is a job that
        exists or existed (a sweep may take back the place of one that is gone). Refused, the record
        is deleted again: nothing is left behind."""
        self.create(job)
        try:
            self.quota.take(job, limit)
        except QuotaFull:
            self.table.delete({"job_id": job.job_id})
            raise
        return job

    def get(self, job_id: str) -> Job | None:
        if job_id.startswith((QUOTA_PREFIX, WEBHOOK_PREFIX)):  # a user's item, not a job
            return None
        item = self.table.get({"job_id": job_id})
        return Job.from_item(item) if item else None

    def get_owned(self, job_id: str, user_id: str) -> Job | None:
        """The job if it exists and belongs to `user_id`; None alike for unknown and foreign ids."""
        job = self.get(job_id)
        return job if job and job.user_id == user_id else None

    def list_for_user(
        self,
        user_id: str,
        limit: int = 20,
        start: dict[str, Any] | None = None,
        status: JobStatus | None = None,
        max_read: int = LIST_MAX_READ,
    ) -> tuple[list[Job], dict[str, Any] | None]:
        """Newest first, `limit` at a time from the index key `start` (the last key a page read; clients
        see it only as a signed cursor, hark.cursors); the page's jobs and its last key (None: the end).

        With `status`, the by-user index is read with a filter (DynamoDB applies Limit before the filter):
        each query asks for at most the places still free on the page, so the page never overshoots and
        the cursor is the last key read. Reading stops after `max_read` items, so a rare status in a long
        history answers a short (even empty) page with a cursor: a client pages on while next_cursor is
        not null. A status index would need a composite key rewritten at every transition, for a list
        that is at most a few hundred jobs a user."""
        items: list[dict[str, Any]] = []
        read = 0
        while True:
            kwargs: dict[str, Any] = {
                "IndexName": JOBS_BY_USER_INDEX,
                "KeyConditionExpression": Key("user_id").eq(user_id),
                "ScanIndexForward": False,
                # Never more than the places left on the page, nor more reads than the page may still make.
                "Limit": max(1, min(limit - len(items), max_read - read)),
            }
            if status is not None:
                kwargs["FilterExpression"] = Attr("status").eq(status.value)
            if start:
                kwargs["ExclusiveStartKey"] = start
            page = self.table.query(**kwargs)
            items.extend(page.get("Items", []))
            read += page.get("ScannedCount", 0)
            start = page.get("LastEvaluatedKey")
            if not start or len(items) >= limit or read >= max_read:
                break
        return [Job.from_item(i) for i in items], start or None

    def count_unfinished(self, user_id: str) -> int:
        total, start = 0, None
        while True:
            kwargs: dict[str, Any] = {
                "IndexName": ACTIVE_JOBS_INDEX,
                "KeyConditionExpression": Key("active_user_id").eq(user_id),
                "Select": "COUNT",
            }
            if start:
                kwargs["ExclusiveStartKey"] = start
            page = self.table.query(**kwargs)
            total += page["Count"]
            start = page.get("LastEvaluatedKey")
            if not start:
                return total

    def delete(self, job_id: str) -> None:
        """Delete the record, then give back its quota place (if it had one)."""
        old = self.table.delete({"job_id": job_id}, ReturnValues="ALL_OLD")
        if old and old.get("user_id"):
            self.quota.release(str(old["user_id"]), job_id)

    # -- transitions ---------------------------------------------------------------------------
    def _update(
        self,
        job_id: str,
        allowed: tuple[JobStatus, ...],
        sets: dict[str, Any],
        *,
        removes: tuple[str, ...] = (),
        extra_condition: str = "",
        extra_values: dict | None = None,
        add: dict[str, Any] | None = None,
    ) -> Job:
        names = {"#status": "status"}
        values: dict[str, Any] = {f":from{i}": s.value for i, s in enumerate(allowed)}
        assignments = []
        for i, (field, value) in enumerate(sets.items()):
            names[f"#f{i}"] = field
            values[f":v{i}"] = _dynamo(value.value if isinstance(value, JobStatus) else value)
            assignments.append(f"#f{i} = :v{i}")
        expression = "SET " + ", ".join(assignments)
        if add:
            adds = []
            for i, (field, value) in enumerate(add.items()):
                names[f"#a{i}"] = field
                values[f":a{i}"] = value
                adds.append(f"#a{i} :a{i}")
            expression += " ADD " + ", ".join(adds)
        if removes:
            expression += " REMOVE " + ", ".join(removes)
        condition = (
            "attribute_exists(job_id) AND #status IN (" + ", ".join(f":from{i}" for i in range(len(allowed))) + ")"
        )
        if extra_condition:
            condition += f" AND ({extra_condition})"
            values.update(extra_values or {})
        try:
            item = self.table.update(
                {"job_id": job_id},
                expression,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ConditionFailed:
            raise TransitionRefused(job_id) from None
        return Job.from_item(item)

    def mark_queued(self, job_id: str, uploaded_at: str, uploaded_bytes: int | None = None) -> Job:
        """UPLOADING -> QUEUED when the upload lands (hark.arrivals), with the object's real size."""
        sets: dict[str, Any] = {
            "status": JobStatus.QUEUED,
            "queued_at": uploaded_at,
            "updated_at": now_iso(),
            "expires_at": _record_expiry(),
        }
        if uploaded_bytes is not None:
            sets["uploaded_bytes"] = uploaded_bytes
        return self._update(job_id, (JobStatus.UPLOADING,), sets)

    def claim(self, job_id: str, message_id: str) -> Job:
        """QUEUED -> PROCESSING for the message that carries the job.

        The same message coming back (a retry, or a worker killed mid-job) may claim it again;
        a different message for a job already claimed is a duplicate event and is refused.
        """
        return self._update(
            job_id,
            (JobStatus.UPLOADING, JobStatus.QUEUED, JobStatus.PROCESSING),
            {
                "status": JobStatus.PROCESSING,
                "owner_message_id": message_id,
                "started_at": now_iso(),
                "updated_at": now_iso(),
                "expires_at": _record_expiry(),
            },
            extra_condition="#status <> :processing OR owner_message_id = :mid",
            extra_values={":processing": JobStatus.PROCESSING.value, ":mid": message_id},
            add={"attempts": 1},
        )

    def adopt_claim(self, job_id: str, dead_message_id: str, new_message_id: str) -> bool:
        """Hand a PROCESSING job's claim from a dead-lettered message to its replayed copy (hark.ops).

        The copy has a new SQS message id, so without this `claim` would take it for a duplicate
        event. False if the job is not PROCESSING or its claim is not the dead message's.
        """
        try:
            self._update(
                job_id,
                (JobStatus.PROCESSING,),
                {"owner_message_id": new_message_id, "updated_at": now_iso()},
                extra_condition="owner_message_id = :old",
                extra_values={":old": dead_message_id},
            )
            return True
        except TransitionRefused:
            return False

    def start_multipart(self, job_id: str, upload_id: str, part_bytes: int) -> Job:
        """Record the job's multipart upload; TransitionRefused when it is no longer UPLOADING or already
        has one (two tabs resuming at once: the first one's stands)."""
        return self._update(
            job_id,
            (JobStatus.UPLOADING,),
            {"multipart_upload_id": upload_id, "multipart_part_bytes": part_bytes, "updated_at": now_iso()},
            extra_condition="attribute_not_exists(multipart_upload_id)",
        )

    def end_multipart(self, job_id: str, upload_id: str) -> Job:
        """Forget an aborted or vanished multipart upload (only that one), so the next start makes a new one."""
        return self._update(
            job_id,
            (JobStatus.UPLOADING,),
            {"updated_at": now_iso()},
            removes=("multipart_upload_id", "multipart_part_bytes"),
            extra_condition="multipart_upload_id = :upload",
            extra_values={":upload": upload_id},
        )

    def set_chunks(self, job_id: str, total: int, duration: float) -> Job:
        return self._update(
            job_id,
            (JobStatus.PROCESSING,),
            {"chunks_total": total, "duration_seconds": duration, "updated_at": now_iso()},
        )

    def chunk_done(self, job_id: str, index: int) -> Job:
        """Record one chunk as transcribed (idempotent: a set of indices)."""
        return self._update(
            job_id, (JobStatus.PROCESSING,), {"updated_at": now_iso()}, add={"chunks_done_set": {str(index)}}
        )

    def set_rendition(self, job_id: str) -> Job:
        """The job's rendition is stored; TransitionRefused once the job is finished or gone."""
        return self._update(job_id, (JobStatus.PROCESSING,), {"rendition": True, "updated_at": now_iso()})

    def record_attempt_error(self, job_id: str, reason: str) -> None:
        try:
            self._update(
                job_id, UNFINISHED, {"last_error": reason, "updated_at": now_iso()}, add={"failed_attempts": 1}
            )
        except TransitionRefused:
            pass

    def record_hand_back(self, job_id: str, message_id: str) -> None:
        """A stopping worker gives this job's message back unfinished: that claim was no worker's death.
        Nothing if the job is no longer PROCESSING under this message."""
        try:
            self._update(
                job_id,
                (JobStatus.PROCESSING,),
                {"updated_at": now_iso()},
                extra_condition="owner_message_id = :mid",
                extra_values={":mid": message_id},
                add={"handed_back": 1},
            )
        except TransitionRefused:
            pass

    def record_chunk_return(self, job_id: str, index: int, receive_count: int, reason: str | None = None) -> None:
        """Receive `receive_count` of chunk `index` ended without a worker's death: a retried error (`reason`,
        for operators) or a stopping worker's hand-back. Nothing once the job is no longer PROCESSING."""
        sets: dict[str, Any] = {"updated_at": now_iso()}
        if reason:
            sets["last_error"] = reason
        try:
            self._update(job_id, (JobStatus.PROCESSING,), sets, add={"chunk_returns": {f"{index}:{receive_count}"}})
        except TransitionRefused:
            pass

    def complete(
        self,
        job_id: str,
        language: str | None,
        duration: float,
        no_speech: bool = False,
        model_seconds: float | None = None,
        cost_usd: float | None = None,
        confidence: float | None = None,
        low_confidence_share: float | None = None,
    ) -> Job:
        """PROCESSING -> COMPLETED. With no speech detected there is no language to claim (None)."""
        sets: dict[str, Any] = {
            "status": JobStatus.COMPLETED,
            "duration_seconds": duration,
            "no_speech": no_speech,
            "finished_at": now_iso(),
            "updated_at": now_iso(),
        }
        if model_seconds is not None:
            sets["model_seconds"] = model_seconds
        if cost_usd is not None:
            sets["cost_usd"] = cost_usd
        if confidence is not None:
            sets["confidence"] = confidence
        if low_confidence_share is not None:
            sets["low_confidence_share"] = low_confidence_share
        if language is not None:
            sets["detected_language"] = language
        job = self._update(job_id, (JobStatus.PROCESSING,), sets, removes=("active_user_id",))
        self.quota.release(job.user_id, job_id)  # only the call that made the transition gets here
        return job

    def fail(self, job_id: str, reason: str, uploaded_bytes: int | None = None) -> Job:
        sets: dict[str, Any] = {
            "status": JobStatus.FAILED,
            "error": reason,
            "finished_at": now_iso(),
            "updated_at": now_iso(),
        }
        if uploaded_bytes is not None:
            sets["uploaded_bytes"] = uploaded_bytes
        job = self._update(job_id, UNFINISHED, sets, removes=("active_user_id",))
        self.quota.release(job.user_id, job_id)
        return job

    def save_revision(self, job_id: str, based_on: int, write_id: str, corrections: Corrections) -> Job:
        """Make the revision written under `write_id` the transcript's revision `based_on` + 1: one conditional
        write, taken only while the job is COMPLETED and its latest revision is still `based_on`, so of two
        saves of the same revision exactly one wins. TransitionRefused otherwise (or the job is gone)."""
        latest = "size(transcript_revisions) = :n"
        if based_on == 0:
            latest = f"(attribute_not_exists(transcript_revisions) OR {latest})"
        values: dict[str, Any] = {
            ":none": [],
            ":write": [write_id],
            ":corrections": _dynamo_deep(corrections.model_dump()),
            ":now": now_iso(),
            ":completed": JobStatus.COMPLETED.value,
            ":n": based_on,
        }
        try:
            item = self.table.update(
                {"job_id": job_id},
                "SET transcript_revisions = list_append(if_not_exists(transcript_revisions, :none), :write), "
                "corrections = :corrections, updated_at = :now",
                ConditionExpression=f"attribute_exists(job_id) AND #status = :completed AND {latest}",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ConditionFailed:
            raise TransitionRefused(job_id) from None
        return Job.from_item(item)


class NotificationLease:
    """One email per finished job: the right to send it is a lease in the job record (`notify_lease_until`,
    epoch seconds), taken by one sender at a time and released if the send fails; `notified_at` marks it
    sent, after which no lease is granted again."""

    def __init__(self, table: JobsTable):
        self.table = table

    def claim(self, job_id: str, lease_seconds: int) -> bool:
        """Take the right to send this job's email; False if it was sent or another sender holds it."""
        now = int(time.time())
        try:
            self.table.update(
                {"job_id": job_id},
                "SET notify_lease_until = :until",
                ConditionExpression="attribute_exists(job_id) AND attribute_not_exists(notified_at) "
                "AND (attribute_not_exists(notify_lease_until) OR notify_lease_until < :now)",
                ExpressionAttributeValues={":until": now + lease_seconds, ":now": now},
            )
            return True
        except ConditionFailed:
            return False

    def release(self, job_id: str) -> None:
        self.table.update({"job_id": job_id}, "REMOVE notify_lease_until")

    def mark_notified(self, job_id: str, message_id: str) -> None:
        self.table.update(
            {"job_id": job_id},
            "SET notified_at = :at, email_message_id = :mid REMOVE notify_lease_until",
            ExpressionAttributeValues={":at": now_iso(), ":mid": message_id},
        )


class WebhookDelivery:
    """A job's webhook delivery, recorded on the job: which SQS message owns the chain of attempts
    (`webhook_owner`), each attempt (`webhook_attempts`), and how the chain ended (`webhook_delivered_at`,
    `webhook_gave_up`)."""

    def __init__(self, table: JobsTable):
        self.table = table

    def claim(self, job_id: str, message_id: str) -> bool:
        """The right to deliver the job's webhook, for the SQS message `message_id`: one chain of attempts
        per job, whatever copies of the message exist (a re-sent notification, SQS's at-least-once). The
        same message may claim again (its retries); another only once the owner gave up (its copy replayed
        from the DLQ has a new id). False: another message owns the delivery."""
        try:
            self.table.update(
                {"job_id": job_id},
                "SET webhook_owner = :mid REMOVE webhook_gave_up",
                ConditionExpression="attribute_exists(job_id) AND (attribute_not_exists(webhook_owner) "
                "OR webhook_owner = :mid OR webhook_gave_up = :true)",
                ExpressionAttributeValues={":mid": message_id, ":true": True},
            )
            return True
        except ConditionFailed:
            return False

    def record_attempt(
        self, job_id: str, attempt: WebhookAttempt, delivered: bool = False, gave_up: bool = False
    ) -> None:
        """Append one attempt to the job's record (and mark it delivered, or the owner's chain ended);
        nothing if the job is gone."""
        expression = "SET webhook_attempts = list_append(if_not_exists(webhook_attempts, :none), :attempt)"
        values: dict[str, Any] = {":none": [], ":attempt": [attempt.model_dump()]}
        if delivered:
            expression += ", webhook_delivered_at = :at"
            values[":at"] = attempt.at
        if gave_up:
            expression += ", webhook_gave_up = :true"
            values[":true"] = True
        try:
            self.table.update(
                {"job_id": job_id},
                expression,
                ConditionExpression="attribute_exists(job_id)",
                ExpressionAttributeValues=values,
            )
        except ConditionFailed:
            pass


class UserWebhookSettings:
    """A user's webhook settings item (see WEBHOOK_PREFIX): the signing secret, the previous one during a
    rotation's grace period, and the default receiver URL."""

    def __init__(self, table: JobsTable):
        self.table = table

    def get(self, user_id: str) -> dict[str, Any]:
        item = self.table.get(_webhook_key(user_id)) or {}
        return {k: _plain(v) for k, v in item.items()}

    def ensure_secret(self, user_id: str, secret: str) -> dict[str, Any]:
        """The user's settings with a secret: `secret` stored if they had none (a conditional write, so two
        first reads at once agree on one secret)."""
        try:
            self.table.update(
                _webhook_key(user_id),
                "SET secret = :secret",
                ConditionExpression="attribute_not_exists(secret)",
                ExpressionAttributeValues={":secret": secret},
            )
        except ConditionFailed:
            pass
        return self.get(user_id)

    def rotate_secret(self, user_id: str, secret: str, grace_seconds: int) -> dict[str, Any]:
        """`secret` becomes the signing secret; the one it replaces still signs for `grace_seconds`."""
        current = self.get(user_id).get("secret")
        values: dict[str, Any] = {":secret": secret}
        expression = "SET secret = :secret"
        if current:
            expression += ", previous_secret = :previous, previous_valid_until = :until"
            values.update({":previous": current, ":until": int(time.time()) + grace_seconds})
        else:
            expression += " REMOVE previous_secret, previous_valid_until"
        self.table.update(_webhook_key(user_id), expression, ExpressionAttributeValues=values)
        return self.get(user_id)

    def set_default_url(self, user_id: str, url: str | None) -> dict[str, Any]:
        if url is None:
            self.table.update(_webhook_key(user_id), "REMOVE default_url")
        else:
            self.table.update(_webhook_key(user_id), "SET default_url = :url", ExpressionAttributeValues={":url": url})
        return self.get(user_id)


class JobStore:
    """The jobs table by concern, each a small class over the one gateway (`table`): `jobs` (the records and
    their state machine), `quota` (unfinished jobs per user), `notification` (the email's send lease),
    `webhook` (a job's delivery attempts) and `webhook_settings` (a user's secret and default URL)."""

    def __init__(self, table):
        self.table = JobsTable(table)
        self.quota = Quota(self.table)
        self.jobs = Jobs(self.table, self.quota)
        self.notification = NotificationLease(self.table)
        self.webhook = WebhookDelivery(self.table)
        self.webhook_settings = UserWebhookSettings(self.table)


def signing_secrets(settings_item: dict[str, Any], now: float | None = None) -> list[str]:
    """The secrets that sign a delivery now: the current one, and the previous one within its grace period."""
    at = time.time() if now is None else now
    out = [settings_item["secret"]] if settings_item.get("secret") else []
    previous, until = settings_item.get("previous_secret"), settings_item.get("previous_valid_until")
    if previous and until and float(until) > at:
        out.append(previous)
    return out


def _webhook_key(user_id: str) -> dict[str, str]:
    return {"job_id": f"{WEBHOOK_PREFIX}{user_id}"}


def _quota_key(user_id: str) -> dict[str, str]:
    return {"job_id": f"{QUOTA_PREFIX}{user_id}"}
