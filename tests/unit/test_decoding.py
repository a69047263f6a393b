"""worker.transcription.audio.decode: a child process decodes the file as a stream, counting samples, under
a memory limit (issue 21). The corpus of hostile files is tests/hostile_audio.py."""

from __future__ import annotations

import numpy as np
import pytest
from faster_whisper import decode_audio

from tests.conftest import SHARED_SPEECH
from tests.hostile_audio import EMPTY, TOO_LONG, corpus, lying_flac, tone
from worker.transcription import audio

MAX_SECONDS = 60
# What a hostile file may add to the decoding child's peak over a plain 8 s WAV's: decoding holds a frame
# or two at a time (the largest here, 4096 samples x 8 channels x 4 bytes, is 128 KB) and FFmpeg's buffers.
FRAME_HEADROOM = 16 * 1024 * 1024


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    return corpus(tmp_path_factory.mktemp("hostile"))


def test_each_hostile_file_decodes_to_its_audio_or_fails_with_its_reason(hostile, tmp_path):
    reference = audio.decode(tone(tmp_path / "plain.wav", seconds=8), tmp_path / "plain.pcm", MAX_SECONDS)
    wrong, peaks = {}, {}
    for case in hostile:
        if case.reason == EMPTY:  # refused by its size before decoding (test_splitting: check_size)
            continue
        try:
            pcm = audio.decode(case.path, tmp_path / f"{case.name}.pcm", MAX_SECONDS)
        except audio.PermanentError as err:
            if case.reason is None or not err.reason.startswith(case.reason):
                wrong[case.name] = f"failed with {err.reason!r}, expected {case.reason or case.seconds}"
            continue
        peaks[case.name] = pcm.peak_rss_bytes
        assert pcm.path.stat().st_size == pcm.samples * 2  # 16-bit mono, every sample counted
        if case.seconds is None or not case.seconds[0] <= pcm.seconds <= case.seconds[1]:
            wrong[case.name] = f"decoded {pcm.seconds:.3f} s, expected {case.reason or case.seconds}"
    assert wrong == {}
    assert len(peaks) >= 15
    # Memory does not follow what a header claims (5.6 or 10 hours here) nor the rate or channels.
    assert max(peaks.values()) <= reference.peak_rss_bytes + FRAME_HEADROOM, peaks


def test_decoding_stops_past_the_limit_whatever_the_header_says(tmp_path):
    """30 minutes of silence whose STREAMINFO says one second: refused once decoding passes the limit,
    with no more than the limit (and one frame) written."""
    liar = lying_flac(tmp_path / "liar.flac", hours=0.5, claims_seconds=1)
    dest = tmp_path / "liar.pcm"
    with pytest.raises(audio.PermanentError) as refused:
        audio.decode(liar, dest, max_seconds=600)
    assert refused.value.reason == f"{TOO_LONG} 10 minutes (found while decoding)"
    written = dest.stat().st_size / 2 / audio.SAMPLE_RATE
    assert 600 < written < 601


def test_decoded_samples_are_faster_whispers(tmp_path):
    """The stream decoder gives the very samples faster-whisper's own decode_audio gives (the model's
    reference input), for each container the shared recordings come in."""
    files = {}
    for path in sorted(SHARED_SPEECH.iterdir()):
        files.setdefault(path.suffix, path)
    files.pop(".txt", None), files.pop(".tsv", None)
    assert {".flac", ".ogg", ".wav"} <= set(files)
    for path in files.values():
        pcm = audio.decode(path, tmp_path / "pcm", 3600)
        np.testing.assert_array_equal(pcm.read(), decode_audio(str(path), sampling_rate=audio.SAMPLE_RATE))
        # Read a stretch at a time, the same samples.
        middle = pcm.seconds / 2
        np.testing.assert_array_equal(np.concatenate([pcm.read(0, middle), pcm.read(middle)]), pcm.read())


def test_a_decoder_without_room_to_start_is_the_workers_fault_not_the_files(tmp_path):
    """A memory limit too small for PyAV itself fails before the file is opened: a transient error
    (retried, the setting fixed), never a job failed for its file."""
    clip = tone(tmp_path / "clip.wav", seconds=1)
    with pytest.raises(RuntimeError, match="the decoder failed"):
        audio.decode(clip, tmp_path / "pcm", MAX_SECONDS, memory_bytes=32 * 1024 * 1024)
    assert audio.decode(clip, tmp_path / "pcm", MAX_SECONDS).samples == audio.SAMPLE_RATE


@pytest.mark.parametrize(
    ("signal_name", "outcome"),
    [("SEGV", audio.PermanentError), ("KILL", audio.PermanentError), ("TERM", RuntimeError)],
)
def test_a_decoder_ended_by_a_signal(tmp_path, monkeypatch, signal_name, outcome):
    """A decoder that crashes (or that the OOM killer ends) fails only its own file; one stopped by the
    host (SIGTERM) says nothing about the file: a transient error, retried. The child here is a real
    process that ends itself by the signal where the decoder would start."""
    dying = tmp_path / "dying-decoder"
    dying.write_text(f"#!/bin/sh\nkill -{signal_name} $$\n")
    dying.chmod(0o755)
    monkeypatch.setattr(audio.sys, "executable", str(dying))
    with pytest.raises(outcome) as ended:
        audio.decode(tone(tmp_path / "clip.wav", seconds=1), tmp_path / "pcm", MAX_SECONDS)
    if outcome is audio.PermanentError:
        assert ended.value.reason == f"not an audio file (the decoder stopped on it: SIG{signal_name})"
