"""Diarization error rate (DER), as NIST's md-eval scores it, for bench/diarization.py and the tests.

DER = (missed speech + false alarm + speaker confusion) / reference speech time, on 10 ms frames,
overlapping speech scored (a frame with two reference speakers counts twice), with the one-to-one
speaker mapping that maximises the time matched (the Hungarian algorithm). `collar` removes that
many seconds either side of every reference turn boundary from scoring (md-eval's -c 0.25 is
collar=0.25; pyannote.metrics calls the same thing collar=0.5, the total width).
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# (start, end, speaker) in seconds.
Turn = tuple[float, float, str]
STEP = 0.01  # seconds per frame


@dataclass(frozen=True)
class Score:
    der: float
    missed: float  # seconds
    false_alarm: float
    confusion: float
    total: float  # scored reference speech, seconds (overlap counted per speaker)
    mapping: dict[str, str]  # hypothesis speaker -> reference speaker


def _frame(seconds: float) -> int:
    return int(np.rint(seconds / STEP))


def _matrix(turns: Sequence[Turn], frames: int) -> tuple[np.ndarray, list[str]]:
    speakers = sorted({s for _, _, s in turns})
    m = np.zeros((frames, len(speakers)), dtype=bool)
    for start, end, speaker in turns:
        m[_frame(start) : _frame(end), speakers.index(speaker)] = True
    return m, speakers


def mapping(reference: Sequence[Turn], hypothesis: Sequence[Turn], scored: np.ndarray | None = None) -> dict[str, str]:
    """The one-to-one map hypothesis speaker -> reference speaker that matches the most time."""
    from scipy.optimize import linear_sum_assignment

    frames = int(np.ceil(max([e for _, e, _ in [*reference, *hypothesis]], default=0.0) / STEP)) + 1
    ref, ref_names = _matrix(reference, frames)
    hyp, hyp_names = _matrix(hypothesis, frames)
    if scored is not None:
        ref, hyp = ref & scored[:frames, None], hyp & scored[:frames, None]
    overlap = ref.T.astype(np.int64) @ hyp.astype(np.int64)  # ref x hyp frames in common
    rows, cols = linear_sum_assignment(-overlap) if overlap.size else ([], [])
    return {hyp_names[c]: ref_names[r] for r, c in zip(rows, cols, strict=True) if overlap[r, c] > 0}


def der(reference: Sequence[Turn], hypothesis: Sequence[Turn], collar: float = 0.0) -> Score:
    frames = int(np.ceil(max([e for _, e, _ in [*reference, *hypothesis]], default=0.0) / STEP)) + 1
    scored = np.ones(frames, dtype=bool)
    if collar > 0:
        for start, end, _ in reference:
            for edge in (start, end):
                scored[max(0, _frame(edge - collar)) : _frame(edge + collar)] = False
    ref, ref_names = _matrix(reference, frames)
    hyp, hyp_names = _matrix(hypothesis, frames)
    ref, hyp = ref & scored[:, None], hyp & scored[:, None]
    best = mapping(reference, hypothesis, scored)
    n_ref, n_hyp = ref.sum(axis=1), hyp.sum(axis=1)
    correct = np.zeros(frames, dtype=np.int64)
    for h, r in best.items():
        correct += ref[:, ref_names.index(r)] & hyp[:, hyp_names.index(h)]
    missed = np.maximum(n_ref - n_hyp, 0).sum()
    false_alarm = np.maximum(n_hyp - n_ref, 0).sum()
    confusion = (np.minimum(n_ref, n_hyp) - correct).sum()
    total = n_ref.sum()
    return Score(
        der=float((missed + false_alarm + confusion) / total) if total else 0.0,
        missed=float(missed * STEP),
        false_alarm=float(false_alarm * STEP),
        confusion=float(confusion * STEP),
        total=float(total * STEP),
        mapping=best,
    )


def read_rttm(text: str) -> list[Turn]:
    """SPEAKER <file> <channel> <start> <duration> <NA> <NA> <speaker> ... lines."""
    turns = []
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] == "SPEAKER":
            start, duration = float(parts[3]), float(parts[4])
            turns.append((start, start + duration, parts[7]))
    return turns


def words_right(words: Sequence[Turn], reference: Sequence[Turn]) -> float:
    """The share of (start, end, speaker) words whose speaker is the reference speaker at the word's
    middle (the nearest reference turn in a gap), under the best one-to-one mapping of labels to people."""
    best = mapping(reference, words)

    def truth(t: float) -> str:
        return min(reference, key=lambda r: 0 if r[0] <= t <= r[1] else min(abs(t - r[0]), abs(t - r[1])))[2]

    right = sum(best.get(speaker) == truth((start + end) / 2) for start, end, speaker in words)
    return right / len(words) if words else 0.0


# -- test recordings joined into conversations ------------------------------------------------------------
SAMPLE_RATE = 16000


def speech_spans(samples: np.ndarray, min_silence_ms: int = 300) -> list[tuple[float, float]]:
    """(start, end) seconds of speech by Silero VAD (inside faster-whisper): the reference's speech time,
    split at pauses of `min_silence_ms` or more."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    spans = get_speech_timestamps(samples, VadOptions(min_silence_duration_ms=min_silence_ms, speech_pad_ms=30))
    return [(s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE) for s in spans]


def pieces(samples: np.ndarray, target_seconds: float = 4.0) -> list[tuple[np.ndarray, list[tuple[float, float]]]]:
    """The recording cut at pauses into pieces of about `target_seconds` of speech, each with its speech
    spans (relative to the piece): the turns a joined conversation is made of."""
    out = []
    group: list[tuple[float, float]] = []
    for span in [*speech_spans(samples), None]:
        if span is not None:
            group.append(span)
        if group and (span is None or group[-1][1] - group[0][0] >= target_seconds):
            start, end = group[0][0], group[-1][1]
            piece = samples[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)]
            out.append((piece, [(a - start, b - start) for a, b in group]))
            group = []
    return out


def join(speakers: dict[str, np.ndarray], gap_seconds: float = 0.5, turn_seconds: float = 4.0):
    """A conversation from one recording per speaker: their pieces taken in turn (round robin: A B C
    A B C ...) with `gap_seconds` of silence between. Returns (samples, reference turns)."""
    queues = {name: pieces(samples, turn_seconds) for name, samples in speakers.items()}
    gap = np.zeros(int(gap_seconds * SAMPLE_RATE), dtype=np.float32)
    parts: list[np.ndarray] = []
    reference: list[Turn] = []
    at = 0.0
    while any(queues.values()):
        for name, queue in queues.items():
            if not queue:
                continue
            piece, spans = queue.pop(0)
            reference += [(at + a, at + b, name) for a, b in spans]
            parts += [piece.astype(np.float32), gap]
            at += (len(piece) + len(gap)) / SAMPLE_RATE
    return (np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)), reference


# The real call the bench and the tests score: pyannote.audio's sample (30 s, two people, overlapping
# speech) with its reference RTTM, MIT, read from this wheel (pinned: the sample is the reference).
PYANNOTE_SAMPLE_WHEEL = "pyannote.audio==4.0.7"
_SAMPLE = "pyannote/audio/sample/sample"


def fetch_sample_call(folder: Path) -> tuple[Path, list[Turn]]:
    """The call's WAV (extracted into `folder`) and its reference turns; CalledProcessError when pip cannot
    fetch the wheel (no registry)."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", PYANNOTE_SAMPLE_WHEEL, "-d", str(folder)],
        check=True,
        capture_output=True,
        text=True,
    )
    with zipfile.ZipFile(next(folder.glob("pyannote_audio-*.whl"))) as z:
        z.extract(f"{_SAMPLE}.wav", folder)
        rttm = z.read(f"{_SAMPLE}.rttm").decode()
    return folder / f"{_SAMPLE}.wav", read_rttm(rttm)


def converse(
    voices: dict[str, np.ndarray], plan: Sequence[tuple[str, float, float]], gap_seconds: float = 0.5
) -> tuple[np.ndarray, list[Turn]]:
    """A conversation in a given order: `plan` is (voice, seconds, gain dB) per turn, each turn the voice's
    next stretch of speech cut at pauses (at least `seconds`, or one pause-to-pause span when that is
    longer; a voice that runs out starts again from its beginning), scaled by the gain after loudness is
    evened (every voice to the same RMS first). Pauses of 100 ms or more cut, so that a short clip still
    gives two turns of different speech. Returns (samples, reference turns)."""
    spans = {name: speech_spans(samples, min_silence_ms=100) for name, samples in voices.items()}
    level = {name: float(np.sqrt(np.mean(samples**2))) or 1.0 for name, samples in voices.items()}
    cursor = dict.fromkeys(voices, 0)
    gap = np.zeros(int(gap_seconds * SAMPLE_RATE), dtype=np.float32)
    parts: list[np.ndarray] = []
    reference: list[Turn] = []
    at = 0.0
    for name, seconds, gain_db in plan:
        group: list[tuple[float, float]] = []
        while not group or group[-1][1] - group[0][0] < seconds:
            if cursor[name] >= len(spans[name]):
                if group:
                    break
                cursor[name] = 0
            group.append(spans[name][cursor[name]])
            cursor[name] += 1
        start, end = group[0][0], group[-1][1]
        piece = voices[name][int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)]
        piece = piece * (0.1 * 10 ** (gain_db / 20) / level[name])
        reference += [(at + a - start, at + b - start, name) for a, b in group]
        parts += [np.clip(piece, -1, 1).astype(np.float32), gap]
        at += (len(piece) + len(gap)) / SAMPLE_RATE
    return (np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)), reference


def halves(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The recording's speech cut in two at its quietest 20 ms within the middle third (between words):
    two turns of different speech from one short clip."""
    start, end = (int(x * SAMPLE_RATE) for x in (speech_spans(samples)[0][0], speech_spans(samples)[-1][1]))
    speech = samples[start:end]
    frame = SAMPLE_RATE // 50
    energy = np.convolve(speech**2, np.ones(frame), mode="same")
    third = len(speech) // 3
    cut = third + int(np.argmin(energy[third : 2 * third]))
    return speech[:cut], speech[cut:]
