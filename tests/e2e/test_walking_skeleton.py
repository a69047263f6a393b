"""Issue 2 end to end: the real local stack in a subprocess, driven as a user over HTTP.

A recording travels from POST /jobs through a real presigned upload, the S3 event, the queue, the
CPU worker with the bundled model, DynamoDB, the notify queue and SES to an email in the outbox
whose link downloads the transcript.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
import subprocess
import sys
import time

import pytest
import requests

from hark.evaluation.wer import word_error_rate
from tests.links import link_format

pytestmark = pytest.mark.e2e

ENGLISH = (
    "The quarterly report shows that revenue grew by twelve percent, "
    "while costs remained stable across every region of the company."
)
SPANISH = (
    "El informe trimestral muestra que los ingresos crecieron mucho, "
    "mientras los costos se mantuvieron estables en todas las regiones."
)


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def upload(stack, token: str, path, content_type: str, language: str = "auto") -> str:
    r = requests.post(
        f"{stack.url}/jobs",
        headers=auth(token),
        timeout=30,
        json={"filename": path.name, "content_type": content_type, "size": path.stat().st_size, "language": language},
    )
    assert r.status_code == 201, r.text
    created = r.json()
    up = created["upload"]
    with open(path, "rb") as f:
        s3 = requests.post(up["url"], data=up["fields"], files={"file": (path.name, f, content_type)}, timeout=60)
    assert s3.status_code in (200, 201, 204), s3.text
    return created["job"]["job_id"]


def wait_finished(stack, token: str, job_id: str, timeout: float = 240) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = requests.get(f"{stack.url}/jobs/{job_id}", headers=auth(token), timeout=30).json()
        if job["status"] in ("COMPLETED", "FAILED"):
            return job
        time.sleep(0.5)
    pytest.fail(f"job {job_id} not finished after {timeout}s")


def wait_email(stack, job_id: str, timeout: float = 60) -> email.message.EmailMessage:
    path = stack.outbox / f"{job_id}.eml"
    deadline = time.time() + timeout
    while not path.exists():
        assert time.time() < deadline, f"no email for {job_id} in {stack.outbox}"
        time.sleep(0.3)
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)


def plain_text(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


@pytest.mark.parametrize(
    "text, lang, fmt, content_type, email_claim",
    # Spanish signs in with a token like Clerk's default one, without an email claim: the address comes
    # from the Backend API (the dev issuer's stand-in).
    [(ENGLISH, "en", "wav", "audio/wav", True), (SPANISH, "es", "mp3", "audio/mpeg", False)],
    ids=["english-wav", "spanish-mp3-no-email-claim"],
)
def test_upload_to_emailed_transcript(live_stack, speech, text, lang, fmt, content_type, email_claim):
    token = live_stack.token(f"{lang}@example.com", email_claim=email_claim)
    audio = speech(text, lang, fmt)
    job_id = upload(live_stack, token, audio, content_type)

    job = wait_finished(live_stack, token, job_id)
    assert job["status"] == "COMPLETED", job.get("error")
    assert job["detected_language"] == lang
    transcript = requests.get(job["transcript"]["txt"], timeout=30).text
    error = word_error_rate(text, transcript, lang)
    print(f"\n{lang} {fmt}: WER {error:.1%}  heard: {transcript.strip()!r}")
    assert error <= 0.20

    timestamps = requests.get(job["transcript"]["json"], timeout=30).json()
    assert timestamps["language"] == lang and timestamps["segments"]
    assert all(s["end"] >= s["start"] for s in timestamps["segments"])

    # The email's link (through the gateway's /links/{token}, no bearer token) downloads the same transcript.
    message = wait_email(live_stack, job_id)
    assert message["To"] == f"{lang}@example.com"
    links = re.findall(r"https?://\S+", plain_text(message))
    txt_link = next(
        link for link in links if link.startswith(f"{live_stack.url}/links/") and link_format(link) == "txt"
    )
    got = requests.get(txt_link, timeout=30)
    assert got.history and got.history[0].status_code == 302
    assert got.text == transcript


def test_cli_transcribes_and_prints(live_stack, speech):
    audio = speech("Please send the signed contract to the legal team before Friday.", "en", "mp3")
    result = subprocess.run(
        [sys.executable, "-m", "hark.client.cli", "transcribe", str(audio)],
        env=live_stack.env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert (
        word_error_rate("Please send the signed contract to the legal team before Friday.", result.stdout, "en") <= 0.2
    )


def test_cli_reports_failed_job(live_stack, tmp_path):
    bogus = tmp_path / "notes.wav"
    bogus.write_text("these are meeting notes, not a recording\n" * 20)
    result = subprocess.run(
        [sys.executable, "-m", "hark.client.cli", "transcribe", str(bogus)],
        env=live_stack.env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert "not an audio file" in result.stderr.lower()
    assert result.stdout == ""


def test_not_audio_fails_with_reason_and_email(live_stack, tmp_path):
    token = live_stack.token("notaudio@example.com")
    bogus = tmp_path / "minutes.mp3"
    bogus.write_bytes(b"%PDF-1.4 definitely not audio " * 100)
    job_id = upload(live_stack, token, bogus, "audio/mpeg")
    job = wait_finished(live_stack, token, job_id)
    assert job["status"] == "FAILED"
    assert "not an audio file" in job["error"].lower()
    assert job["transcript"] is None
    message = wait_email(live_stack, job_id)
    assert "not an audio file" in plain_text(message).lower()


def test_no_token_is_401(live_stack):
    for method, path in [("GET", "/jobs"), ("POST", "/jobs"), ("GET", "/jobs/abc")]:
        r = requests.request(method, f"{live_stack.url}{path}", timeout=10)
        assert r.status_code == 401, (method, path, r.text)
    r = requests.get(f"{live_stack.url}/jobs", headers={"Authorization": "Bearer not.a.token"}, timeout=10)
    assert r.status_code == 401


def test_foreign_job_is_404(live_stack, tmp_path):
    owner, stranger = live_stack.token("owner@example.com"), live_stack.token("stranger@example.com")
    r = requests.post(
        f"{live_stack.url}/jobs",
        headers=auth(owner),
        timeout=10,
        json={"filename": "private.wav", "content_type": "audio/wav", "size": 1000},
    )
    job_id = r.json()["job"]["job_id"]
    assert requests.get(f"{live_stack.url}/jobs/{job_id}", headers=auth(owner), timeout=10).status_code == 200
    foreign = requests.get(f"{live_stack.url}/jobs/{job_id}", headers=auth(stranger), timeout=10)
    unknown = requests.get(f"{live_stack.url}/jobs/{'0' * 32}", headers=auth(stranger), timeout=10)
    assert foreign.status_code == unknown.status_code == 404
    # Nothing tells a foreign id from an unknown one (the message only echoes the id asked for).
    assert foreign.json() == json.loads(unknown.text.replace("0" * 32, job_id))
    listed = requests.get(f"{live_stack.url}/jobs", headers=auth(stranger), timeout=10).json()
    assert job_id not in [j["job_id"] for j in listed["items"]]


def test_web_page_and_jwks_served(live_stack):
    page = requests.get(f"{live_stack.url}/", timeout=10)
    assert page.status_code == 200 and "<html" in page.text.lower()
    keys = requests.get(f"{live_stack.url}/.well-known/jwks.json", timeout=10).json()["keys"]
    assert keys and keys[0]["alg"] == "RS256" and "d" not in keys[0]  # public key only
