"""The S3 key layout. Every key of a job lives under its owner's prefix.

audio bucket:        uploads/{user}/{job}/{filename}      (the original; ObjectCreated -> queue)
                     chunks/{user}/{job}/{index:05d}.flac (long audio split at pauses)
transcripts bucket:  transcripts/{user}/{job}/transcript.{txt,json,srt,vtt}
                     transcripts/{user}/{job}/captions/{chars}x{lines}.{srt,vtt} (captions a request styled)
                     parts/{user}/{job}/{index:05d}.json  (one chunk's transcript)
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from hark.resources import CHUNKS_PREFIX, PARTS_PREFIX, TRANSCRIPTS_PREFIX, UPLOADS_PREFIX

TRANSCRIPT_FORMATS = ("txt", "json", "srt", "vtt")
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
MAX_FILENAME = 120


def safe_filename(name: str) -> str:
    """A filename that is safe as the last part of an S3 key: no path, no control or odd characters."""
    name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _SAFE.sub("_", name).strip("._") or "audio"
    stem, dot, ext = name.rpartition(".")
    if dot and len(name) > MAX_FILENAME:
        name = stem[: MAX_FILENAME - len(ext) - 1] + "." + ext
    return name[:MAX_FILENAME]


def check_id(value: str) -> str:
    if not _ID.match(value):
        raise ValueError(f"not a valid id: {value!r}")
    return value


def upload_key(user_id: str, job_id: str, filename: str) -> str:
    return f"{UPLOADS_PREFIX}{check_id(user_id)}/{check_id(job_id)}/{safe_filename(filename)}"


def job_prefix(prefix: str, user_id: str, job_id: str) -> str:
    return f"{prefix}{check_id(user_id)}/{check_id(job_id)}/"


def chunk_key(user_id: str, job_id: str, index: int) -> str:
    return f"{job_prefix(CHUNKS_PREFIX, user_id, job_id)}{index:05d}.flac"


def part_key(user_id: str, job_id: str, index: int) -> str:
    return f"{job_prefix(PARTS_PREFIX, user_id, job_id)}{index:05d}.json"


def transcript_key(user_id: str, job_id: str, fmt: str) -> str:
    if fmt not in TRANSCRIPT_FORMATS:
        raise ValueError(f"unknown transcript format {fmt!r}")
    return f"{job_prefix(TRANSCRIPTS_PREFIX, user_id, job_id)}transcript.{fmt}"


CAPTIONS_FOLDER = "captions/"


def caption_key(user_id: str, job_id: str, fmt: str, chars_per_line: int, lines_per_cue: int) -> str:
    """Captions re-rendered in a style a request asked for, beside the stored files (deleted with them)."""
    if fmt not in ("srt", "vtt"):
        raise ValueError(f"not a caption format {fmt!r}")
    prefix = job_prefix(TRANSCRIPTS_PREFIX, user_id, job_id)
    return f"{prefix}{CAPTIONS_FOLDER}{int(chars_per_line)}x{int(lines_per_cue)}.{fmt}"


@dataclass(frozen=True)
class UploadRef:
    user_id: str
    job_id: str
    filename: str


def parse_upload_key(key: str) -> UploadRef:
    """uploads/{user}/{job}/{filename} -> its parts; ValueError for any other key."""
    if not key.startswith(UPLOADS_PREFIX):
        raise ValueError(f"not an upload key: {key!r}")
    parts = key[len(UPLOADS_PREFIX) :].split("/")
    if len(parts) != 3 or not parts[2]:
        raise ValueError(f"not an upload key: {key!r}")
    return UploadRef(check_id(parts[0]), check_id(parts[1]), parts[2])
