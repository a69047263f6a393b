"""Issue 4: long audio split into chunks that several workers share, its transcript as good as the whole's.

Two real worker processes, moto's server and the real model: here Whisper tiny.en (`english_model_dir`), as
the subject is the splitting, not the model, and it takes 2.3x less CPU than base for these recordings
(docs/testing.md). Each recording is also transcribed whole in this process, by the same model: the
yardstick for the chunks.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from hark.domain import aws, keys
from hark.domain.jobs import JobStatus
from hark.domain.settings import Settings
from hark.domain.wer import word_error_rate
from tests.conftest import SHARED_SPEECH
from tests.integration.test_transcription_worker import (
    assert_exactly_once,
    notified_job_ids,
    read_transcript,
    reference,
    submit,
    wait_finished,
    wait_queue_empty,
)

LONG_CLIP = SHARED_SPEECH / "en_ljspeech_LJ001-0001-0032_long.flac"


@pytest.fixture
def model_dir(english_model_dir: Path) -> Path:
    """The workers and the yardstick run Whisper tiny.en (English only: these recordings are English)."""
    return english_model_dir


def seconds_of(path: Path) -> float:
    return float(subprocess.run(["soxi", "-D", str(path)], capture_output=True, text=True, check=True).stdout)


def unchunked_text(model_dir: Path, path: Path) -> str:
    """The same recording in one pass, in this process: the yardstick for chunked transcription."""
    from worker.transcription.audio import load
    from worker.transcription.engine import Engine

    engine = Engine(Settings(model_dir=str(model_dir)))
    return engine.transcribe(load(path, 10 * 3600), "auto").text


def chunked_against_unchunked(
    workers, model_dir, clip: Path, text: str, target: float, timeout: float, max_worse: float = 0.01
):
    # Two messages in flight each: a worker holding up to 12 would take every chunk of this recording in one
    # receive, and the test is that the chunks spread over the workers.
    env = dict(
        HARK_CHUNK_THRESHOLD_SECONDS=str(target), HARK_CHUNK_TARGET_SECONDS=str(target), HARK_MAX_MESSAGES_IN_FLIGHT="2"
    )
    pair = [workers("a", **env), workers("b", **env)]
    job = submit(clip)
    done = wait_finished([job.job_id], timeout=timeout)[job.job_id]
    assert done.status == JobStatus.COMPLETED, done.error
    assert done.chunks_total and done.chunks_total >= 3 and done.chunks_done == done.chunks_total

    # Both workers transcribed chunks, and between them every chunk (a part per chunk).
    by_worker = [{line["index"] for line in w.logged("chunk transcribed")} for w in pair]
    print(f"chunks per worker: {[sorted(s) for s in by_worker]} of {done.chunks_total}")
    assert all(by_worker), "one worker did no chunk"
    assert set().union(*by_worker) == set(range(done.chunks_total))
    s3 = aws.client("s3")
    bucket = aws.stack_resources().transcripts_bucket.name
    chunk_model_seconds = 0.0
    for index in range(done.chunks_total):
        head = s3.head_object(Bucket=bucket, Key=keys.part_key(job.user_id, job.job_id, index))
        chunk_model_seconds += float(head["Metadata"]["model_seconds"])
    # The job's model time is its chunks' together (issue 13.5), and its cost that time at the price.
    settings = Settings()
    assert done.model_seconds == pytest.approx(chunk_model_seconds, abs=0.001) and chunk_model_seconds > 0
    price = settings.instance_usd_per_hour / settings.workers_per_instance / 3600
    assert done.cost_usd == pytest.approx(chunk_model_seconds * price, abs=1e-6)

    # One continuous timeline.
    data = json.loads(read_transcript(job, "json")[0])
    starts = [s["start"] for s in data["segments"]]
    assert starts == sorted(starts) and starts[-1] > done.duration_seconds * 0.8
    words = [w["start"] for s in data["segments"] for w in s["words"]]
    assert words == sorted(words) and data["segments"][-1]["end"] <= done.duration_seconds + 0.5
    assert abs(data["duration"] - done.duration_seconds) < 0.01

    chunked = word_error_rate(text, read_transcript(job, "txt")[0], "en")
    whole = word_error_rate(text, unchunked_text(model_dir, clip), "en")
    print(
        f"{clip.name}: {done.duration_seconds:.0f} s in {done.chunks_total} chunks: "
        f"WER chunked {chunked:.2%}, unchunked {whole:.2%}"
    )
    assert chunked <= whole + max_worse
    wait_queue_empty(aws.stack_resources().transcribe_queue.name)
    assert_exactly_once({job.job_id: done}, notified_job_ids())


def test_long_audio_is_split_across_workers(stack, workers, model_dir):
    """The 3.9-minute clip in 60-s chunks over two workers. Its word error rate may move by a point either way
    with where the chunks are cut: Whisper reads 30-s windows, a chunk packs its own, so every window after a
    cut hears other context, and one word of this clip is 0.18 point (measured with base on one AVX2 machine, targets
    45-90 s: 5.2-6.3% against 5.2% whole; docs/testing.md). So this clip is held to 2 points: a lost or doubled
    chunk is ~25. The issue's 1 point is held where it means something, on the 25-minute recording."""
    chunked_against_unchunked(
        workers, model_dir, LONG_CLIP, reference(LONG_CLIP.name), target=60, timeout=300, max_worse=0.02
    )


@pytest.mark.slow
def test_25_minute_recording_chunked_matches_unchunked(stack, workers, model_dir, speech, tmp_path):
    """Issue 4: a recording of 25 minutes or more, default chunk sizes (10 min threshold, 5 min chunks).

    It is a meeting's shape: each reference text spoken (espeak-ng) and then a pause as long as it, so half
    of it is speech. The model hears only the speech (VAD), so this costs half of 25 minutes of talk, chunked
    and whole; the chunks still cover 25 minutes, and every word's time counts the pauses before it. A word
    is ~0.06 point of the word error rate."""
    from worker.transcription.audio import SAMPLE_RATE, encode_flac, load

    # Longest first, so the last ones added are short and the recording ends just past 25 minutes.
    texts = sorted((p.read_text().strip() for p in SHARED_SPEECH.glob("en_*.txt")), key=lambda t: -len(t.split()))
    assert texts, f"no English reference texts in {SHARED_SPEECH}"
    spoken = {text: load(speech(text, "en", "wav"), 3600) for text in texts}
    sentences: list[str] = []
    parts: list[np.ndarray] = []
    while sum(len(part) for part in parts) < 25.1 * 60 * SAMPLE_RATE:
        text = texts[len(sentences) % len(texts)]
        if parts:  # a pause as long as the text before it
            parts.append(np.zeros(len(spoken[sentences[-1]]), dtype=np.float32))
        sentences.append(text)
        parts.append(spoken[text])
    text = " ".join(sentences)
    flac = tmp_path / "long.flac"
    flac.write_bytes(encode_flac(np.concatenate(parts)))
    seconds = seconds_of(flac)
    print(f"{len(sentences)} reference texts, {len(text.split())} words: {seconds / 60:.2f} minutes, half of it pauses")
    assert seconds >= 25 * 60, seconds
    chunked_against_unchunked(workers, model_dir, flac, text, target=300, timeout=1800)
