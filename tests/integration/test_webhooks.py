"""Webhooks end to end against the emulator: the API's secret, settings, notify choices and status filter
(the API Lambda in process), the transcription worker's notify step, and the webhook worker as it runs in
production (a subprocess) delivering to a real HTTP receiver on loopback that verifies each signature
with the Standard Webhooks algorithm. Refused addresses are only ever checked, never contacted."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from http import HTTPStatus

import pytest
import requests
from standardwebhooks.webhooks import Webhook

from hark.domain import aws
from hark.domain.jobs import Job, JobStatus, new_job_id, now_iso
from hark.domain.messages import NotifyMessage, WebhookMessage
from hark.domain.settings import Settings, get_settings
from hark.domain.webhooks import check_url
from hark.local.gateway import LambdaContext
from hark.ops import dlq as ops
from lambdas.api import handler as api
from tests.events import authorizer_context, rest_proxy_event
from tests.webhook_receiver import DrippingReceiver, Receiver
from tests.workers import WorkerProcess
from worker.notification.worker import NotifyHandler
from worker.runtime import Delivery, Fate
from worker.transcription.context import Context
from worker.transcription.ending import notify
from worker.webhooks.worker import ReceiverTurns, WebhookHandler

pytestmark = pytest.mark.waits  # mostly waiting on receivers that drip, fail and time out (tests/parallel.py)

ALICE = "user_alice"
JOB_BODY = {"filename": "meeting.mp3", "content_type": "audio/mpeg", "size": 1234}
# The local stack's settings for receivers on this machine (hark.local.stack.local_env).
LOCAL_RECEIVERS = {"HARK_WEBHOOK_REQUIRE_HTTPS": "false", "HARK_WEBHOOK_ALLOW_LOOPBACK": "true"}


def call(method: str, path: str, *, body=None, query=None, user: str = ALICE, raw: bool = False):
    headers = {"Authorization": "Bearer x.y.z", "Content-Type": "application/json"}
    params, resource = None, path
    parts = path.strip("/").split("/")
    if parts[0] == "jobs" and len(parts) == 2:
        params, resource = {"id": parts[1]}, "/jobs/{id}"
    event = rest_proxy_event(
        method,
        resource,
        path,
        path_params=params,
        headers=headers,
        query=query,
        body=json.dumps(body) if body is not None else None,
        authorizer=authorizer_context(user),
    )
    result = api.handler(event, LambdaContext("hark-api"))
    if raw:
        return result
    return result["statusCode"], json.loads(result["body"]) if result.get("body") else None


@pytest.fixture
def local_receivers(monkeypatch):
    for k, v in LOCAL_RECEIVERS.items():
        monkeypatch.setenv(k, v)
    get_settings.cache_clear()
    yield
    for k in LOCAL_RECEIVERS:
        monkeypatch.delenv(k)
    get_settings.cache_clear()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def finished_job(store, *, webhook_url: str | None, notify_: list[str], status=JobStatus.COMPLETED) -> Job:
    job_id = new_job_id()
    store.jobs.create(
        Job(
            job_id=job_id,
            user_id=ALICE,
            email="alice@example.com",
            filename="meeting.mp3",
            content_type="audio/mpeg",
            size_bytes=1234,
            audio_key=f"uploads/{ALICE}/{job_id}/meeting.mp3",
            status=JobStatus.UPLOADING,
            created_at=now_iso(),
            updated_at=now_iso(),
            notify=notify_,
            webhook_url=webhook_url,
        )
    )
    if status == JobStatus.FAILED:
        return store.jobs.fail(job_id, "The file could not be decoded as audio.")
    store.jobs.mark_queued(job_id, now_iso())
    store.jobs.claim(job_id, "msg-1")
    return store.jobs.complete(job_id, "en", 12.5)


def drain(name: str) -> list[str]:
    sqs, url, bodies = aws.client("sqs"), aws.queue_url(name), []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not got:
            return bodies
        for m in got:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            bodies.append(m["Body"])


@pytest.fixture
def start_worker(stack, tmp_path):
    started: list[WorkerProcess] = []

    def start(**overrides: str) -> WorkerProcess:
        env = {
            **os.environ,
            **LOCAL_RECEIVERS,
            "HARK_POLL_WAIT_SECONDS": "1",
            # One second between attempts, so a day's schedule runs in seconds.
            "HARK_WEBHOOK_RETRY_DELAYS_SECONDS": json.dumps([1] * 7),
            "PYTHONUNBUFFERED": "1",
            **overrides,
        }
        w = WorkerProcess("worker.webhooks", tmp_path / f"webhooks-{len(started)}.log", env)
        started.append(w)
        w.wait_for("worker ready", timeout=60)
        return w

    yield start
    for w in started:
        w.stop()


def send(job_id: str) -> None:
    url = aws.queue_url(aws.stack_resources().webhook_queue.name)
    aws.client("sqs").send_message(QueueUrl=url, MessageBody=WebhookMessage(job_id=job_id).model_dump_json())


# -- the API ------------------------------------------------------------------------------------------------
def test_secret_is_created_on_first_read_and_rotation_keeps_the_old_one_a_day(stack):
    status, first = call("GET", "/webhook-secret")
    assert status == 200 and first["secret"].startswith("whsec_") and first["previous_valid_until"] is None
    assert call("GET", "/webhook-secret")[1]["secret"] == first["secret"]  # stable once created
    assert call("GET", "/webhook-secret", user="user_bob")[1]["secret"] != first["secret"]  # per user
    status, rotated = call("POST", "/webhook-secret")
    assert status == 200 and rotated["secret"] != first["secret"]
    until = datetime.fromisoformat(rotated["previous_valid_until"].replace("Z", "+00:00"))
    grace = Settings.model_fields["webhook_secret_grace_seconds"].default
    assert abs((until - datetime.now(UTC)).total_seconds() - grace) < 60
    assert call("GET", "/webhook-secret")[1]["secret"] == rotated["secret"]


def test_refused_webhook_urls_are_400_with_the_reason_and_create_nothing(stack):
    for url, words in [
        ("http://hooks.example.com/x", "https://"),  # deployments: https only
        ("https://169.254.169.254/latest/meta-data", "metadata"),
        ("https://[::ffff:169.254.169.254]/", "metadata"),
        ("https://127.0.0.1/", "loopback"),  # deployments: no loopback
        ("https://10.0.0.8/", "private"),
        ("https://user:pw@hooks.example.com/", "user name or password"),
        ("file:///etc/passwd", "https://"),
    ]:
        status, body = call("POST", "/jobs", body={**JOB_BODY, "webhook_url": url})
        assert status == 400 and body["error"]["code"] == "webhook_url_refused", (url, body)
        assert words in body["error"]["message"], (url, body)
        status, body = call("PUT", "/webhook-settings", body={"default_url": url})
        assert status == 400 and body["error"]["code"] == "webhook_url_refused", (url, body)
    assert call("GET", "/jobs")[1]["items"] == []
    assert call("GET", "/webhook-settings")[1] == {"default_url": None}


def test_notify_choices_and_the_default_url(stack, local_receivers, receiver):
    status, created = call("POST", "/jobs", body=JOB_BODY)
    assert status == 201 and created["job"]["notify"] == ["email"] and created["job"]["webhook"] is None

    status, body = call("POST", "/jobs", body={**JOB_BODY, "notify": ["webhook"]})
    assert status == 400 and "no webhook URL applies" in body["error"]["message"]
    status, body = call("POST", "/jobs", body={**JOB_BODY, "notify": ["sms"]})
    assert status == 400 and body["error"]["code"] == "validation_error" and "notify" in body["error"]["message"]

    status, job = call("POST", "/jobs", body={**JOB_BODY, "webhook_url": receiver.url})
    assert status == 201 and job["job"]["notify"] == ["email", "webhook"]
    assert job["job"]["webhook"] == {"url": receiver.url, "delivered_at": None, "attempts": []}

    assert call("PUT", "/webhook-settings", body={"default_url": receiver.url}) == (200, {"default_url": receiver.url})
    _, by_default = call("POST", "/jobs", body=JOB_BODY)
    assert by_default["job"]["notify"] == ["email", "webhook"] and by_default["job"]["webhook"]["url"] == receiver.url
    _, none = call("POST", "/jobs", body={**JOB_BODY, "notify": []})
    assert none["job"]["notify"] == [] and none["job"]["webhook"] is None
    _, hook_only = call("POST", "/jobs", body={**JOB_BODY, "notify": ["webhook", "webhook"]})
    assert hook_only["job"]["notify"] == ["webhook"]
    assert call("PUT", "/webhook-settings", body={"default_url": None}) == (200, {"default_url": None})
    _, plain = call("POST", "/jobs", body=JOB_BODY)
    assert plain["job"]["notify"] == ["email"]
    # A receiver on this machine is refused where loopback is not allowed (deployments).
    get_settings.cache_clear()
    os.environ.pop("HARK_WEBHOOK_ALLOW_LOOPBACK")
    status, body = call("POST", "/jobs", body={**JOB_BODY, "webhook_url": receiver.url})
    os.environ["HARK_WEBHOOK_ALLOW_LOOPBACK"] = "true"
    assert status == 400 and "loopback" in body["error"]["message"]


def test_status_filter_pages_through_only_that_state(stack):
    store = aws.job_store()
    completed = [finished_job(store, webhook_url=None, notify_=["email"]).job_id for _ in range(3)]
    failed = finished_job(store, webhook_url=None, notify_=["email"], status=JobStatus.FAILED).job_id
    uploading = [call("POST", "/jobs", body=JOB_BODY)[1]["job"]["job_id"] for _ in range(4)]
    seen, cursor = [], None
    while True:
        query = {"status": "COMPLETED", "limit": "2", **({"cursor": cursor} if cursor else {})}
        status, page = call("GET", "/jobs", query=query)
        assert status == 200 and len(page["items"]) <= 2
        assert all(j["status"] == "COMPLETED" for j in page["items"])
        seen += [j["job_id"] for j in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(completed))
    assert [j["job_id"] for j in call("GET", "/jobs", query={"status": "FAILED"})[1]["items"]] == [failed]
    assert {j["job_id"] for j in call("GET", "/jobs", query={"status": "UPLOADING"})[1]["items"]} == set(uploading)
    status, body = call("GET", "/jobs", query={"status": "DONE"})
    assert status == 400 and body["error"]["code"] == "validation_error" and "status" in body["error"]["message"]


def test_a_filtered_page_stops_reading_at_its_bound_and_the_cursor_goes_on(stack):
    store = aws.job_store()
    [failed] = [finished_job(store, webhook_url=None, notify_=["email"], status=JobStatus.FAILED).job_id]
    for _ in range(5):  # newer, and not FAILED
        finished_job(store, webhook_url=None, notify_=["email"])
    pages, start, found = 0, None, []
    while True:
        jobs, start = store.jobs.list_for_user(ALICE, limit=10, start=start, status=JobStatus.FAILED, max_read=2)
        pages += 1
        found += [j.job_id for j in jobs]
        if not start:
            break
    assert found == [failed] and pages >= 3  # 6 jobs read 2 at a time: short (empty) pages that go on


def test_quota_429_says_when_to_retry(stack, monkeypatch):
    monkeypatch.setenv("HARK_MAX_UNFINISHED_JOBS", "1")
    get_settings.cache_clear()
    try:
        assert call("POST", "/jobs", body=JOB_BODY)[0] == 201
        result = call("POST", "/jobs", body=JOB_BODY, raw=True)
        headers = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
        for k, v in (result.get("multiValueHeaders") or {}).items():
            headers[k.lower()] = v[0]
        assert result["statusCode"] == 429
        assert headers["retry-after"] == str(Settings.model_fields["quota_retry_after_seconds"].default)
        assert headers["ratelimit-limit"] == "1" and headers["ratelimit-remaining"] == "0"
    finally:
        monkeypatch.delenv("HARK_MAX_UNFINISHED_JOBS")
        get_settings.cache_clear()


# -- the transcription worker's notify step ---------------------------------------------------------------------
def test_the_notify_step_queues_what_the_job_asked_for(stack):
    store, res = aws.job_store(), aws.stack_resources()
    ctx = Context(
        settings=get_settings(),
        engine=None,  # type: ignore[arg-type]  # the notify step never touches the model
        res=res,
        store=store,
        telemetry=None,  # type: ignore[arg-type]
        s3=aws.client("s3"),
        sqs=aws.client("sqs"),
        transcribe_url=aws.queue_url(res.transcribe_queue.name),
        notify_url=aws.queue_url(res.notify_queue.name),
        webhook_url=aws.queue_url(res.webhook_queue.name),
    )
    cases = {
        "email": finished_job(store, webhook_url=None, notify_=["email"]),
        "both": finished_job(store, webhook_url="https://hooks.example.com/", notify_=["email", "webhook"]),
        "webhook": finished_job(store, webhook_url="https://hooks.example.com/", notify_=["webhook"]),
        "none": finished_job(store, webhook_url=None, notify_=[]),
    }
    for job in cases.values():
        notify(ctx, job)
    emails = {NotifyMessage.model_validate_json(b).job_id for b in drain(res.notify_queue.name)}
    hooks = {WebhookMessage.model_validate_json(b).job_id for b in drain(res.webhook_queue.name)}
    assert emails == {cases["email"].job_id, cases["both"].job_id}
    assert hooks == {cases["both"].job_id, cases["webhook"].job_id}


# -- the webhook worker -------------------------------------------------------------------------------------------
def test_delivery_is_signed_retried_after_a_500_and_recorded_on_the_job(stack, start_worker):
    receiver = Receiver(statuses=[500, 200])
    try:
        store = aws.job_store()
        old = store.webhook_settings.ensure_secret(ALICE, "whsec_" + "A" * 43 + "=")["secret"]
        new = store.webhook_settings.rotate_secret(ALICE, "whsec_" + "B" * 43 + "=", 3600)["secret"]
        job = finished_job(store, webhook_url=receiver.url, notify_=["webhook"])
        start_worker()
        send(job.job_id)
        done = wait_until(lambda: (j := store.jobs.get(job.job_id)) and j.webhook_delivered_at and j, 60, "delivery")

        first, second = receiver.received
        assert [r.answered for r in receiver.received] == [500, 200]
        for r in receiver.received:
            assert r.path == "/hooks/hark?source=test"
            assert r.signed_by(new) and r.signed_by(old)  # both during the rotation's grace period
            assert len(r.headers["webhook-signature"].split(" ")) == 2
            assert Webhook(new).verify(r.body, r.headers)["data"]["job_id"] == job.job_id  # the reference library
            assert r.headers["content-type"] == "application/json"
        assert first.headers["webhook-id"] == second.headers["webhook-id"]  # the receiver's idempotency key
        event = second.json
        assert event["type"] == "job.completed" and event["data"]["status"] == "COMPLETED"
        assert set(event["data"]) >= {"job_id", "filename", "transcript", "detected_language", "notify"}

        failed, ok = done.webhook_attempts
        assert failed.status_code == 500 and failed.next_attempt_at is not None and failed.error is None
        assert ok.status_code == 200 and ok.next_attempt_at is None
        _, view = call("GET", f"/jobs/{job.job_id}")
        assert view["webhook"]["delivered_at"] == done.webhook_delivered_at
        assert [a["status_code"] for a in view["webhook"]["attempts"]] == [500, 200]

        send(job.job_id)  # a duplicate message: dropped, nothing sent again
        wait_until(lambda: drain(aws.stack_resources().webhook_queue.name) == [], 30, "the duplicate to settle")
        assert len(receiver.received) == 2
    finally:
        receiver.close()


def test_a_second_copy_of_the_message_does_not_start_a_second_chain_of_attempts(stack, start_worker):
    receiver = Receiver(statuses=[500, 500, 200])
    try:
        store = aws.job_store()
        job = finished_job(store, webhook_url=receiver.url, notify_=["webhook"])
        worker = start_worker()
        send(job.job_id)
        wait_until(lambda: store.jobs.get(job.job_id).webhook_attempts, 30, "the first attempt")
        send(job.job_id)  # e.g. the transcription worker re-sent the job's notifications
        wait_until(lambda: store.jobs.get(job.job_id).webhook_delivered_at, 60, "the delivery")
        wait_until(lambda: worker.logged("another message delivers this job's webhook: duplicate dropped"), 30, "drop")
        assert [r.answered for r in receiver.received] == [500, 500, 200]
        assert [a.status_code for a in store.jobs.get(job.job_id).webhook_attempts] == [500, 500, 200]
    finally:
        receiver.close()


def test_a_receiver_that_never_succeeds_ends_in_the_dlq_and_replays(stack, start_worker):
    receiver = Receiver(default=503)
    try:
        store = aws.job_store()
        job = finished_job(store, webhook_url=receiver.url, notify_=["email", "webhook"], status=JobStatus.FAILED)
        start_worker()
        send(job.job_id)
        attempts = aws.stack_resources().webhook_queue.max_receive_count
        wait_until(lambda: len(ops.dlq_list("webhooks")) == 1, 120, "the message in the webhook DLQ")
        recorded = store.jobs.get(job.job_id).webhook_attempts
        assert len(receiver.received) == attempts == len(recorded)
        assert all(a.status_code == 503 for a in recorded)
        assert all(a.next_attempt_at for a in recorded[:-1]) and recorded[-1].next_attempt_at is None
        assert receiver.received[0].json["type"] == "job.failed"

        receiver.default = 204
        [replayed] = ops.dlq_replay("webhooks", job_id=job.job_id)
        assert replayed.moved
        delivered = wait_until(lambda: store.jobs.get(job.job_id).webhook_delivered_at, 60, "the replayed delivery")
        assert delivered and receiver.received[-1].answered == 204
    finally:
        receiver.close()


def test_delivery_checks_the_url_again_and_never_contacts_a_refused_address(stack, start_worker):
    store = aws.job_store()
    # Written straight to the table (the API would have refused it), as if DNS had changed since.
    job = finished_job(store, webhook_url="http://169.254.169.254/latest/meta-data/", notify_=["webhook"])
    worker = start_worker()
    send(job.job_id)
    [attempt] = wait_until(lambda: store.jobs.get(job.job_id).webhook_attempts, 30, "the refused attempt")
    assert attempt.status_code is None and "refused" in (attempt.error or "") and "metadata" in (attempt.error or "")
    assert attempt.next_attempt_at is None and store.jobs.get(job.job_id).webhook_delivered_at is None
    assert worker.logged("webhook URL refused at delivery: not retried")


def test_a_410_gone_receiver_is_recorded_and_not_retried(stack, start_worker):
    """Standard Webhooks: 410 Gone means the endpoint was removed; the sender stops (no retries, no DLQ)."""
    receiver = Receiver(statuses=[410], default=200)  # a retry would be answered 200: there must be none
    try:
        store = aws.job_store()
        job = finished_job(store, webhook_url=receiver.url, notify_=["webhook"])
        worker = start_worker()
        send(job.job_id)
        wait_until(lambda: worker.logged("webhook receiver is gone (410): not retried"), 30, "the 410 settled")
        wait_until(lambda: drain(aws.stack_resources().webhook_queue.name) == [], 30, "the queue empty")
        [attempt] = store.jobs.get(job.job_id).webhook_attempts
        assert (
            attempt.status_code == HTTPStatus.GONE
            and attempt.next_attempt_at is None
            and "410" in (attempt.error or "")
        )
        assert [r.answered for r in receiver.received] == [HTTPStatus.GONE]
        assert store.jobs.get(job.job_id).webhook_delivered_at is None and ops.dlq_list("webhooks") == []
    finally:
        receiver.close()


def test_a_dripping_receiver_delays_no_one_else_and_is_cut_at_the_deadline_then_retried(stack, start_worker):
    """Issue 21: a receiver sending one byte every 2 s held the single webhook worker for minutes. Now
    another receiver's webhook arrives while the drip goes on; the dripping receiver gets at most
    HARK_WEBHOOK_ATTEMPTS_PER_RECEIVER attempts at once; each is cut at the deadline for the whole attempt
    (the default, HARK_WEBHOOK_TIMEOUT_SECONDS), recorded, and retried as the retry policy says."""
    drip, other = DrippingReceiver(interval=2), Receiver()
    per_receiver = Settings.model_fields["webhook_attempts_per_receiver"].default
    try:
        store = aws.job_store()
        slow = [finished_job(store, webhook_url=drip.url, notify_=["webhook"]) for _ in range(per_receiver + 1)]
        fine = finished_job(store, webhook_url=other.url, notify_=["webhook"])
        worker = start_worker()
        for job in slow:
            send(job.job_id)
        drip.wait_for(lambda r: r.dripping == per_receiver, f"{per_receiver} attempts dripping at once")
        send(fine.job_id)
        wait_until(lambda: other.received, 60, "the other receiver's webhook")
        with drip.changed:  # it arrived while the first attempts still drip: no one waited for them
            assert drip.cut == 0 and drip.dripping == per_receiver
        assert (
            store.jobs.get(fine.job_id).webhook_delivered_at and other.received[0].json["data"]["job_id"] == fine.job_id
        )

        # Each slow job's first attempt is cut at the deadline, recorded, and retried (1 s in this test).
        for job in slow:
            first = wait_until(lambda j=job: store.jobs.get(j.job_id).webhook_attempts, 120, "the cut attempt")[0]
            assert first.status_code is None and first.next_attempt_at is not None
            assert "no answer within the attempt's 10 s" in (first.error or "")
        drip.wait_for(lambda r: r.requests > len(slow), "a retried attempt")
        assert drip.cut >= per_receiver and drip.most_at_once == per_receiver
        assert worker.logged("webhook attempt failed: retrying later")
    finally:
        drip.close()
        other.close()


def test_a_message_for_a_receiver_without_a_free_turn_is_deferred_unattempted_until_its_last_receive(
    stack, local_receivers, receiver
):
    store = aws.job_store()
    job = finished_job(store, webhook_url=receiver.url, notify_=["webhook"])
    handler = WebhookHandler(get_settings(), store)
    handler.turns = ReceiverTurns(at_once=1, wait_seconds=0)  # no waiting: a busy receiver defers at once
    origin = check_url(receiver.url, require_https=False, allow_loopback=True).receiver
    assert handler.turns.take(origin)  # another delivery to the same receiver is running
    body = WebhookMessage(job_id=job.job_id).model_dump_json()

    deferred = handler(Delivery("m-1", "r-1", body, 1))
    assert deferred.fate == Fate.RETRY and deferred.delay == Settings.model_fields["webhook_timeout_seconds"].default
    assert store.jobs.get(job.job_id).webhook_attempts == [] and receiver.received == []  # not attempted, not counted

    last = handler(Delivery("m-1", "r-2", body, handler.max_attempts))
    [attempt] = store.jobs.get(job.job_id).webhook_attempts
    assert last.fate == Fate.DEAD_LETTER and receiver.received == []
    assert (
        "busy" in (attempt.error or "")
        and attempt.next_attempt_at is None
        and store.jobs.get(job.job_id).webhook_gave_up
    )

    handler.turns.give_back(origin)  # the receiver is free again: a replayed copy is delivered
    assert handler(Delivery("m-2", "r-3", body, 1)).fate == Fate.DONE
    assert [r.answered for r in receiver.received] == [200] and store.jobs.get(job.job_id).webhook_delivered_at


def test_the_notifier_sends_no_email_to_a_job_that_did_not_ask_for_one(stack, emulator):
    store = aws.job_store()
    job = finished_job(store, webhook_url="https://hooks.example.com/", notify_=["webhook"])
    handler = NotifyHandler(get_settings(), store)
    outcome = handler(Delivery("m-1", "r-1", NotifyMessage(job_id=job.job_id).model_dump_json(), 1))
    assert outcome.fate == Fate.DONE
    assert store.jobs.get(job.job_id).email_message_id == "not-requested"
    sent = requests.get(f"{emulator.endpoint}/moto-api/data.json", timeout=10).json().get("ses", {})
    assert not sent.get("RawMessage")
