"""Benchmark of the speaker count and speaker diarization (issues 14 and 27) on conversations generated
from the real test recordings, and on the real phone call that the pyannote.audio wheel ships with its
reference (sample.wav/sample.rttm).

The generated files (hark.evaluation.der.converse) follow a plan of turns: which person, at least how many seconds
of their speech (cut at pauses of 100 ms or more), and a gain after every voice's loudness is evened;
0.5 s gaps. They cover 1 to 6 people, turns from about 1 s (back-channels cut from real speech) to 60 s,
the same person returning after a minute, a man (JFK) and a woman (LJSpeech's reader), English and
Spanish in one file, quiet and loud turns (-12 to +6 dB). A voice shorter than its turns starts again
from its beginning (the short clips are heard more than once). The people: one recording each (MANIFEST.tsv
names the sources); FLEURS clips come from a few readers each, so a file never holds two FLEURS clips of
one language. The reference is each piece's speech (Silero VAD). tests/integration/test_speaker_labels.py
counts on recordings this bench never uses (LibriSpeech 61, en_fleurs_000, en_fleurs_006).

The call is read from the pyannote.audio wheel (MIT), fetched with `pip download`
(`hark.evaluation.der.PYANNOTE_SAMPLE_WHEEL`) into a temporary folder at bench time (not kept in the repo).

Candidates, side by side on the same audio:
  hark          what the worker runs (worker/transcription/diarization.py): sherpa-onnx's offline
                diarization (pyannote segmentation-3.0 + CAM++, threshold clustering at 0.4), then voices
                with under 2 s of speech folded into the nearest voice (HARK_DIARIZATION_FOLD_SECONDS),
                then each pause-to-pause piece of a turn moved to the voice it sounds most like
                (HARK_DIARIZATION_REASSIGN)
  fold-only     hark without the moving of pieces
  previous      the engine before issue 27: neither
  hark-known    the true speaker count given (speakers_expected)
  th-0.3/th-0.5 hark with the clustering threshold 0.1 either side (how fragile the count is)
For each file: whether the speaker count is right, DER without collar and with a 0.25 s collar
(hark.evaluation.der), the share of words on the right speaker (Whisper base's words, faster-whisper, each word
given a speaker as the worker does: diarization.assign_speakers; hark.evaluation.der.words_right), and speed
(model loaded: audio seconds per CPU second of this process). Totals: files counted right, DER over all
the audio (errors summed over reference time summed), words right over all words. Results print as a
table and replace the "Bench" section of docs/diarization.md when --write is given.

    .venv/bin/python bench/diarization.py [--write]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from faster_whisper import WhisperModel, decode_audio  # noqa: E402

from hark import bundled_model, der  # noqa: E402
from hark.domain.transcript import Segment, Transcript, Word  # noqa: E402
from worker.transcription import diarization  # noqa: E402

SPEECH = Path(os.environ.get("HARK_SPEECH_DIR") or REPO.parent / "shared" / "testdata" / "speech")
DOC = REPO / "docs" / "diarization.md"

# One recording per person (MANIFEST.tsv: the source of each).
VOICES = {
    "jfk": "en_jfk.flac",  # a man
    "lj": "en_ljspeech_LJ001-0001-0032_long.flac",  # a woman, 234 s
    "libri2412": "en_librispeech_2412-153948-0000.flac",
    "libri1272": "en_librispeech_1272-128104-0000.wav",
    "mls13697": "es_mls_13697_11991_000000.opus",
    "pico_es": "es_picovoice_test_es.wav",
    "fleurs_en1": "en_fleurs_001.ogg",
    "fleurs_en2": "en_fleurs_002.ogg",
    "fleurs_en7": "en_fleurs_007.ogg",
    "fleurs_es0": "es_fleurs_000.ogg",
    "fleurs_es1": "es_fleurs_001.ogg",
}


def rounds(people: list[str], seconds: list[float], times: int, gains: dict[str, float] | None = None):
    """`times` rounds of the people in turn, the k-th turn at least seconds[k % len(seconds)] s."""
    turns = [p for _ in range(times) for p in people]
    return [(p, seconds[k % len(seconds)], (gains or {}).get(p, 0.0)) for k, p in enumerate(turns)]


# name -> plan of (person, at least seconds, gain dB)
FILES = {
    "1 person, two 60 s turns (LJ)": [("lj", 60.0, 0.0), ("lj", 60.0, 0.0)],
    "2 people, a man returns after 60 s": [
        ("jfk", 4.0, 0.0),
        ("lj", 60.0, 0.0),
        ("jfk", 4.0, 0.0),
        ("lj", 10.0, 0.0),
        ("jfk", 3.0, 0.0),
    ],
    "2 people, 1 s back-channels": [
        *rounds(["lj", "libri1272"], [12.0, 1.0], 4),
        ("libri1272", 4.0, 0.0),
    ],
    "3 people, six turns": rounds(["jfk", "libri2412", "fleurs_en1"], [4.0], 2),
    "3 people, quiet and loud (-12/+6 dB)": rounds(
        ["libri2412", "mls13697", "fleurs_en7"], [3.0], 3, {"libri2412": -12.0, "mls13697": 6.0}
    ),
    "4 people, English and Spanish": rounds(["jfk", "pico_es", "fleurs_es1", "fleurs_en2"], [3.0, 5.0], 3),
    "5 people, turns 1-8 s": rounds(["jfk", "libri2412", "lj", "mls13697", "fleurs_en1"], [2.0, 8.0, 1.0, 4.0], 3),
    "6 people": rounds(["jfk", "libri2412", "libri1272", "lj", "mls13697", "fleurs_es0"], [3.0, 5.0], 3),
}
CALL = "real call (pyannote sample)"


def pyannote_sample(folder: Path) -> tuple[np.ndarray, list[der.Turn]] | None:
    """The call and its reference from the pyannote.audio wheel, or None if pip cannot fetch it."""
    try:
        wav, reference = der.fetch_sample_call(folder)
    except subprocess.CalledProcessError as err:
        print(f"pyannote.audio wheel not available: {err.stderr[-300:]}", file=sys.stderr)
        return None
    return decode_audio(str(wav)), reference


def candidates():
    from hark.domain.settings import get_settings

    threshold = get_settings().diarization_threshold
    lower, higher = round(threshold - 0.1, 2), round(threshold + 0.1, 2)
    return {
        "hark": lambda samples, _n: diarization.diarize(samples),
        "fold-only": lambda samples, _n: diarization.diarize(samples, reassign=False),
        "previous": lambda samples, _n: diarization.diarize(samples, fold_seconds=0.0, reassign=False),
        "hark-known": lambda samples, n: diarization.diarize(samples, speakers_expected=n),
        f"th-{lower}": lambda samples, _n: diarization.diarize(samples, threshold=lower),
        f"th-{higher}": lambda samples, _n: diarization.diarize(samples, threshold=higher),
    }


def words_of(model: WhisperModel, samples: np.ndarray) -> Transcript:
    """Whisper base's words with their times (the language found per file)."""
    segments, info = model.transcribe(samples, word_timestamps=True, vad_filter=True)
    out = [
        Segment(
            start=s.start,
            end=s.end,
            text=s.text,
            words=[Word(start=w.start, end=w.end, word=w.word, probability=w.probability) for w in s.words or []],
        )
        for s in segments
    ]
    return Transcript(language=info.language, duration=info.duration, model="whisper-base", segments=out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="replace the Bench section of docs/diarization.md")
    args = parser.parse_args()

    started = time.monotonic()
    diarization.load()
    load_seconds = time.monotonic() - started
    voices = {name: decode_audio(str(SPEECH / f)) for name, f in VOICES.items()}
    files = {name: der.converse(voices, plan) for name, plan in FILES.items()}
    with tempfile.TemporaryDirectory() as tmp:
        sample = pyannote_sample(Path(tmp))
    if sample:
        files[CALL] = sample
    whisper = WhisperModel(str(bundled_model.install("whisper-base")), device="cpu", compute_type="int8")
    transcripts = {name: words_of(whisper, samples) for name, (samples, _) in files.items()}

    rows = []
    totals = []
    for cand_name, run in candidates().items():
        run(files["3 people, six turns"][0], 3)  # first use (allocations) is not timed
        errors = reference_time = collar_errors = collar_time = right = words = count_right = 0.0
        for file_name, (samples, reference) in files.items():
            n = len({s for _, _, s in reference})
            cpu0 = time.process_time()
            turns = run(samples, n)
            cpu = time.process_time() - cpu0
            hyp = [(t.start, t.end, t.speaker) for t in turns]
            found = len({t.speaker for t in turns})
            plain = der.der(reference, hyp)
            labelled = diarization.assign_speakers(transcripts[file_name], turns)
            said = [(w.start, w.end, w.speaker or "") for s in labelled.segments for w in s.words]
            share = der.words_right(said, reference)
            collared = der.der(reference, hyp, collar=0.25)
            errors += plain.missed + plain.false_alarm + plain.confusion
            reference_time += plain.total
            collar_errors += collared.missed + collared.false_alarm + collared.confusion
            collar_time += collared.total
            right += share * len(said)
            words += len(said)
            count_right += found == n
            parts = f"{plain.missed / plain.total:.1%} / {plain.false_alarm / plain.total:.1%} / {plain.confusion / plain.total:.1%}"
            rows.append(
                f"| {cand_name} | {file_name} | {len(samples) / der.SAMPLE_RATE:.1f} | {found}/{n} | {plain.der:.1%} "
                f"| {parts} | {collared.der:.1%} | {share:.1%} of {len(said)} "
                f"| {(len(samples) / der.SAMPLE_RATE) / cpu:.1f} |"
            )
            print(rows[-1], flush=True)
        totals.append(
            f"| {cand_name} | {count_right:.0f} of {len(files)} | {errors / reference_time:.1%} "
            f"| {collar_errors / collar_time:.1%} | {right / words:.1%} |"
        )
        print(totals[-1], flush=True)

    machine = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU threads, no GPU, "
        f"load average {os.getloadavg()[0]:.1f} at the end"
    )
    section = "\n".join(
        [
            "## Bench",
            "",
            f"bench/diarization.py on {machine}; model load {load_seconds:.1f} s (once per worker process, "
            "not in the speeds). Totals over the "
            f"{len(files)} files (DER: all errors over all scored reference speech):",
            "",
            "| candidate | speaker count right | DER | DER (0.25 s collar) | words on the right speaker |",
            "|---|---|---:|---:|---:|",
            *totals,
            "",
            "| candidate | file | audio s | speakers found/true | DER | missed / false alarm / confusion "
            "| DER (0.25 s collar) | words on the right speaker | audio s per CPU s |",
            "|---|---|---:|---|---:|---:|---:|---:|---:|",
            *rows,
            "",
        ]
    )
    print(section)
    if args.write:
        text = DOC.read_text()
        start = text.index("## Bench")
        end = text.find("\n## ", start + 1)
        DOC.write_text(text[:start] + section + (text[end:] if end != -1 else ""))


if __name__ == "__main__":
    main()
