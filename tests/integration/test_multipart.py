"""Big uploads in parts (issue 25) through the API handler against the emulator: S3 multipart with a
presigned PUT per part, resumed from the parts S3 has, checked before it is joined, and landing the job by
the same S3 event as a POST upload. Small parts (S3's 5 MiB minimum) keep the file at 11 MiB."""

from __future__ import annotations

import os

import pytest
import requests

from hark.domain import aws
from hark.domain.arrivals import receive_upload
from hark.domain.jobs import JobStatus
from hark.domain.messages import parse_transcribe_body
from hark.domain.settings import get_settings
from tests.integration.test_api import BOB, assert_error, call, new_job

MIB = 1024**2
PART = 5 * MIB


@pytest.fixture
def parts_of_5_mib(monkeypatch):
    monkeypatch.setenv("HARK_MULTIPART_THRESHOLD_BYTES", str(8 * MIB))
    monkeypatch.setenv("HARK_MULTIPART_PART_BYTES", str(PART))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def put_part(job_id: str, number: int, data: bytes) -> None:
    status, urls = call("POST", f"/jobs/{job_id}/multipart/parts", body={"part_numbers": [number]})
    assert status == 200, urls
    reply = requests.put(urls["urls"][0]["url"], data=data, timeout=60)
    assert reply.status_code == 200, reply.text


def arrival_of(key: str) -> list:
    """The S3 events for `key` on the transcribe queue (S3 -> SNS -> SQS, raw), parsed as the worker does."""
    sqs, url = aws.client("sqs"), aws.queue_url(aws.stack_resources().transcribe_queue.name)
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        found = [e for m in batch for e in parse_transcribe_body(m["Body"]) if e.key == key]
        if found:
            return found


def test_a_big_upload_goes_up_in_parts_resumes_and_lands_its_job(stack, parts_of_5_mib):
    data = os.urandom(11 * MIB + 12_345)
    created = new_job(filename="all-hands.mp4", content_type="video/mp4", size=len(data))
    job_id, multipart = created["job"]["job_id"], created["multipart"]
    assert (multipart["part_size"], multipart["part_count"], multipart["parts_done"]) == (PART, 3, [])
    # A small file gets no multipart: the presigned POST is the way.
    assert new_job()["multipart"] is None

    put_part(job_id, 1, data[:PART])
    # The page is reloaded (or the connection dropped): the same call resumes with what S3 has.
    status, resumed = call("POST", f"/jobs/{job_id}/multipart")
    assert status == 200 and resumed["upload_id"] == multipart["upload_id"]
    assert resumed["parts_done"] == [{"part_number": 1, "size": PART}]

    # Completing early names what is missing; a part of the wrong size is refused at completion (S3 cannot
    # pin a multipart upload's size) and can be sent again. Nothing is lost either way.
    assert (
        "Parts 2, 3 not uploaded yet"
        in assert_error(call("POST", f"/jobs/{job_id}/multipart/complete"), 409)["message"]
    )
    put_part(job_id, 2, data[PART : 2 * PART - 1])
    put_part(job_id, 3, data[2 * PART :])
    refused = assert_error(call("POST", f"/jobs/{job_id}/multipart/complete"), 400, "size_mismatch")
    assert f"not the {len(data)} bytes declared" in refused["message"]
    put_part(job_id, 2, data[PART : 2 * PART])
    # Another user's job is not found; a part number past the last is refused.
    assert_error(call("POST", f"/jobs/{job_id}/multipart", user=BOB), 404)
    assert_error(call("POST", f"/jobs/{job_id}/multipart/parts", body={"part_numbers": [4]}), 400)

    status, job = call("POST", f"/jobs/{job_id}/multipart/complete")
    assert status == 200 and job["status"] == "UPLOADING"
    key = aws.job_store().jobs.get(job_id).audio_key
    audio = aws.stack_resources().audio_bucket.name
    assert aws.client("s3").get_object(Bucket=audio, Key=key)["Body"].read() == data
    # The upload lands by S3's own event, as a POST's does: the job is QUEUED with the real size.
    # (moto also sends an ObjectCreated:Put for it: a duplicate event, which arrivals and claims absorb.)
    events = arrival_of(key)
    assert {e.size for e in events} == {len(data)}
    landed = receive_upload(aws.job_store(), aws.client("s3"), events[0]).job
    assert landed.status == JobStatus.QUEUED and landed.uploaded_bytes == len(data)
    # Nothing is left to upload once it has arrived.
    assert_error(call("POST", f"/jobs/{job_id}/multipart"), 409, "upload_arrived")


def test_an_aborted_upload_starts_again_from_nothing(stack, parts_of_5_mib):
    created = new_job(filename="call.mkv", content_type="video/x-matroska", size=9 * MIB)
    job_id, first = created["job"]["job_id"], created["multipart"]
    put_part(job_id, 1, os.urandom(PART))
    status, _ = call("DELETE", f"/jobs/{job_id}/multipart")
    assert status == 204
    assert_error(call("POST", f"/jobs/{job_id}/multipart/parts", body={"part_numbers": [1]}), 409)
    status, again = call("POST", f"/jobs/{job_id}/multipart")
    assert status == 200 and again["upload_id"] != first["upload_id"] and again["parts_done"] == []
    # The bucket drops the parts of an upload nobody completes or aborts (a closed tab), a day after it began.
    rules = aws.client("s3").get_bucket_lifecycle_configuration(Bucket=aws.stack_resources().audio_bucket.name)
    assert {"ID": "abort-incomplete-multipart", "DaysAfterInitiation": 1} in [
        {"ID": r["ID"], **r.get("AbortIncompleteMultipartUpload", {})} for r in rules["Rules"]
    ]
