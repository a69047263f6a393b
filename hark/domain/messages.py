"""What travels on the queues, and how a message body is read.

transcribe queue: S3 ObjectCreated notifications (sent by S3) and ChunkMessage (sent by a worker
                  that split long audio). notify queue: NotifyMessage. webhooks queue: WebhookMessage.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from urllib.parse import unquote_plus

from pydantic import BaseModel, ValidationError

from hark.domain.keys import parse_upload_key


class BrokenMessage(ValueError):
    """A message body no consumer can act on: it belongs in the dead-letter queue."""


@dataclass(frozen=True)
class UploadEvent:
    bucket: str
    key: str
    user_id: str
    job_id: str
    size: int | None  # the object's size as S3 reports it (absent only in hand-made events)
    event_time: str


class ChunkMessage(BaseModel):
    kind: Literal["chunk"] = "chunk"
    job_id: str
    user_id: str
    index: int
    total: int
    offset: float  # seconds from the start of the recording
    duration: float
    key: str  # the chunk's audio in the audio bucket
    language: str = "auto"


# Only the fields the worker reads: powertools' S3Model also requires userIdentity, requestParameters,
# responseElements and ownerIdentity, which moto's server (and so the local stack) leaves out.
class _S3Object(BaseModel):
    key: str
    size: int | None = None


class _S3Bucket(BaseModel):
    name: str


class _S3Entity(BaseModel):
    bucket: _S3Bucket
    object: _S3Object


class _S3Record(BaseModel):
    eventName: str
    eventTime: datetime
    s3: _S3Entity


class _S3Event(BaseModel):
    Records: list[_S3Record]


class NotifyMessage(BaseModel):
    kind: Literal["notify"] = "notify"
    job_id: str


class WebhookMessage(BaseModel):
    kind: Literal["webhook"] = "webhook"
    job_id: str


def parse_transcribe_body(body: str) -> list[UploadEvent] | ChunkMessage:
    """Read one transcribe-queue body. An S3 test event gives []; anything unreadable raises."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, TypeError):
        raise BrokenMessage("message body is not JSON") from None
    if not isinstance(data, dict):
        raise BrokenMessage("message body is not a JSON object")
    if data.get("Event") == "s3:TestEvent":
        return []
    if data.get("kind") == "chunk":
        try:
            return ChunkMessage.model_validate(data)
        except ValidationError as err:
            raise BrokenMessage(f"chunk message is malformed: {err.error_count()} errors") from None
    try:
        event = _S3Event.model_validate(data)
    except ValidationError:
        raise BrokenMessage("message is neither an S3 event nor a chunk message") from None
    uploads = []
    for record in event.Records:
        if not record.eventName.startswith("ObjectCreated"):
            continue
        key = unquote_plus(record.s3.object.key)  # S3 URL-encodes keys in notifications
        try:
            ref = parse_upload_key(key)
        except ValueError as err:
            raise BrokenMessage(str(err)) from None
        uploads.append(
            UploadEvent(
                bucket=record.s3.bucket.name,
                key=key,
                user_id=ref.user_id,
                job_id=ref.job_id,
                size=record.s3.object.size,
                event_time=record.eventTime.isoformat().replace("+00:00", "Z"),
            )
        )
    return uploads


def parse_notify_body(body: str) -> NotifyMessage:
    try:
        return NotifyMessage.model_validate_json(body)
    except ValidationError:
        raise BrokenMessage("notify message is malformed") from None


def parse_webhook_body(body: str) -> WebhookMessage:
    try:
        return WebhookMessage.model_validate_json(body)
    except ValidationError:
        raise BrokenMessage("webhook message is malformed") from None
