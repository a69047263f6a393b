"""The session-end IAM check (tests/aws_calls.py) on calls shaped as hark.domain.aws records them, against the real
synthesised roles: it allows what the roles grant and refuses what they do not, so a grant removed from a
role fails the run that exercised it."""

from __future__ import annotations

import pytest

from hark.domain.resources import resources
from tests import aws_calls

from .conftest import TEST_CONTEXT

LOCAL = resources("hark-test", "transcripts@hark.local")  # the names the recording processes used
DEPLOYED = aws_calls.deployed_resources(TEST_CONTEXT)


def call(
    component: str,
    service: str,
    operation: str,
    presign: bool = False,
    status: int | None = 200,
    keys: list[str] | None = None,
    **params: str,
) -> dict:
    return {
        "component": component,
        "service": service,
        "operation": operation,
        "presign": presign,
        "status": status,
        "params": params,
        "keys": keys or [],
        "stack": LOCAL.stack,
        "email_sender": LOCAL.email_identity,
    }


@pytest.fixture(scope="module")
def roles(synth):
    return {
        c: aws_calls.resolved_statements(synth.template(stack), prefix)
        for c, (stack, prefix) in aws_calls.ROLES.items()
    }


def decide(record: dict, statements: list[dict]) -> list[tuple[str, bool]]:
    names = aws_calls.NameMap(DEPLOYED).translate(record)
    return [(n.action, aws_calls.allowed(n, statements)) for n in aws_calls.needs(record, names)]


def without(statements: list[dict], action: str) -> list[dict]:
    return [s for s in statements if action not in s["Action"]]


def test_head_object_needs_get_object_and_list_bucket(roles):
    head = call(
        "transcription-worker",
        "s3",
        "HeadObject",
        Bucket=LOCAL.transcripts_bucket.name,
        Key="parts/user_a/job1/0003.json",
        status=404,
    )
    assert decide(head, roles["transcription-worker"]) == [("s3:GetObject", True), ("s3:ListBucket", True)]
    # the grant this issue was about, removed: the probe would answer 403 in AWS
    assert decide(head, without(roles["transcription-worker"], "s3:ListBucket")) == [
        ("s3:GetObject", True),
        ("s3:ListBucket", False),
    ]


def test_a_get_that_saw_a_missing_key_needs_list_bucket_too(roles):
    found = call(
        "notification-worker",
        "s3",
        "GetObject",
        Bucket=LOCAL.transcripts_bucket.name,
        Key="transcripts/u/j/transcript.txt",
    )
    missing = {**found, "status": 404}
    assert decide(found, roles["notification-worker"]) == [("s3:GetObject", True)]
    assert decide(missing, roles["notification-worker"]) == [("s3:GetObject", True), ("s3:ListBucket", True)]
    assert ("s3:ListBucket", False) in decide(missing, without(roles["notification-worker"], "s3:ListBucket"))


def test_api_lists_job_prefixes_only(roles):
    def listing(prefix: str) -> dict:
        return call("api", "s3", "ListObjectsV2", Bucket=LOCAL.audio_bucket.name, Prefix=prefix)

    assert decide(listing("uploads/user_a/job1/"), roles["api"]) == [("s3:ListBucket", True)]
    assert decide(listing(""), roles["api"]) == [("s3:ListBucket", False)]  # the whole bucket: no
    assert decide(listing("other/"), roles["api"]) == [("s3:ListBucket", False)]
    assert decide(listing("uploads/user_a/job1/"), without(roles["api"], "s3:ListBucket")) == [("s3:ListBucket", False)]


def test_batch_delete_needs_delete_object_on_every_key(roles):
    batch = call(
        "api", "s3", "DeleteObjects", Bucket=LOCAL.audio_bucket.name, keys=["uploads/u/j/a.wav", "chunks/u/j/0001.flac"]
    )
    assert decide(batch, roles["api"]) == [("s3:DeleteObject", True), ("s3:DeleteObject", True)]
    outside = call("api", "s3", "DeleteObjects", Bucket=LOCAL.audio_bucket.name, keys=["elsewhere/x"])
    assert decide(outside, roles["api"]) == [("s3:DeleteObject", False)]


def test_presigned_urls_count_as_the_signers_calls(roles):
    upload = call(
        "api", "s3", "PutObject", presign=True, status=None, Bucket=LOCAL.audio_bucket.name, Key="uploads/u/j/a.wav"
    )
    assert decide(upload, roles["api"]) == [("s3:PutObject", True)]
    # The viewer's playback link (GET /jobs/{id}/audio): the upload, and nothing else in the audio bucket.
    play = call(
        "api", "s3", "GetObject", presign=True, status=None, Bucket=LOCAL.audio_bucket.name, Key="uploads/u/j/a.wav"
    )
    assert decide(play, roles["api"]) == [("s3:GetObject", True)]
    read_chunk = call(
        "api", "s3", "GetObject", presign=True, status=None, Bucket=LOCAL.audio_bucket.name, Key="chunks/u/j/0001.flac"
    )
    assert decide(read_chunk, roles["api"]) == [("s3:GetObject", False)]


def test_email_only_from_the_configured_sender(roles):
    send = call("notification-worker", "ses", "SendRawEmail", Source=LOCAL.email_identity)
    assert decide(send, roles["notification-worker"]) == [("ses:SendRawEmail", True)]
    assert decide(send, roles["transcription-worker"]) == [("ses:SendRawEmail", False)]


def test_queues_and_tables_by_name_and_index(roles):
    poll = call(
        "transcription-worker", "sqs", "ReceiveMessage", QueueUrl=f"http://emu/123/{LOCAL.transcribe_queue.name}"
    )
    assert decide(poll, roles["transcription-worker"]) == [("sqs:ReceiveMessage", True)]
    assert decide(poll, roles["notification-worker"]) == [("sqs:ReceiveMessage", False)]
    chunks = call(
        "transcription-worker", "sqs", "SendMessageBatch", QueueUrl=f"http://emu/123/{LOCAL.transcribe_queue.name}"
    )
    assert decide(chunks, roles["transcription-worker"]) == [("sqs:SendMessage", True)]  # batch: the single action
    query = call("api", "dynamodb", "Query", TableName=LOCAL.jobs_table.name, IndexName="by-user")
    assert decide(query, roles["api"]) == [("dynamodb:Query", True)]
    scan = call("api", "dynamodb", "Scan", TableName=LOCAL.jobs_table.name)
    assert decide(scan, roles["api"]) == [("dynamodb:Scan", False)]
    # a browser ticket is used up by whichever live task opens its stream; only the live service has tickets
    redeem = call("live-service", "dynamodb", "DeleteItem", TableName=LOCAL.live_tickets_table.name)
    assert decide(redeem, roles["live-service"]) == [("dynamodb:DeleteItem", True)]
    assert decide(redeem, roles["api"]) == [("dynamodb:DeleteItem", False)]
    wrong_table = call("live-service", "dynamodb", "DeleteItem", TableName=LOCAL.api_keys_table.name)
    assert decide(wrong_table, roles["live-service"]) == [("dynamodb:DeleteItem", False)]


def test_check_reports_refusals_unknown_resources_and_silent_components(synth):
    records = [
        call("api", "s3", "ListObjectsV2", Bucket=LOCAL.audio_bucket.name, Prefix=""),
        call("api", "s3", "GetObject", Bucket="someone-elses-bucket", Key="x"),
        call("ops-cli", "sqs", "ReceiveMessage", QueueUrl=f"http://emu/123/{LOCAL.notify_queue.dlq_name}"),
    ]
    problems = aws_calls.check(records, synth.templates, TEST_CONTEXT, required={"api", "transcription-worker"})
    assert any("transcription-worker: its tests ran but no AWS call" in p for p in problems)
    assert any("may not s3:ListBucket" in p and "'s3:prefix': ''" in p for p in problems)
    assert any("someone-elses-bucket" in p and "does not define" in p for p in problems)
    assert not any(p.startswith("ops-cli") for p in problems)  # the operator's credentials: not checked
    allowed = [call("api", "s3", "ListObjectsV2", Bucket=LOCAL.audio_bucket.name, Prefix="uploads/u/j/")]
    assert aws_calls.check(allowed, synth.templates, TEST_CONTEXT, required={"api"}) == []


def test_iam_wildcards_and_conditions():
    need = aws_calls.Need("s3:GetObject", "arn:aws:s3:::b/transcripts/u/j/t.txt")
    grant = {"Effect": "Allow", "Action": "S3:Get*", "Resource": "arn:aws:s3:::b/transcripts/*"}
    assert aws_calls.allowed(need, [grant])  # actions match case-insensitively, with wildcards
    assert not aws_calls.allowed(need, [{**grant, "Resource": "arn:aws:s3:::b/transcripts/?"}])
    assert aws_calls.allowed(need, [{**grant, "Resource": "arn:aws:s3:::?/transcripts/*"}])
    assert not aws_calls.allowed(need, [grant, {**grant, "Effect": "Deny"}])  # an explicit Deny wins
    listing = aws_calls.Need("s3:ListBucket", "arn:aws:s3:::b", (("s3:prefix", "uploads/u/"),))
    conditioned = {
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": "arn:aws:s3:::b",
        "Condition": {"StringLike": {"s3:prefix": ["uploads/*"]}},
    }
    assert aws_calls.allowed(listing, [conditioned])
    # the implicit check of a missing-key read carries no s3:prefix: a conditioned grant does not count
    assert not aws_calls.allowed(aws_calls.Need("s3:ListBucket", "arn:aws:s3:::b"), [conditioned])
    with pytest.raises(ValueError, match="beyond this check"):
        aws_calls.allowed(listing, [{**conditioned, "Condition": {"NumericLessThan": {"s3:max-keys": "10"}}}])
