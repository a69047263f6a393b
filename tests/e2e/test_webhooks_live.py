"""Webhooks end to end through `hark up`: a recording uploaded with a webhook URL is transcribed by the
CPU worker, and the stack's webhook worker POSTs the finished job, signed, to a real receiver on this
machine (the local stack allows loopback receivers); with notify ["webhook"] no email is sent."""

from __future__ import annotations

import time

import pytest
import requests
from standardwebhooks.webhooks import Webhook

from tests.e2e.test_walking_skeleton import auth, wait_finished
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.e2e


def test_a_finished_job_is_posted_to_its_webhook_signed_and_not_emailed(live_stack, speech):
    receiver = Receiver()  # answers 200 (retries are shown in tests/integration/test_webhooks.py)
    try:
        token = live_stack.token("hooks@example.com", email_claim=True)
        secret = requests.get(f"{live_stack.url}/webhook-secret", headers=auth(token), timeout=30).json()["secret"]
        path = speech("The webhook carries the finished job to the receiver.", "en", "wav")
        r = requests.post(
            f"{live_stack.url}/jobs",
            headers=auth(token),
            timeout=30,
            json={
                "filename": path.name,
                "content_type": "audio/wav",
                "size": path.stat().st_size,
                "webhook_url": receiver.url,
                "notify": ["webhook"],
            },
        )
        assert r.status_code == 201, r.text
        created = r.json()
        job_id = created["job"]["job_id"]
        with open(path, "rb") as f:
            up = created["upload"]
            requests.post(up["url"], data=up["fields"], files={"file": (path.name, f, "audio/wav")}, timeout=60)
        job = wait_finished(live_stack, token, job_id)
        assert job["status"] == "COMPLETED"
        deadline = time.time() + 60
        while not (job.get("webhook") or {}).get("delivered_at"):
            assert time.time() < deadline, job
            time.sleep(0.3)
            job = requests.get(f"{live_stack.url}/jobs/{job_id}", headers=auth(token), timeout=30).json()
        [delivery] = receiver.received
        event = Webhook(secret).verify(delivery.body, delivery.headers)
        assert event["type"] == "job.completed" and event["data"]["job_id"] == job_id
        transcript = requests.get(event["data"]["transcript"]["txt"], timeout=30)  # the payload's presigned link
        assert transcript.status_code == 200 and "receiver" in transcript.text.lower()
        assert [a["status_code"] for a in job["webhook"]["attempts"]] == [200]
        assert not (live_stack.outbox / f"{job_id}.eml").exists()  # notify: ["webhook"] only
    finally:
        receiver.close()
