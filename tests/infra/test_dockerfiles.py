"""The worker Dockerfiles, checked structurally (no Docker engine here): base image, ffmpeg, non-root
user, health check, the worker command."""

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


def test_gpu_image_is_cuda_with_cudnn_ffmpeg_and_the_baked_model():
    ins = instructions(REPO / "worker" / "transcription" / "Dockerfile")
    base = args_default(ins, "CUDA_IMAGE")
    assert base.startswith("nvidia/cuda:12.") and "-cudnn-runtime-" in base
    assert [a for k, a in ins if k == "FROM"][-1] == "${CUDA_IMAGE}"
    stage = final_stage(ins)
    assert any(k == "RUN" and re.search(r"apt-get install .*\bffmpeg\b", a) for k, a in stage)
    assert any(k == "COPY" and "${MODEL_SRC}" in a and a.endswith("/opt/hark/model/") for k, a in stage)
    env = " ".join(a for k, a in stage if k == "ENV")
    assert "HARK_MODEL_DIR=/opt/hark/model" in env and "HARK_DEVICE=cuda" in env
    assert any(k == "RUN" and 'pip install ".[worker]"' in a for k, a in ins)


def test_notification_image_is_slim_python_without_whisper():
    ins = instructions(REPO / "worker" / "notification" / "Dockerfile")
    assert args_default(ins, "PYTHON_IMAGE").startswith("python:3.1")
    assert any(k == "RUN" and a == "pip install ." for k, a in ins)
    assert not any("[worker]" in a for _, a in ins)


def test_the_cdk_app_builds_these_dockerfiles(synth):
    assets = json.loads((synth.outdir / "Workers.assets.json").read_text())["dockerImages"].values()
    files = sorted(a["source"]["dockerFile"] for a in assets)
    assert files == ["worker/notification/Dockerfile", "worker/transcription/Dockerfile"]
    gpu = next(a for a in assets if a["source"]["dockerFile"].startswith("worker/transcription"))
    assert gpu["source"]["dockerBuildArgs"]["MODEL_SRC"]
    assert gpu["source"].get("platform") == "linux/amd64"
