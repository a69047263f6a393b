"""worker.transcription.splitting: where long recordings are cut (pure planning, then real VAD)."""

from __future__ import annotations

import numpy as np
import pytest

from worker.transcription import splitting
from worker.transcription.audio import SAMPLE_RATE, PermanentError, check_size, encode_flac, human_bytes, load


def covers(chunks, duration):
    assert chunks[0].start == 0.0 and chunks[-1].end == pytest.approx(duration)
    assert all(a.end == b.start for a, b in zip(chunks, chunks[1:]))
    assert [c.index for c in chunks] == list(range(len(chunks)))


def test_short_recordings_are_one_chunk():
    assert splitting.plan([], 400.0, target=300) == [splitting.Chunk(0, 0.0, 400.0)]


def test_cuts_fall_in_pauses_near_the_target():
    # A pause every 7 s; a long one (sentence end) at 290-292 s.
    gaps = [(t, t + 0.4) for t in np.arange(5.0, 1200.0, 7.0)] + [(290.0, 292.0)]
    chunks = splitting.plan(sorted(gaps), 1200.0, target=300)
    covers(chunks, 1200.0)
    assert chunks[0].end == 291.0  # the long pause beats the short ones nearer 300 s
    for c in chunks[1:]:
        assert any(a <= c.start <= b for a, b in gaps)
    assert all(150 <= c.duration <= 450 for c in chunks)


def test_continuous_sound_is_cut_at_the_target():
    chunks = splitting.plan([], 1000.0, target=300)
    covers(chunks, 1000.0)
    assert [c.start for c in chunks] == [0.0, 300.0, 600.0]


def test_no_sliver_at_the_end():
    chunks = splitting.plan([(440.0, 440.5)], 460.0, target=300)
    covers(chunks, 460.0)
    assert min(c.duration for c in chunks) >= 150


def sentences_and_pauses(speech) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """espeak-ng sentences with 1.5 s silences between; the samples and (start, end) of each silence."""
    sentences = [
        "The weather was cold and the roads were covered in snow.",
        "We waited at the station for the late train to arrive.",
        "Nobody knew when the next bus would leave the town centre.",
    ]
    silence = np.zeros(int(SAMPLE_RATE * 1.5), dtype=np.float32)
    pieces, silences, t = [], [], 0.0
    for i in range(9):
        voice = load(speech(sentences[i % 3], "en", "wav"), 3600)
        pieces += [voice, silence]
        t += len(voice) / SAMPLE_RATE
        silences.append((t, t + 1.5))
        t += 1.5
    return np.concatenate(pieces), silences


def test_split_cuts_real_speech_in_its_pauses(speech):
    """Silero VAD finds the silences, every cut lands in one."""
    samples, silences = sentences_and_pauses(speech)
    chunks = splitting.split(samples, target=12)
    covers(chunks, len(samples) / SAMPLE_RATE)
    assert len(chunks) >= 3
    for c in chunks[1:]:
        assert any(a <= c.start <= b for a, b in silences), (c, silences)
    assert sum(len(splitting.cut(samples, c)) for c in chunks) == pytest.approx(len(samples), abs=len(chunks))


def test_split_stream_reads_a_window_at_a_time_and_cuts_in_pauses(speech):
    """The streamed split (long uploads: issue 21) never asks for more than 1.5 targets at once, cuts in
    the silences too, and its pieces put together are the recording, sample for sample."""
    samples, silences = sentences_and_pauses(speech)
    duration, target = len(samples) / SAMPLE_RATE, 12
    windows = []

    def read(start: float, end: float) -> np.ndarray:
        windows.append(end - start)
        return samples[round(start * SAMPLE_RATE) : round(end * SAMPLE_RATE)]

    pieces = list(splitting.split_stream(read, duration, target))
    covers([p.chunk for p in pieces], duration)
    assert len(pieces) >= 3 and max(windows) <= target * 1.5
    for p in pieces[1:]:
        assert any(a <= p.chunk.start <= b for a, b in silences), (p.chunk, silences)
    np.testing.assert_array_equal(np.concatenate([p.samples for p in pieces]), samples)
    # Every piece holds speech (two or three sentences of 3-4 s), less than its whole length.
    assert all(2.0 < p.speech_seconds < p.chunk.duration for p in pieces), pieces


def test_size_checks_and_flac():
    with pytest.raises(PermanentError, match="the file is empty"):
        check_size(0, 100)
    with pytest.raises(PermanentError, match="larger than the maximum of 2 GB"):
        check_size(3 * 1024**3, 2 * 1024**3)
    check_size(5, 100)
    assert human_bytes(5 * 1024 * 1024) == "5 MB" and human_bytes(1536) == "1.5 KB"
    flac = encode_flac(np.zeros(SAMPLE_RATE, dtype=np.float32))
    assert flac[:4] == b"fLaC"


def test_pauses_found_in_blocks_are_the_silences_only(speech, monkeypatch):
    """The VAD runs block by block (memory): with blocks of 5 s, seams fall inside sentences, and still
    every pause found is one of the real silences and every silence is found."""
    samples, silences = sentences_and_pauses(speech)
    monkeypatch.setattr(splitting, "VAD_BLOCK_SECONDS", 5)
    gaps = splitting.pauses(samples)[1:]  # after the leading silence espeak-ng leaves before the first word
    assert all(any(a - 0.5 <= start and end <= b + 0.5 for a, b in silences) for start, end in gaps), gaps
    assert all(any(start <= (a + b) / 2 <= end for start, end in gaps) for a, b in silences), gaps
