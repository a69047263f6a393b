"""GET /links/{token}: the links in emails, through the real API Lambda against the emulator.

The emulator (moto) does not check S3 signatures or presigned URL expiry, so what makes a link last
24 hours and no longer is tested here, in our own code: the token's signature and expiry
(hark.domain.links), and that the S3 URL is minted when the link is followed, not when the email was sent.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests

from hark.api import control
from hark.api.control import ApiError
from hark.domain import aws, links
from hark.domain.jobs import Job, JobStatus, new_job_id, now_iso
from hark.domain.keys import TRANSCRIPT_FORMATS, transcript_key
from hark.domain.settings import get_settings
from hark.local.emulator import LOCAL_CREDENTIALS
from tests.links import follow, invoke, link_event

USER = "user_links"
DAY = 24 * 3600
ALMOST_A_DAY = DAY - 60  # issue + 23 h 59 m


def completed_job(filename: str = "meeting notes.m4a", user: str = USER) -> Job:
    store = aws.job_store()
    job_id = new_job_id()
    store.create(
        Job(
            job_id=job_id,
            user_id=user,
            filename=filename,
            content_type="audio/mp4",
            size_bytes=10,
            audio_key=f"uploads/{user}/{job_id}/a.m4a",
            status=JobStatus.UPLOADING,
            created_at=now_iso(),
            updated_at=now_iso(),
        )
    )
    store.mark_queued(job_id, now_iso())
    store.claim(job_id, "msg-1")
    s3, bucket = aws.client("s3"), aws.stack_resources().transcripts_bucket.name
    for fmt in TRANSCRIPT_FORMATS:
        s3.put_object(
            Bucket=bucket, Key=transcript_key(user, job_id, fmt), Body=f"{fmt} transcript of {job_id}".encode()
        )
    return store.complete(job_id, "en", 12.0)


def issued(job: Job, fmt: str = "txt", *, ago: float = 0, ttl: int = DAY) -> str:
    """A link token as the notifier issues it, `ago` seconds in the past."""
    return links.issue(job.job_id, job.user_id, fmt, ttl, links.signing_key(), now=time.time() - ago)


def amz_time(url: str) -> tuple[float, int]:
    """(X-Amz-Date as unix seconds, X-Amz-Expires) of a presigned URL."""
    query = parse_qs(urlsplit(url).query)
    signed = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
    return signed, int(query["X-Amz-Expires"][0])


def assert_error(answer, status: int, code: str) -> str:
    got, headers, body = answer
    assert got == status, body
    assert headers["content-type"] == "application/json"
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["message"].strip()
    return body["error"]["message"]


@pytest.fixture
def job(stack) -> Job:
    return completed_job()


def test_a_day_old_link_redirects_to_an_s3_url_minted_when_followed(job):
    token = issued(job, "txt", ago=ALMOST_A_DAY)
    before = int(time.time())
    status, headers, _ = follow(token)
    after = time.time()
    assert status == 302
    location = headers["location"]
    signed_at, expires = amz_time(location)
    # Minted at follow time (not 23 h 59 m ago when the link was issued), valid only a few minutes.
    assert before <= signed_at <= after
    assert expires == get_settings().link_redirect_ttl_seconds
    assert headers["cache-control"] == "no-store" and headers["referrer-policy"] == "no-referrer"
    # Real HTTP to the emulator: the bytes are the transcript, under the recording's name.
    got = requests.get(location, timeout=10)
    assert got.status_code == 200 and got.text == f"txt transcript of {job.job_id}"
    assert got.headers["Content-Disposition"] == links.content_disposition("meeting notes.txt")


def test_each_format_leads_to_its_own_transcript(job):
    for fmt in TRANSCRIPT_FORMATS:
        status, headers, _ = follow(issued(job, fmt, ago=3600))
        assert status == 302
        assert urlsplit(headers["location"]).path.endswith(transcript_key(job.user_id, job.job_id, fmt))
        assert requests.get(headers["location"], timeout=10).text == f"{fmt} transcript of {job.job_id}"


def test_the_redirect_is_signed_with_the_followers_credentials_not_the_issuers(job, monkeypatch):
    """The link carries no AWS credential: whatever signed it may be long gone. The S3 URL is signed
    by whoever follows it (the API Lambda's role), at that moment."""
    token = issued(job, "srt", ago=ALMOST_A_DAY)
    assert "X-Amz" not in token
    # The issuer's session has ended; the API now runs under other (temporary) credentials.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ASIAFOLLOWERSESSION1")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "follower-session-token")
    boto3.setup_default_session()  # boto3 resolves credentials once per session
    aws.reset()
    try:
        status, headers, _ = follow(token)
        assert status == 302
        query = parse_qs(urlsplit(headers["location"]).query)
        assert query["X-Amz-Credential"][0].startswith("ASIAFOLLOWERSESSION1/")
        assert query["X-Amz-Security-Token"] == ["follower-session-token"]
        assert LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"] not in headers["location"]
    finally:
        monkeypatch.undo()
        boto3.setup_default_session()
        aws.reset()


def test_a_link_past_its_expiry_is_410_and_points_to_the_web_app(job):
    message = assert_error(follow(issued(job, ago=DAY + 1)), 410, "link_expired")
    assert get_settings().web_url in message and "new link" in message


def test_expiry_is_checked_against_the_follow_time(job):
    """The same link through the control function, with the clock injected."""
    t0 = time.time()
    token = links.issue(job.job_id, job.user_id, "vtt", DAY, links.signing_key(), now=t0)
    url = control.follow_link(token, now=t0 + ALMOST_A_DAY)
    assert requests.get(url, timeout=10).text == f"vtt transcript of {job.job_id}"
    with pytest.raises(ApiError) as err:
        control.follow_link(token, now=t0 + DAY + 1)
    assert (err.value.status, err.value.code) == (410, "link_expired")


def _edited(token: str, **changes) -> str:
    import base64
    import json

    part, mac = token.split(".")
    payload = {**json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))), **changes}
    return (
        base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).rstrip(b"=").decode() + "." + mac
    )


def test_edited_links_are_403_in_the_apis_error_shape(job):
    other = completed_job(user="user_other")
    token = issued(job, "txt", ago=60)
    mac = token.split(".")[1]
    flipped = token.split(".")[0] + "." + ("B" if mac[0] == "A" else "A") + mac[1:]
    for bad in (
        _edited(token, j=other.job_id, u=other.user_id),  # someone else's job
        _edited(token, j=other.job_id),  # another job id
        _edited(token, e=int(time.time()) + 365 * DAY),  # a later expiry with the old signature
        _edited(issued(job, ago=DAY + 5), e=int(time.time()) + DAY),  # an expired link, "renewed"
        flipped,  # one changed signature character
        token[:-3],  # cut short by a mail client
        "not-a-link",
        "x" * 3000,
    ):
        message = assert_error(follow(bad), 403, "link_invalid")
        assert get_settings().web_url in message
    assert follow(token)[0] == 302  # the original still works


def test_a_path_far_longer_than_any_link_is_a_400_naming_the_token(job):
    status, _, body = follow("x" * 5000)
    assert status == 400 and body["error"]["code"] == "validation_error" and "token" in body["error"]["message"]


def test_a_deleted_jobs_link_is_404(job):
    token = issued(job, ago=60)
    assert follow(token)[0] == 302
    control.delete_job(control.Caller(user_id=job.user_id), job.job_id)
    assert_error(follow(token), 404, "job_not_found")


def test_links_need_no_bearer_token_and_ignore_one(job):
    """The route reads no authorizer context: the same answer with or without one."""
    token = issued(job, ago=60)
    event = link_event(token)
    event["headers"]["Authorization"] = "Bearer someone.elses.token"
    event["requestContext"]["authorizer"] = {"principalId": "user_mallory", "user_id": "user_mallory", "email": ""}
    status, headers, _ = invoke(event)
    assert status == 302
    assert transcript_key(job.user_id, job.job_id, "txt") in headers["location"]
