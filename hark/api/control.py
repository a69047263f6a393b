"""The control plane: what each API route does, free of HTTP. The API Lambda only parses and answers.

Every operation takes the caller's user id (from the authorizer's context, never from the request),
and every read goes through JobStore.get_owned, so a foreign id and an unknown id are the same 404.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import UTC
from functools import lru_cache
from typing import Any

from hark.api import cursors
from hark.domain import aws, links, webhooks
from hark.domain.api_schemas import (
    AudioLink,
    CreateJobRequest,
    CreateJobResponse,
    JobList,
    JobView,
    TranscriptLink,
    UploadForm,
    WebhookSecret,
    WebhookSettings,
    job_view,
    presigned_get,
)
from hark.domain.jobs import NOTIFY_CHANNELS, Job, JobStatus, QuotaFull, new_job_id, now_iso
from hark.domain.keys import caption_key, job_prefix, transcript_key, upload_key
from hark.domain.resources import CHUNKS_PREFIX, PARTS_PREFIX, TRANSCRIPTS_PREFIX, UPLOADS_PREFIX
from hark.domain.settings import get_settings
from hark.domain.transcript import CAPTION_FORMATS, CAPTION_RENDERERS, CONTENT_TYPES, CaptionStyle, Transcript
from hark.domain.uploads import UploadRefused, check_upload, presigned_upload

IDEMPOTENCY_TTL_SECONDS = 24 * 3600
IDEMPOTENCY_KEY_PREFIX = "hark-api.create_job"


class ApiError(Exception):
    """A refusal the client can act on: HTTP status, a stable snake_case code, a sentence."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


def not_found(job_id: str) -> ApiError:
    return ApiError(
        404, "job_not_found", f"No job {job_id[:64]!r} exists in your account; list your jobs with GET /jobs."
    )


class QuotaExceeded(ApiError):
    pass


@dataclass(frozen=True)
class Caller:
    user_id: str
    email: str = ""


def _store():
    return aws.job_store()


def _view(job: Job) -> JobView:
    settings = get_settings()
    return job_view(
        job, aws.client("s3"), aws.stack_resources().transcripts_bucket.name, settings.transcript_link_ttl_seconds
    )


# -- create ------------------------------------------------------------------------------------------
def _create_record(data: dict[str, Any]) -> dict[str, Any]:
    """The conditional put and the quota place. Under idempotency this runs once per (user, key)."""
    settings = get_settings()
    request = data["request"]
    now = now_iso()
    job = Job(
        job_id=data["job_id"],
        user_id=data["user_id"],
        email=data["email"] or None,
        filename=request["filename"],
        content_type=request["content_type"],
        size_bytes=request["size"],
        language=request["language"],
        prompt=request.get("prompt"),
        task=request.get("task", "transcribe"),
        notify=request.get("notify", ["email"]),
        webhook_url=request.get("webhook_url"),
        speaker_labels=request.get("speaker_labels", False),
        speakers_expected=request.get("speakers_expected"),
        min_speakers=request.get("min_speakers"),
        max_speakers=request.get("max_speakers"),
        audio_key=upload_key(data["user_id"], data["job_id"], request["filename"]),
        status=JobStatus.UPLOADING,
        created_at=now,
        updated_at=now,
    )
    try:  # one conditional update takes the place: exact under concurrency (hark.domain.jobs.QUOTA_PREFIX)
        _store().create_within_quota(job, settings.max_unfinished_jobs)
    except QuotaFull as full:
        raise QuotaExceeded(
            429,
            "too_many_unfinished_jobs",
            f"You have {full.unfinished} unfinished jobs (the limit is {settings.max_unfinished_jobs}); "
            "wait for some to finish, or delete ones you no longer need, then try again.",
            # A place frees when a job finishes: a hint, not a promise. The limit and what is left of it in
            # the draft RateLimit header fields' names (the quota is a count of jobs, not a request rate).
            headers={
                "Retry-After": str(settings.quota_retry_after_seconds),
                "RateLimit-Limit": str(settings.max_unfinished_jobs),
                "RateLimit-Remaining": "0",
            },
        ) from None
    return job.model_dump(mode="json")


@lru_cache(maxsize=4)
def _idempotent_create(table_name: str, endpoint: str | None):
    # Imported here: only POST with an Idempotency-Key pays for it (cold import time).
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    persistence = DynamoDBPersistenceLayer(table_name=table_name, boto3_client=aws.client("dynamodb"))
    config = IdempotencyConfig(
        event_key_jmespath="[user_id, idempotency_key]",
        # The same key with a different body is a client bug, not a replay: refused.
        payload_validation_jmespath="request",
        expires_after_seconds=IDEMPOTENCY_TTL_SECONDS,
        raise_on_no_idempotency_key=True,
    )
    return config, idempotent_function(
        _create_record,
        data_keyword_argument="data",
        persistence_store=persistence,
        config=config,
        key_prefix=IDEMPOTENCY_KEY_PREFIX,
    )


def create_job(
    caller: Caller, request: CreateJobRequest, idempotency_key: str | None = None, lambda_context=None
) -> CreateJobResponse:
    settings = get_settings()
    try:
        upload = check_upload(request.filename, request.content_type, request.size, settings.max_upload_bytes)
    except UploadRefused as err:
        raise ApiError(err.status, err.code, err.message) from None
    webhook_url, notify = _notification_choice(caller, request)
    job_id = new_job_id()
    data = {
        "user_id": caller.user_id,
        "email": caller.email,
        "job_id": job_id,
        "idempotency_key": idempotency_key,
        "request": {
            "filename": upload.filename,
            "content_type": upload.content_type,
            "size": upload.size,
            "language": request.language,
            "prompt": request.prompt.strip() or None if request.prompt else None,
            "task": request.task,
            "notify": notify,
            **({"webhook_url": webhook_url} if webhook_url else {}),
            # Only when asked: an idempotent replay of a request made before speakers existed matches.
            **(
                {"speaker_labels": True, "speakers_expected": request.speakers_expected}
                if request.speaker_labels
                else {}
            ),
            # Only when given: a replay of a request made before the range existed matches.
            **{
                name: value
                for name, value in (("min_speakers", request.min_speakers), ("max_speakers", request.max_speakers))
                if value is not None
            },
        },
    }
    if idempotency_key is None:
        record = _create_record(data=data)
    else:
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
            IdempotencyValidationError,
        )

        config, create = _idempotent_create(aws.stack_resources().idempotency_table.name, settings.aws_endpoint_url)
        if lambda_context is not None and hasattr(lambda_context, "get_remaining_time_in_millis"):
            config.register_lambda_context(lambda_context)
        try:
            record = create(data=data)
        except IdempotencyValidationError:
            raise ApiError(
                422,
                "idempotency_key_reused",
                "This Idempotency-Key was already used for a different request; use a new key for a new upload.",
            ) from None
        except IdempotencyAlreadyInProgressError:
            raise ApiError(
                409,
                "request_in_progress",
                "A request with this Idempotency-Key is still being processed; retry in a few seconds.",
            ) from None
    job = Job.model_validate(record)
    if job.job_id != job_id:  # a replay: show the job as it is now
        current = _store().get_owned(job.job_id, caller.user_id)
        if current is None:
            raise ApiError(
                409,
                "idempotency_key_reused",
                "The job created with this Idempotency-Key has since been deleted; use a new key to upload again.",
            )
        job = current
    form = presigned_upload(
        aws.client("s3"),
        aws.stack_resources().audio_bucket.name,
        job.audio_key,
        job.content_type,
        job.size_bytes,
        settings.upload_url_ttl_seconds,
    )
    return CreateJobResponse(
        job=_view(job), upload=UploadForm(url=form.url, method="POST", fields=form.fields, expires_at=form.expires_at)
    )


def _refusal(err: webhooks.UrlRefused) -> ApiError:
    return ApiError(400, "webhook_url_refused", f"{str(err)[:1].upper()}{str(err)[1:]}.")


def checked_webhook_url(url: str) -> str:
    """The URL if Hark may deliver to it (hark.domain.webhooks.check_url); 400 webhook_url_refused with the reason."""
    settings = get_settings()
    try:
        webhooks.check_url(
            url, require_https=settings.webhook_require_https, allow_loopback=settings.webhook_allow_loopback
        )
    except webhooks.UrlRefused as err:
        raise _refusal(err) from None
    return url


def _notification_choice(caller: Caller, request: CreateJobRequest) -> tuple[str | None, list[str]]:
    """The job's webhook URL (its own, else the user's default) and its channels, checked."""
    url = request.webhook_url
    if url is None and (request.notify is None or "webhook" in request.notify):
        url = _store().webhook_settings(caller.user_id).get("default_url")
    if request.notify is None:
        notify = ["email", "webhook"] if url else ["email"]
    else:
        notify = [c for c in NOTIFY_CHANNELS if c in request.notify]  # one order, duplicates dropped
    if "webhook" in notify and not url:
        raise ApiError(
            400,
            "validation_error",
            'notify has "webhook" but no webhook URL applies: pass webhook_url, or set a default with '
            "PUT /webhook-settings.",
        )
    if "webhook" not in notify:
        return None, notify
    return checked_webhook_url(url or ""), notify


# -- webhook secret and settings ------------------------------------------------------------------------
def _secret_view(item: dict[str, Any]) -> WebhookSecret:
    from datetime import datetime

    until = item.get("previous_valid_until")
    valid = until is not None and item.get("previous_secret") and float(until) > time.time()
    return WebhookSecret(
        secret=item["secret"],
        previous_valid_until=(
            datetime.fromtimestamp(float(until), UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
            if valid and until is not None
            else None
        ),
    )


def webhook_secret(caller: Caller) -> WebhookSecret:
    """The caller's signing secret, created on the first read."""
    store = _store()
    item = store.webhook_settings(caller.user_id)
    if not item.get("secret"):
        item = store.ensure_webhook_secret(caller.user_id, webhooks.new_secret())
    return _secret_view(item)


def rotate_webhook_secret(caller: Caller) -> WebhookSecret:
    """A new secret; the old one keeps signing (beside it) for HARK_WEBHOOK_SECRET_GRACE_SECONDS."""
    item = _store().rotate_webhook_secret(
        caller.user_id, webhooks.new_secret(), get_settings().webhook_secret_grace_seconds
    )
    return _secret_view(item)


def webhook_settings(caller: Caller) -> WebhookSettings:
    return WebhookSettings(default_url=_store().webhook_settings(caller.user_id).get("default_url"))


def set_webhook_settings(caller: Caller, request: WebhookSettings) -> WebhookSettings:
    url = checked_webhook_url(request.default_url) if request.default_url is not None else None
    return WebhookSettings(default_url=_store().set_default_webhook_url(caller.user_id, url).get("default_url"))


# -- reads -----------------------------------------------------------------------------------------------
def list_jobs(caller: Caller, limit: int = 20, cursor: str | None = None, status: JobStatus | None = None) -> JobList:
    key = links.signing_key()
    state = status.value if status else None
    try:
        start = cursors.open_(cursor, caller.user_id, state, limit, key) if cursor else None
    except cursors.CursorInvalid:
        raise ApiError(
            400,
            "invalid_cursor",
            "The cursor is not valid; start again without one, then pass back next_cursor as given, "
            "with the same status and limit.",
        ) from None
    jobs, last = _store().list_for_user(caller.user_id, limit=limit, start=start, status=status)
    next_cursor = cursors.issue(last, caller.user_id, state, limit, key) if last else None
    return JobList(items=[_view(j) for j in jobs], next_cursor=next_cursor)


def _owned(caller: Caller, job_id: str) -> Job:
    job = _store().get_owned(job_id, caller.user_id) if _plausible_id(job_id) else None
    if job is None:
        raise not_found(job_id)
    return job


def _plausible_id(job_id: str) -> bool:
    return 1 <= len(job_id) <= 128 and job_id.replace("-", "").replace("_", "").isalnum() and job_id.isascii()


def get_job(caller: Caller, job_id: str) -> JobView:
    return _view(_owned(caller, job_id))


def transcript_link(
    caller: Caller,
    job_id: str,
    fmt: str = "txt",
    chars_per_line: int | None = None,
    lines_per_cue: int | None = None,
) -> TranscriptLink:
    if (chars_per_line is not None or lines_per_cue is not None) and fmt not in CAPTION_FORMATS:
        raise ApiError(
            400,
            "validation_error",
            f"chars_per_line and lines_per_cue shape captions: ask for format=srt or format=vtt, not {fmt}.",
        )
    job = _owned(caller, job_id)
    if job.status != JobStatus.COMPLETED:
        raise ApiError(
            409,
            "transcript_not_ready",
            f"The job is {job.status.value}; its transcript exists once it is COMPLETED. Check GET /jobs/{job_id}.",
        )
    settings = get_settings()
    ttl = settings.transcript_link_ttl_seconds
    expires = _expires_at(ttl)
    key = transcript_key(job.user_id, job.job_id, fmt)
    if fmt in CAPTION_FORMATS:
        key = _styled_captions(job, fmt, chars_per_line, lines_per_cue) or key
    url = presigned_get(
        aws.client("s3"),
        aws.stack_resources().transcripts_bucket.name,
        key,
        ttl,
        links.download_filename(job.filename, fmt),  # "会議.srt", as the email's links name it
    )
    return TranscriptLink(url=url, format=fmt, expires_at=expires)


def _expires_at(ttl_seconds: int) -> str:
    from datetime import datetime, timedelta

    return (datetime.now(UTC) + timedelta(seconds=ttl_seconds)).isoformat(timespec="seconds").replace("+00:00", "Z")


def audio_link(caller: Caller, job_id: str) -> AudioLink:
    """A short-lived presigned GET of the job's uploaded recording, for the viewer's player. Owner only
    (a foreign id is the same 404); 409 while the recording has not arrived."""
    job = _owned(caller, job_id)
    if job.status == JobStatus.UPLOADING:
        raise ApiError(
            409,
            "audio_not_uploaded",
            "The recording has not been uploaded yet; upload it with the form from POST /jobs, then try again.",
        )
    ttl = get_settings().audio_link_ttl_seconds
    url = presigned_get(aws.client("s3"), aws.stack_resources().audio_bucket.name, job.audio_key, ttl)
    return AudioLink(url=url, content_type=job.content_type, expires_at=_expires_at(ttl))


def _styled_captions(job: Job, fmt: str, chars_per_line: int | None, lines_per_cue: int | None) -> str | None:
    """The key of captions in the asked style, rendered now from the stored JSON; None for the stored style.

    Rendered on every such request rather than probed for first: a HeadObject on a key that is not there yet
    needs s3:ListBucket on the whole bucket to answer 404 (else 403), which the API is not given."""
    default = CaptionStyle.default()
    style = replace(
        default,
        chars_per_line=chars_per_line or default.chars_per_line,
        lines_per_cue=lines_per_cue or default.lines_per_cue,
    )
    if style == default:
        return None
    s3, bucket = aws.client("s3"), aws.stack_resources().transcripts_bucket.name
    stored = s3.get_object(Bucket=bucket, Key=transcript_key(job.user_id, job.job_id, "json"))["Body"].read()
    transcript = Transcript.model_validate_json(stored)
    key = caption_key(job.user_id, job.job_id, fmt, style.chars_per_line, style.lines_per_cue)
    body = CAPTION_RENDERERS[fmt](transcript, style).encode("utf-8")
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=CONTENT_TYPES[fmt])
    return key


# -- email links (no bearer token: the link is the credential) -----------------------------------------
def follow_link(token: str, now: float | None = None) -> str:
    """The presigned GET a link from an email leads to, minted now and valid a few minutes (hark.domain.links).

    403 for anything we did not sign as it is (garbage, another job, a flipped signature, a stretched
    expiry), 410 once it has expired, 404 when its job has been deleted since.
    """
    settings = get_settings()
    try:
        claims = links.verify(token, links.signing_key(), now)
    except links.LinkInvalid:
        raise ApiError(
            403,
            "link_invalid",
            f"This link is not valid (it may have been changed or cut short when copied). Open Hark at {settings.web_url} "
            "to download your transcript.",
        ) from None
    except links.LinkExpired as err:
        from datetime import datetime

        when = datetime.fromtimestamp(err.claims.expires_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
        raise ApiError(
            410,
            "link_expired",
            f"This link expired on {when}. Open Hark at {settings.web_url} and sign in to download the transcript "
            "or get a new link.",
        ) from None
    job = _store().get(claims.job_id)
    if job is None or job.user_id != claims.user_id:
        raise ApiError(404, "job_not_found", "This transcript no longer exists: its job was deleted.")
    if job.status != JobStatus.COMPLETED:  # links are only issued for completed jobs; states only move forward
        raise ApiError(409, "transcript_not_ready", f"The job is {job.status.value}; its transcript is not ready.")
    filename = links.download_filename(job.filename, claims.fmt)
    return aws.client("s3").generate_presigned_url(
        "get_object",
        Params={
            "Bucket": aws.stack_resources().transcripts_bucket.name,
            "Key": transcript_key(job.user_id, job.job_id, claims.fmt),
            "ResponseContentDisposition": links.content_disposition(filename),
        },
        ExpiresIn=settings.link_redirect_ttl_seconds,
    )


# -- delete ------------------------------------------------------------------------------------------------
def _delete_prefix(s3, bucket: str, prefix: str) -> int:
    deleted = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
            deleted += len(keys)
    return deleted


def _delete_objects(job: Job) -> int:
    s3, res = aws.client("s3"), aws.stack_resources()
    places = (
        (res.audio_bucket.name, UPLOADS_PREFIX),
        (res.audio_bucket.name, CHUNKS_PREFIX),
        (res.transcripts_bucket.name, TRANSCRIPTS_PREFIX),
        (res.transcripts_bucket.name, PARTS_PREFIX),
    )
    return sum(_delete_prefix(s3, bucket, job_prefix(prefix, job.user_id, job.job_id)) for bucket, prefix in places)


def delete_job(caller: Caller, job_id: str) -> int:
    """Objects, then the record, then the objects again. A failure before the record goes leaves it
    in place, so the client can retry; the second sweep takes what a running worker wrote meanwhile.
    After the record is gone the worker's conditional writes fail and it drops the job."""
    job = _owned(caller, job_id)
    deleted = _delete_objects(job)
    _store().delete(job.job_id)
    return deleted + _delete_objects(job)
