"""The job record and its state machine, stored in DynamoDB.

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

from hark.domain.resources import ACTIVE_JOBS_INDEX, JOBS_BY_USER_INDEX

# The per-user quota of unfinished jobs: one item per user in the jobs table, keyed QUOTA_PREFIX + user
# id, holding the ids of that user's unfinished jobs as a string set. Taking a place is one conditional
# update (ADD the id if the set is smaller than the limit), which DynamoDB applies atomically, so N
# parallel creates at limit-1 give exactly one place. A place is given back when the job completes,
# fails or is deleted; places whose job is gone (TTL) or finished are swept when the set is full
# (JobStore.sweep_quota). The item has no user_id, so it is in neither index.
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


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


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
    audio_key: str
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
    error: str | None = None  # why it FAILED, for the user
    last_error: str | None = None  # why the latest attempt failed (retried), for operators
    attempts: int = 0
    # Attempts that ended in an error and were retried; a claim neither counted here nor finished was a
    # worker dying with the message in hand (worker/transcription/uploads.py).
    failed_attempts: int = 0
    owner_message_id: str | None = None  # the SQS message whose deliveries may claim it (JobStore.claim)
    chunks_total: int | None = None
    chunks_done: int = 0
    notify_lease_until: int | None = None  # epoch seconds: a sender holds the right to email until then
    notified_at: str | None = None
    email_message_id: str | None = None  # SES's id of the one email sent
    notify: list[NotifyChannel] = Field(default_factory=email_only)
    webhook_url: str | None = None  # where the finished job is POSTed, when notify has "webhook"
    webhook_attempts: list[WebhookAttempt] = Field(default_factory=list)
    webhook_delivered_at: str | None = None
    webhook_owner: str | None = None  # the SQS message whose attempts deliver it (JobStore.claim_webhook)
    webhook_gave_up: bool = False  # the owner's last attempt failed: a replayed copy may take over

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


class TransitionRefused(Exception):
    """The job was not in a state this transition may start from (or does not exist)."""


class QuotaFull(Exception):
    """The user has `unfinished` unfinished jobs, the limit: no place for another."""

    def __init__(self, unfinished: int):
        super().__init__(f"{unfinished} unfinished jobs")
        self.unfinished = unfinished


def _refused(err: ClientError) -> bool:
    return err.response["Error"]["Code"] == "ConditionalCheckFailedException"


class JobStore:
    def __init__(self, table):
        self.table = table  # a boto3 DynamoDB Table resource

    # -- creation and reads --------------------------------------------------------------------
    def create(self, job: Job) -> Job:
        item = {k: _dynamo(v) for k, v in job.model_dump(exclude_none=True).items()}
        item.pop("chunks_done", None)
        if not item.get("webhook_attempts"):
            item.pop("webhook_attempts", None)
        item["active_user_id"] = job.user_id
        item["expires_at"] = int(time.time()) + ABANDONED_UPLOAD_TTL_SECONDS
        self.table.put_item(Item=item, ConditionExpression="attribute_not_exists(job_id)")
        return job

    def get(self, job_id: str) -> Job | None:
        if job_id.startswith((QUOTA_PREFIX, WEBHOOK_PREFIX)):  # a user's item, not a job
            return None
        item = self.table.get_item(Key={"job_id": job_id}, ConsistentRead=True).get("Item")
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
        see it only as a signed cursor, hark.api.cursors); the page's jobs and its last key (None: the end).

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
        old = self.table.delete_item(Key={"job_id": job_id}, ReturnValues="ALL_OLD").get("Attributes")
        if old and old.get("user_id"):
            self.release_place(str(old["user_id"]), job_id)

    # -- the quota of unfinished jobs (see QUOTA_PREFIX) ------------------------------------------
    def create_within_quota(self, job: Job, limit: int) -> Job:
        """Create the job if its owner has fewer than `limit` unfinished jobs; QuotaFull if not.

        The record is written first and the place taken second, so every id in the set is a job that
        exists or existed (a sweep may take back the place of one that is gone). Refused, the record
        is deleted again: nothing is left behind."""
        self.create(job)
        try:
            self._take_place(job, limit)
        except QuotaFull:
            self.table.delete_item(Key={"job_id": job.job_id})
            raise
        return job

    def _take_place(self, job: Job, limit: int) -> None:
        for sweep_first in (False, True):
            if sweep_first and not self.sweep_quota(job.user_id):
                break  # nothing to sweep: the set is full of jobs still running
            try:
                self.table.update_item(
                    Key=_quota_key(job.user_id),
                    UpdateExpression="ADD unfinished :job",
                    ConditionExpression="attribute_not_exists(unfinished) OR size(unfinished) < :limit",
                    ExpressionAttributeValues={":job": {job.job_id}, ":limit": limit},
                )
                return
            except ClientError as err:
                if not _refused(err):
                    raise
        raise QuotaFull(len(self.quota_places(job.user_id)))

    def quota_places(self, user_id: str) -> set[str]:
        """The ids holding a place in the user's quota (consistent read)."""
        item = self.table.get_item(Key=_quota_key(user_id), ConsistentRead=True).get("Item") or {}
        return set(item.get("unfinished") or ())

    def release_place(self, user_id: str, job_id: str) -> None:
        """Give back a job's place (idempotent: a set DELETE of an id that is not there does nothing)."""
        try:
            self.table.update_item(
                Key=_quota_key(user_id),
                UpdateExpression="DELETE unfinished :job",
                ConditionExpression="attribute_exists(job_id)",  # never create a quota item to empty it
                ExpressionAttributeValues={":job": {job_id}},
            )
        except ClientError as err:
            if not _refused(err):
                raise

    def sweep_quota(self, user_id: str, now: float | None = None) -> int:
        """Give back the places of jobs that are no longer unfinished; how many were given back.

        A place is stale when its job is gone (deleted, or removed by the TTL), finished (a release
        that did not happen: the process stopped between the transition and the release), or an
        upload that never arrived: still UPLOADING past its expiry (ABANDONED_UPLOAD_TTL_SECONDS, long
        after its form stopped working). That record is deleted here, as the TTL would, and only if it
        is still UPLOADING, so an upload landing at that moment keeps its job and its place."""
        places = sorted(self.quota_places(user_id))
        if not places:
            return 0
        at = int(time.time() if now is None else now)
        jobs: dict[str, dict[str, Any]] = {}
        for job_id in places:  # at most `limit` consistent reads, and only when the set is full
            item = self.table.get_item(
                Key={"job_id": job_id},
                ConsistentRead=True,
                ProjectionExpression="job_id, #status, expires_at",
                ExpressionAttributeNames={"#status": "status"},
            ).get("Item")
            if item:
                jobs[job_id] = item
        stale = []
        for job_id in places:
            item = jobs.get(job_id)
            if item is None or JobStatus(item["status"]).finished:
                stale.append(job_id)
            elif item["status"] == JobStatus.UPLOADING.value and int(item.get("expires_at", at + 1)) <= at:
                try:
                    self.table.delete_item(
                        Key={"job_id": job_id},
                        ConditionExpression="#status = :uploading AND expires_at <= :now",
                        ExpressionAttributeNames={"#status": "status"},
                        ExpressionAttributeValues={":uploading": JobStatus.UPLOADING.value, ":now": at},
                    )
                    stale.append(job_id)
                except ClientError as err:
                    if not _refused(err):
                        raise
        for job_id in stale:
            self.release_place(user_id, job_id)
        return len(stale)

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
            result = self.table.update_item(
                Key={"job_id": job_id},
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as err:
            if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise TransitionRefused(job_id) from None
            raise
        return Job.from_item(result["Attributes"])

    def mark_queued(self, job_id: str, uploaded_at: str, uploaded_bytes: int | None = None) -> Job:
        """UPLOADING -> QUEUED when the upload lands (hark.domain.arrivals), with the object's real size."""
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
        """Hand a PROCESSING job's claim from a dead-lettered message to its replayed copy (hark.ops.dlq).

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

    def record_attempt_error(self, job_id: str, reason: str) -> None:
        try:
            self._update(
                job_id, UNFINISHED, {"last_error": reason, "updated_at": now_iso()}, add={"failed_attempts": 1}
            )
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
        if language is not None:
            sets["detected_language"] = language
        job = self._update(job_id, (JobStatus.PROCESSING,), sets, removes=("active_user_id",))
        self.release_place(job.user_id, job_id)  # only the call that made the transition gets here
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
        self.release_place(job.user_id, job_id)
        return job

    # -- notification bookkeeping: one email per finished job ------------------------------------
    def claim_notification(self, job_id: str, lease_seconds: int) -> bool:
        """Take the right to send this job's email; False if it was sent or another sender holds it."""
        now = int(time.time())
        try:
            self.table.update_item(
                Key={"job_id": job_id},
                UpdateExpression="SET notify_lease_until = :until",
                ConditionExpression="attribute_exists(job_id) AND attribute_not_exists(notified_at) "
                "AND (attribute_not_exists(notify_lease_until) OR notify_lease_until < :now)",
                ExpressionAttributeValues={":until": now + lease_seconds, ":now": now},
            )
            return True
        except ClientError as err:
            if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise

    def release_notification(self, job_id: str) -> None:
        self.table.update_item(Key={"job_id": job_id}, UpdateExpression="REMOVE notify_lease_until")

    def mark_notified(self, job_id: str, message_id: str) -> None:
        self.table.update_item(
            Key={"job_id": job_id},
            UpdateExpression="SET notified_at = :at, email_message_id = :mid REMOVE notify_lease_until",
            ExpressionAttributeValues={":at": now_iso(), ":mid": message_id},
        )

    # -- webhooks: delivery bookkeeping on the job --------------------------------------------------
    def claim_webhook(self, job_id: str, message_id: str) -> bool:
        """The right to deliver the job's webhook, for the SQS message `message_id`: one chain of attempts
        per job, whatever copies of the message exist (a re-sent notification, SQS's at-least-once). The
        same message may claim again (its retries); another only once the owner gave up (its copy replayed
        from the DLQ has a new id). False: another message owns the delivery."""
        try:
            self.table.update_item(
                Key={"job_id": job_id},
                UpdateExpression="SET webhook_owner = :mid REMOVE webhook_gave_up",
                ConditionExpression="attribute_exists(job_id) AND (attribute_not_exists(webhook_owner) "
                "OR webhook_owner = :mid OR webhook_gave_up = :true)",
                ExpressionAttributeValues={":mid": message_id, ":true": True},
            )
            return True
        except ClientError as err:
            if _refused(err):
                return False
            raise

    def record_webhook_attempt(
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
            self.table.update_item(
                Key={"job_id": job_id},
                UpdateExpression=expression,
                ConditionExpression="attribute_exists(job_id)",
                ExpressionAttributeValues=values,
            )
        except ClientError as err:
            if not _refused(err):
                raise

    # -- webhooks: a user's settings item (see WEBHOOK_PREFIX) ---------------------------------------
    def webhook_settings(self, user_id: str) -> dict[str, Any]:
        item = self.table.get_item(Key=_webhook_key(user_id), ConsistentRead=True).get("Item") or {}
        return {k: _plain(v) for k, v in item.items()}

    def ensure_webhook_secret(self, user_id: str, secret: str) -> dict[str, Any]:
        """The user's settings with a secret: `secret` stored if they had none (a conditional write, so two
        first reads at once agree on one secret)."""
        try:
            self.table.update_item(
                Key=_webhook_key(user_id),
                UpdateExpression="SET secret = :secret",
                ConditionExpression="attribute_not_exists(secret)",
                ExpressionAttributeValues={":secret": secret},
            )
        except ClientError as err:
            if not _refused(err):
                raise
        return self.webhook_settings(user_id)

    def rotate_webhook_secret(self, user_id: str, secret: str, grace_seconds: int) -> dict[str, Any]:
        """`secret` becomes the signing secret; the one it replaces still signs for `grace_seconds`."""
        current = self.webhook_settings(user_id).get("secret")
        values: dict[str, Any] = {":secret": secret}
        expression = "SET secret = :secret"
        if current:
            expression += ", previous_secret = :previous, previous_valid_until = :until"
            values.update({":previous": current, ":until": int(time.time()) + grace_seconds})
        else:
            expression += " REMOVE previous_secret, previous_valid_until"
        self.table.update_item(Key=_webhook_key(user_id), UpdateExpression=expression, ExpressionAttributeValues=values)
        return self.webhook_settings(user_id)

    def set_default_webhook_url(self, user_id: str, url: str | None) -> dict[str, Any]:
        if url is None:
            self.table.update_item(Key=_webhook_key(user_id), UpdateExpression="REMOVE default_url")
        else:
            self.table.update_item(
                Key=_webhook_key(user_id),
                UpdateExpression="SET default_url = :url",
                ExpressionAttributeValues={":url": url},
            )
        return self.webhook_settings(user_id)


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
