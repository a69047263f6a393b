"""Getting audio in: download from S3, check size and length, decode any common format to 16 kHz mono.

PyAV (bundled FFmpeg libraries) decodes wav, mp3, m4a, flac, ogg, webm and opus, and the audio streams of
mp4, mov, mkv, webm and avi videos (their frames are never decoded); no ffmpeg CLI.
Decoding never trusts the header: a child process with a memory limit streams the file to PCM on
disk, counting samples and stopping past the limit (decoder.py), so a file that lies about its length
or makes the decoder allocate fails only its own job. Input problems are PermanentError with a reason a
person can read: retrying cannot fix them.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from botocore.exceptions import ClientError

from hark.domain import aws
from hark.domain.settings import Settings
from hark.domain.uploads import size_limit

SAMPLE_RATE = 16000
PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # where `-m worker.transcription.decoder` is found


class PermanentError(Exception):
    """The input can never be transcribed; `reason` is shown to the user."""

    def __init__(self, reason: str, uploaded_bytes: int | None = None, decoder_peak_rss_bytes: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.uploaded_bytes = uploaded_bytes  # the object's real size, when that is the problem
        self.decoder_peak_rss_bytes = decoder_peak_rss_bytes  # when decoding found the problem


def human_bytes(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}".replace(".0 ", " ")
        n /= 1024
    return f"{n} GB"


def too_long(max_seconds: float) -> PermanentError:
    return PermanentError(
        f"the recording is longer than the maximum of {max_seconds / 60:g} minutes (found while decoding)"
    )


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


# The decoding child's address space (RLIMIT_AS). PyAV and FFmpeg take ~120 MB of it before decoding; a
# stream decoded frame by frame to disk stays far below the rest (docs/architecture.md, Hostile files).
DECODER_MEMORY_BYTES = 768 * 1024 * 1024
# A decoder ended by one of these failed on its file (SIGKILL: the kernel's OOM killer). Another signal
# (SIGTERM, SIGINT: the host stopping) is no verdict on the file: a transient error, retried.
CRASH_SIGNALS = {signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT, signal.SIGFPE, signal.SIGILL, signal.SIGKILL}


@dataclass(frozen=True)
class Pcm:
    """A decoded recording on disk: 16 kHz mono 16-bit samples, read a stretch at a time."""

    path: Path
    samples: int
    peak_rss_bytes: int  # the decoding child's

    @property
    def seconds(self) -> float:
        return self.samples / SAMPLE_RATE

    def read(self, start: float = 0.0, end: float | None = None) -> np.ndarray:
        """Float samples from `start` to `end` seconds (the end of the recording if None)."""
        first = min(self.samples, round(start * SAMPLE_RATE))
        last = self.samples if end is None else min(self.samples, round(end * SAMPLE_RATE))
        pcm = np.fromfile(self.path, dtype="<i2", count=max(0, last - first), offset=first * 2)
        return pcm.astype(np.float32) / 32768.0  # as faster-whisper's decode_audio converts


def decode(path: Path, dest: Path, max_seconds: float, memory_bytes: int = DECODER_MEMORY_BYTES, track: int = 0) -> Pcm:
    """`path` decoded to `dest` by a child process (worker/transcription/decoder.py) with its own memory
    limit; refuses files that are not audio, hold no sound or are longer than `max_seconds` as decoded.
    `track`: which of the file's audio streams (from 0), e.g. of a video with several."""
    return _run_decoder(path, dest, max_seconds, memory_bytes, track, split=False)[0]


def decode_channels(
    path: Path, dest: Path, max_seconds: float, memory_bytes: int = DECODER_MEMORY_BYTES, track: int = 0
) -> list[Pcm]:
    """As decode, but each channel of the stream to its own PCM (`dest`.0, `dest`.1, ...): multichannel jobs."""
    return _run_decoder(path, dest, max_seconds, memory_bytes, track, split=True)


def _run_decoder(path: Path, dest: Path, max_seconds: float, memory_bytes: int, track: int, split: bool) -> list[Pcm]:
    max_samples = int(max_seconds * SAMPLE_RATE)
    # FFmpeg's messages go to a file, not to this process's memory: a hostile file can make many.
    with open(dest.with_name(dest.name + ".log"), "w+") as messages:
        child = subprocess.run(
            [sys.executable, "-m", "worker.transcription.decoder"]
            + [str(path), str(dest), str(max_samples), str(memory_bytes), str(track), "split" if split else "mix"],
            stdout=subprocess.PIPE,
            stderr=messages,
            text=True,
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join(filter(None, [PACKAGE_ROOT, os.environ.get("PYTHONPATH")])),
            },
        )
        messages.seek(max(0, messages.tell() - 2000))
        tail = messages.read()
    if -child.returncode in CRASH_SIGNALS:  # the file crashed the decoder (or made it too big for the host)
        raise PermanentError(f"not an audio file (the decoder stopped on it: {signal.Signals(-child.returncode).name})")
    try:
        result = json.loads(child.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        result = {}
    if child.returncode != 0 or not result or "fault" in result:  # the decoder could not run: not the file's fault
        raise RuntimeError(f"the decoder failed (exit {child.returncode}): {result or tail}")
    peak = result["peak_rss_bytes"]
    if "error" in result:
        raise PermanentError(result["error"], decoder_peak_rss_bytes=peak)
    if result["longer"]:
        raise PermanentError(too_long(max_seconds).reason, decoder_peak_rss_bytes=peak)
    if result["samples"] == 0:
        raise PermanentError("the recording contains no sound", decoder_peak_rss_bytes=peak)
    if not split:
        return [Pcm(dest, result["samples"], peak)]
    return [Pcm(dest.with_name(f"{dest.name}.{c}"), result["samples"], peak) for c in range(result["channels"])]


@contextmanager
def fetched(
    s3,
    bucket: str,
    key: str,
    limits: Settings,
    declared_bytes: int | None = None,
    *,
    content_type: str | None = None,
    track: int = 0,
    split_channels: bool = False,
) -> Iterator[list[Pcm]]:
    """The object at `key` downloaded (`download`'s checks against the size limit of its `content_type`, video
    having its own, and against the declared size) and decoded (`decode`'s, against `limits.max_audio_seconds`;
    audio stream `track`): PCM on disk for the with-block, one (the mix) or, `split_channels`, one per channel."""
    max_bytes = limits.max_upload_bytes if content_type is None else size_limit(content_type, limits)
    with tempfile.TemporaryDirectory(prefix="hark-") as tmp:
        path = download(s3, bucket, key, Path(tmp) / "upload", max_bytes, declared_bytes=declared_bytes)
        if split_channels:
            yield decode_channels(path, Path(tmp) / "pcm", limits.max_audio_seconds, track=track)
        else:
            yield [decode(path, Path(tmp) / "pcm", limits.max_audio_seconds, track=track)]


def load(path: Path, max_seconds: float, track: int = 0) -> np.ndarray:
    """16 kHz mono float32 samples of a whole recording (decode's checks); for files known to be short."""
    with tempfile.TemporaryDirectory(prefix="hark-pcm-") as tmp:
        return decode(path, Path(tmp) / "pcm", max_seconds, track=track).read()


def encode_flac(samples: np.ndarray) -> bytes:
    """16 kHz mono FLAC of float samples (chunks of long recordings travel as these)."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="flac") as container:
        step = SAMPLE_RATE * 10
        _encode(container, "flac", (samples[start : start + step] for start in range(0, len(samples), step)))
    return buffer.getvalue()


# A rendition's bit rate: speech at 16 kHz mono (docs/scaling.md, "Video: what is kept").
RENDITION_BIT_RATE = 32_000


def encode_rendition(pcms: list[Pcm], dest: Path) -> Path:
    """The decoded recording as AAC in an .m4a at `dest`: the 16 kHz mono the model heard, played in place of
    a video. Several channels (a multichannel job) are mixed. Read 10 s at a time, so memory stays small."""
    step = 10.0
    windows = (
        np.mean([pcm.read(start, start + step) for pcm in pcms], axis=0)
        for start in np.arange(0.0, pcms[0].seconds, step)
    )
    # faststart: the index first, so a player starts before it has the whole file.
    with av.open(str(dest), mode="w", format="mp4", container_options={"movflags": "+faststart"}) as container:
        _encode(container, "aac", windows, RENDITION_BIT_RATE)
    return dest


def _encode(container, codec: str, windows: Iterable[np.ndarray], bit_rate: int | None = None) -> None:
    """Float 16 kHz mono samples, a window at a time, into `container` as `codec`."""
    stream = container.add_stream(codec, rate=SAMPLE_RATE, layout="mono")
    if bit_rate:
        stream.bit_rate = bit_rate
    written = 0
    for window in windows:
        pcm = (np.clip(window, -1.0, 1.0) * 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm[None, :], format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        # Timestamps from 0: the AAC encoder's priming then sits before 0, and the .m4a's edit list skips it,
        # so the rendition's times are the transcript's.
        frame.pts, frame.time_base = written, Fraction(1, SAMPLE_RATE)
        written += len(pcm)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
