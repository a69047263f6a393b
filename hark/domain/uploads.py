"""What may be uploaded, and the presigned POST that lets a browser send it straight to S3.

The size is enforced three times: the API refuses a declared size over the maximum (413), S3 refuses
a body of any other size than the declared one (the policy's content-length-range is exactly it), and
the transcription worker checks the object's real size against both before it reads a byte (moto's
server does not check presigned policies, so the worker's check is the one the local stack relies on).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from hark.domain.keys import display_filename, safe_filename, split_extension

# Audio MIME types a browser, phone or desktop reports for the formats the worker decodes (ffmpeg).
# Parameters (";codecs=opus") are dropped before the check; the comparison is case-insensitive.
ALLOWED_CONTENT_TYPES: frozenset[str] = frozenset(
    {
        "audio/mpeg",
        "audio/mp3",
        "audio/mp4",
        "audio/m4a",
        "audio/x-m4a",
        "audio/aac",
        "audio/x-aac",
        "audio/wav",
        "audio/x-wav",
        "audio/wave",
        "audio/vnd.wave",
        "audio/flac",
        "audio/x-flac",
        "audio/ogg",
        "audio/opus",
        "audio/webm",
    }
)
# The type a client should declare for each accepted extension (the CLI and load tests use it).
CONTENT_TYPE_BY_EXTENSION: dict[str, str] = {
    "mp3": "audio/mpeg",
    "m4a": "audio/mp4",
    "mp4": "audio/mp4",
    "aac": "audio/aac",
    "wav": "audio/wav",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "oga": "audio/ogg",
    "opus": "audio/ogg",
    "webm": "audio/webm",
}
ALLOWED_EXTENSIONS: frozenset[str] = frozenset(CONTENT_TYPE_BY_EXTENSION)

# Whisper's language codes ("auto": detect). Kept here so the API can refuse a code the model lacks.
WHISPER_LANGUAGES: tuple[str, ...] = (
    "en",
    "zh",
    "de",
    "es",
    "ru",
    "ko",
    "fr",
    "ja",
    "pt",
    "tr",
    "pl",
    "ca",
    "nl",
    "ar",
    "sv",
    "it",
    "id",
    "hi",
    "fi",
    "vi",
    "he",
    "uk",
    "el",
    "ms",
    "cs",
    "ro",
    "da",
    "hu",
    "ta",
    "no",
    "th",
    "ur",
    "hr",
    "bg",
    "lt",
    "la",
    "mi",
    "ml",
    "cy",
    "sk",
    "te",
    "fa",
    "lv",
    "bn",
    "sr",
    "az",
    "sl",
    "kn",
    "et",
    "mk",
    "br",
    "eu",
    "is",
    "hy",
    "ne",
    "mn",
    "bs",
    "kk",
    "sq",
    "sw",
    "gl",
    "mr",
    "pa",
    "si",
    "km",
    "sn",
    "yo",
    "so",
    "af",
    "oc",
    "ka",
    "be",
    "tg",
    "sd",
    "gu",
    "am",
    "yi",
    "lo",
    "uz",
    "fo",
    "ht",
    "ps",
    "tk",
    "nn",
    "mt",
    "sa",
    "lb",
    "my",
    "bo",
    "tl",
    "mg",
    "as",
    "tt",
    "haw",
    "ln",
    "ha",
    "ba",
    "jw",
    "su",
    "yue",
)
LANGUAGES: tuple[str, ...] = ("auto", *WHISPER_LANGUAGES)


class UploadRefused(ValueError):
    """The upload may not go ahead; `status` is the HTTP status the API answers with."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def content_type_for(filename: str) -> str:
    """The content type to declare for a file, by its extension (octet-stream: the API will refuse it)."""
    return CONTENT_TYPE_BY_EXTENSION.get(extension(filename), "application/octet-stream")


def normalise_content_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def extension(filename: str) -> str:
    """ "mp3" for "会議.MP3": read from the name as given, in any script (hark.domain.keys.split_extension)."""
    return split_extension(display_filename(filename))[1].lower()


@dataclass(frozen=True)
class CheckedUpload:
    filename: str  # the name as people see it, in any script (hark.domain.keys.display_filename)
    key_name: str  # ASCII, safe as the last part of an S3 key, same extension (hark.domain.keys.safe_filename)
    content_type: str  # normalised: no parameters, lower case
    size: int


def check_upload(filename: str, content_type: str, size: int, max_bytes: int) -> CheckedUpload:
    """Normalise and check what a client wants to upload; UploadRefused says why not."""
    name = display_filename(filename)
    ext = extension(name)
    if ext not in ALLOWED_EXTENSIONS:
        stem, dot, given = name.rpartition(".")
        ending = f".{given[:20]}" if dot and stem.strip(". ") and given else "(no extension)"
        raise UploadRefused(
            415,
            "unsupported_extension",
            f"Files ending in {ending} are not accepted; "
            f"use one of: {', '.join('.' + e for e in sorted(ALLOWED_EXTENSIONS))}.",
        )
    ctype = normalise_content_type(content_type)
    if ctype not in ALLOWED_CONTENT_TYPES:
        raise UploadRefused(
            415,
            "unsupported_media_type",
            f"Content type {ctype or '(empty)'!r} is not accepted; use one of: {', '.join(sorted(ALLOWED_CONTENT_TYPES))}.",
        )
    if size < 1:
        raise UploadRefused(400, "validation_error", "size must be the file's size in bytes, at least 1.")
    if size > max_bytes:
        raise UploadRefused(
            413,
            "file_too_large",
            f"The file is {size} bytes; the most this service accepts is {max_bytes} bytes "
            f"({max_bytes / 1024**3:g} GiB). Split or compress the recording.",
        )
    return CheckedUpload(name, safe_filename(name), ctype, size)


@dataclass(frozen=True)
class PresignedUpload:
    url: str
    fields: dict[str, str]
    expires_at: str
    method: str = "POST"


def presigned_upload(
    s3, bucket: str, key: str, content_type: str, size_bytes: int, ttl_seconds: int
) -> PresignedUpload:
    """A presigned POST for exactly this key, content type and declared size (signed locally: no AWS call).
    Pinning the size makes S3 refuse a different file at upload time (400 EntityTooSmall/EntityTooLarge)
    instead of the job failing later in the worker."""
    post = s3.generate_presigned_post(
        Bucket=bucket,
        Key=key,
        Fields={"Content-Type": content_type},
        Conditions=[{"Content-Type": content_type}, ["content-length-range", size_bytes, size_bytes]],
        ExpiresIn=ttl_seconds,
    )
    fields = {k: str(v) for k, v in post["fields"].items()}
    # The policy's own expiration (ISO 8601, UTC), so the client sees exactly what S3 enforces.
    return PresignedUpload(url=post["url"], fields=fields, expires_at=decode_policy(fields)["expiration"])


def decode_policy(fields: dict[str, str]) -> dict[str, Any]:
    """The policy document a presigned POST carries (for tests and debugging)."""
    policy = fields["policy"]
    return json.loads(base64.b64decode(policy + "=" * (-len(policy) % 4)))
