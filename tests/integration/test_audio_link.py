"""GET /jobs/{id}/audio (issue 11, item 6): a short-lived presigned GET of the uploaded recording, for the
viewer's player. Owner only, a foreign id the same 404 as the other routes, 409 before the upload."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import requests

from hark.domain import aws
from hark.domain.jobs import now_iso
from hark.domain.settings import get_settings
from hark.local.gateway import LambdaContext
from lambdas.api import handler as api
from tests.events import authorizer_context, rest_proxy_event
from tests.integration.test_api import ALICE, BOB, assert_error, new_job

AUDIO = b"RIFF....WAVEfmt not really audio, but bytes the player asks for" * 64


def get_audio(job_id: str, user: str = ALICE) -> tuple[int, dict]:
    event = rest_proxy_event(
        "GET",
        "/jobs/{id}/audio",
        f"/jobs/{job_id}/audio",
        path_params={"id": job_id},
        headers={"Authorization": "Bearer x.y.z"},
        authorizer=authorizer_context(user),
    )
    result = api.handler(event, LambdaContext("hark-api"))
    return result["statusCode"], json.loads(result["body"])


def uploaded_job() -> str:
    created = new_job(filename="meeting.wav", content_type="audio/wav", size=len(AUDIO))
    upload = created["upload"]
    sent = requests.post(upload["url"], data=upload["fields"], files={"file": ("x.wav", AUDIO)}, timeout=10)
    assert sent.status_code in (200, 204), sent.text
    job_id = created["job"]["job_id"]
    aws.job_store().mark_queued(job_id, now_iso(), len(AUDIO))  # what the upload-status function does
    return job_id


def test_the_owner_gets_a_link_that_plays_the_upload(stack):
    job_id = uploaded_job()
    asked = datetime.now(UTC)
    status, link = get_audio(job_id)
    assert status == 200, link
    assert set(link) == {"url", "content_type", "expires_at"} and link["content_type"] == "audio/wav"
    expires = datetime.fromisoformat(link["expires_at"].replace("Z", "+00:00"))
    ttl = timedelta(seconds=get_settings().audio_link_ttl_seconds)
    assert asked + ttl - timedelta(seconds=5) <= expires <= datetime.now(UTC) + ttl + timedelta(seconds=1)
    whole = requests.get(link["url"], timeout=10)
    assert whole.status_code == 200 and whole.content == AUDIO
    # A player seeks with range requests.
    part = requests.get(link["url"], headers={"Range": "bytes=100-199"}, timeout=10)
    assert part.status_code == 206 and part.content == AUDIO[100:200]


def test_another_user_gets_the_same_404_as_for_an_unknown_job(stack):
    job_id = uploaded_job()
    foreign = assert_error(get_audio(job_id, user=BOB), 404, "job_not_found")
    unknown_id = uuid.uuid4().hex
    unknown = assert_error(get_audio(unknown_id, user=BOB), 404, "job_not_found")
    assert foreign["message"].replace(job_id, "X") == unknown["message"].replace(unknown_id, "X")


def test_before_the_upload_it_is_409(stack):
    job_id = new_job()["job"]["job_id"]
    err = assert_error(get_audio(job_id), 409, "audio_not_uploaded")
    assert "upload" in err["message"]
