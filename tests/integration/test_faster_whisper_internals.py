"""faster-whisper's private and undocumented parts that worker/transcription/engine.py calls, each called
here as the engine calls it (the same arguments, by name) on a tiny input with the real bundled model.

faster-whisper and CTranslate2 are pinned exactly in the lock (pyproject's `worker` extra) because of
these: a new release may rename, move or change any of them. This fails when the pinned version no
longer has one, takes other arguments, or returns another shape, before any job does.
"""

from __future__ import annotations

import inspect
from math import ceil

import numpy as np
import pytest
from faster_whisper import BatchedInferencePipeline, WhisperModel
from faster_whisper.audio import pad_or_trim
from faster_whisper.tokenizer import _LANGUAGE_CODES, Tokenizer
from faster_whisper.transcribe import (
    Segment,
    Word,
    get_compression_ratio,
    get_suppressed_tokens,
    restore_speech_timestamps,
)
from faster_whisper.vad import collect_chunks, get_speech_timestamps

from hark.domain.wer import word_error_rate
from tests.conftest import SHARED_SPEECH
from worker.transcription import audio, engine

RECORDING = SHARED_SPEECH / "en_jfk.flac"
SECONDS = 5.0  # the tiny input: JFK's first words
FIRST_WORDS = "And so my fellow Americans"  # en_jfk.txt's start


@pytest.fixture(scope="module")
def model(model_dir) -> WhisperModel:
    return WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=2, local_files_only=True)


@pytest.fixture(scope="module")
def samples() -> np.ndarray:
    return audio.load(RECORDING, 3600)[: int(SECONDS * audio.SAMPLE_RATE)]


def test_language_codes_and_pipeline_defaults():
    assert {"en", "es", "de", "fr", "zh"} <= set(_LANGUAGE_CODES)
    # engine.PUNCTUATION reads the pipeline's defaults by name from its signature
    assert set(engine.PUNCTUATION) == {"prepend_punctuations", "append_punctuations"}
    assert all(isinstance(v, str) and v for v in engine.PUNCTUATION.values())
    assert {"prepend_punctuations", "append_punctuations"} <= set(
        inspect.signature(BatchedInferencePipeline.transcribe).parameters
    )


def test_vad_and_chunks_as_the_engine_cuts_speech(samples):
    speech = get_speech_timestamps(samples, engine.PIECE_VAD)
    assert speech and all({"start", "end"} <= set(s) for s in speech)
    chunks, metadata = collect_chunks(samples, speech, max_duration=engine.WINDOW_SECONDS)
    assert len(chunks) == len(metadata) >= 1
    assert all({"offset", "duration"} <= set(m) for m in metadata)


def test_encode_detect_generate_split_and_word_timings(model, samples):
    # The model's parts the engine reads
    assert model.model.is_multilingual is True  # the bundled multilingual base
    assert model.max_length > 0 and model.frames_per_second > 0
    tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language="en")
    suppress = get_suppressed_tokens(tokenizer, [-1])
    assert suppress and all(isinstance(t, int) for t in suppress)

    features = model.feature_extractor(samples)[..., :-1]
    encoded = model.encode(np.stack([pad_or_trim(features)]))
    [ranked] = model.model.detect_language(encoded)
    assert ranked[0][0][2:-2] == "en"  # "<|en|>", the engine strips the brackets

    prompt = model.get_prompt(
        tokenizer, previous_tokens=tokenizer.encode("Inaugural address."), without_timestamps=True
    )
    [result] = model.model.generate(
        encoded,
        [prompt],
        beam_size=5,
        patience=1,
        length_penalty=1,
        max_length=model.max_length,
        suppress_blank=True,
        suppress_tokens=suppress,
        return_scores=True,
        return_no_speech_prob=True,
        sampling_temperature=engine.FALLBACK_TEMPERATURES[0],
        repetition_penalty=1,
        no_repeat_ngram_size=0,
    )
    tokens = result.sequences_ids[0]
    assert tokens and isinstance(result.scores[0], float) and 0 <= result.no_speech_prob <= 1

    size = int(ceil(SECONDS) * model.frames_per_second)
    subsegments, _, _ = model._split_segments_by_timestamps(
        tokenizer=tokenizer, tokens=tokens, time_offset=0.0, segment_size=size, segment_duration=SECONDS, seek=0
    )
    assert subsegments and all({"tokens", "start", "end"} <= set(s) for s in subsegments)
    text = tokenizer.decode([t for s in subsegments for t in s["tokens"]])
    assert word_error_rate(FIRST_WORDS, " ".join(text.split()[:5]), "en") <= 0.2, text
    assert get_compression_ratio(text) > 0

    outputs = [[{**s, "text": tokenizer.decode(s["tokens"])} for s in subsegments]]
    last_speech = model.add_word_timestamps(
        outputs,
        tokenizer,
        encoded,
        [size],
        engine.PUNCTUATION["prepend_punctuations"],
        engine.PUNCTUATION["append_punctuations"],
        0.0,
    )
    assert 0 < last_speech <= SECONDS
    words = [Word(**w) for s in outputs[0] for w in s["words"]]  # the engine builds Words from these dicts
    assert words and all(0 <= w.start <= w.end <= SECONDS + 0.5 and 0 <= w.probability <= 1 for w in words)

    # Times of speech joined by collect_chunks are mapped back by restore_speech_timestamps: a segment's
    # own times without words, its words' (and from them its own) with words.
    speech = [{"start": audio.SAMPLE_RATE * 2, "end": audio.SAMPLE_RATE * 4}]  # speech from 2 s to 4 s
    segment = Segment(
        id=0,
        seek=0,
        start=0.0,
        end=1.0,
        text=text,
        tokens=tokens,
        avg_logprob=-0.1,
        compression_ratio=1.0,
        no_speech_prob=0.0,
        words=None,
        temperature=0.0,
    )
    [moved] = list(restore_speech_timestamps([segment], speech, audio.SAMPLE_RATE))
    assert (moved.start, moved.end) == (2.0, 3.0)
    segment.words = [Word(start=0.5, end=0.9, word=" so", probability=0.9)]
    [moved] = list(restore_speech_timestamps([segment], speech, audio.SAMPLE_RATE))
    assert moved.words is not None and (moved.words[0].start, moved.words[0].end) == (2.5, 2.9)
    assert (moved.start, moved.end) == (2.5, 2.9)
