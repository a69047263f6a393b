"""Multichannel jobs (issue 25): a call recorded with one person per channel, each channel transcribed on
its own and the transcripts merged in time order, every word and segment carrying its `channel` and that
channel's speaker (A, B, ...).

The channels run one after another through the shared engine (their pieces batch with other jobs'). A
channel longer than HARK_CHUNK_THRESHOLD_SECONDS is split at pauses (splitting.split_stream, a window at a
time) and its pieces transcribed in turn here, not fanned out: the chunk messages carry one mono stream
per job. So a long multichannel job takes one worker for (channels x length) of audio.
"""

from __future__ import annotations

from dataclasses import dataclass

from hark.domain.transcript import Transcript

from . import audio, splitting
from .context import Context, logger
from .engine import DecodeOptions


@dataclass(frozen=True)
class ChannelsResult:
    transcript: Transcript
    audio_seconds: float  # every channel's: the job's cost counts each one
    model_seconds: float


def transcribe_channels(ctx: Context, pcms: list[audio.Pcm], options: DecodeOptions) -> ChannelsResult:
    transcripts, model_seconds = [], 0.0
    for channel, pcm in enumerate(pcms):
        transcript, seconds = _transcribe(ctx, pcm, options)
        transcripts.append(transcript.on_channel(channel))
        model_seconds += seconds
        logger.info("channel transcribed", channel=channel, audio_seconds=round(pcm.seconds, 3), model_seconds=seconds)
    merged = Transcript.merged(transcripts, model=ctx.engine.name)
    return ChannelsResult(merged, round(sum(p.seconds for p in pcms), 3), model_seconds)


def _transcribe(ctx: Context, pcm: audio.Pcm, options: DecodeOptions) -> tuple[Transcript, float]:
    if pcm.seconds <= ctx.settings.chunk_threshold_seconds:
        result = ctx.engine.run(pcm.read(), options)
        return result.transcript, result.model_seconds
    parts, model_seconds = [], 0.0
    for piece in splitting.split_stream(pcm.read, pcm.seconds, ctx.settings.chunk_target_seconds):
        result = ctx.engine.run(piece.samples, options)
        parts.append((piece.chunk.start, result.transcript.model_copy(update={"duration": piece.chunk.duration})))
        model_seconds += result.model_seconds
    return Transcript.joined(parts, duration=pcm.seconds, model=ctx.engine.name), model_seconds
