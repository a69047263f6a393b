"""Locust scenarios against the Hark API (docs/loadtests.md says how to run them).

Two kinds of simulated user; pick one or both by class name after the locustfile:

- ``ApiUser``: the control plane alone. Creates jobs and reads them back without uploading, and
  lists. Measures what the API (authorizer + API Lambda + DynamoDB) sustains. Its jobs stay
  UPLOADING, so each user signs in as a fresh email every ``HARK_LOAD_JOBS_PER_EMAIL`` jobs to keep
  the per-user quota (100 unfinished jobs -> 429) out of the figures.
- ``TranscribeUser``: real use. Creates a job, uploads a short recording to the presigned POST,
  polls the job until COMPLETED or FAILED, lists its jobs now and then. The time from the end of the
  upload to the poll that saw COMPLETED is reported as a request of type ``JOB`` named
  ``upload -> COMPLETED`` (FAILED or a timeout counts as a failure of that entry).

Sign-in: the local stack's ``POST /dev/token`` (a new email per user), or, against a deployed stack,
``HARK_TOKEN`` (one Clerk session token shared by every user) or ``HARK_TOKENS`` (comma-separated,
handed out round-robin). A 429 from POST /jobs is not a failure: it is recorded under its own name,
``POST /jobs (429 quota)``, so it can be counted apart.

Every wait is bounded (``HARK_LOAD_JOB_TIMEOUT`` per job) and locust stops on ``--run-time``.

    .venv/bin/locust -f loadtests/locustfile.py --headless -u 4 -r 4 --run-time 30s \
        --host http://127.0.0.1:8000 ApiUser

Environment knobs (all optional): HARK_TOKEN, HARK_TOKENS, HARK_LOAD_AUDIO (a file to upload instead
of the generated clip), HARK_LOAD_EMAIL_DOMAIN (example.com), HARK_LOAD_JOBS_PER_EMAIL (90),
HARK_LOAD_JOB_TIMEOUT (seconds, 300), HARK_LOAD_POLL_INTERVAL (seconds, 1.0), HARK_LOAD_LANGUAGE (auto).

Only the standard library and locust are used here: this file is imported by locust's process only
(never by pytest, because locust monkey-patches the standard library through gevent).
"""

from __future__ import annotations

import itertools
import math
import os
import shutil
import struct
import subprocess
import tempfile
import time
import uuid
import wave
from pathlib import Path

from locust import HttpUser, between, events, task
from locust.exception import StopUser

SAMPLE_RATE = 16_000
CLIP_TEXT = "This is a load test of the Hark transcription platform. One, two, three."
JOB_TIMEOUT = float(os.environ.get("HARK_LOAD_JOB_TIMEOUT", "300"))
POLL_INTERVAL = float(os.environ.get("HARK_LOAD_POLL_INTERVAL", "1.0"))
JOBS_PER_EMAIL = int(os.environ.get("HARK_LOAD_JOBS_PER_EMAIL", "90"))  # under the quota of 100
EMAIL_DOMAIN = os.environ.get("HARK_LOAD_EMAIL_DOMAIN", "example.com")
LANGUAGE = os.environ.get("HARK_LOAD_LANGUAGE", "auto")
RUN_ID = uuid.uuid4().hex[:8]  # emails differ between runs against the same stack
_emails = itertools.count(1)
_tokens = itertools.count(0)

QUOTA_NAME = "POST /jobs (429 quota)"
COMPLETED_NAME = "upload -> COMPLETED"
TERMINAL = ("COMPLETED", "FAILED")


# -- the recording every TranscribeUser uploads, made once per process ----------------------------
def _tone_wav(path: Path, seconds: float = 3.0) -> None:
    """A speech-like stand-in with the standard library only: a warbling tone with syllable gaps."""
    frames = bytearray()
    for i in range(int(seconds * SAMPLE_RATE)):
        t = i / SAMPLE_RATE
        envelope = 0.5 * (1 + math.sin(2 * math.pi * 4 * t))  # ~4 syllables a second
        pitch = 180 + 40 * math.sin(2 * math.pi * 0.7 * t)
        sample = 0.3 * envelope * math.sin(2 * math.pi * pitch * t)
        frames += struct.pack("<h", int(sample * 32767))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(bytes(frames))


def make_clip() -> Path:
    """HARK_LOAD_AUDIO if given; else espeak-ng speaking CLIP_TEXT; else a generated tone (stdlib)."""
    given = os.environ.get("HARK_LOAD_AUDIO")
    if given:
        return Path(given)
    path = Path(tempfile.mkdtemp(prefix="hark-load-")) / "load-clip.wav"
    if shutil.which("espeak-ng"):
        done = subprocess.run(
            ["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(path), CLIP_TEXT], capture_output=True, timeout=30
        )
        if done.returncode == 0 and path.exists() and path.stat().st_size > 1000:
            return path
    _tone_wav(path)
    return path


CLIP = make_clip()
CLIP_BYTES = CLIP.read_bytes()
CLIP_TYPE = {
    ".wav": "audio/wav",
    ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4",
    ".ogg": "audio/ogg",
    ".flac": "audio/flac",
    ".webm": "audio/webm",
}.get(CLIP.suffix.lower(), "audio/wav")


# -- shared behaviour -----------------------------------------------------------------------------
class HarkUser(HttpUser):
    abstract = True

    def on_start(self) -> None:
        self.jobs: list[str] = []  # this identity's job ids, newest last
        self.created_here = 0
        self.sign_in()

    def sign_in(self) -> None:
        """A bearer token: HARK_TOKENS / HARK_TOKEN for a deployed stack, else the local dev issuer."""
        listed = [t.strip() for t in os.environ.get("HARK_TOKENS", "").split(",") if t.strip()]
        token = listed[next(_tokens) % len(listed)] if listed else os.environ.get("HARK_TOKEN")
        self.rotatable = token is None
        if token is None:
            email = f"load-{RUN_ID}-{next(_emails)}@{EMAIL_DOMAIN}"
            with self.client.post(
                "/dev/token", json={"email": email}, name="POST /dev/token", catch_response=True
            ) as r:
                if r.status_code != 200:
                    r.failure(f"dev sign-in answered {r.status_code}: set HARK_TOKEN for a deployed stack")
                    raise StopUser()
                token = r.json()["token"]
        self.client.headers["Authorization"] = f"Bearer {token}"
        self.jobs, self.created_here = [], 0

    def create_job(self, size: int) -> dict | None:
        """POST /jobs -> the 201 body, or None (429 recorded apart; anything else is a failure)."""
        if self.rotatable and self.created_here >= JOBS_PER_EMAIL:
            self.sign_in()
        body = {"filename": CLIP.name, "content_type": CLIP_TYPE, "size": size, "language": LANGUAGE}
        with self.client.post("/jobs", json=body, name="POST /jobs", catch_response=True) as r:
            if r.status_code == 201:
                try:
                    created = r.json()
                    job_id = created["job"]["job_id"]
                    created["upload"]["url"]
                except (ValueError, KeyError, TypeError):
                    r.failure(f"201 without job and upload: {r.text[:200]}")
                    return None
                r.success()
                self.created_here += 1
                self.jobs.append(job_id)
                del self.jobs[:-50]
                return created
            if r.status_code == 429:
                r.request_meta["name"] = QUOTA_NAME
                r.success()
                if self.rotatable:
                    self.sign_in()
                return None
            r.failure(f"HTTP {r.status_code}: {_error(r)}")
            return None

    def get_job(self, job_id: str, name: str = "GET /jobs/{id}") -> dict | None:
        with self.client.get(f"/jobs/{job_id}", name=name, catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"HTTP {r.status_code}: {_error(r)}")
                return None
            try:
                job = r.json()
                job["status"]
            except (ValueError, KeyError, TypeError):
                r.failure(f"200 without a job: {r.text[:200]}")
                return None
            r.success()
            return job

    def list_jobs(self) -> None:
        with self.client.get("/jobs?limit=20", name="GET /jobs?limit=20", catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"HTTP {r.status_code}: {_error(r)}")
                return
            try:
                body = r.json()
                jobs = body["items"]  # {"items": [...], "next_cursor": str | null}
                assert isinstance(jobs, list) and len(jobs) <= 20
            except (ValueError, KeyError, TypeError, AssertionError):
                r.failure(f"not a page of at most 20 jobs: {r.text[:200]}")
                return
            r.success()


def _error(response) -> str:
    """The message of an {"error": {"code", "message"}} body (or API Gateway's {"message"})."""
    try:
        body = response.json()
    except ValueError:
        return (response.text or "")[:200]
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            return f"{err.get('code')}: {err.get('message')}"
        if "message" in body:
            return str(body["message"])
    return str(body)[:200]


# -- the scenarios --------------------------------------------------------------------------------
class ApiUser(HarkUser):
    """Control-plane throughput: create and read jobs without uploading anything."""

    wait_time = between(0.05, 0.3)

    @task(5)
    def create_then_get(self) -> None:
        created = self.create_job(size=len(CLIP_BYTES))
        if created:
            self.get_job(created["job"]["job_id"])

    @task(3)
    def get_recent(self) -> None:
        if self.jobs:
            self.get_job(self.jobs[-1 - (len(self.jobs) // 2)])  # a mid-aged one: not always the hot key

    @task(2)
    def list_page(self) -> None:
        self.list_jobs()


class TranscribeUser(HarkUser):
    """Real use: create, upload to S3 with the presigned POST, poll until finished, list now and then."""

    wait_time = between(1, 3)

    @task(3)
    def transcribe(self) -> None:
        created = self.create_job(size=len(CLIP_BYTES))
        if not created:
            return
        job_id, upload = created["job"]["job_id"], created["upload"]
        # The fields first, the file last, as S3's POST policy requires (requests keeps that order).
        with self.client.post(
            upload["url"],
            data=upload.get("fields") or {},
            files={"file": (CLIP.name, CLIP_BYTES, CLIP_TYPE)},
            name="S3 presigned POST",
            catch_response=True,
        ) as r:
            if r.status_code not in (200, 201, 204):
                r.failure(f"HTTP {r.status_code}: {r.text[:200]}")
                return
            r.success()
        uploaded = time.monotonic()
        deadline = uploaded + JOB_TIMEOUT
        while True:
            job = self.get_job(job_id, name="GET /jobs/{id} (poll)")
            now = time.monotonic()
            status = job["status"] if job else None
            if status in TERMINAL or now >= deadline:
                exception = None
                if status == "FAILED":
                    exception = RuntimeError(f"job FAILED: {job.get('error')}")
                elif status != "COMPLETED":
                    exception = TimeoutError(f"job still {status} after {JOB_TIMEOUT:.0f}s")
                self.environment.events.request.fire(
                    request_type="JOB",
                    name=COMPLETED_NAME,
                    response_time=(now - uploaded) * 1000,
                    response_length=0,
                    exception=exception,
                    context={"job_id": job_id},
                )
                return
            time.sleep(min(POLL_INTERVAL, max(0.0, deadline - now)))  # gevent-patched: yields

    @task(1)
    def list_page(self) -> None:
        self.list_jobs()


@events.init.add_listener
def _announce(environment, **_kwargs) -> None:
    print(f"hark loadtest: run {RUN_ID}, clip {CLIP} ({len(CLIP_BYTES)} bytes, {CLIP_TYPE})", flush=True)
