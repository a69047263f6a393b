"""The S3 key layout. Every key of a job lives under its owner's prefix.

audio bucket:        uploads/{user}/{job}/{filename}      (the original; ObjectCreated -> queue)
                     chunks/{user}/{job}/{index:05d}.flac (long audio split at pauses)
                     renditions/{user}/{job}/audio.m4a    (a video's audio, played in its place)
transcripts bucket:  transcripts/{user}/{job}/transcript.{txt,json,srt,vtt}
                     transcripts/{user}/{job}/captions/{chars}x{lines}.{srt,vtt} (captions a request styled)
                     transcripts/{user}/{job}/revisions/{n:05d}-{write}/transcript.{...} and captions/...
                                                          (revision n, a person's correction; n >= 1)
                     parts/{user}/{job}/{index:05d}.json  (one chunk's transcript)
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from hark.domain.resources import CHUNKS_PREFIX, PARTS_PREFIX, RENDITIONS_PREFIX, TRANSCRIPTS_PREFIX, UPLOADS_PREFIX

TRANSCRIPT_FORMATS = ("txt", "json", "srt", "vtt")
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_EXTENSION = re.compile(r"^[A-Za-z0-9]{1,10}$")
MAX_FILENAME = 120  # the last part of an S3 key
MAX_DISPLAY_NAME = 255  # the name kept for people (the job, the email, downloads)
# Invisible or misleading characters: controls, format characters (bidi overrides such as U+202E that
# make "evil\u202egpj.mp3" read as "evilmp3.jpg", zero-width ones), surrogates, private use, unassigned.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})


def display_filename(name: str) -> str:
    """The file's own name, in any script, as people will see it: the last path part, NFC, without
    invisible characters, whitespace runs as one space, at most MAX_DISPLAY_NAME characters (the
    extension kept). "" when nothing is left."""
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(
        " " if ch.isspace() else ch
        for ch in name
        if ch.isspace() or unicodedata.category(ch) not in _HIDDEN_CATEGORIES  # a tab is a space, NUL goes
    )
    name = " ".join(name.split())
    if len(name) > MAX_DISPLAY_NAME:
        stem, ext = split_extension(name)
        name = stem[: MAX_DISPLAY_NAME - len(ext) - 1] + "." + ext if ext else name[:MAX_DISPLAY_NAME]
    return name


def split_extension(name: str) -> tuple[str, str]:
    """("会議", "mp3") for "会議.mp3": the extension is ASCII letters and digits after the last dot of a
    name that has something before it; ("name", "") when there is none."""
    stem, dot, ext = name.rpartition(".")
    if dot and stem.strip(". ") and _EXTENSION.match(ext):
        return stem, ext
    return name, ""


def safe_filename(name: str) -> str:
    """The last part of the job's S3 key: ASCII `[A-Za-z0-9._-]`, no path, the extension of the
    original name. A name in another script ("会議.mp3") keeps its extension: "audio.mp3"."""
    stem, ext = split_extension(display_filename(name))
    stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    stem = _SAFE.sub("_", stem).strip("._") or "audio"
    if not ext:
        return stem[:MAX_FILENAME]
    return stem[: MAX_FILENAME - len(ext) - 1] + "." + ext


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


# A video's rendition for playback: AAC in an .m4a of the 16 kHz mono the model heard (worker/transcription).
RENDITION_CONTENT_TYPE = "audio/mp4"


def rendition_key(user_id: str, job_id: str) -> str:
    return f"{job_prefix(RENDITIONS_PREFIX, user_id, job_id)}audio.m4a"


def part_key(user_id: str, job_id: str, index: int) -> str:
    return f"{job_prefix(PARTS_PREFIX, user_id, job_id)}{index:05d}.json"


REVISIONS_FOLDER = "revisions/"


def revision_name(number: int, write_id: str) -> str:
    """The folder of a transcript's revision `number` (1, 2, ...): the number and the id of the write that
    made it, so two saves racing for the same number never write the same keys (hark.domain.jobs.save_revision)."""
    return f"{number:05d}-{check_id(write_id)}"


def _transcript_folder(user_id: str, job_id: str, revision: str) -> str:
    """The folder of the model's transcript (revision "") or of a person's revision (revision_name)."""
    prefix = job_prefix(TRANSCRIPTS_PREFIX, user_id, job_id)
    return f"{prefix}{REVISIONS_FOLDER}{check_id(revision)}/" if revision else prefix


def transcript_key(user_id: str, job_id: str, fmt: str, revision: str = "") -> str:
    if fmt not in TRANSCRIPT_FORMATS:
        raise ValueError(f"unknown transcript format {fmt!r}")
    return f"{_transcript_folder(user_id, job_id, revision)}transcript.{fmt}"


CAPTIONS_FOLDER = "captions/"


def caption_key(
    user_id: str, job_id: str, fmt: str, chars_per_line: int, lines_per_cue: int, revision: str = ""
) -> str:
    """Captions re-rendered in a style a request asked for, beside the stored files (deleted with them)."""
    if fmt not in ("srt", "vtt"):
        raise ValueError(f"not a caption format {fmt!r}")
    folder = _transcript_folder(user_id, job_id, revision)
    return f"{folder}{CAPTIONS_FOLDER}{int(chars_per_line)}x{int(lines_per_cue)}.{fmt}"


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
