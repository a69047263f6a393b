"""Shared fixtures: the AWS emulator with every resource provisioned, spoken test audio, the model."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from hark import aws, models
from hark.local.emulator import LOCAL_CREDENTIALS, Emulator, free_port
from hark.local.provision import provision
from hark.resources import resources
from hark.settings import get_settings

TEST_STACK = "hark-test"
# The real recordings with reference transcripts: ../shared beside the checkout (as in CI), or
# HARK_SPEECH_DIR.
SHARED_SPEECH = Path(os.environ.get("HARK_SPEECH_DIR") or Path(__file__).resolve().parents[2] / "shared" / "testdata" / "speech")
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


@pytest.fixture
def stack(emulator):
    """A freshly reset emulator with every Hark resource provisioned; returns the Resources."""
    requests.post(f"{emulator.endpoint}/moto-api/reset", timeout=10).raise_for_status()
    aws.reset()
    settings = get_settings()
    res = resources(settings.stack, settings.email_sender)
    provision(aws.client, res, web_origins=settings.authorized_parties, region=settings.region)
    return res


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The bundled multilingual Whisper base model, assembled once."""
    return models.install()


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
                check=True, capture_output=True,
            )
        if fmt == "wav":
            return wav
        out = wav.with_suffix(f".{fmt}")
        if not out.exists():
            subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(wav), str(out)], check=True)
        return out

    return say
