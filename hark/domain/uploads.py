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
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from hark.domain.keys import display_filename, safe_filename, split_extension

if TYPE_CHECKING:
    from hark.domain.settings import Settings

# Audio MIME types a browser, phone or desktop reports for the formats the worker decodes (ffmpeg).
# Parameters (";codecs=opus") are dropped before the check; the comparison is case-insensitive.
AUDIO_CONTENT_TYPES: frozenset[str] = frozenset(
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
# Video (issue 25: meetings and calls are mostly videos): the worker transcribes one audio stream of it
# (the first, or the job's audio_track) and never decodes a video frame.
VIDEO_CONTENT_TYPES: frozenset[str] = frozenset(
    {
        "video/mp4",
        "video/x-m4v",
        "video/quicktime",
        "video/x-matroska",
        "video/matroska",
        "video/webm",
        "video/x-msvideo",
        "video/avi",
        "video/msvideo",
    }
)
ALLOWED_CONTENT_TYPES: frozenset[str] = AUDIO_CONTENT_TYPES | VIDEO_CONTENT_TYPES
# The type a client should declare for each accepted extension (the CLI and load tests use it).
CONTENT_TYPE_BY_EXTENSION: dict[str, str] = {
    "mp3": "audio/mpeg",
    "m4a": "audio/mp4",
    "mp4": "video/mp4",  # audio/mp4 is accepted for it too (an .mp4 may hold sound alone)
    "m4v": "video/x-m4v",
    "mov": "video/quicktime",
    "mkv": "video/x-matroska",
    "avi": "video/x-msvideo",
    "aac": "audio/aac",
    "wav": "audio/wav",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "oga": "audio/ogg",
    "opus": "audio/ogg",
    "webm": "video/webm",  # audio/webm is accepted for it too (a browser's own recordings)
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


def is_video(content_type: str) -> bool:
    return normalise_content_type(content_type) in VIDEO_CONTENT_TYPES


def size_limit(content_type: str, settings: Settings) -> int:
    """The most bytes an upload of this type may have: video has its own, larger limit (docs/api.md)."""
    return settings.max_video_upload_bytes if is_video(content_type) else settings.max_upload_bytes


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


def check_upload(
    filename: str, content_type: str, size: int, max_bytes: int, max_video_bytes: int | None = None
) -> CheckedUpload:
    """Normalise and check what a client wants to upload; UploadRefused says why not. A video may have
    up to `max_video_bytes` (`max_bytes` when None), anything else up to `max_bytes`."""
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
    if is_video(ctype) and max_video_bytes is not None:
        max_bytes = max_video_bytes
    if size > max_bytes:
        kind = "a video" if is_video(ctype) else "a recording"
        raise UploadRefused(
            413,
            "file_too_large",
            f"The file is {size} bytes; the most this service accepts for {kind} is {max_bytes} bytes "
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


# -- big uploads: S3 multipart, a presigned PUT per part (issue 25) ---------------------------------------
# A file over HARK_MULTIPART_THRESHOLD_BYTES goes up in parts: each part is retried on its own, and an upload
# cut off (a dropped connection, a closed tab) resumes from the parts S3 already has. The job's upload lands
# by the same S3 event (ObjectCreated:CompleteMultipartUpload) as a POST's. Parts of an upload never
# completed are removed by the audio bucket's lifecycle rule (hark.domain.resources).
S3_MIN_PART_BYTES = 5 * 1024**2  # S3: every part but the last has at least this
S3_MAX_PARTS = 10_000
MIB = 1024**2


def part_size(size: int, preferred: int) -> int:
    """The part size for `size` bytes: `preferred` (at least S3's 5 MiB), larger in whole MiB only when
    it would take more than S3's 10,000 parts."""
    needed = -(-size // S3_MAX_PARTS)
    return max(preferred, S3_MIN_PART_BYTES, -(-needed // MIB) * MIB)


def part_count(size: int, part_bytes: int) -> int:
    return max(1, -(-size // part_bytes))


@dataclass(frozen=True)
class UploadedPart:
    part_number: int
    etag: str
    size: int


class UploadGone(Exception):
    """The multipart upload is no longer there: completed, aborted, or removed by the lifecycle rule."""


def start_multipart(s3, bucket: str, key: str, content_type: str) -> str:
    """A new multipart upload of `key`; its id."""
    return s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType=content_type)["UploadId"]


def uploaded_parts(s3, bucket: str, key: str, upload_id: str) -> list[UploadedPart]:
    """The parts S3 holds for the upload, by part number (UploadGone when the upload is not there)."""
    parts: list[UploadedPart] = []
    marker = 0
    while True:
        try:
            page = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id, PartNumberMarker=marker)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "NoSuchUpload":
                raise UploadGone(upload_id) from None
            raise
        parts += [UploadedPart(p["PartNumber"], p["ETag"], p["Size"]) for p in page.get("Parts", [])]
        if not page.get("IsTruncated"):
            return sorted(parts, key=lambda p: p.part_number)
        marker = page["NextPartNumberMarker"]


def presigned_parts(s3, bucket: str, key: str, upload_id: str, numbers: list[int], ttl_seconds: int) -> dict[int, str]:
    """A presigned PUT per part number (signed locally: no AWS call)."""
    return {
        n: s3.generate_presigned_url(
            "upload_part",
            Params={"Bucket": bucket, "Key": key, "UploadId": upload_id, "PartNumber": n},
            ExpiresIn=ttl_seconds,
        )
        for n in numbers
    }


def complete_multipart(s3, bucket: str, key: str, upload_id: str, declared: int, part_bytes: int) -> None:
    """Join the parts into the object, once every part is there and they add up to the declared size
    (S3 cannot pin a multipart upload's size as a POST policy does). UploadRefused says what is missing;
    the parts stay, so the client uploads what is missing and completes again."""
    parts = uploaded_parts(s3, bucket, key, upload_id)
    have = {p.part_number for p in parts}
    missing = [n for n in range(1, part_count(declared, part_bytes) + 1) if n not in have]
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise UploadRefused(
            409,
            "parts_missing",
            f"Part{'s' if len(missing) > 1 else ''} {shown} not uploaded yet; upload, then complete.",
        )
    total = sum(p.size for p in parts)
    if total != declared:
        raise UploadRefused(
            400,
            "size_mismatch",
            f"The parts come to {total} bytes, not the {declared} bytes declared when the job was created; "
            f"upload each part again as {part_bytes} bytes of the file (the last one what is left).",
        )
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key=key,
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": p.part_number, "ETag": p.etag} for p in parts]},
    )
