"""hark.transcript: the four renderers, and shifting/joining chunk transcripts into one timeline."""

from __future__ import annotations

import json

import pytest

from hark.transcript import (
    CONTENT_TYPES,
    RENDERERS,
    Segment,
    Transcript,
    Word,
    render_json,
    render_srt,
    render_txt,
    render_vtt,
)


def transcript(language: str = "en", duration: float = 10.0, offset: float = 0.0) -> Transcript:
    return Transcript(
        language=language,
        language_probability=0.98,
        duration=duration,
        model="whisper-base",
        segments=[
            Segment(
                start=offset + 0.0,
                end=offset + 2.5,
                text=" Hello there.",
                words=[
                    Word(start=offset + 0.0, end=offset + 1.0, word=" Hello", probability=0.99),
                    Word(start=offset + 1.1, end=offset + 2.5, word=" there.", probability=0.9),
                ],
            ),
            Segment(start=offset + 3.0, end=offset + 3661.0015, text="  ", words=[]),  # blank: skipped
            Segment(
                start=offset + 4.0,
                end=offset + 7.25,
                text="General Kenobi!",
                words=[Word(start=offset + 4.0, end=offset + 7.25, word=" General Kenobi!", probability=0.5)],
            ),
        ],
    )


def test_txt_is_one_line_per_segment_without_blanks():
    assert render_txt(transcript()) == "Hello there.\nGeneral Kenobi!\n"
    assert transcript().text == "Hello there. General Kenobi!"


def test_srt_numbers_cues_with_comma_milliseconds():
    assert render_srt(transcript()) == (
        "1\n00:00:00,000 --> 00:00:02,500\nHello there.\n\n2\n00:00:04,000 --> 00:00:07,250\nGeneral Kenobi!\n"
    )


def test_vtt_has_header_and_dot_milliseconds():
    out = render_vtt(transcript(offset=3600))
    assert out.startswith("WEBVTT\n\n")
    assert "01:00:00.000 --> 01:00:02.500\nHello there.\n" in out
    assert "01:00:04.000 --> 01:00:07.250\nGeneral Kenobi!\n" in out


def test_json_round_trips_with_words_and_probabilities():
    data = json.loads(render_json(transcript()))
    assert data["language"] == "en" and data["duration"] == 10.0 and data["model"] == "whisper-base"
    assert data["segments"][0]["words"][1] == {"start": 1.1, "end": 2.5, "word": " there.", "probability": 0.9}
    assert Transcript.model_validate(data) == transcript()


def test_every_format_has_a_renderer_and_a_content_type():
    assert set(RENDERERS) == set(CONTENT_TYPES) == {"txt", "json", "srt", "vtt"}
    assert all(
        render(Transcript(language="en", duration=0, model="m", segments=[])) is not None
        for render in RENDERERS.values()
    )
    assert render_vtt(Transcript(language="en", duration=0, model="m", segments=[])) == "WEBVTT\n\n"


def test_negative_times_clamp_to_zero():
    t = Transcript(language="en", duration=1, model="m", segments=[Segment(start=-0.2, end=0.5, text="hi")])
    assert "00:00:00,000 --> 00:00:00,500" in render_srt(t)


def test_shifted_moves_segments_and_words():
    moved = transcript().shifted(100.0)
    assert [s.start for s in moved.segments] == [100.0, 103.0, 104.0]
    assert [w.start for w in moved.segments[0].words] == [100.0, 101.1]
    assert transcript().segments[0].start == 0.0  # the original is untouched
    assert moved.duration == 10.0 and moved.language == "en"


def test_joined_makes_one_continuous_timeline():
    parts = [(300.0, transcript(duration=300)), (0.0, transcript(duration=300)), (600.0, transcript("es", 120))]
    joined = Transcript.joined(parts, duration=720.0, model="whisper-base")
    starts = [s.start for s in joined.segments]
    assert starts == sorted(starts) and starts[0] == 0.0 and starts[-1] == 604.0
    words = [w.start for s in joined.segments for w in s.words]
    assert words == sorted(words)
    assert joined.duration == 720.0 and joined.model == "whisper-base"
    assert joined.language == "en"  # spoken for 600 of 720 seconds
    assert render_txt(joined).count("Hello there.") == 3


def silent(language: str, duration: float) -> Transcript:
    """A chunk where nothing was said: decoded in `language`, no segments."""
    return transcript(language, duration).model_copy(update={"segments": []})


@pytest.mark.parametrize(
    "parts, language",
    [
        ([], None),  # no chunk: no language claimed
        ([(0.0, silent("en", 300)), (300.0, silent("en", 300))], None),  # nothing said anywhere
        ([(0.0, silent("en", 300)), (300.0, transcript("es", 5))], "es"),  # only spoken chunks vote
        ([(0.0, transcript("es", 5))], "es"),
    ],
)
def test_joined_language_is_only_claimed_for_speech(parts, language):
    assert Transcript.joined(parts, duration=5, model="m").language == language
