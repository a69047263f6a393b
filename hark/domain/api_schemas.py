"""The API's request and response shapes (they generate docs/openapi.json) and JobView from a Job."""

from __future__ import annotations

import unicodedata
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from hark.domain import languages
from hark.domain.api_keys import LAST_USED_PRECISION_SECONDS, MAX_KEY_NAME
from hark.domain.jobs import Corrections, Job, JobStatus, NotifyChannel, Task, WebhookAttempt, email_only
from hark.domain.keys import TRANSCRIPT_FORMATS, transcript_key
from hark.domain.links import content_disposition, download_filename
from hark.domain.transcript import MAX_AUDIO_TRACK, MAX_SPEAKERS
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

    # Meetings and calls (issue 25).
    audio_track: int | None = Field(
        None,
        ge=0,
        le=MAX_AUDIO_TRACK,
        description="Which audio stream of the file to transcribe, counting the file's audio streams from 0 "
        "(a video with the room on one and an interpreter on another). Default: the first.",
    )
    multichannel: bool = Field(
        False,
        description="Transcribe each channel on its own (a call recorded with one person per channel): every "
        "word and segment carries `channel` (0-based), merged in time order; without speaker_labels each "
        "channel is one speaker (A for channel 0, B for 1, ...). The cost counts every channel.",
    )

    @model_validator(mode="after")
    def _speakers_need_labels(self) -> CreateJobRequest:
        if self.multichannel and self.speaker_labels:
            raise ValueError(
                "multichannel names each channel's speaker already (A, B, ...): give multichannel or "
                "speaker_labels, not both"
            )
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
    audio_track: int | None = Field(None, description="The audio stream asked for (audio_track at creation).")
    multichannel: bool = Field(False, description="Each channel transcribed on its own (multichannel at creation).")
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
    confidence: float | None = Field(
        None,
        description="COMPLETED: the model's confidence in its transcript, in (0, 1]: the mean of its words' "
        "probabilities weighted by their duration. null with no speech.",
    )
    low_confidence_share: float | None = Field(
        None, description="COMPLETED: the share of the words' time whose probability is below 0.5."
    )
    transcript_revision: int = Field(
        0, description="The transcript's latest revision: 0 is the model's own, each saved correction adds one."
    )
    corrections: Corrections | None = Field(
        None, description="Once corrected: the model transcript against the latest correction."
    )
    transcript: TranscriptLinks | None = Field(
        description="Presigned GET links to the latest revision, present only when COMPLETED."
    )
    notify: list[NotifyChannel] = Field(default_factory=email_only, description="How the owner hears of the end.")
    webhook: WebhookView | None = Field(None, description="The job's webhook and its delivery attempts, if it has one.")


class SegmentText(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    index: int = Field(ge=0, description="The segment's position in the transcript JSON's `segments`, from 0.")
    text: str = Field(max_length=10_000, description="The segment's corrected text.")


class CorrectTranscriptRequest(BaseModel):
    # strict: a revision "1" or a segment index 1.0 is refused, not coerced; unknown fields are ignored.
    model_config = ConfigDict(extra="ignore", strict=True)

    revision: int = Field(
        ge=0, description="The revision these corrections were made on (the job's transcript_revision when read)."
    )
    segments: list[SegmentText] = Field(
        default_factory=list, max_length=10_000, description="The segments whose text changes, by index."
    )
    speaker_names: dict[str, str | None] = Field(
        default_factory=dict,
        max_length=100,
        description='Names for the speaker labels, e.g. {"A": "Morgan"}; null removes a name. Names given before '
        "are kept.",
    )

    @model_validator(mode="after")
    def _one_text_per_segment(self) -> CorrectTranscriptRequest:
        indices = [s.index for s in self.segments]
        if len(set(indices)) != len(indices):
            raise ValueError("segments: each index at most once")
        return self


class TranscriptRevision(BaseModel):
    revision: int = Field(description="The revision the correction saved: the transcript's latest now.")


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


def _key_name(value: str) -> str:
    name = " ".join(value.split())
    if not name:
        raise ValueError("the name is empty: give the key a name that says where it is used")
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in name):
        raise ValueError("the name has control or invisible characters")
    return name


class CreateApiKeyRequest(BaseModel):
    # strict: a number or a list is refused, not coerced; unknown fields are ignored.
    model_config = ConfigDict(extra="ignore", strict=True)

    name: Annotated[str, Field(min_length=1, max_length=MAX_KEY_NAME), AfterValidator(_key_name)] = Field(
        description="Where the key is used (e.g. 'nightly backup script'), to tell your keys apart."
    )


class ApiKeyView(BaseModel):
    id: str = Field(description="The key's id: the 16 hex characters after hark_sk_ in the key itself.")
    name: str
    created_at: str = Field(description="ISO 8601, UTC.")
    last_used_at: str | None = Field(
        description=f"ISO 8601, UTC, to within {LAST_USED_PRECISION_SECONDS} s; null if never used."
    )


class ApiKeyCreated(BaseModel):
    id: str
    name: str
    key: str = Field(description="hark_sk_...: shown this once (only its hash is kept). Send as Authorization: Bearer.")
    created_at: str


class ApiKeyList(BaseModel):
    items: list[ApiKeyView] = Field(description="Your keys, newest first (no secrets).")


class UploadedPartView(BaseModel):
    part_number: int
    size: int = Field(description="Bytes S3 holds for this part.")


class MultipartUpload(BaseModel):
    """A big upload in parts (issue 25): PUT each part's bytes to its URL (POST .../multipart/parts), then
    POST .../multipart/complete. The same call resumes: parts_done is what S3 already has."""

    upload_id: str
    part_size: int = Field(description="Bytes per part: part n is bytes (n-1)*part_size up to n*part_size of the file.")
    part_count: int = Field(description="Parts 1 to part_count; the last one holds what is left.")
    parts_done: list[UploadedPartView] = Field(description="Parts already uploaded (resume from the others).")


class PartUrlsRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    part_numbers: list[Annotated[int, Field(ge=1, le=10_000)]] = Field(
        min_length=1, max_length=100, description="Which parts to sign (at most 100 a request)."
    )


class PartUrl(BaseModel):
    part_number: int
    url: str = Field(description="PUT the part's bytes here (no other headers needed); S3 answers its ETag.")


class PartUrls(BaseModel):
    urls: list[PartUrl]
    expires_at: str = Field(description="ISO 8601, UTC: when these URLs stop being accepted; ask again after.")


class CreateJobResponse(BaseModel):
    job: JobView
    upload: UploadForm
    multipart: MultipartUpload | None = Field(
        None,
        description="For a file over the multipart threshold (100 MiB by default): the upload in parts, "
        "started; send the file this way (resumable) rather than with `upload`.",
    )


class JobList(BaseModel):
    items: list[JobView]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last page.")


class TranscriptLink(BaseModel):
    url: str
    format: TranscriptFormat
    expires_at: str


class AudioLink(BaseModel):
    url: str = Field(
        description="A presigned GET of the recording, for playback (range requests work): a video's audio "
        "rendition once it is made, else the upload."
    )
    content_type: str = Field(description="The recording's type: audio/mp4 for a rendition, else as uploaded.")
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
                    transcript_key(job.user_id, job.job_id, f, job.revision_folder(job.transcript_revision)),
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
        audio_track=job.audio_track,
        multichannel=job.multichannel,
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
        confidence=job.confidence,
        low_confidence_share=job.low_confidence_share,
        transcript_revision=job.transcript_revision,
        corrections=job.corrections,
        transcript=links,
        notify=list(job.notify),
        webhook=(
            WebhookView(url=job.webhook_url, delivered_at=job.webhook_delivered_at, attempts=job.webhook_attempts)
            if job.webhook_url
            else None
        ),
    )
