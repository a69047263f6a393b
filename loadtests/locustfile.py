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

Every API call goes through the Python client, ``hark.client.sdk.Hark``, the same domain calls the CLI
makes. Locust still times each request: the client takes an httpx transport, and ``LocustTransport``
wraps httpx's own, timing each request (to the end of its body) and firing locust's ``request`` event
with its name, as locust's HttpUser does. This file is imported by locust's process only (never by
pytest, because locust monkey-patches the standard library through gevent; httpx's sockets then
yield like requests' do).
"""

from __future__ import annotations

import io
import itertools
import math
import os
import re
import shutil
import struct
import subprocess
import tempfile
import time
import uuid
import wave
from pathlib import Path

import httpx
from locust import User, between, events, task
from locust.exception import StopUser

from hark.client import ApiError, Hark, HarkError, JobView, QuotaExceeded

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


# -- every request timed for locust ---------------------------------------------------------------
_JOB_ID = re.compile(r"/[0-9a-f]{32}(?=/|$)")


class LocustTransport(httpx.BaseTransport):
    """httpx's transport, each request timed and reported to locust under a name: `next_name` if a
    caller set it for the next request, else "METHOD /path" with job ids as {id} (the presigned POST,
    to another host, is "S3 presigned POST"). A 4xx/5xx is a failure, except a 429 from POST /jobs,
    counted apart under QUOTA_NAME."""

    def __init__(self, user: User) -> None:
        self.user = user
        self.inner = httpx.HTTPTransport()
        self.next_name: str | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        name = self.next_name or self._name(request)
        self.next_name = None
        started = time.perf_counter()
        # Only an Exception is this request's failure. locust stops a user by raising GreenletExit in it;
        # that must pass through untouched, or the user survives its kill and locust waits on it forever.
        try:
            response = self.inner.handle_request(request)
            response.read()  # the body's time counts, as in locust's HttpUser
        except Exception as err:
            self._report(request, name, started, None, err)
            raise
        exception = None
        if response.status_code >= 400:
            if response.status_code == 429 and name == "POST /jobs":
                name = QUOTA_NAME
            else:
                exception = RuntimeError(f"HTTP {response.status_code}: {_error(response)}")
        self._report(request, name, started, response, exception)
        return response

    def _report(
        self,
        request: httpx.Request,
        name: str,
        started: float,
        response: httpx.Response | None,
        exception: Exception | None,
    ) -> None:
        self.user.environment.events.request.fire(
            request_type=request.method,
            name=name,
            response_time=(time.perf_counter() - started) * 1000,
            response_length=len(response.content) if response is not None else 0,
            exception=exception,
            context={},
            url=str(request.url),
            response=response,
        )

    def _name(self, request: httpx.Request) -> str:
        if request.url.host != httpx.URL(self.user.host).host or request.url.port != httpx.URL(self.user.host).port:
            return "S3 presigned POST" if request.method == "POST" else f"S3 {request.method}"
        return f"{request.method} {_JOB_ID.sub('/{id}', request.url.path)}"

    def close(self) -> None:
        self.inner.close()


def _error(response: httpx.Response) -> str:
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


# -- shared behaviour -----------------------------------------------------------------------------
class HarkUser(User):
    abstract = True

    def on_start(self) -> None:
        self.transport = LocustTransport(self)
        self.hark: Hark | None = None
        self.jobs: list[str] = []  # this identity's job ids, newest last
        self.created_here = 0
        self.sign_in()

    def on_stop(self) -> None:
        if self.hark is not None:
            self.hark.close()

    def sign_in(self) -> None:
        """A bearer token: HARK_TOKENS / HARK_TOKEN for a deployed stack, else the local dev issuer."""
        listed = [t.strip() for t in os.environ.get("HARK_TOKENS", "").split(",") if t.strip()]
        token = listed[next(_tokens) % len(listed)] if listed else os.environ.get("HARK_TOKEN")
        self.rotatable = token is None
        if token is None:
            email = f"load-{RUN_ID}-{next(_emails)}@{EMAIL_DOMAIN}"
            with httpx.Client(base_url=self.host, transport=self.transport, timeout=30) as http:
                r = http.post("/dev/token", json={"email": email})
            if r.status_code != 200:
                raise StopUser()  # recorded as a failure: set HARK_TOKEN for a deployed stack
            token = r.json()["token"]
        if self.hark is not None:
            self.hark.close()
        self.hark = Hark(self.host, token, transport=self.transport, timeout=60)
        self.jobs, self.created_here = [], 0

    def _unexpected(self, name: str, err: HarkError) -> None:
        """An answer the client could not read (its request was timed already): a failure of its own."""
        self.environment.events.request.fire(
            request_type="CLIENT", name=name, response_time=0, response_length=0, exception=err, context={}
        )

    def create_job(self, size: int) -> str | None:
        """POST /jobs -> the job id (its upload form kept in self.form), or None (429 counted apart)."""
        if self.rotatable and self.created_here >= JOBS_PER_EMAIL:
            self.sign_in()
        assert self.hark is not None
        try:
            created = self.hark.create(CLIP.name, size, content_type=CLIP_TYPE, language=LANGUAGE)
        except QuotaExceeded:
            if self.rotatable:
                self.sign_in()
            return None
        except ApiError:
            return None  # the transport recorded the failure
        except HarkError as err:
            self._unexpected("POST /jobs", err)
            return None
        self.created_here += 1
        self.jobs.append(created.job.job_id)
        del self.jobs[:-50]
        self.form = created.upload
        return created.job.job_id

    def get_job(self, job_id: str, name: str = "GET /jobs/{id}") -> JobView | None:
        assert self.hark is not None
        self.transport.next_name = name
        try:
            return self.hark.get(job_id)
        except ApiError:
            return None
        except HarkError as err:
            self._unexpected(name, err)
            return None

    def list_jobs(self) -> None:
        assert self.hark is not None
        self.transport.next_name = "GET /jobs?limit=20"
        try:
            page = self.hark.list(limit=20)
        except ApiError:
            return
        except HarkError as err:
            self._unexpected("GET /jobs?limit=20", err)
            return
        if len(page.items) > 20:
            self._unexpected("GET /jobs?limit=20", HarkError(f"{len(page.items)} jobs in a page of at most 20"))


# -- the scenarios --------------------------------------------------------------------------------
class ApiUser(HarkUser):
    """Control-plane throughput: create and read jobs without uploading anything."""

    wait_time = between(0.05, 0.3)

    @task(5)
    def create_then_get(self) -> None:
        job_id = self.create_job(size=len(CLIP_BYTES))
        if job_id:
            self.get_job(job_id)

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
        job_id = self.create_job(size=len(CLIP_BYTES))
        if not job_id:
            return
        assert self.hark is not None
        # The fields first, the file last, as S3's POST policy requires (hark.client.sdk.Hark.upload).
        try:
            self.hark.upload(self.form, io.BytesIO(CLIP_BYTES), filename=CLIP.name)
        except HarkError:
            return  # the transport recorded the refusal
        uploaded = time.monotonic()
        deadline = uploaded + JOB_TIMEOUT
        while True:
            job = self.get_job(job_id, name="GET /jobs/{id} (poll)")
            now = time.monotonic()
            status = job.status.value if job else None
            if status in TERMINAL or now >= deadline:
                exception = None
                if status == "FAILED":
                    exception = RuntimeError(f"job FAILED: {job.error if job else None}")
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
