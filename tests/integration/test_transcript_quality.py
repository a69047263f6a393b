"""The engine on the real recordings: captions from their word timestamps, repetition loops re-decoded or
flagged, and a recording that switches language decoded part by part in each part's language."""

from __future__ import annotations

import functools
from types import SimpleNamespace

import numpy as np
import pytest
from faster_whisper.vad import get_speech_timestamps

from hark.domain.settings import Settings
from hark.domain.transcript import FLAGS, CaptionStyle, captions
from hark.domain.wer import word_error_rate
from tests.conftest import SHARED_SPEECH
from worker.transcription.audio import SAMPLE_RATE, load
from worker.transcription.engine import PIECE_VAD, DecodeOptions, Engine, uncovered_speech_seconds
from worker.transcription.quality import Thresholds, is_loop

LJ_SPEECH = "en_ljspeech_LJ001-0001-0032_long.flac"
# Where the loop is: forced to Spanish, Whisper base decodes 112-137 s of this clip as
# "que los formes de los prenses deberían estar más o menos cerca de los de los de los ..." (x37).
LOOP_WINDOW = (112.0, 140.0)


@pytest.fixture(scope="module")
def engine(model_dir):
    from worker.transcription.engine import Engine

    # Languages per speech window, as on a GPU (on the CPU it is off unless asked for).
    return Engine(Settings(model_dir=str(model_dir), language_per_window=True))


@pytest.fixture(scope="module")
def engine_one_language(model_dir):
    from worker.transcription.engine import Engine

    # The CPU default: one language per recording, decoded again per speech window only when speech is
    # left without words (a mixed window, where Whisper keeps one language and drops the other).
    return Engine(Settings(model_dir=str(model_dir), language_per_window=False))


def clip(name: str) -> np.ndarray:
    path = SHARED_SPEECH / name
    if not path.exists():
        pytest.fail(f"{path} is missing: the tests read the real recordings (HARK_SPEECH_DIR)")
    return load(path, 3600)


def reference(name: str) -> str:
    return (SHARED_SPEECH / name).with_suffix(".txt").read_text().strip()


@pytest.fixture(scope="module")
def transcript_of(engine):
    """name -> the engine's transcript of that recording, made once: the caption styles read the same one."""
    return functools.cache(lambda name: engine.transcribe(clip(name), "auto"))


@pytest.mark.parametrize("name", ["en_jfk.flac", "en_fleurs_002.ogg", "es_fleurs_001.ogg"])
@pytest.mark.parametrize("style", [CaptionStyle(), CaptionStyle(chars_per_line=32, lines_per_cue=1)])
def test_captions_of_real_recordings_keep_every_rule(transcript_of, name, style):
    t = transcript_of(name)
    words = [w for s in t.segments for w in s.words]
    cues = captions(t, style)
    assert words and cues
    for cue in cues:
        assert 1 <= len(cue.lines) <= style.lines_per_cue
        # A line over the limit is one word that alone is longer (never cut).
        assert all(len(line) <= style.chars_per_line or " " not in line for line in cue.lines), cue
        assert cue.end - cue.start <= style.max_cue_seconds or len(" ".join(cue.lines).split()) == 1, cue
    assert all(a.end <= b.start for a, b in zip(cues, cues[1:], strict=False))  # in order, no overlap
    # Nothing lost, nothing added, no word cut: the cues' words are the transcript's words, in order.
    assert [w for c in cues for line in c.lines for w in line.split()] == "".join(w.word for w in words).split()


def test_a_forced_wrong_language_no_longer_returns_a_repetition_loop(engine):
    samples = clip(LJ_SPEECH)
    start, end = (int(s * SAMPLE_RATE) for s in LOOP_WINDOW)
    t = engine.transcribe(samples[start:end], "es")
    thresholds = Thresholds.of(Settings())
    assert t.segments
    for s in t.segments:
        assert set(s.flags) <= set(FLAGS)
        # A loop is either decoded again into something else or marked doubtful, never a plain transcript.
        assert not is_loop(s.text, thresholds) or "repetition" in s.flags, s
    assert "de los de los de los" not in " ".join(s.text for s in t.segments if not s.flags)
    # Without the forced language the audio is English: the re-decoded text is the reference's.
    lj_text = reference(LJ_SPEECH).lower()
    first = lj_text.index("that the forms")
    expected = lj_text[first : lj_text.index("middle ages", first) + len("middle ages")]
    assert word_error_rate(expected, t.text, "en") < 0.2, t.text


@pytest.mark.parametrize("which", ["engine", "engine_one_language"])
def test_a_recording_in_two_languages_gets_each_part_in_its_language(request, which):
    engine = request.getfixturevalue(which)
    parts = [("es_fleurs_000.ogg", "es"), ("en_fleurs_000.ogg", "en"), ("es_fleurs_002.ogg", "es")]
    pause = np.zeros(SAMPLE_RATE, dtype=np.float32)  # a second between speakers
    pieces, spans, at = [], [], 0.0
    for name, _ in parts:
        audio = clip(name)
        pieces += [audio, pause]
        spans.append((at, at + len(audio) / SAMPLE_RATE))
        at += (len(audio) + len(pause)) / SAMPLE_RATE
    t = engine.transcribe(np.concatenate(pieces), "auto")
    for (name, language), (a, b) in zip(parts, spans, strict=True):
        inside = [s for s in t.segments if a <= (s.start + s.end) / 2 <= b]
        assert inside and {s.language for s in inside} == {language}, (name, inside)
        text = " ".join(s.text for s in inside)
        assert word_error_rate(reference(name), text, language) < 0.25, (name, text)
    # The job's language is the one spoken longest, with its share of the speech.
    spoken = {code: sum(s.end - s.start for s in t.segments if s.language == code) for code in ("es", "en")}
    assert t.language == max(spoken, key=lambda c: spoken[c]) == "es"
    assert t.language_share == pytest.approx(spoken["es"] / sum(spoken.values()), abs=0.002)


class EndsEarly:
    """The CTranslate2 model, except that the first piece of its first `generate` ends after a third of its
    tokens: Whisper's early end of a piece, when the rest of its speech is dropped without a trace."""

    def __init__(self, model):
        self.model = model
        self.calls = 0

    def __getattr__(self, name):
        return getattr(self.model, name)

    def generate(self, *args, **kwargs):
        results = self.model.generate(*args, **kwargs)
        self.calls += 1
        if self.calls > 1:
            return results
        first = results[0]
        kept = first.sequences_ids[0][: len(first.sequences_ids[0]) // 3]
        cut = SimpleNamespace(sequences_ids=[kept], scores=first.scores, no_speech_prob=first.no_speech_prob)
        return [cut, *results[1:]]


def test_speech_left_without_words_in_a_given_language_is_decoded_again(model_dir):
    """With the language given (a chunk of a long recording, or the user's choice) the per-window retry
    does not apply; speech that a piece ended early on is decoded again on its own, and its words are
    added where they were said."""
    samples = clip(LJ_SPEECH)[: 60 * SAMPLE_RATE]
    engine = Engine(Settings(model_dir=str(model_dir), language_per_window=False))
    whole = engine.transcribe(samples, "en")
    engine.model.model = ends_early = EndsEarly(engine.model.model)
    cut_short = engine.run(samples, DecodeOptions(language="en"))
    assert ends_early.calls >= 2  # the pieces' batch, then the dropped speech again
    t = cut_short.transcript
    starts = [w.start for s in t.segments for w in s.words]
    assert starts == sorted(starts)
    speech = get_speech_timestamps(samples, PIECE_VAD)  # the speech the engine decodes
    assert uncovered_speech_seconds(speech, t) < Settings().language_switch_min_seconds
    # The reference's first minute, as the untouched decode heard it: nothing of it is missing.
    heard = word_error_rate(whole.text, t.text, "en")
    print(f"words {len(whole.text.split())} untouched, {len(t.text.split())} after the early end; WER {heard:.2%}")
    assert heard <= 0.1, t.text
