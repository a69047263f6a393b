"""worker/transcription/quality.py: what makes a decoded segment doubtful."""

from __future__ import annotations

import pytest

from hark.domain.settings import Settings
from hark.domain.transcript import FLAGS
from worker.transcription.quality import Thresholds, compression_ratio, flags, is_loop, longest_repeat

T = Thresholds.of(Settings())
LOOP = "que los formes de los prenses deberían estar más o menos cerca " + "de los " * 37


def test_thresholds_come_from_the_settings():
    s = Settings()
    assert (
        Thresholds(
            s.quality_compression_ratio, s.quality_min_avg_logprob, s.quality_no_speech_prob, s.quality_max_repeats
        )
        == T
    )


def test_longest_repeat_finds_the_looping_ngram():
    assert longest_repeat(LOOP) == (37, 2)
    assert longest_repeat("The cat sat. The dog sat.") == (1, 1)
    assert longest_repeat("Thank you. Thank you. Thank you. Thank you.") == (4, 2)


def test_a_loop_is_many_repeats_of_eight_words_or_more():
    assert is_loop(LOOP, T)
    assert not is_loop("No, no, no, no.", T)  # 4 repeats but 4 words: speech
    assert not is_loop("ha ha ha", T)
    assert is_loop("Thank you. Thank you. Thank you. Thank you.", T)  # 4 x 2 words


def test_flags_of_each_failure():
    speech = "And so my fellow Americans, ask not what your country can do for you."
    assert compression_ratio(speech) < T.compression_ratio < compression_ratio(LOOP)
    assert flags(speech, -0.2, 0.01, T) == []
    assert flags(LOOP, -0.15, 0.0, T) == ["repetition"]  # confident, yet a loop
    assert flags(speech, -1.4, 0.1, T) == ["low_confidence"]
    assert flags(speech, -1.4, 0.9, T) == ["no_speech"]  # unsure and probably silence: invented text
    assert flags(speech, -0.3, 0.9, T) == []  # sure of itself: Whisper keeps such text too
    assert flags("   ", -3.0, 0.99, T) == []  # nothing to doubt
    assert set(flags(LOOP, -1.5, 0.9, T)) <= set(FLAGS)


def test_language_spans_join_neighbours_in_one_language_up_to_30_seconds():
    import numpy as np

    from worker.transcription.audio import SAMPLE_RATE
    from worker.transcription.engine import WINDOW_SECONDS, Window, language_spans, spoken_longest

    def window(start: float, end: float, language: str) -> Window:
        begin, stop = int(start * SAMPLE_RATE), int(end * SAMPLE_RATE)
        return Window(begin, stop, np.zeros(stop - begin, dtype=np.float32), language, 0.9)

    windows = [
        window(0, 10, "es"),
        window(10.5, 20, "es"),
        window(21, 25, "en"),  # English between: the Spanish on either side is never one span
        window(26, 28, "en"),
        window(29, 40, "es"),
        window(41, 45, "es"),
        window(46, 29 + WINDOW_SECONDS + 1, "es"),  # would make the span longer than 30 s: a new one
    ]
    assert language_spans(windows) == {
        "es": [(0.0, 20.0), (29.0, 45.0), (46.0, 60.0)],
        "en": [(21.0, 28.0)],
    }
    assert spoken_longest(windows) == "es" and spoken_longest([]) == ""


def test_uncovered_speech_is_the_speech_farther_than_the_margin_from_every_word():
    from hark.domain.transcript import Segment, Transcript, Word
    from worker.transcription.audio import SAMPLE_RATE
    from worker.transcription.engine import uncovered_spans, uncovered_speech_seconds

    def word(start, end):
        return Word(start=start, end=end, word=" w", probability=1.0)

    words = [word(1.0, 2.0), word(2.2, 3.0), word(10.0, 11.0)]
    transcript = Transcript(
        language="en",
        language_probability=1.0,
        duration=30.0,
        model="m",
        segments=[Segment(start=1.0, end=11.0, text="w w w", words=words)],
    )
    speech = [{"start": 0, "end": 4 * SAMPLE_RATE}, {"start": 9 * SAMPLE_RATE, "end": 20 * SAMPLE_RATE}]
    # Covered with a 0.5 s margin: 0.5-3.5 (the first two words merged) and 9.5-11.5. Speech 0-4 leaves
    # 0-0.5 and 3.5-4 (1.0 s); speech 9-20 leaves 9-9.5 and 11.5-20 (9.0 s).
    spans = uncovered_spans(speech, transcript)
    assert [a for span in spans for a in span] == pytest.approx([0.0, 0.5, 3.5, 4.0, 9.0, 9.5, 11.5, 20.0])
    assert uncovered_speech_seconds(speech, transcript) == pytest.approx(10.0)
    assert uncovered_speech_seconds(speech, transcript, margin=0.0) == pytest.approx(4 - 1.8 + 11 - 1.0)
