"""Speaker labels (issue 14) without the model: the word rule, the renderers, DER, the API and CLI fields."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from pydantic import ValidationError

from hark.domain.api_schemas import CreateJobRequest
from hark.domain.transcript import (
    MAX_SPEAKERS,
    CaptionStyle,
    Segment,
    Transcript,
    Word,
    render_json,
    render_srt,
    render_txt,
    render_vtt,
)
from hark.evaluation import der
from worker.transcription.diarization import Turn, assign_speakers


def word(start: float, end: float, text: str, speaker: str | None = None) -> Word:
    return Word(start=start, end=end, word=f" {text}", probability=0.9, speaker=speaker)


def transcript(*segments: Segment) -> Transcript:
    return Transcript(language="en", duration=20.0, model="test", segments=list(segments))


# -- the word rule ----------------------------------------------------------------------------------------
def test_each_word_gets_the_turn_it_overlaps_most_else_the_nearest():
    words = [
        word(0.0, 1.0, "one"),  # inside s1
        word(1.8, 2.6, "two"),  # 0.2 s in s1, 0.6 s in s2: s2
        word(4.2, 4.6, "three"),  # in no turn: 0.7 s after s2 ends, 0.4 s before s1 starts again: s1
        word(9.0, 9.5, "four"),  # past every turn: the last (s3)
    ]
    t = transcript(Segment(start=0, end=9.5, text="one two three four", words=words))
    turns = [Turn(0.0, 2.0, "s1"), Turn(2.0, 3.5, "s2"), Turn(5.0, 6.0, "s1"), Turn(6.0, 8.0, "s3")]
    labelled = assign_speakers(t, turns)
    # Labels in order of first appearance: s1 -> A, s2 -> B, s3 -> C.
    assert [w.speaker for w in labelled.segments[0].words] == ["A", "B", "A", "C"]
    # The segment: the speaker of most of its words' time (A: 1.0 + 0.4 s; B 0.8 s; C 0.5 s).
    assert labelled.segments[0].speaker == "A"


def test_no_turns_means_one_speaker_and_a_segment_without_words_uses_its_own_time():
    t = transcript(Segment(start=0, end=2, text="hello there"), Segment(start=3, end=4, text="again"))
    assert [s.speaker for s in assign_speakers(t, []).segments] == ["A", "A"]
    turns = [Turn(0.0, 2.5, "x"), Turn(2.5, 5.0, "y")]
    assert [s.speaker for s in assign_speakers(t, turns).segments] == ["A", "B"]


# -- renderers --------------------------------------------------------------------------------------------
def conversation() -> Transcript:
    """A says "Hello Bob.", then B says "Hi Alice. Fine."."""
    a = [word(0.0, 0.4, "Hello", "A"), word(0.5, 0.9, "Bob.", "A")]
    b = [word(1.0, 1.3, "Hi", "B"), word(1.4, 1.8, "Alice.", "B"), word(1.9, 2.2, "Fine.", "B")]
    return transcript(
        Segment(start=0.0, end=0.9, text=" Hello Bob.", speaker="A", words=a),
        Segment(start=1.0, end=2.2, text=" Hi Alice. Fine.", speaker="B", words=b),
    )


def test_txt_has_one_line_per_turn_prefixed_with_the_speaker():
    assert render_txt(conversation()) == "A: Hello Bob.\nB: Hi Alice. Fine.\n"


def test_captions_never_mix_speakers_vtt_voice_tags_srt_prefix():
    style = CaptionStyle(chars_per_line=42, lines_per_cue=2)  # both turns would fit one cue
    vtt = render_vtt(conversation(), style)
    assert "<v A>Hello Bob.\n" in vtt and "<v B>Hi Alice. Fine.\n" in vtt
    srt = render_srt(conversation(), style)
    assert srt.split("\n\n")[0].endswith("A: Hello Bob.") and "\nB: Hi Alice. Fine.\n" in srt


def test_srt_speaker_prefix_counts_in_the_line_limit():
    # Eight 4-letter words: two lines of 19 characters, which fit a 20-character line; with SRT's "A: "
    # before the first line, that line would be 22. The SRT cues keep every displayed line within the
    # limit (prefix included); VTT's voice tag is not displayed text, so its cue keeps the full width.
    style = CaptionStyle(chars_per_line=20, lines_per_cue=2)
    texts = ["aaaa", "bbbb", "cccc", "dddd", "eeee", "ffff", "gggg", "hhhh"]
    words = [word(0.3 * i, 0.3 * i + 0.25, text, "A") for i, text in enumerate(texts)]
    t = transcript(Segment(start=0.0, end=2.4, text=" " + " ".join(texts), speaker="A", words=words))
    srt_text = [line for block in render_srt(t, style).strip().split("\n\n") for line in block.split("\n")[2:]]
    assert srt_text[0].startswith("A: ")
    assert all(len(line) <= style.chars_per_line for line in srt_text), srt_text
    # Nothing lost: the words in order, each cue's first line prefixed.
    assert " ".join(line.removeprefix("A: ") for line in srt_text).split() == texts
    vtt = render_vtt(t, style)
    assert "<v A>aaaa bbbb cccc dddd\neeee ffff gggg hhhh\n" in vtt


def test_without_speakers_every_format_is_as_before():
    a = [word(0.0, 0.4, "Hello"), word(0.5, 0.9, "Bob.")]
    t = transcript(Segment(start=0.0, end=0.9, text=" Hello Bob.", words=a))
    data = json.loads(render_json(t))
    # The JSON holds exactly the fields transcripts had before speakers (hark.domain.transcript's models).
    assert set(data["segments"][0]) == {"start", "end", "text", "words", "language", "flags"}
    assert set(data["segments"][0]["words"][0]) == {"start", "end", "word", "probability"}
    assert render_txt(t) == "Hello Bob.\n"
    assert "<v" not in render_vtt(t) and "A:" not in render_srt(t)
    # And a labelled transcript round-trips through its JSON.
    labelled = conversation()
    assert Transcript.model_validate_json(render_json(labelled)).segments == labelled.segments


# -- DER (reference values worked by hand) -----------------------------------------------------------------
def test_der_counts_missed_false_alarm_and_confusion_under_the_best_mapping():
    reference = [(0.0, 10.0, "alice"), (10.0, 20.0, "bob")]
    # The system calls 0-8 "x", 8-10 "y" (2 s confusion), 10-18 "y", misses 18-20 (2 s), and says "x"
    # at 20-21 where nobody speaks (1 s false alarm): (2 + 2 + 1) / 20 = 25%.
    hypothesis = [(0.0, 8.0, "x"), (8.0, 18.0, "y"), (20.0, 21.0, "x")]
    score = der.der(reference, hypothesis)
    assert score.mapping == {"x": "alice", "y": "bob"}
    assert (score.confusion, score.missed, score.false_alarm, score.total) == pytest.approx((2.0, 2.0, 1.0, 20.0))
    assert score.der == pytest.approx(0.25)
    # A 0.25 s collar removes 0.5 s around each of the 3 distinct boundaries (0, 10, 20): at 0 and 20 only
    # the inner half counts (0.25 s each); from the 1 s false alarm at 20-21, 0.25 s is in the collar.
    collared = der.der(reference, hypothesis, collar=0.25)
    assert collared.total == pytest.approx(20.0 - 0.25 - 0.5 - 0.25)
    assert collared.false_alarm == pytest.approx(0.75)


def test_der_scores_overlap_per_speaker_and_reads_rttm():
    rttm = "SPEAKER call 1 0.00 4.00 <NA> <NA> a <NA> <NA>\nSPEAKER call 1 2.00 4.00 <NA> <NA> b <NA> <NA>\n"
    reference = der.read_rttm(rttm)
    assert reference == [(0.0, 4.0, "a"), (2.0, 6.0, "b")]
    # One voice where two overlap (2-4): 2 s missed of 8 s of speaker time.
    score = der.der(reference, [(0.0, 3.0, "p"), (3.0, 6.0, "q")])
    assert score.missed == pytest.approx(2.0) and score.total == pytest.approx(8.0)
    # p -> a, q -> b: every voiced frame has its one speaker right, so no confusion.
    assert score.confusion == pytest.approx(0.0) and score.der == pytest.approx(2.0 / 8.0)


# -- API and CLI -------------------------------------------------------------------------------------------
BODY = {"filename": "a.mp3", "content_type": "audio/mpeg", "size": 10}


def test_create_body_speaker_fields():
    assert CreateJobRequest.model_validate(BODY).speaker_labels is False  # off by default
    asked = CreateJobRequest.model_validate({**BODY, "speaker_labels": True, "speakers_expected": 3})
    assert (asked.speaker_labels, asked.speakers_expected) == (True, 3)
    for bad in (
        {"speaker_labels": "yes"},  # strict: not coerced
        {"speaker_labels": True, "speakers_expected": 0},
        {"speaker_labels": True, "speakers_expected": MAX_SPEAKERS + 1},
        {"speakers_expected": 2},  # a count without asking for speakers
    ):
        with pytest.raises(ValidationError):
            CreateJobRequest.model_validate({**BODY, **bad})
    ranged = CreateJobRequest.model_validate({**BODY, "speaker_labels": True, "min_speakers": 2, "max_speakers": 4})
    assert (ranged.min_speakers, ranged.max_speakers, ranged.speakers_expected) == (2, 4, None)
    # Each bad range says what is wrong with it.
    for bad, says in (
        ({"min_speakers": 3, "max_speakers": 2}, "min_speakers (3) is more than max_speakers (2)"),
        ({"min_speakers": 0}, "min_speakers"),
        ({"max_speakers": MAX_SPEAKERS + 1}, "max_speakers"),
        ({"min_speakers": 2, "speakers_expected": 3}, "speakers_expected is the count"),
    ):
        with pytest.raises(ValidationError, match=re.escape(says)):
            CreateJobRequest.model_validate({**BODY, "speaker_labels": True, **bad})
    with pytest.raises(ValidationError, match="max_speakers needs speaker_labels"):
        CreateJobRequest.model_validate({**BODY, "max_speakers": 3})


def test_cli_speakers_option(tmp_path):
    from hark.client.cli import CliError, _bare_speakers, _speakers_option, build_parser

    parser = build_parser()

    def parse(*argv):
        args = parser.parse_args(_bare_speakers(["transcribe", *argv]))
        return _speakers_option(args), args.files

    assert parse("a.mp3") == ({}, ["a.mp3"])
    assert parse("a.mp3", "--speakers") == ({"speaker_labels": True}, ["a.mp3"])
    assert parse("--speakers", "2", "a.mp3") == ({"speaker_labels": True, "speakers_expected": 2}, ["a.mp3"])
    # A bare --speakers before a file: the file is still a file.
    assert parse("--speakers", "a.mp3", "b.mp3") == ({"speaker_labels": True}, ["a.mp3", "b.mp3"])
    assert parse("--speakers", "a.mp3") == ({"speaker_labels": True}, ["a.mp3"])
    with pytest.raises(CliError, match="1 to 20"):
        parse("--speakers", "21", "a.mp3")
    # A range asks for speakers on its own; it and the count exclude each other.
    assert parse("--min-speakers", "2", "--max-speakers", "5", "a.mp3") == (
        {"speaker_labels": True, "min_speakers": 2, "max_speakers": 5},
        ["a.mp3"],
    )
    assert parse("--speakers", "--max-speakers", "3", "a.mp3") == (
        {"speaker_labels": True, "max_speakers": 3},
        ["a.mp3"],
    )
    with pytest.raises(CliError, match="--min-speakers 4 is more than --max-speakers 2"):
        parse("--min-speakers", "4", "--max-speakers", "2", "a.mp3")
    with pytest.raises(CliError, match="--max-speakers N: N is a number of people, 1 to 20"):
        parse("--max-speakers", "0", "a.mp3")
    with pytest.raises(CliError, match="give it, or --min-speakers/--max-speakers, not both"):
        parse("--speakers", "3", "--min-speakers", "2", "a.mp3")


def test_a_worker_without_the_extra_says_so(monkeypatch):
    import sys

    from worker.transcription import diarization

    # import sherpa_onnx -> ImportError, as without the extra
    monkeypatch.setitem(sys.modules, "sherpa_onnx", None)
    diarization._engine.cache_clear()
    try:
        with pytest.raises(diarization.DiarizationUnavailable, match="'diarize' extra"):
            diarization.diarize(np.ones(16000, dtype=np.float32) * 0.1)
    finally:
        diarization._engine.cache_clear()
    # An empty recording needs no model at all.
    assert diarization.diarize(np.zeros(0, dtype=np.float32)) == []


def test_client_and_cli_send_the_speaker_fields(tmp_path):
    # hark.client.sdk against the loopback stand-in stack the CLI tests use: the create body it sends.
    from hark.client import Hark
    from hark.client.cli import main
    from tests.unit.test_cli_errors import AUDIO, StubStack

    class Recording(StubStack):
        bodies: list[dict] = []

        def create(self, body):
            self.bodies.append(body)
            return super().create(body)

    stack = Recording()
    try:
        with Hark(stack.url, "t") as hark:
            hark.create("a.wav", 10, speaker_labels=True, speakers_expected=3)
            hark.create("b.wav", 10)
        clip = tmp_path / "c.wav"
        clip.write_bytes(AUDIO)
        main(["transcribe", "--speakers", str(clip), "--server", stack.url, "--token", "t"])
    finally:
        stack.stop()
    first, second, cli = Recording.bodies
    assert (first["speaker_labels"], first["speakers_expected"]) == (True, 3)
    assert second.get("speaker_labels", False) is False and "speakers_expected" not in second
    assert cli["speaker_labels"] is True and cli["filename"] == "c.wav"


def test_bad_diarization_settings_are_refused_naming_the_setting(monkeypatch):
    # A window shift outside (0, 1] (sherpa-onnx's own bounds) or a threshold that is no cosine distance
    # is refused when the settings are read, naming the setting.
    from hark.domain.settings import Settings

    for name, value in (
        ("HARK_DIARIZATION_WINDOW_SHIFT", "0"),
        ("HARK_DIARIZATION_WINDOW_SHIFT", "1.5"),
        ("HARK_DIARIZATION_THRESHOLD", "-0.1"),
        ("HARK_DIARIZATION_THRESHOLD", "2"),
        ("HARK_DIARIZATION_FOLD_SECONDS", "-1"),  # a length of speech
        ("HARK_DIARIZATION_REASSIGN", "sometimes"),  # on or off
    ):
        with monkeypatch.context() as m:
            m.setenv(name, value)
            with pytest.raises(ValidationError, match=name.removeprefix("HARK_").lower()):
                Settings()
    assert 0 < Settings().diarization_window_shift <= 1
