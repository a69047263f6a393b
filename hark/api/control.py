"""The control plane: what each API route does, free of HTTP. The API Lambda only parses and answers.

Every operation takes the caller's user id (from the authorizer's context, never from the request),
and every read goes through Jobs.get_owned, so a foreign id and an unknown id are the same 404.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import UTC
from functools import lru_cache
from typing import Any

from hark.api import cursors
from hark.domain import aws, links, uploads, webhooks
from hark.domain.api_keys import ApiKey, RateLimited
from hark.domain.api_schemas import (
    ApiKeyCreated,
    ApiKeyList,
    ApiKeyView,
    AudioLink,
    CorrectTranscriptRequest,
    CreateApiKeyRequest,
    CreateJobRequest,
    CreateJobResponse,
    JobList,
    JobView,
    MultipartUpload,
    PartUrl,
    PartUrls,
    PartUrlsRequest,
    TranscriptLink,
    TranscriptRevision,
    UploadedPartView,
    UploadForm,
    WebhookSecret,
    WebhookSettings,
    job_view,
    presigned_get,
)
from hark.domain.jobs import (
    MAX_TRANSCRIPT_REVISIONS,
    NOTIFY_CHANNELS,
    Corrections,
    Job,
    JobStatus,
    QuotaFull,
    TransitionRefused,
    new_job_id,
    now_iso,
)
from hark.domain.keys import (
    RENDITION_CONTENT_TYPE,
    TRANSCRIPT_FORMATS,
    caption_key,
    job_prefix,
    rendition_key,
    revision_name,
    transcript_key,
    upload_key,
)
from hark.domain.resources import CHUNKS_PREFIX, PARTS_PREFIX, RENDITIONS_PREFIX, TRANSCRIPTS_PREFIX, UPLOADS_PREFIX
from hark.domain.settings import get_settings
from hark.domain.transcript import (
    CAPTION_FORMATS,
    CAPTION_RENDERERS,
    CONTENT_TYPES,
    RENDERERS,
    CaptionStyle,
    CorrectionRefused,
    Transcript,
)
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
    key_id: str | None = None  # the API key the request came with; None for a session token


def admit(caller: Caller) -> Caller:
    """The caller, once their API key's rate limit lets this request through (hark.domain.api_keys); 429
    with Retry-After when the key used its requests of this minute. Session tokens pass as they are."""
    if caller.key_id is None:
        return caller
    try:
        aws.api_key_store().take_request(caller.key_id, get_settings().api_key_requests_per_minute)
    except RateLimited as limited:
        raise rate_limited(limited) from None
    return caller


def rate_limited(limited: RateLimited) -> ApiError:
    """The 429 of a key past its requests of this minute (the API's, and the live service's tickets')."""
    return ApiError(
        429,
        "rate_limited",
        f"This API key made its {limited.limit} requests of this minute; retry after {limited.retry_after} seconds.",
        headers={
            "Retry-After": str(limited.retry_after),
            "RateLimit-Limit": str(limited.limit),
            "RateLimit-Remaining": "0",
        },
    )


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
        audio_track=request.get("audio_track"),
        multichannel=request.get("multichannel", False),
        audio_key=upload_key(data["user_id"], data["job_id"], request["filename"]),
        status=JobStatus.UPLOADING,
        created_at=now,
        updated_at=now,
    )
    try:  # one conditional update takes the place: exact under concurrency (hark.domain.jobs.QUOTA_PREFIX)
        _store().jobs.create_within_quota(job, settings.max_unfinished_jobs)
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
        upload = check_upload(
            request.filename,
            request.content_type,
            request.size,
            settings.max_upload_bytes,
            settings.max_video_upload_bytes,
        )
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
                for name, value in (
                    ("min_speakers", request.min_speakers),
                    ("max_speakers", request.max_speakers),
                    ("audio_track", request.audio_track),
                    ("multichannel", request.multichannel or None),
                )
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
        current = _store().jobs.get_owned(job.job_id, caller.user_id)
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
    multipart = _multipart(job) if job.size_bytes > settings.multipart_threshold_bytes else None
    return CreateJobResponse(
        job=_view(job),
        upload=UploadForm(url=form.url, method="POST", fields=form.fields, expires_at=form.expires_at),
        multipart=multipart,
    )


# -- big uploads in parts (issue 25; hark.domain.uploads) ---------------------------------------------------
def _uploading(caller: Caller, job_id: str) -> Job:
    job = _owned(caller, job_id)
    if job.status != JobStatus.UPLOADING:
        raise ApiError(
            409,
            "upload_arrived",
            f"The job is {job.status.value}: its recording has arrived already, so there is nothing left to upload.",
        )
    return job


def _multipart(job: Job) -> MultipartUpload:
    """The job's multipart upload and the parts S3 has: started here when the job has none (or S3 no longer
    has it: aborted, or removed by the lifecycle rule after a day), so one call starts or resumes."""
    s3, bucket = aws.client("s3"), aws.stack_resources().audio_bucket.name
    for _ in range(4):  # a vanished upload is replaced; a start racing another tab's takes the winner's
        if job.multipart_upload_id is None:
            job = _start_multipart(s3, bucket, job)
            continue
        upload_id, part_bytes = job.multipart_upload_id, job.multipart_part_bytes or 0
        try:
            done = uploads.uploaded_parts(s3, bucket, job.audio_key, upload_id)
        except uploads.UploadGone:
            try:
                job = _store().jobs.end_multipart(job.job_id, upload_id)
            except TransitionRefused:
                job = _store().jobs.get(job.job_id) or job
            continue
        return MultipartUpload(
            upload_id=upload_id,
            part_size=part_bytes,
            part_count=uploads.part_count(job.size_bytes, part_bytes),
            parts_done=[UploadedPartView(part_number=p.part_number, size=p.size) for p in done],
        )
    raise ApiError(503, "upload_busy", "The upload is being started elsewhere at the same time; try again.")


def _start_multipart(s3, bucket: str, job: Job) -> Job:
    """The job with a multipart upload: this call's, or one another call recorded first (ours is aborted)."""
    part_bytes = uploads.part_size(job.size_bytes, get_settings().multipart_part_bytes)
    upload_id = uploads.start_multipart(s3, bucket, job.audio_key, job.content_type)
    try:
        return _store().jobs.start_multipart(job.job_id, upload_id, part_bytes)
    except TransitionRefused:
        s3.abort_multipart_upload(Bucket=bucket, Key=job.audio_key, UploadId=upload_id)
        current = _store().jobs.get(job.job_id)
        if current is None or current.status != JobStatus.UPLOADING:
            raise ApiError(409, "upload_arrived", "The recording has arrived already, or the job is gone.") from None
        return current


def multipart_upload(caller: Caller, job_id: str) -> MultipartUpload:
    """POST /jobs/{id}/multipart: start the job's upload in parts, or resume it (the parts S3 has)."""
    return _multipart(_uploading(caller, job_id))


@dataclass(frozen=True)
class _Started:
    """A job with its upload in parts under way."""

    job: Job
    upload_id: str
    part_bytes: int


def _started(caller: Caller, job_id: str) -> _Started:
    job = _uploading(caller, job_id)
    if job.multipart_upload_id is None or job.multipart_part_bytes is None:
        raise ApiError(
            409,
            "multipart_not_started",
            f"No upload in parts is under way: start one with POST /jobs/{job_id}/multipart.",
        )
    return _Started(job, job.multipart_upload_id, job.multipart_part_bytes)


def multipart_part_urls(caller: Caller, job_id: str, request: PartUrlsRequest) -> PartUrls:
    """POST /jobs/{id}/multipart/parts: a presigned PUT for each part asked for."""
    started = _started(caller, job_id)
    count = uploads.part_count(started.job.size_bytes, started.part_bytes)
    wrong = sorted({n for n in request.part_numbers if n > count})
    if wrong:
        raise ApiError(400, "validation_error", f"part_numbers: this upload has parts 1 to {count}, not {wrong[0]}.")
    ttl = get_settings().upload_url_ttl_seconds
    signed = uploads.presigned_parts(
        aws.client("s3"),
        aws.stack_resources().audio_bucket.name,
        started.job.audio_key,
        started.upload_id,
        sorted(set(request.part_numbers)),
        ttl,
    )
    return PartUrls(urls=[PartUrl(part_number=n, url=u) for n, u in signed.items()], expires_at=_expires_at(ttl))


def complete_multipart(caller: Caller, job_id: str) -> JobView:
    """POST /jobs/{id}/multipart/complete: the parts joined into the recording; the job goes QUEUED when
    S3's event for it arrives, as after a POST upload."""
    started = _started(caller, job_id)
    job = started.job
    try:
        uploads.complete_multipart(
            aws.client("s3"),
            aws.stack_resources().audio_bucket.name,
            job.audio_key,
            started.upload_id,
            job.size_bytes,
            started.part_bytes,
        )
    except UploadRefused as err:
        raise ApiError(err.status, err.code, err.message) from None
    except uploads.UploadGone:
        raise ApiError(
            409,
            "multipart_gone",
            f"The upload in parts is gone (aborted, or unfinished for over a day); start again with POST /jobs/{job_id}/multipart.",
        ) from None
    return _view(job)


def abort_multipart(caller: Caller, job_id: str) -> None:
    """DELETE /jobs/{id}/multipart: the parts uploaded so far are dropped (a new start begins from nothing)."""
    started = _started(caller, job_id)
    aws.client("s3").abort_multipart_upload(
        Bucket=aws.stack_resources().audio_bucket.name, Key=started.job.audio_key, UploadId=started.upload_id
    )
    try:
        _store().jobs.end_multipart(job_id, started.upload_id)
    except TransitionRefused:
        pass  # another call ended or replaced it first


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
        url = _store().webhook_settings.get(caller.user_id).get("default_url")
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
    item = store.webhook_settings.get(caller.user_id)
    if not item.get("secret"):
        item = store.webhook_settings.ensure_secret(caller.user_id, webhooks.new_secret())
    return _secret_view(item)


def rotate_webhook_secret(caller: Caller) -> WebhookSecret:
    """A new secret; the old one keeps signing (beside it) for HARK_WEBHOOK_SECRET_GRACE_SECONDS."""
    item = _store().webhook_settings.rotate_secret(
        caller.user_id, webhooks.new_secret(), get_settings().webhook_secret_grace_seconds
    )
    return _secret_view(item)


def webhook_settings(caller: Caller) -> WebhookSettings:
    return WebhookSettings(default_url=_store().webhook_settings.get(caller.user_id).get("default_url"))


def set_webhook_settings(caller: Caller, request: WebhookSettings) -> WebhookSettings:
    url = checked_webhook_url(request.default_url) if request.default_url is not None else None
    return WebhookSettings(
        default_url=_store().webhook_settings.set_default_url(caller.user_id, url).get("default_url")
    )


# -- API keys (hark.domain.api_keys) ----------------------------------------------------------------------
def _key_view(key: ApiKey) -> ApiKeyView:
    return ApiKeyView(id=key.key_id, name=key.name, created_at=key.created_at, last_used_at=key.last_used_at)


def create_api_key(caller: Caller, request: CreateApiKeyRequest) -> ApiKeyCreated:
    """A new key for the caller, as the same user (and email) as the credential that asked for it."""
    record, key = aws.api_key_store().create(caller.user_id, request.name, caller.email)
    return ApiKeyCreated(id=record.key_id, name=record.name, key=key, created_at=record.created_at)


def list_api_keys(caller: Caller) -> ApiKeyList:
    return ApiKeyList(items=[_key_view(k) for k in aws.api_key_store().list_for_user(caller.user_id)])


def revoke_api_key(caller: Caller, key_id: str) -> None:
    """Delete the caller's key; another user's key and an unknown id are the same 404."""
    if not aws.api_key_store().revoke(caller.user_id, key_id):
        raise ApiError(
            404,
            "api_key_not_found",
            f"No API key {key_id[:64]!r} exists in your account; list them with GET /api-keys.",
        )


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
    jobs, last = _store().jobs.list_for_user(caller.user_id, limit=limit, start=start, status=status)
    next_cursor = cursors.issue(last, caller.user_id, state, limit, key) if last else None
    return JobList(items=[_view(j) for j in jobs], next_cursor=next_cursor)


def _owned(caller: Caller, job_id: str) -> Job:
    job = _store().jobs.get_owned(job_id, caller.user_id) if _plausible_id(job_id) else None
    if job is None:
        raise not_found(job_id)
    return job


def _plausible_id(job_id: str) -> bool:
    return 1 <= len(job_id) <= 128 and job_id.replace("-", "").replace("_", "").isalnum() and job_id.isascii()


def _completed(caller: Caller, job_id: str) -> Job:
    """The caller's job, whose transcript exists: 409 transcript_not_ready before it is COMPLETED."""
    job = _owned(caller, job_id)
    if job.status != JobStatus.COMPLETED:
        raise ApiError(
            409,
            "transcript_not_ready",
            f"The job is {job.status.value}; its transcript exists once it is COMPLETED. Check GET /jobs/{job_id}.",
        )
    return job


def get_job(caller: Caller, job_id: str) -> JobView:
    return _view(_owned(caller, job_id))


def transcript_link(
    caller: Caller,
    job_id: str,
    fmt: str = "txt",
    chars_per_line: int | None = None,
    lines_per_cue: int | None = None,
    revision: int | None = None,
) -> TranscriptLink:
    """A link to the transcript in `fmt`: the latest revision, or `revision` (0: the model's own)."""
    if (chars_per_line is not None or lines_per_cue is not None) and fmt not in CAPTION_FORMATS:
        raise ApiError(
            400,
            "validation_error",
            f"chars_per_line and lines_per_cue shape captions: ask for format=srt or format=vtt, not {fmt}.",
        )
    job = _completed(caller, job_id)
    if revision is None:
        revision = job.transcript_revision
    elif revision > job.transcript_revision:
        raise ApiError(
            400,
            "validation_error",
            f"revision: there is no revision {revision}; this transcript's revisions are 0 (the model's own) to "
            f"{job.transcript_revision}.",
        )
    folder = job.revision_folder(revision)
    settings = get_settings()
    ttl = settings.transcript_link_ttl_seconds
    expires = _expires_at(ttl)
    key = transcript_key(job.user_id, job.job_id, fmt, folder)
    if fmt in CAPTION_FORMATS:
        key = _styled_captions(job, fmt, chars_per_line, lines_per_cue, folder) or key
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
    """A short-lived presigned GET of the job's recording, for the viewer's player: a video's audio rendition
    once the worker has stored it (docs/scaling.md, "Video: what is kept"), else the upload. Owner only (a
    foreign id is the same 404); 409 while the recording has not arrived."""
    job = _owned(caller, job_id)
    if job.status == JobStatus.UPLOADING:
        raise ApiError(
            409,
            "audio_not_uploaded",
            "The recording has not been uploaded yet; upload it with the form from POST /jobs, then try again.",
        )
    key, content_type = job.audio_key, job.content_type
    if job.rendition:
        key, content_type = rendition_key(job.user_id, job.job_id), RENDITION_CONTENT_TYPE
    ttl = get_settings().audio_link_ttl_seconds
    url = presigned_get(aws.client("s3"), aws.stack_resources().audio_bucket.name, key, ttl)
    return AudioLink(url=url, content_type=content_type, expires_at=_expires_at(ttl))


def _styled_captions(
    job: Job, fmt: str, chars_per_line: int | None, lines_per_cue: int | None, revision: str
) -> str | None:
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
    transcript = _stored_transcript(job, revision)
    key = caption_key(job.user_id, job.job_id, fmt, style.chars_per_line, style.lines_per_cue, revision)
    body = CAPTION_RENDERERS[fmt](transcript, style).encode("utf-8")
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=CONTENT_TYPES[fmt])
    return key


def _stored_transcript(job: Job, revision: str) -> Transcript:
    s3, bucket = aws.client("s3"), aws.stack_resources().transcripts_bucket.name
    stored = s3.get_object(Bucket=bucket, Key=transcript_key(job.user_id, job.job_id, "json", revision))["Body"]
    return Transcript.model_validate_json(stored.read())


# -- corrections (issue 26) -------------------------------------------------------------------------------
def revision_conflict(job: Job, revision: int) -> ApiError:
    return ApiError(
        409,
        "revision_conflict",
        f"The transcript was saved as revision {job.transcript_revision} after revision {revision} was read (in "
        "another tab, or by someone else): reload it, make your changes again and save.",
    )


def measure_corrections(model: Transcript, corrected: Transcript, language: str | None) -> Corrections:
    """The model transcript's WER against a person's correction of it (hark.domain.wer, as every score here is),
    and how many segments the person changed."""
    from hark.domain.wer import normalise, word_error_rate  # jiwer: only a save pays for importing it

    edited = sum(a.text.split() != b.text.split() for a, b in zip(model.segments, corrected.segments, strict=True))
    wer = word_error_rate(corrected.text, model.text, language) if normalise(corrected.text, language) else None
    return Corrections(word_error_rate=None if wer is None else round(wer, 4), edited_segments=edited)


def correct_transcript(
    caller: Caller, job_id: str, request: CorrectTranscriptRequest
) -> tuple[Job, TranscriptRevision]:
    """Save a person's corrections as the transcript's next revision, every format written beside the
    others (hark.domain.keys.revision_name), then taken by one conditional write (Jobs.save_revision): a save
    based on a revision that is no longer the latest is 409 revision_conflict, and what it wrote is removed."""
    job = _completed(caller, job_id)
    if request.revision != job.transcript_revision:
        raise revision_conflict(job, request.revision)
    if job.transcript_revision >= MAX_TRANSCRIPT_REVISIONS:
        raise ApiError(
            409, "revision_limit", f"This transcript has {MAX_TRANSCRIPT_REVISIONS} revisions, the most it keeps."
        )
    latest = _stored_transcript(job, job.revision_folder(job.transcript_revision))
    try:
        corrected = latest.corrected({s.index: s.text for s in request.segments}, request.speaker_names)
    except CorrectionRefused as err:
        raise ApiError(400, "validation_error", f"{err}.") from None
    model = _stored_transcript(job, "") if job.transcript_revision else latest
    corrections = measure_corrections(model, corrected, job.detected_language)
    write_id = new_job_id()
    folder = revision_name(job.transcript_revision + 1, write_id)
    s3, bucket = aws.client("s3"), aws.stack_resources().transcripts_bucket.name
    written = [transcript_key(job.user_id, job.job_id, fmt, folder) for fmt in TRANSCRIPT_FORMATS]
    for fmt, key in zip(TRANSCRIPT_FORMATS, written, strict=True):
        s3.put_object(
            Bucket=bucket, Key=key, Body=RENDERERS[fmt](corrected).encode("utf-8"), ContentType=CONTENT_TYPES[fmt]
        )
    try:
        saved = _store().jobs.save_revision(job.job_id, job.transcript_revision, write_id, corrections)
    except TransitionRefused:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in written], "Quiet": True})
        current = _store().jobs.get_owned(job.job_id, caller.user_id)
        if current is None:
            raise not_found(job_id) from None
        raise revision_conflict(current, request.revision) from None
    return saved, TranscriptRevision(revision=saved.transcript_revision)


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
    job = _store().jobs.get(claims.job_id)
    if job is None or job.user_id != claims.user_id:
        raise ApiError(404, "job_not_found", "This transcript no longer exists: its job was deleted.")
    if job.status != JobStatus.COMPLETED:  # links are only issued for completed jobs; states only move forward
        raise ApiError(409, "transcript_not_ready", f"The job is {job.status.value}; its transcript is not ready.")
    filename = links.download_filename(job.filename, claims.fmt)
    return aws.client("s3").generate_presigned_url(
        "get_object",
        Params={
            "Bucket": aws.stack_resources().transcripts_bucket.name,
            "Key": transcript_key(job.user_id, job.job_id, claims.fmt, job.revision_folder(job.transcript_revision)),
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
        (res.audio_bucket.name, RENDITIONS_PREFIX),
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
    _store().jobs.delete(job.job_id)
    return deleted + _delete_objects(job)
