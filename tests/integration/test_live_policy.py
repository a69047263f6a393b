"""The streaming policy with the real model, clocked by the audio (no wall clock): a recording fed in steps
of STEP_SECONDS, as the WebSocket steps it, each step decoded by the engine before the next.

Read speech without a long pause (en_fleurs_002) is the hard case: no endpoint ends a stretch, so its words
become final by agreement or once settled. No word may wait longer than SETTLED_SECONDS plus a step to be
final, counted in audio fed; what a slower machine adds on top is its decode time (bench/live.py measures
that)."""

from __future__ import annotations

import numpy as np
import pytest

from hark.domain.settings import Settings
from hark.domain.wer import word_error_rate
from tests.conftest import SHARED_SPEECH
from worker.live.streaming import SETTLED_SECONDS, Final, Stream
from worker.live.websocket import STEP_SECONDS
from worker.transcription.audio import SAMPLE_RATE, load
from worker.transcription.engine import DecodeOptions, Engine

CLIP = "en_fleurs_002.ogg"


@pytest.fixture(scope="module")
def engine(model_dir):
    return Engine(Settings(model_dir=str(model_dir)))


def test_talk_without_a_pause_is_final_within_settled_seconds_and_a_step_of_audio(engine):
    samples = load(SHARED_SPEECH / CLIP, 3600)
    step = int(STEP_SECONDS * SAMPLE_RATE)

    def decode(audio: np.ndarray, options: DecodeOptions):
        return engine.run(audio, options, interactive=True).transcript

    stream = Stream(decode)  # the language heard, as a client that names none
    made: list[tuple[float, Final]] = []  # (seconds fed when it was made, the final)
    for start in range(0, len(samples), step):
        stream.feed(samples[start : start + step])
        made += [(stream.fed_seconds, e) for e in stream.step() if isinstance(e, Final)]
    during = len(made)
    made += [(stream.fed_seconds, e) for e in stream.finish()]

    assert during >= 2, made  # finals while the speech went on, not only when it ended
    for fed, final in made[:during]:
        assert fed - final.end <= SETTLED_SECONDS + STEP_SECONDS, (fed, final)
    reference = (SHARED_SPEECH / CLIP).with_suffix(".txt").read_text()
    assert word_error_rate(reference, stream.text, "en") <= 0.25, stream.text
