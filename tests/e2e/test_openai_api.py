"""The OpenAI-compatible endpoint on `hark up` (worker/live/openai_api.py), driven by the real `openai` package
as any tool built on it would drive it: `OpenAI(base_url=f"{server}/v1", api_key=...)`, real recordings,
the real model. Expected text comes from the recordings' reference transcripts and durations from their
manifest; every refusal is checked in OpenAI's error shape, as the SDK reads it."""

from __future__ import annotations

import re
import zlib
from pathlib import Path

import openai
import pytest
import requests
from openai import OpenAI

from hark.domain.wer import word_error_rate, words
from tests.conftest import SHARED_SPEECH
from tests.integration.test_steering import TRANSLATIONS
from tests.integration.test_transcription_worker import reference

JFK = SHARED_SPEECH / "en_jfk.flac"
JFK_SECONDS = 11.0  # MANIFEST.tsv
SHORT = SHARED_SPEECH / "en_librispeech_61-70968-0000.flac"  # 4.9 s
SRT_TIME = r"(\d\d):(\d\d):(\d\d),(\d\d\d)"
SRT_CUE = re.compile(rf"^(\d+)\n{SRT_TIME} --> {SRT_TIME}\n(.+)$", re.DOTALL)


@pytest.fixture(scope="module")
def client(live_stack) -> OpenAI:
    # A session token is a credential the endpoint takes as the SDK sends any key: Authorization: Bearer.
    return OpenAI(base_url=f"{live_stack.url}/v1", api_key=live_stack.token("openai@example.com"), max_retries=0)


def seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def whisper_tokenizer(model_dir: Path):
    """The model's own tokenizer (tokenizer.json in the model folder), as faster-whisper wraps it."""
    from faster_whisper.tokenizer import Tokenizer
    from tokenizers import Tokenizer as HfTokenizer

    return Tokenizer(
        HfTokenizer.from_file(str(model_dir / "tokenizer.json")), multilingual=True, task="transcribe", language="en"
    )


def test_plain_verbose_json_with_word_and_segment_timestamps_text_and_srt(client, model_dir):
    ref = reference(JFK.name)
    with open(JFK, "rb") as f:
        plain = client.audio.transcriptions.create(model="whisper-1", file=f)
    assert word_error_rate(ref, plain.text, "en") < 0.1, plain.text

    with open(JFK, "rb") as f:
        verbose = client.audio.transcriptions.create(
            model="whisper-1", file=f, response_format="verbose_json", timestamp_granularities=["word", "segment"]
        )
    assert verbose.language == "english" and abs(verbose.duration - JFK_SECONDS) < 0.05
    assert word_error_rate(ref, verbose.text, "en") < 0.1
    said = " ".join(w.word for w in verbose.words)
    assert word_error_rate(ref, said, "en") < 0.1, said
    starts = [w.start for w in verbose.words]
    assert starts == sorted(starts) and all(0 <= w.start <= w.end <= JFK_SECONDS for w in verbose.words)
    assert verbose.segments and " ".join(s.text for s in verbose.segments).split() == verbose.text.split()
    for word in verbose.words:  # every word inside a segment
        assert any(s.start - 0.01 <= word.start and word.end <= s.end + 0.01 for s in verbose.segments), word
    # OpenAI's decoder statistics, as programs read them to drop doubtful segments: the segment's own tokens
    # (Whisper's tokenizer gives back its text), the decode's temperature, and the ratios by their definitions.
    tokenizer = whisper_tokenizer(model_dir)
    for s in verbose.segments:
        assert s.tokens and tokenizer.decode(s.tokens).strip() == s.text, (s.tokens, s.text)
        assert 0 <= s.temperature <= 1 and s.avg_logprob <= 0 and 0 <= s.no_speech_prob <= 1, s
        text = tokenizer.decode(s.tokens).encode()
        assert s.compression_ratio == pytest.approx(len(text) / len(zlib.compress(text)), abs=1e-4), s

    with open(SHORT, "rb") as f:  # segments alone unless words are asked for (OpenAI's default)
        segments_only = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="verbose_json")
    assert segments_only.segments and not segments_only.words

    with open(SHORT, "rb") as f:
        text = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="text", language="en")
    assert isinstance(text, str) and word_error_rate(reference(SHORT.name), text, "en") < 0.15, text

    with open(JFK, "rb") as f:
        srt = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="srt")
    cues = [SRT_CUE.match(block) for block in srt.strip().split("\n\n")]
    assert cues and all(cues), srt
    assert [int(c[1]) for c in cues if c] == list(range(1, len(cues) + 1))
    times = [(seconds(*c.groups()[1:5]), seconds(*c.groups()[5:9])) for c in cues if c]
    assert all(a <= b for a, b in times) and times == sorted(times) and times[-1][1] <= JFK_SECONDS
    assert word_error_rate(ref, " ".join(c[10] for c in cues if c), "en") < 0.1


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the SDK marks audio.translations deprecated
def test_spanish_speech_translated_to_english(client):
    name = "es_fleurs_002.ogg"
    english, key_words = TRANSLATIONS[name]
    with open(SHARED_SPEECH / name, "rb") as f:
        translated = client.audio.translations.create(model="whisper-1", file=f)
    heard = set(words(translated.text, "en"))
    assert key_words <= heard, translated.text
    spanish = set(words(reference(name), "es"))
    assert len(heard & spanish) <= 0.25 * len(heard), heard & spanish  # English, not the Spanish said
    assert word_error_rate(english, translated.text, "en") < word_error_rate(reference(name), translated.text, "es")


def test_refusals_in_openais_error_shape(client, live_stack):
    """A file that is not audio: 400 naming the file; one over 25 MB: 413 before it is read; an unknown
    model or response format: 400 naming the field; no credential or a wrong one: 401."""
    with pytest.raises(openai.BadRequestError) as bad:
        client.audio.transcriptions.create(model="whisper-1", file=("notes.mp3", b"these are not audio bytes" * 40))
    assert bad.value.status_code == 400 and bad.value.param == "file" and bad.value.code == "invalid_file"
    assert "not an audio file" in bad.value.message

    with pytest.raises(openai.APIStatusError) as big:
        client.audio.transcriptions.create(model="whisper-1", file=("long.wav", bytes(25 * 1024 * 1024 + 1)))
    assert big.value.status_code == 413 and big.value.param == "file" and "25 MB" in big.value.message

    with open(JFK, "rb") as f, pytest.raises(openai.BadRequestError) as model:
        client.audio.transcriptions.create(model="gpt-4o-transcribe", file=f)
    assert model.value.param == "model" and model.value.code == "model_not_found"
    with open(JFK, "rb") as f, pytest.raises(openai.BadRequestError) as fmt:
        client.audio.transcriptions.create(model="whisper-1", file=f, response_format="docx")  # type: ignore[arg-type]
    assert fmt.value.param == "response_format"

    no_credential = requests.get(f"{live_stack.url}/v1/models", timeout=10)
    assert no_credential.status_code == 401
    assert no_credential.json()["error"]["code"] == "invalid_api_key"
    wrong = OpenAI(base_url=f"{live_stack.url}/v1", api_key="hark_sk_not-a-key", max_retries=0)
    with open(JFK, "rb") as f, pytest.raises(openai.AuthenticationError):
        wrong.audio.transcriptions.create(model="whisper-1", file=f)
    assert "whisper-1" in {m.id for m in client.models.list()}
