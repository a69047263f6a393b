"""Multichannel transcripts and the create body's meeting fields (issue 25): channels merged in time order,
each channel one speaker, the renderings showing the turns; audio_track and multichannel as the API takes them."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from hark.domain.api_schemas import CreateJobRequest
from hark.domain.transcript import (
    MAX_AUDIO_TRACK,
    Segment,
    Transcript,
    Word,
    render_json,
    render_srt,
    render_txt,
    render_vtt,
)


def said(start: float, *words: str) -> Transcript:
    """One segment of words 0.4 s apart, as one channel's transcript."""
    ws = [
        Word(start=start + 0.4 * i, end=start + 0.4 * i + 0.3, word=f" {w}", probability=0.9)
        for i, w in enumerate(words)
    ]
    segment = Segment(start=ws[0].start, end=ws[-1].end, text="".join(w.word for w in ws), words=ws, language="en")
    return Transcript(language="en", language_probability=0.9, duration=30.0, model="m", segments=[segment])


def test_channels_merge_in_time_order_and_render_as_turns():
    agent = said(0.0, "Hello,", "how", "can", "I", "help?")
    caller = said(3.0, "My", "order", "is", "late.")
    agent_again = said(6.0, "Let", "me", "check.")
    first = agent.model_copy(update={"segments": agent.segments + agent_again.segments})
    merged = Transcript.merged([first.on_channel(0), caller.on_channel(1)], model="m")

    assert [(s.start, s.channel, s.speaker) for s in merged.segments] == [(0.0, 0, "A"), (3.0, 1, "B"), (6.0, 0, "A")]
    # One channel's segment may span the other's turn (Whisper joins speech across a silence): the turns
    # still follow the words' times.
    joined = Segment(
        start=0.0,
        end=7.0,
        text=agent.text + agent_again.text,
        words=agent.segments[0].words + agent_again.segments[0].words,
    )
    spanning = Transcript(language="en", duration=30.0, model="m", segments=[joined])
    assert render_txt(Transcript.merged([spanning.on_channel(0), caller.on_channel(1)], model="m")) == (
        "A: Hello, how can I help?\nB: My order is late.\nA: Let me check.\n"
    )
    assert all(w.channel == s.channel and w.speaker == s.speaker for s in merged.segments for w in s.words)
    assert render_txt(merged) == "A: Hello, how can I help?\nB: My order is late.\nA: Let me check.\n"
    assert "<v B>My order is late." in render_vtt(merged)
    assert "B: My order is late." in render_srt(merged)
    data = json.loads(render_json(merged))
    assert [w["channel"] for w in data["segments"][1]["words"]] == [1, 1, 1, 1]
    assert data["duration"] == 30.0 and data["language"] == "en"


def test_a_transcript_without_channels_has_no_channel_field():
    data = json.loads(render_json(said(0.0, "Hi")))
    assert "channel" not in data["segments"][0] and "channel" not in data["segments"][0]["words"][0]


BODY = {"filename": "call.wav", "content_type": "audio/wav", "size": 10}


def test_create_body_meeting_fields():
    plain = CreateJobRequest.model_validate(BODY)
    assert (plain.audio_track, plain.multichannel) == (None, False)  # the first track, mixed to mono
    asked = CreateJobRequest.model_validate({**BODY, "audio_track": 2, "multichannel": True})
    assert (asked.audio_track, asked.multichannel) == (2, True)
    for bad, says in (
        ({"audio_track": -1}, "audio_track"),
        ({"audio_track": MAX_AUDIO_TRACK + 1}, "audio_track"),
        ({"audio_track": "1"}, "audio_track"),  # strict: not coerced
        ({"multichannel": "true"}, "multichannel"),
        ({"multichannel": True, "speaker_labels": True}, "give multichannel or speaker_labels, not both"),
    ):
        with pytest.raises(ValidationError, match=says):
            CreateJobRequest.model_validate({**BODY, **bad})


def test_cli_meeting_options():
    from hark.client.cli import CliError, _bare_speakers, _media_options, _speakers_option, build_parser

    parser = build_parser()

    def parse(*argv):
        args = parser.parse_args(_bare_speakers(["transcribe", *argv, "call.wav"]))
        return _media_options(args, _speakers_option(args))

    assert parse() == {}
    assert parse("--multichannel") == {"multichannel": True}
    assert parse("--audio-track", "1") == {"audio_track": 1}
    with pytest.raises(CliError, match="counts the file's audio streams from 0"):
        parse("--audio-track", "-1")
    with pytest.raises(CliError, match="--multichannel names each channel's speaker already"):
        parse("--multichannel", "--speakers", "2")
