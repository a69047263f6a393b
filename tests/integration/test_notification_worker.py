"""The notification worker as it runs in production: a subprocess long-polling the emulator's queue.

No mocks: SQS, DynamoDB, S3 and SES are moto's server (the `stack` fixture); the sent mail is read back
from moto's /moto-api/data.json (ses -> RawMessage, since the worker uses send_raw_email).
"""

from __future__ import annotations

import email
import os
import signal
import socket
import threading
import time
from datetime import datetime
from email import policy
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
import requests

from hark.domain import aws
from hark.domain.jobs import Job, JobStatus, new_job_id, now_iso
from hark.domain.keys import TRANSCRIPT_FORMATS, transcript_key
from hark.domain.messages import NotifyMessage
from hark.domain.settings import Settings, get_settings
from hark.local.emulator import free_port
from tests.gateway import running_gateway
from tests.links import follow, link_expiry, link_format
from tests.workers import WorkerProcess

pytestmark = pytest.mark.waits  # mostly waiting out a send lease and back-offs (tests/parallel.py)

REPO = Path(__file__).resolve().parents[2]
API_URL = "https://api.hark.test/prod"  # HARK_API_URL of the workers here: the links' base
TRANSCRIPT = (
    "Welcome to the quarterly planning meeting. Today we will review the budget, the hiring plan and the "
    "launch schedule for the new transcription service. First, the budget: we are slightly under plan "
    "for the third quarter, mostly because the GPU instances were cheaper than expected. Second, hiring: "
    "two engineers start next month. Third, the launch: we are on track for the end of the year.\n"
)


# -- helpers ------------------------------------------------------------------------------------
def make_job(
    store,
    *,
    status: JobStatus,
    filename="meeting notes.m4a",
    error=None,
    email_addr="ana@example.com",
    user_id="user_a",
):
    job_id = new_job_id()
    store.jobs.create(
        Job(
            job_id=job_id,
            user_id=user_id,
            email=email_addr,
            filename=filename,
            content_type="audio/mp4",
            size_bytes=1234,
            audio_key=f"uploads/{user_id}/{job_id}/meeting_notes.m4a",
            status=JobStatus.UPLOADING,
            created_at=now_iso(),
            updated_at=now_iso(),
        )
    )
    return finish(store, job_id, status, error)


def finish(store, job_id: str, status: JobStatus, error: str | None = None) -> Job:
    """What the transcription worker does: COMPLETED with its four transcripts, or FAILED."""
    if status == JobStatus.FAILED:
        store.jobs.fail(job_id, error or "The file could not be decoded as audio.")
        return store.jobs.get(job_id)
    store.jobs.mark_queued(job_id, now_iso())
    store.jobs.claim(job_id, "msg-1")
    s3 = aws.client("s3")
    bucket = aws.stack_resources().transcripts_bucket.name
    user_id = store.jobs.get(job_id).user_id
    for fmt in TRANSCRIPT_FORMATS:
        body = TRANSCRIPT if fmt == "txt" else f"{fmt} of {job_id}"
        s3.put_object(Bucket=bucket, Key=transcript_key(user_id, job_id, fmt), Body=body.encode())
    return store.jobs.complete(job_id, "en", 754.2)


def notify(job_id: str, body: str | None = None) -> None:
    url = aws.queue_url(aws.stack_resources().notify_queue.name)
    aws.client("sqs").send_message(QueueUrl=url, MessageBody=body or NotifyMessage(job_id=job_id).model_dump_json())


def queue_depth(name: str) -> int:
    attrs = aws.client("sqs").get_queue_attributes(
        QueueUrl=aws.queue_url(name),
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return sum(int(v) for v in attrs.values())


def sent_emails(endpoint: str) -> list[dict]:
    data = requests.get(f"{endpoint}/moto-api/data.json", timeout=10).json()
    return data.get("ses", {}).get("RawMessage", [])


def parsed(raw: dict):
    return email.message_from_string(raw["raw_data"], policy=policy.default)


def wait_until(predicate, timeout: float, what: str, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def store(stack):
    return aws.job_store()


@pytest.fixture
def outbox(tmp_path) -> Path:
    return tmp_path / "outbox"


@pytest.fixture
def start_worker(stack, tmp_path, outbox):
    started: list[WorkerProcess] = []

    def start(**overrides: str) -> WorkerProcess:
        env = dict(os.environ)
        env.update(
            {
                "HARK_OUTBOX_DIR": str(outbox),
                "HARK_POLL_WAIT_SECONDS": "1",
                "HARK_NOTIFY_BACKOFF_BASE_SECONDS": "1",
                "HARK_NOTIFY_BACKOFF_MAX_SECONDS": "4",
                "HARK_NOTIFY_LEASE_SECONDS": "30",
                "HARK_API_URL": API_URL,
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.pop("HARK_SES_ENDPOINT_URL", None)
        env.update(overrides)
        w = WorkerProcess("worker.notification", tmp_path / f"worker-{len(started)}.log", env)
        started.append(w)
        return w

    yield start
    for w in started:
        if w.proc.poll() is None:
            w.stop()


def all_done(endpoint: str, n: int) -> bool:
    """At least n emails sent, and every notify message settled: none visible, delayed or in flight."""
    return len(sent_emails(endpoint)) >= n and queue_depth(aws.stack_resources().notify_queue.name) == 0


class HungSes:
    """A TCP port that accepts connections and never answers: SES hanging in the middle of a call."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.connections.append(conn)

    def close(self) -> None:
        self.server.close()
        for conn in self.connections:
            conn.close()


# -- tests --------------------------------------------------------------------------------------
def test_completed_job_gets_one_email_with_a_working_link(emulator, store, start_worker, outbox):
    job = make_job(store, status=JobStatus.COMPLETED)
    worker = start_worker()
    notify(job.job_id)
    wait_until(lambda: all_done(emulator.endpoint, 1), 30, "the email")

    [raw] = sent_emails(emulator.endpoint)
    msg = parsed(raw)
    assert raw["source"] == "transcripts@hark.local" and "ana@example.com" in raw["destinations"]
    assert msg["Subject"] == 'Your transcript of "meeting notes.m4a" is ready'
    assert msg["To"] == "ana@example.com"
    text = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    html = msg.get_body(("html",)).get_content()
    assert "English (en)" in text and "12 min 34 s" in text
    assert "Welcome to the quarterly planning meeting." in text and "Welcome to the quarterly" in html
    preview = text.split("Preview:\n")[1].split("\n\n")[0].strip()
    assert preview.startswith("Welcome to the quarterly") and preview.endswith("...") and len(preview) <= 304
    # Four API links (txt first, then json, srt, vtt), no S3 URL: nothing in them expires with a credential.
    links = [w for w in text.split() if w.startswith("http")]
    links = [u for u in links if u.startswith(f"{API_URL}/links/")]
    assert [link_format(u) for u in links] == ["txt", "json", "srt", "vtt"], links
    assert "X-Amz" not in text and "X-Amz" not in html
    sent_at = parsedate_to_datetime(msg["Date"]).timestamp()
    for url in links:  # each valid the setting's 24 h from when the email was made
        assert abs(link_expiry(url) - (sent_at + get_settings().email_link_ttl_seconds)) <= 2
    # Followed (API Gateway -> the API Lambda), each redirects to its transcript in the emulator.
    for url, expected in ((links[0], TRANSCRIPT), (links[2], f"srt of {job.job_id}")):
        status, headers, _ = follow(url)
        assert status == 302
        got = requests.get(headers["location"], timeout=10)
        assert got.status_code == 200 and got.text == expected

    # The outbox holds the same message SES took, byte for byte.
    eml = (outbox / f"{job.job_id}.eml").read_bytes()
    assert eml.decode().replace("\r\n", "\n") == raw["raw_data"].replace("\r\n", "\n")
    assert not [p for p in outbox.iterdir() if p.name.startswith(".")]  # no temp file left

    assert store.jobs.get(job.job_id).notified_at
    sent = store.jobs.get(job.job_id)
    assert sent.email_message_id == raw["id"] and sent.notify_lease_until is None

    # Logs: JSON with job_id; metrics: EMF in namespace Hark.
    assert worker.stop() == 0
    sent = worker.logged("email sent")
    assert len(sent) == 1 and sent[0]["job_id"] == job.job_id and sent[0]["service"] == "notification"
    emf = [line for line in worker.lines() if "_aws" in line and "EmailsSent" in line]
    assert emf and emf[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Hark"


def test_failed_job_gets_a_failure_email_with_the_reason(emulator, store, start_worker, outbox):
    job = make_job(
        store, status=JobStatus.FAILED, filename="entrevista año.m4a", error="The file has no audio track we can read."
    )
    worker = start_worker()
    notify(job.job_id)
    wait_until(lambda: all_done(emulator.endpoint, 1), 30, "the failure email")
    [raw] = sent_emails(emulator.endpoint)
    msg = parsed(raw)
    assert msg["Subject"] == 'We could not transcribe "entrevista año.m4a"'  # RFC 2047, non-ASCII safe
    text = msg.get_body(("plain",)).get_content()
    assert "Reason: The file has no audio track we can read." in text
    assert "Upload it again" in text and job.job_id in text
    assert "/links/" not in text  # no transcript, no links to one
    assert (outbox / f"{job.job_id}.eml").exists()
    assert store.jobs.get(job.job_id).notified_at
    assert worker.stop() == 0


def test_no_speech_job_gets_a_no_speech_email_without_links_or_language(emulator, store, start_worker, outbox):
    """Issue 10, item 6: silence is not "your transcript is ready" with an empty transcript labelled English."""
    job_id = new_job_id()
    store.jobs.create(
        Job(
            job_id=job_id,
            user_id="user_a",
            email="ana@example.com",
            filename="silencio.wav",
            content_type="audio/wav",
            size_bytes=256_044,
            audio_key=f"uploads/user_a/{job_id}/silencio.wav",
            status=JobStatus.UPLOADING,
            created_at=now_iso(),
            updated_at=now_iso(),
        )
    )
    job = store.jobs.mark_queued(job_id, now_iso(), 256_044)
    store.jobs.claim(job.job_id, "msg-1")
    job = store.jobs.complete(job.job_id, None, 8.0, no_speech=True)  # what the transcription worker records
    worker = start_worker()
    notify(job.job_id)
    wait_until(lambda: all_done(emulator.endpoint, 1), 30, "the no-speech email")
    [raw] = sent_emails(emulator.endpoint)
    msg = parsed(raw)
    assert msg["Subject"] == 'No speech detected in "silencio.wav"'
    text = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    html = msg.get_body(("html",)).get_content()
    assert "detected no speech" in text and "detected no speech" in html
    assert "(8 s)" in text  # how much was listened to
    assert "Language" not in text and "English" not in text  # no language claimed
    assert "/links/" not in text and "Preview" not in text  # no empty transcript offered
    assert job.job_id in text and get_settings().web_url in text
    assert (outbox / f"{job.job_id}.eml").exists() and store.jobs.get(job.job_id).notified_at
    assert worker.stop() == 0


def test_size_mismatch_failure_email_gives_both_sizes(emulator, store, start_worker):
    """Issue 10, item 4: the failure email carries the worker's reason as recorded on the job."""
    from worker.transcription.audio import PermanentError, check_declared

    with pytest.raises(PermanentError) as refused:
        check_declared(33_408, 1_000)  # what the worker checks before it reads a byte
    job = make_job(store, status=JobStatus.FAILED, error=refused.value.reason)
    worker = start_worker()
    notify(job.job_id)
    wait_until(lambda: all_done(emulator.endpoint, 1), 30, "the failure email")
    [raw] = sent_emails(emulator.endpoint)
    text = parsed(raw).get_body(("plain",)).get_content()
    assert f"Reason: {refused.value.reason}" in " ".join(text.split())
    assert "33,408 bytes" in text and "1,000 bytes declared" in text
    assert worker.stop() == 0


def test_duplicate_notify_messages_send_one_email(emulator, store, start_worker):
    job = make_job(store, status=JobStatus.COMPLETED)
    for _ in range(3):
        notify(job.job_id)
    worker = start_worker()
    # Every copy settled (nothing visible, nothing in flight): only then count.
    wait_until(lambda: all_done(emulator.endpoint, 1), 30, "the queue to drain")
    assert len(sent_emails(emulator.endpoint)) == 1
    assert len(worker.logged("email sent")) == 1
    assert len(worker.logged("already notified: duplicate message dropped")) == 2
    # A late duplicate, after the first was long done, is dropped too.
    notify(job.job_id)
    wait_until(lambda: queue_depth(aws.stack_resources().notify_queue.name) == 0, 15, "the late duplicate")
    assert len(sent_emails(emulator.endpoint)) == 1
    assert worker.stop() == 0


def test_broken_message_ends_in_the_dlq_and_unknown_job_is_dropped(emulator, store, start_worker):
    res = aws.stack_resources()
    worker = start_worker()
    notify("", body="this is not json")
    notify("no-such-job")  # a job deleted since: dropped, not retried
    wait_until(lambda: queue_depth(res.notify_queue.dlq_name) == 1, 40, "the broken message in the DLQ")
    [dead] = aws.client("sqs").receive_message(
        QueueUrl=aws.queue_url(res.notify_queue.dlq_name),
        VisibilityTimeout=0,
        MessageSystemAttributeNames=["ApproximateReceiveCount"],
    )["Messages"]
    assert dead["Body"] == "this is not json"
    assert int(dead["Attributes"]["ApproximateReceiveCount"]) >= res.notify_queue.max_receive_count
    assert queue_depth(res.notify_queue.name) == 0
    assert worker.logged("job no longer exists: message dropped")
    assert worker.logged("broken notify message: left for the dead-letter queue")
    assert sent_emails(emulator.endpoint) == []
    assert worker.stop() == 0


def test_ses_outage_backs_off_then_sends_every_email_exactly_once(emulator, store, start_worker, outbox):
    res = aws.stack_resources()
    jobs = [
        make_job(store, status=JobStatus.COMPLETED),
        make_job(store, status=JobStatus.FAILED, error="The recording is longer than 4 hours."),
    ]
    dead_port = free_port()  # nothing listens there: connection refused, like an unreachable SES
    down = start_worker(HARK_SES_ENDPOINT_URL=f"http://127.0.0.1:{dead_port}")
    for job in jobs:
        notify(job.job_id)

    def failures(job_id):
        return [
            line for line in down.logged("SES did not take the email: retrying later") if line.get("job_id") == job_id
        ]

    wait_until(lambda: all(len(failures(j.job_id)) >= 3 for j in jobs), 60, "three failed attempts per job")
    assert down.stop() == 0

    assert sent_emails(emulator.endpoint) == []
    assert not list(outbox.glob("*.eml"))  # no outbox folder at all is no email too
    for job in jobs:
        record = store.jobs.get(job.job_id)
        assert record.notified_at is None and record.notify_lease_until is None  # lease released each time
        tries = failures(job.job_id)
        counts = [t["receive_count"] for t in tries]
        assert counts == sorted(counts) and counts[-1] >= 3  # the same message, received again and again
        assert [t["retry_in_seconds"] for t in tries[:3]] == [1, 2, 4]  # exponential, base 1 s in tests
    emf_failed = [line for line in down.lines() if "EmailsFailed" in line]
    assert len(emf_failed) >= 6
    assert queue_depth(res.notify_queue.name) == 2 and queue_depth(res.notify_queue.dlq_name) == 0

    # SES is back: a fresh worker sends both, once each.
    up = start_worker()
    wait_until(lambda: all_done(emulator.endpoint, 2), 30, "both emails after the outage")
    emails = sent_emails(emulator.endpoint)
    assert len(emails) == 2
    assert sorted(parsed(e)["X-Hark-Job-Id"] for e in emails) == sorted(j.job_id for j in jobs)
    sent = up.logged("email sent")
    assert len(sent) == 2 and all(s["receive_count"] >= 4 for s in sent)
    assert queue_depth(res.notify_queue.dlq_name) == 0
    assert sorted(p.stem for p in outbox.glob("*.eml")) == sorted(j.job_id for j in jobs)
    assert up.stop() == 0


def test_two_workers_and_duplicates_still_one_email_per_job(emulator, store, start_worker):
    jobs = [make_job(store, status=JobStatus.COMPLETED if i % 2 else JobStatus.FAILED) for i in range(4)]
    for _ in range(2):
        for job in jobs:
            notify(job.job_id)
    workers = [start_worker(HARK_NOTIFY_BATCH_SIZE="1"), start_worker(HARK_NOTIFY_BATCH_SIZE="1")]
    wait_until(lambda: all_done(emulator.endpoint, len(jobs)), 40, "every job's email")
    emails = sent_emails(emulator.endpoint)
    assert sorted(parsed(e)["X-Hark-Job-Id"] for e in emails) == sorted(j.job_id for j in jobs)
    assert all(store.jobs.get(j.job_id).notified_at for j in jobs)
    assert all(w.stop() == 0 for w in workers)


# -- recipients: Clerk's default session token has no email claim --------------------------------------
@pytest.fixture
def gateway(stack, tmp_path):
    with running_gateway(tmp_path) as gw:
        yield gw


def test_token_without_email_claim_gets_its_email_at_clerks_address(emulator, store, gateway, start_worker, outbox):
    """Sign in like Clerk (no email claim), create the job through the gateway, and the email still
    reaches the user: the worker reads the address from the Backend API (the dev issuer's stand-in).
    Its link, followed over HTTP through the gateway with no token, downloads the transcript."""
    minted = gateway.token("grace@example.com", email_claim=False)
    created = requests.post(
        f"{gateway.url}/jobs",
        headers={"Authorization": f"Bearer {minted['token']}"},
        json={"filename": "standup.m4a", "content_type": "audio/mp4", "size": 1234},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    job_id = created.json()["job"]["job_id"]
    assert store.jobs.get(job_id).email is None and store.jobs.get(job_id).user_id == minted["user_id"]
    finish(store, job_id, JobStatus.COMPLETED)

    worker = start_worker(HARK_CLERK_API_URL=gateway.clerk_api_url, HARK_API_URL=gateway.url)
    notify(job_id)
    wait_until(lambda: all_done(emulator.endpoint, 1), 30, "the email")
    [raw] = sent_emails(emulator.endpoint)
    assert set(raw["destinations"]) == {"grace@example.com"}  # moto lists Destinations and To
    msg = parsed(raw)
    assert msg["To"] == "grace@example.com" and (outbox / f"{job_id}.eml").exists()
    text = msg.get_body(("plain",)).get_content()
    txt_link = next(w for w in text.split() if w.startswith(f"{gateway.url}/links/"))
    got = requests.get(txt_link, timeout=10)  # no Authorization: the link is the credential
    assert got.status_code == 200 and got.text == TRANSCRIPT
    assert got.history[0].status_code == 302
    assert got.headers["Content-Disposition"].startswith('attachment; filename="standup.txt"')
    assert worker.stop() == 0


def test_clerk_outage_backs_off_then_the_email_goes_out(emulator, store, gateway, start_worker):
    minted = gateway.token("lin@example.com", email_claim=False)
    job = make_job(store, status=JobStatus.COMPLETED, email_addr=None, user_id=minted["user_id"])
    down = start_worker(HARK_CLERK_API_URL=f"http://127.0.0.1:{free_port()}")  # Clerk unreachable
    notify(job.job_id)
    wait_until(lambda: len(down.logged("recipient lookup failed: retrying later")) >= 2, 30, "two failed lookups")
    assert down.stop() == 0
    tries = down.logged("recipient lookup failed: retrying later")
    assert [t["retry_in_seconds"] for t in tries[:2]] == [1, 2]  # the notifier's backoff (base 1 s in tests)
    assert sent_emails(emulator.endpoint) == []
    record = store.jobs.get(job.job_id)
    assert record.notified_at is None and record.notify_lease_until is None  # lease released, not marked

    up = start_worker(HARK_CLERK_API_URL=gateway.clerk_api_url)
    wait_until(lambda: all_done(emulator.endpoint, 1), 30, "the email after Clerk is back")
    assert set(sent_emails(emulator.endpoint)[0]["destinations"]) == {"lin@example.com"}
    assert up.stop() == 0


def test_a_user_with_no_email_address_is_a_logged_no_recipient(emulator, store, gateway, start_worker):
    minted = gateway.token("leaving@example.com", email_claim=False)
    gateway.issuer.forget_email(minted["user_id"])  # the user removed every address in Clerk
    job = make_job(store, status=JobStatus.COMPLETED, email_addr=None, user_id=minted["user_id"])
    worker = start_worker(HARK_CLERK_API_URL=gateway.clerk_api_url)
    notify(job.job_id)
    wait_until(
        lambda: store.jobs.get(job.job_id).notified_at and queue_depth(aws.stack_resources().notify_queue.name) == 0,
        30,
        "the job marked as notified without a recipient",
    )
    assert store.jobs.get(job.job_id).email_message_id == "no-recipient"
    assert sent_emails(emulator.endpoint) == []
    [logged] = worker.logged("job has no email address: nothing to send")
    assert "no email address" in logged["reason"] and logged["job_id"] == job.job_id
    assert worker.stop() == 0


def test_killed_sender_email_goes_out_within_two_minutes_exactly_once(emulator, store, start_worker):
    """A notifier SIGKILLed inside its send lease: the next delivery waits the lease out and sends.
    With the defaults (the local stack's and the ECS task's), the email is late by at most the send
    lease, under the 2 minutes the runbook promises, and it goes out once."""
    settings = Settings()  # the defaults: the test sets no lease of its own
    leases = dict(
        HARK_NOTIFY_LEASE_SECONDS=str(settings.notify_lease_seconds),
        HARK_VISIBILITY_LEASE_SECONDS=str(settings.visibility_lease_seconds),
    )
    bound = 120  # the 2 minutes; the defaults must fit in it (tests/unit/test_worker_settings.py)
    job = make_job(store, status=JobStatus.COMPLETED)
    ses = HungSes()
    try:
        stuck = start_worker(HARK_SES_ENDPOINT_URL=ses.url, **leases)
        notify(job.job_id)
        # Inside its send: it holds the job's send lease and its SES call is connected, unanswered.
        wait_until(
            lambda: ses.connections and (store.jobs.get(job.job_id).notify_lease_until or 0) > 0,
            60,
            "the first notifier inside its SES call",
        )
        survivor = start_worker(**leases)
        survivor.wait_for("worker ready", timeout=60)
        stuck.proc.send_signal(signal.SIGKILL)
        killed = time.time()
        stuck.proc.wait()

        wait_until(lambda: all_done(emulator.endpoint, 1), bound + 60, "the email after the kill")
        sent = store.jobs.get(job.job_id)
        late = datetime.fromisoformat(sent.notified_at.replace("Z", "+00:00")).timestamp() - killed
        print(
            f"kill -> email {late:.1f} s (send lease {settings.notify_lease_seconds} s, "
            f"visibility lease {settings.visibility_lease_seconds} s)"
        )
        assert late <= bound
        emails = sent_emails(emulator.endpoint)
        assert len(emails) == 1 and parsed(emails[0])["X-Hark-Job-Id"] == job.job_id
        assert len(survivor.logged("email sent")) == 1 and not stuck.logged("email sent")
        assert survivor.logged("another sender holds this job's email: retrying when its lease ends")
        assert sent.email_message_id == emails[0]["id"]
        assert survivor.stop() == 0
    finally:
        ses.close()
