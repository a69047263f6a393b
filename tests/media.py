"""Meeting and call recordings made at test time from the shared speech, with PyAV (no ffmpeg binary):
videos with a tiny picture and one or more audio tracks, and a stereo call with one person per channel."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from hark.evaluation import der
from worker.transcription import audio

RATE = audio.SAMPLE_RATE
# Each container with codecs it commonly carries: (video codec, audio codec).
CODECS = {
    "mp4": ("mpeg4", "aac"),
    "m4v": ("mpeg4", "aac"),
    "mov": ("mpeg4", "aac"),
    "mkv": ("mpeg4", "libopus"),
    "webm": ("libvpx", "libopus"),
    "avi": ("mpeg4", "pcm_s16le"),
}
FORMATS = {"m4v": "mp4", "mkv": "matroska"}
FPS = 4


def video(dest: Path, tracks: list[np.ndarray]) -> Path:
    """A video in `dest`'s container: a 64x48 picture at 4 frames a second, and one audio track per array
    (16 kHz mono float samples), as long as the longest."""
    video_codec, audio_codec = CODECS[dest.suffix.lstrip(".")]
    seconds = max(len(t) for t in tracks) / RATE
    with av.open(str(dest), mode="w", format=FORMATS.get(dest.suffix.lstrip("."))) as container:
        picture = container.add_stream(video_codec, rate=FPS)
        picture.width, picture.height, picture.pix_fmt = 64, 48, "yuv420p"
        sound = [container.add_stream(audio_codec, rate=48000 if "opus" in audio_codec else RATE) for _ in tracks]
        for i in range(int(seconds * FPS) + 1):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), (i * 7) % 255, np.uint8), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            container.mux(picture.encode(frame))
        for stream, samples in zip(sound, tracks):
            _encode(container, stream, samples[None, :])
        container.mux(picture.encode(None))
    return dest


def wav(dest: Path, channels: np.ndarray) -> Path:
    """A 16-bit WAV of (channels, samples) float samples."""
    with av.open(str(dest), mode="w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=RATE, layout="stereo" if len(channels) == 2 else "mono")
        _encode(container, stream, channels)
    return dest


def _encode(container, stream, channels: np.ndarray) -> None:
    pcm = (np.clip(channels, -1, 1) * 32767).astype(np.int16)
    layout = "stereo" if len(pcm) == 2 else "mono"
    step = RATE  # a second a frame
    for start in range(0, pcm.shape[1], step):
        piece = np.ascontiguousarray(pcm[:, start : start + step])
        frame = av.AudioFrame.from_ndarray(piece, format="s16p", layout=layout)
        frame.sample_rate, frame.pts, frame.time_base = RATE, start, Fraction(1, RATE)
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


@dataclass(frozen=True)
class Turn:
    channel: int  # who speaks: one person per channel
    start: float
    end: float  # seconds


def stereo_call(first: Path, second: Path, gap: float = 0.8) -> tuple[np.ndarray, list[Turn]]:
    """A call of two people taking turns, one per channel: each clip is cut in two at a pause between
    words (hark.evaluation.der.halves), and the turns go first, second, first, second with `gap` seconds between."""
    halves = [der.halves(audio.load(path, 3600)) for path in (first, second)]
    pieces = [(0, halves[0][0]), (1, halves[1][0]), (0, halves[0][1]), (1, halves[1][1])]
    total = sum(len(p) for _, p in pieces) + int(gap * RATE) * (len(pieces) + 1)
    call = np.zeros((2, total), np.float32)
    turns, at = [], int(gap * RATE)
    for channel, piece in pieces:
        call[channel, at : at + len(piece)] = piece
        turns.append(Turn(channel, at / RATE, (at + len(piece)) / RATE))
        at += len(piece) + int(gap * RATE)
    return call, turns
