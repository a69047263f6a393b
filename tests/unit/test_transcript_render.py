"""hark.domain.transcript: the four renderers, and shifting/joining chunk transcripts into one timeline."""

from __future__ import annotations

import json

import pytest

from hark.domain.settings import Settings
from hark.domain.transcript import (
    CONTENT_TYPES,
    RENDERERS,
    CaptionStyle,
    Cue,
    Segment,
    Transcript,
    Word,
    captions,
    dominant_language,
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
    assert data["text"] == "Hello there. General Kenobi!"  # the whole transcript beside the segments
    assert data["segments"][0]["flags"] == [] and data["segments"][0]["language"] is None
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


# -- captions from word timestamps: hand-made words whose right cues are worked out in the comments ----------
def spoken(text: str, step: float = 0.4, length: float = 0.3, at: float = 0.0) -> list[Word]:
    """One word every `step` seconds, each `length` long (Whisper's words carry a leading space)."""
    return [
        Word(start=at + i * step, end=at + i * step + length, word=" " + w, probability=0.9)
        for i, w in enumerate(text.split())
    ]


def of_words(*groups: list[Word]) -> Transcript:
    segments = [
        Segment(start=ws[0].start, end=ws[-1].end, text="".join(w.word for w in ws).strip(), words=ws) for ws in groups
    ]
    return Transcript(language="en", duration=60, model="m", segments=segments)


def test_default_style_is_the_settings_broadcast_guideline():
    defaults = Settings()
    style = CaptionStyle.default()
    assert (style.chars_per_line, style.lines_per_cue, style.max_cue_seconds) == (
        defaults.caption_chars_per_line,
        defaults.caption_lines_per_cue,
        defaults.caption_max_cue_seconds,
    )
    assert (style.chars_per_line, style.lines_per_cue, style.max_cue_seconds) == (42, 2, 7.0)


def test_a_long_sentence_wraps_into_two_balanced_lines():
    # 62 characters in 4.5 s: one cue (under 7 s, under 2 x 42). Cutting after "over" gives lines of 30
    # and 31 characters; every other cut leaves a longer line (after "the": 34; after "jumps": 36).
    t = of_words(spoken("The quick brown fox jumps over the lazy dog and runs far away.", step=0.35))
    [cue] = captions(t)
    assert cue.lines == ("The quick brown fox jumps over", "the lazy dog and runs far away.")
    assert (cue.start, round(cue.end, 3)) == (0.0, 4.5)


def test_a_short_cue_stays_on_one_line():
    [cue] = captions(of_words(spoken("one two three four five six seven", step=0.9, length=0.75)))
    assert cue.lines == ("one two three four five six seven",)  # 33 characters: one line


def test_cues_end_at_sentence_ends_before_plain_word_gaps():
    # One line of 20: "I came, I saw. It" (17) is what fits ("was" makes 21). The best cut in it is the
    # sentence end after "saw." Then "It was good and then" is exactly 20 and "we" does not fit; it has no
    # punctuation, so the latest word gap wins. Words every 0.4 s, 0.3 s long.
    cues = captions(of_words(spoken("I came, I saw. It was good and then we left.")), CaptionStyle(20, 1))
    assert [c.lines for c in cues] == [("I came, I saw.",), ("It was good and then",), ("we left.",)]
    assert [(c.start, round(c.end, 3)) for c in cues] == [(0.0, 1.5), (1.6, 3.5), (3.6, 4.3)]


def test_clause_punctuation_beats_a_plain_gap_but_not_a_tiny_cue():
    # Line of 24: "Well, we went to the" (20) fits, "shop" would make 25. Cutting after "Well," keeps 5 of 20
    # characters, under a third: refused. No sentence end; no other punctuation: the latest gap.
    cues = captions(of_words(spoken("Well, we went to the shop today")), CaptionStyle(24, 1))
    assert [c.lines for c in cues] == [("Well, we went to the",), ("shop today",)]
    # "After the storm, we went to the" (31) fits a line of 32: the comma (16 characters in) wins.
    cues = captions(of_words(spoken("After the storm, we went to the shop today")), CaptionStyle(32, 1))
    assert [c.lines for c in cues] == [("After the storm,",), ("we went to the shop today",)]


def test_a_cue_lasts_at_most_seven_seconds():
    # Slow speech: a word every second (0.75 s long). Word 6 ends at 6.75 s, word 7 at 7.75 s: 6.75 is the last
    # end within 7 s of the first start, although every word fits in the characters.
    cues = captions(of_words(spoken("one two three four five six seven eight", step=1.0, length=0.75)))
    assert [c.lines for c in cues] == [("one two three four five six seven",), ("eight",)]
    assert [(c.start, c.end) for c in cues] == [(0.0, 6.75), (7.0, 7.75)]


def test_pauses_cut_cues():
    # A 0.6 s pause (over the 0.5 s of settings.caption_pause_seconds) after "now" is as good as a sentence end:
    # "we can go now or we" (19) fits a line of 20 and the pause wins over the later gaps.
    words = spoken("we can go now") + spoken("or we can wait here", at=1.2 + 0.6 + 0.3)
    cues = captions(of_words(words), CaptionStyle(20, 1))
    assert [c.lines for c in cues] == [("we can go now",), ("or we can wait here",)]
    # A silence of 3 x 0.5 s always ends the cue, although everything would fit.
    words = spoken("Hello there") + spoken("General Kenobi", at=0.7 + 1.5)
    assert [c.lines for c in captions(of_words(words))] == [("Hello there",), ("General Kenobi",)]


def test_words_are_never_cut():
    t = of_words(spoken("Supercalifragilisticexpialidocious is a word"))
    assert [c.lines for c in captions(t, CaptionStyle(16, 2))] == [("Supercalifragilisticexpialidocious", "is a word")]


def test_captions_join_words_written_without_spaces():
    words = [
        Word(start=i * 0.4, end=i * 0.4 + 0.3, word=w, probability=1) for i, w in enumerate(["日本", "語", "です。"])
    ]
    assert captions(of_words(words)) == [Cue(start=0.0, end=1.1, lines=("日本語です。",))]


def test_segments_without_word_timestamps_spread_their_words_evenly():
    t = Transcript(language="en", duration=9, model="m", segments=[Segment(start=1.0, end=9.0, text="aaa bbb ccc ddd")])
    # 4 words of 3 letters (+1 for the space) over 8 s: 2 s each. The 7 s limit ends the first cue after 3 words.
    assert captions(t) == [Cue(1.0, 7.0, ("aaa bbb ccc",)), Cue(7.0, 9.0, ("ddd",))]


def test_vtt_escapes_markup_characters():
    out = render_vtt(of_words(spoken("Tom & Jerry <3 you > me")))
    assert "Tom &amp; Jerry &lt;3 you &gt; me\n" in out
    assert "Tom & Jerry <3 you > me\n" in render_srt(of_words(spoken("Tom & Jerry <3 you > me")))


def test_srt_numbers_word_cues():
    words = spoken("Hello there.") + spoken("General Kenobi!", at=4.0)
    assert render_srt(of_words(words), CaptionStyle(42, 2)) == (
        "1\n00:00:00,000 --> 00:00:00,700\nHello there.\n\n2\n00:00:04,000 --> 00:00:04,700\nGeneral Kenobi!\n"
    )


def test_dominant_language_and_share():
    segments = [
        Segment(start=0, end=6, text="hola", language="es"),
        Segment(start=6, end=10, text="hello", language="en"),
        Segment(start=10, end=11, text=" ", language="fr"),  # blank: not speech
    ]
    assert dominant_language(segments) == ("es", 0.6)
    assert dominant_language([Segment(start=0, end=1, text="x")]) == (None, None)
    parts = [(0.0, Transcript(language="es", duration=10, model="m", segments=segments))]
    joined = Transcript.joined(parts, duration=10, model="m")
    assert (joined.language, joined.language_share) == ("es", 0.6)
