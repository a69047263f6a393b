"""The API's request and response shapes (they generate docs/openapi.json) and JobView from a Job."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from hark.domain import languages
from hark.domain.jobs import Job, JobStatus, NotifyChannel, Task, WebhookAttempt, email_only
from hark.domain.keys import TRANSCRIPT_FORMATS, transcript_key
from hark.domain.links import content_disposition, download_filename
from hark.domain.transcript import MAX_SPEAKERS
from hark.domain.webhooks import MAX_URL_LENGTH

# A code or a name ("es", "Spanish", "español"), stored as the code (hark.domain.languages).
LanguageName = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(languages.resolve)]
# Whisper conditions on at most 223 prompt tokens (half its 448-token text context, less one); faster-whisper
# keeps the last 223 and drops the rest silently. A list of rare names and terms (the prompt's purpose) runs
# at about 0.4 tokens a character in Whisper's tokenizer, prose at about 0.25, so 500 characters fit whole
# (tests/unit/test_prompt_limit.py measures it with the model's tokenizer). Scripts without spaces between
# words (Chinese, Japanese) can take a token or more per character: there the start of a long prompt is lost.
PROMPT_MAX_CHARS = 500
TranscriptFormat = Literal[TRANSCRIPT_FORMATS]  # type: ignore[valid-type]


class CreateJobRequest(BaseModel):
    # strict: `size: true` or `"123"` is refused, not coerced to a number; unknown fields are ignored.
    model_config = ConfigDict(extra="ignore", strict=True)

    filename: str = Field(
        min_length=1,
        max_length=1024,
        description="The file's name, in any script. Kept for display, the email and downloads; its S3 key "
        "uses an ASCII form with the same extension.",
    )
    content_type: str = Field(min_length=1, max_length=255, description="The file's MIME type, e.g. audio/mpeg.")
    size: int = Field(ge=1, description="The file's size in bytes (at most the configured maximum, 2 GiB by default).")
    language: LanguageName = Field(
        "auto",
        description="Spoken language: auto to detect it, a Whisper code (es) or a language's name (Spanish, "
        "spanish, español). Stored as the code.",
    )
    prompt: str | None = Field(
        None,
        max_length=PROMPT_MAX_CHARS,
        description="Names and terms the recording uses (e.g. 'Quilter, Kubernetes, Nguyen'): Whisper's initial "
        f"prompt, so it spells them this way. At most {PROMPT_MAX_CHARS} characters.",
    )
    task: Task = Field(
        "transcribe",
        description="transcribe (in the spoken language) or translate (to English). The transcript's language "
        "stays the spoken one.",
    )
    # Webhooks and notifications (docs/api.md, "Webhooks").
    webhook_url: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_URL_LENGTH,
        description="Where to POST the finished job (Standard Webhooks, signed with your GET /webhook-secret). "
        "https, to a public address. Default: your default webhook URL (PUT /webhook-settings), if any.",
    )
    notify: list[NotifyChannel] | None = Field(
        None,
        max_length=2,
        description='How to hear that the job finished: any of "email", "webhook"; [] for neither. Default: '
        'email, plus webhook when a webhook URL applies. "webhook" needs one.',
    )
    speaker_labels: bool = Field(
        False,
        description="Label who spoke when: every word and segment gets a speaker (A, B, ...), the txt turns "
        "start 'A: ', VTT uses voice tags, SRT a prefix. Off by default.",
    )
    speakers_expected: int | None = Field(
        None,
        ge=1,
        le=MAX_SPEAKERS,
        description="With speaker_labels: how many people speak, if known (otherwise it is estimated).",
    )
    min_speakers: int | None = Field(
        None,
        ge=1,
        le=MAX_SPEAKERS,
        description="With speaker_labels and no speakers_expected: at least this many people speak (the estimate "
        "is held to it).",
    )
    max_speakers: int | None = Field(
        None,
        ge=1,
        le=MAX_SPEAKERS,
        description="With speaker_labels and no speakers_expected: at most this many people speak.",
    )

    @model_validator(mode="after")
    def _speakers_need_labels(self) -> CreateJobRequest:
        for name in ("speakers_expected", "min_speakers", "max_speakers"):
            if getattr(self, name) is not None and not self.speaker_labels:
                raise ValueError(f"{name} needs speaker_labels: true")
        if self.speakers_expected is not None and (self.min_speakers, self.max_speakers) != (None, None):
            raise ValueError("speakers_expected is the count: give it, or min_speakers/max_speakers, not both")
        if self.min_speakers is not None and self.max_speakers is not None and self.min_speakers > self.max_speakers:
            raise ValueError(f"min_speakers ({self.min_speakers}) is more than max_speakers ({self.max_speakers})")
        return self


class UploadForm(BaseModel):
    url: str
    method: Literal["POST"] = "POST"
    fields: dict[str, str] = Field(
        description="Send every field as multipart/form-data, then the file as the field named 'file'."
    )
    expires_at: str = Field(description="ISO 8601, UTC: when the form stops being accepted.")


class ChunkProgress(BaseModel):
    done: int
    total: int


class TranscriptLinks(BaseModel):
    txt: str
    json_: str = Field(alias="json")
    srt: str
    vtt: str

    model_config = ConfigDict(populate_by_name=True)


class WebhookView(BaseModel):
    url: str
    delivered_at: str | None = Field(description="When the receiver answered 2xx; null until then.")
    attempts: list[WebhookAttempt] = Field(description="Every delivery attempt so far, oldest first.")


class JobView(BaseModel):
    job_id: str
    status: JobStatus
    filename: str
    content_type: str
    size: int
    language: str
    detected_language: str | None
    prompt: str | None = None
    task: Task = "transcribe"
    speaker_labels: bool = Field(False, description="Speakers were asked for (speaker_labels at creation).")
    speakers_expected: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None
    duration_seconds: float | None
    no_speech: bool = Field(
        False, description="COMPLETED with no speech detected (silence, noise or music): the transcript is empty."
    )
    created_at: str
    updated_at: str
    queued_at: str | None
    started_at: str | None
    finished_at: str | None
    error: str | None
    chunks: ChunkProgress | None
    model_seconds: float | None = Field(
        None, description="COMPLETED: the model time this job took (its share of batches shared with other jobs)."
    )
    real_time_factor: float | None = Field(
        None, description="COMPLETED: model seconds per audio second (below 1: faster than real time)."
    )
    cost_usd: float | None = Field(
        None, description="COMPLETED: the model time at the configured instance price (HARK_INSTANCE_USD_PER_HOUR)."
    )
    transcript: TranscriptLinks | None = Field(description="Presigned GET links, present only when COMPLETED.")
    notify: list[NotifyChannel] = Field(default_factory=email_only, description="How the owner hears of the end.")
    webhook: WebhookView | None = Field(None, description="The job's webhook and its delivery attempts, if it has one.")


class WebhookSecret(BaseModel):
    secret: str = Field(description="whsec_...: verify deliveries' webhook-signature with it (Standard Webhooks).")
    previous_valid_until: str | None = Field(
        None, description="After a rotation: until when deliveries also carry a signature by the previous secret."
    )


class WebhookSettings(BaseModel):
    # strict: a number or a list is refused, not coerced; unknown fields are ignored.
    model_config = ConfigDict(extra="ignore", strict=True)

    default_url: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_URL_LENGTH,
        description="The webhook URL of jobs created without one; null for none.",
    )


class CreateJobResponse(BaseModel):
    job: JobView
    upload: UploadForm


class JobList(BaseModel):
    items: list[JobView]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last page.")


class TranscriptLink(BaseModel):
    url: str
    format: TranscriptFormat
    expires_at: str


class AudioLink(BaseModel):
    url: str = Field(description="A presigned GET of the uploaded recording, for playback (range requests work).")
    content_type: str = Field(description="The recording's type as it was uploaded.")
    expires_at: str = Field(description="ISO 8601, UTC: ask again after this.")


class ErrorDetail(BaseModel):
    code: str = Field(description="snake_case, stable: for programs")
    message: str = Field(description="a sentence a person can act on")


class ErrorResponse(BaseModel):
    error: ErrorDetail


class GatewayError(ErrorResponse):
    """What API Gateway itself answers (401, 403, an unknown route, throttling): its gateway responses
    (hark.api.http_api.GATEWAY_RESPONSES) give it the API's one error shape."""


def presigned_get(s3, bucket: str, key: str, ttl_seconds: int, download_name: str | None = None) -> str:
    """A presigned GET; with `download_name`, S3 answers it as an attachment of that name (RFC 6266
    `filename*`, so a name in any script arrives as it was; hark.domain.links.content_disposition)."""
    params = {"Bucket": bucket, "Key": key}
    if download_name is not None:
        params["ResponseContentDisposition"] = content_disposition(download_name)
    return s3.generate_presigned_url("get_object", Params=params, ExpiresIn=ttl_seconds)


def real_time_factor(model_seconds: float | None, audio_seconds: float | None) -> float | None:
    """Model seconds per audio second; None until both are known (or with no audio)."""
    if model_seconds is None or not audio_seconds:
        return None
    return round(model_seconds / audio_seconds, 4)


def job_view(job: Job, s3=None, transcripts_bucket: str | None = None, link_ttl_seconds: int = 900) -> JobView:
    """The public view of a job. Transcript links are signed locally (no AWS call) when COMPLETED."""
    links = None
    if job.status == JobStatus.COMPLETED and s3 is not None and transcripts_bucket:
        links = TranscriptLinks(
            **{
                ("json_" if f == "json" else f): presigned_get(
                    s3,
                    transcripts_bucket,
                    transcript_key(job.user_id, job.job_id, f),
                    link_ttl_seconds,
                    download_filename(job.filename, f),
                )
                for f in TRANSCRIPT_FORMATS
            }
        )
    chunks = ChunkProgress(done=job.chunks_done, total=job.chunks_total) if job.chunks_total else None
    return JobView(
        job_id=job.job_id,
        status=job.status,
        filename=job.filename,
        content_type=job.content_type,
        # The object's real size once it arrived (worker-side check, issue 10); the declared one before.
        size=job.uploaded_bytes if job.uploaded_bytes is not None else job.size_bytes,
        language=job.language,
        detected_language=job.detected_language,
        prompt=job.prompt,
        task=job.task,
        speaker_labels=job.speaker_labels,
        speakers_expected=job.speakers_expected,
        min_speakers=job.min_speakers,
        max_speakers=job.max_speakers,
        duration_seconds=job.duration_seconds,
        no_speech=job.no_speech,
        created_at=job.created_at,
        updated_at=job.updated_at,
        queued_at=job.queued_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        error=job.error,
        chunks=chunks,
        model_seconds=job.model_seconds,
        real_time_factor=real_time_factor(job.model_seconds, job.duration_seconds),
        cost_usd=job.cost_usd,
        transcript=links,
        notify=list(job.notify),
        webhook=(
            WebhookView(url=job.webhook_url, delivered_at=job.webhook_delivered_at, attempts=job.webhook_attempts)
            if job.webhook_url
            else None
        ),
    )
