"""hark.client.sdk against a stand-in stack on loopback (tests/unit/test_cli_errors.StubStack): what it sends,
and what each bad input or refusal gets. The whole flow against the real stack: tests/e2e/test_client.py."""

from __future__ import annotations

import io

import pytest

from hark.client import (
    ConnectionFailed,
    Hark,
    InvalidArgument,
    JobStatus,
    QuotaExceeded,
    UploadFailed,
)
from hark.domain import api_schemas
from hark.local.emulator import free_port
from tests.unit.test_cli_errors import AUDIO, StubStack, error_body


@pytest.fixture
def stack():
    s = StubStack()
    yield s
    s.stop()


def test_list_sends_the_status_filter_as_a_query_parameter(stack):
    with Hark(stack.url, "t") as hark:
        hark.list(status=JobStatus.COMPLETED, limit=5)
        hark.list(status="FAILED")
        hark.list()
    sent = [r for r in stack.requests if r.startswith("GET /jobs")]
    assert sent == ["GET /jobs?limit=5&status=COMPLETED", "GET /jobs?limit=20&status=FAILED", "GET /jobs?limit=20"]


def test_bad_arguments_are_refused_before_any_request():
    stack = StubStack()
    try:
        with Hark(stack.url, "t") as hark:
            with pytest.raises(InvalidArgument, match=r"^status: 'DONE' is not one of ") as status:
                hark.list(status="DONE")
            assert all(s.value in str(status.value) for s in api_schemas.JobStatus)  # it lists the accepted ones
            with pytest.raises(InvalidArgument, match=r"^format: 'pdf' is not one of ") as fmt:
                hark.transcript_link("j1", "pdf")
            assert all(f in str(fmt.value) for f in api_schemas.TRANSCRIPT_FORMATS)
            with pytest.raises(InvalidArgument, match=r"^language: Unknown language 'xx': use auto, "):
                hark.create("memo.wav", 10, language="xx")
            with pytest.raises(InvalidArgument, match="needs filename="):
                hark.submit(io.BytesIO(AUDIO))
            assert isinstance(InvalidArgument("x"), ValueError)
        assert stack.requests == []
    finally:
        stack.stop()


def test_submit_a_file_object_declares_what_is_left_to_read(stack):
    data = io.BytesIO(b"xx" + AUDIO)
    data.seek(2)
    with Hark(stack.url, "t") as hark:
        job = hark.submit(data, filename="memo.wav")
    assert job.job_id == "j1" and job.filename == "memo.wav"
    assert stack.requests == ["POST /jobs", "POST /upload"]


class QuotaStack(StubStack):
    def create(self, body):
        return 429, error_body("too_many_unfinished_jobs", "You have 100 unfinished jobs (the limit is 100).")


def test_quota_is_its_own_exception_with_the_apis_message():
    stack = QuotaStack()
    try:
        with Hark(stack.url, "t") as hark, pytest.raises(QuotaExceeded) as refused:
            hark.create("memo.wav", 10)
    finally:
        stack.stop()
    assert refused.value.status == 429 and refused.value.code == "too_many_unfinished_jobs"
    assert str(refused.value) == "You have 100 unfinished jobs (the limit is 100)."


class ExpiredFormStack(StubStack):
    """S3 refusing an expired policy, in its XML shape."""

    def upload(self):
        return (
            403,
            b"<Error><Code>AccessDenied</Code><Message>Invalid according to Policy: Policy expired.</Message></Error>",
        )


def test_a_refused_upload_says_what_the_storage_said(tmp_path):
    stack = ExpiredFormStack()
    memo = tmp_path / "memo.wav"
    memo.write_bytes(AUDIO)
    try:
        with Hark(stack.url, "t") as hark, pytest.raises(UploadFailed) as refused:
            hark.submit(memo)
    finally:
        stack.stop()
    assert str(refused.value) == "upload failed: Invalid according to Policy: Policy expired. (HTTP 403)"


def test_nothing_listening_is_connection_failed_naming_the_url():
    url = f"http://127.0.0.1:{free_port()}"
    with Hark(url, "t") as hark, pytest.raises(ConnectionFailed) as failed:
        hark.get("j1")
    assert failed.value.url == f"{url}/jobs/j1"
    assert str(failed.value) == f"cannot reach {url}/jobs/j1: is the server running?"


def test_create_sends_the_webhook_and_notify_choices():
    from tests.unit.test_cli_errors import StubStack as Base

    class Recording(Base):
        def __init__(self):
            self.bodies: list[dict] = []
            super().__init__()

        def create(self, body):
            self.bodies.append(body)
            return super().create(body)

    stack = Recording()
    try:
        with Hark(stack.url, "t") as hark:
            hark.create("a.wav", 10, webhook_url="https://hooks.example.com/hark", notify=["webhook"])
            hark.create("b.wav", 10)
            with pytest.raises(InvalidArgument, match=r"^notify: 'sms' is not one of "):
                hark.create("c.wav", 10, notify=["sms"])
    finally:
        stack.stop()
    first, second = stack.bodies
    assert (first["webhook_url"], first["notify"]) == ("https://hooks.example.com/hark", ["webhook"])
    assert "webhook_url" not in second and "notify" not in second  # the server's defaults apply
