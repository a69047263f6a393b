"""Getting audio in: download from S3, check size and length, decode any common format to 16 kHz mono.

PyAV (bundled FFmpeg libraries) decodes wav, mp3, m4a, flac, ogg, webm and opus; no ffmpeg CLI.
Input problems are PermanentError with a reason a person can read: retrying cannot fix them.
"""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
from botocore.exceptions import ClientError
from faster_whisper import decode_audio

from hark import aws

SAMPLE_RATE = 16000


class PermanentError(Exception):
    """The input can never be transcribed; `reason` is shown to the user."""

    def __init__(self, reason: str, uploaded_bytes: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.uploaded_bytes = uploaded_bytes  # the object's real size, when that is the problem


def human_bytes(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}".replace(".0 ", " ")
        n /= 1024
    return f"{n} GB"


def too_long(max_seconds: float) -> PermanentError:
    return PermanentError(f"the recording is longer than the maximum of {max_seconds / 60:g} minutes")


def check_size(size: int, max_bytes: int) -> None:
    if size <= 0:
        raise PermanentError("the file is empty")
    if size > max_bytes:
        raise PermanentError(f"the file is larger than the maximum of {human_bytes(max_bytes)}")


def check_declared(size: int, declared: int) -> None:
    """What was uploaded must be what was declared when the upload was created (issue 10)."""
    if size != declared:
        raise PermanentError(
            f"the uploaded file is {size:,} bytes, not the {declared:,} bytes declared when the upload was "
            "created; upload the file again",
            uploaded_bytes=size,
        )


def download(s3, bucket: str, key: str, dest: Path, max_bytes: int, declared_bytes: int | None = None) -> Path:
    """The object at `key`, on disk, after its real size is checked against the limit and, for an upload,
    against the size its job declared (the event's size may be absent: the HEAD is the truth)."""
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as err:
        if aws.s3_not_found(err):
            raise PermanentError("the uploaded file is no longer there") from None
        raise
    size = int(head["ContentLength"])
    try:
        check_size(size, max_bytes)
        if declared_bytes is not None:
            check_declared(size, declared_bytes)
    except PermanentError as err:
        raise PermanentError(err.reason, uploaded_bytes=size) from None
    s3.download_file(bucket, key, str(dest))
    return dest


def probe_seconds(path: Path) -> float | None:
    """The container's stated duration, read from the header without decoding; None if unknown."""
    try:
        with av.open(str(path), mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise PermanentError("not an audio file (it has no audio track)")
            if container.duration:
                return container.duration / av.time_base
            stream = container.streams.audio[0]
            if stream.duration and stream.time_base:
                return float(stream.duration * stream.time_base)
            return None
    except av.error.FFmpegError:
        raise PermanentError("not an audio file") from None


def load(path: Path, max_seconds: float) -> np.ndarray:
    """16 kHz mono float32 samples; refuses files that are not audio or are too long."""
    stated = probe_seconds(path)
    # Refuse before decoding: a 10-hour file would take gigabytes of memory to decode.
    if stated is not None and stated > max_seconds + 1:
        raise too_long(max_seconds)
    try:
        samples = decode_audio(str(path), sampling_rate=SAMPLE_RATE)
    except av.error.FFmpegError:
        raise PermanentError("not an audio file (it could not be decoded)") from None
    if samples.size == 0:
        raise PermanentError("the recording contains no sound")
    if samples.size / SAMPLE_RATE > max_seconds:
        raise too_long(max_seconds)
    return samples


def encode_flac(samples: np.ndarray) -> bytes:
    """16 kHz mono FLAC of float samples (chunks of long recordings travel as these)."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16)
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="flac") as container:
        stream = container.add_stream("flac", rate=SAMPLE_RATE, layout="mono")
        step = SAMPLE_RATE * 10
        for start in range(0, len(pcm), step):
            frame = av.AudioFrame.from_ndarray(pcm[None, start : start + step], format="s16", layout="mono")
            frame.sample_rate = SAMPLE_RATE
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()
