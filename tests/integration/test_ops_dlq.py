"""`hark dlq list|replay` against the emulator's real queues (no mocks)."""

from __future__ import annotations

import argparse
import json

import pytest

from hark.domain import aws
from hark.domain.jobs import Job, JobStatus, new_job_id, now_iso
from hark.domain.messages import NotifyMessage
from hark.ops import dlq as ops


def url(name: str) -> str:
    return aws.queue_url(name)


def visible(name: str) -> int:
    attrs = aws.client("sqs").get_queue_attributes(
        QueueUrl=url(name), AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


def drain(name: str) -> list[dict]:
    sqs, out = aws.client("sqs"), []
    while True:
        got = sqs.receive_message(
            QueueUrl=url(name), MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageSystemAttributeNames=["All"]
        ).get("Messages", [])
        if not got:
            return out
        for m in got:
            sqs.delete_message(QueueUrl=url(name), ReceiptHandle=m["ReceiptHandle"])
        out += got


def make_job(store, **kw) -> Job:
    job_id = new_job_id()
    return store.jobs.create(
        Job(
            job_id=job_id,
            user_id="user_a",
            email="a@example.com",
            filename="a.wav",
            content_type="audio/wav",
            size_bytes=10,
            audio_key=f"uploads/user_a/{job_id}/a.wav",
            status=JobStatus.UPLOADING,
            created_at=now_iso(),
            updated_at=now_iso(),
            **kw,
        )
    )


@pytest.fixture
def store(stack):
    return aws.job_store()


@pytest.fixture
def notify_dlq(stack, store):
    """Three dead notify messages: two jobs and one broken body, sent straight to the DLQ."""
    jobs = [make_job(store), make_job(store)]
    for job in jobs:
        store.jobs.fail(job.job_id, "bad audio")
    sqs = aws.client("sqs")
    for body in [
        NotifyMessage(job_id=jobs[0].job_id).model_dump_json(),
        NotifyMessage(job_id=jobs[1].job_id).model_dump_json(),
        "{not json",
    ]:
        sqs.send_message(QueueUrl=url(stack.notify_queue.dlq_name), MessageBody=body)
    return jobs


def test_list_shows_messages_without_consuming_them(stack, notify_dlq):
    entries = ops.dlq_list("notify")
    assert len(entries) == 3
    by_job = {e.job_ids[0]: e for e in entries if e.job_ids}
    assert set(by_job) == {j.job_id for j in notify_dlq}
    e = by_job[notify_dlq[0].job_id]
    assert e.summary == f"notify job {e.job_ids[0]}" and e.job_status == ["FAILED"]
    assert e.receive_count == 1 and e.first_sent.endswith("Z")
    [broken] = [e for e in entries if not e.job_ids]
    assert broken.summary.startswith("broken: notify message is malformed")
    # Nothing consumed, and everything visible again at once.
    assert visible(stack.notify_queue.dlq_name) == (3, 0)
    again = ops.dlq_list("notify")
    assert {e.message_id for e in again} == {e.message_id for e in entries}
    assert all(e.receive_count == 2 for e in again)  # each peek is a receive
    assert visible(stack.notify_queue.name) == (0, 0)


def test_replay_dry_run_moves_nothing(stack, notify_dlq):
    results = ops.dlq_replay("notify", dry_run=True)
    assert len(results) == 3 and not any(r.moved for r in results)
    assert all(r.note.startswith("dry run") for r in results)
    assert visible(stack.notify_queue.dlq_name) == (3, 0)
    assert visible(stack.notify_queue.name) == (0, 0)


def test_replay_one_job_then_all(stack, notify_dlq):
    first = notify_dlq[0].job_id
    [r] = ops.dlq_replay("notify", job_id=first)
    assert r.moved and r.job_ids == [first] and r.new_message_id
    assert visible(stack.notify_queue.dlq_name) == (2, 0)
    [moved] = drain(stack.notify_queue.name)
    assert json.loads(moved["Body"])["job_id"] == first
    assert moved["Attributes"]["ApproximateReceiveCount"] == "1"  # a fresh start: all retries again

    assert ops.dlq_replay("notify", job_id="no-such-job") == []
    assert visible(stack.notify_queue.dlq_name) == (2, 0)

    results = ops.dlq_replay("notify", job_id=None)
    assert len(results) == 2 and all(r.moved for r in results)
    assert visible(stack.notify_queue.dlq_name) == (0, 0)
    assert sorted(m["Body"] for m in drain(stack.notify_queue.name)) == sorted(
        ["{not json", NotifyMessage(job_id=notify_dlq[1].job_id).model_dump_json()]
    )


def test_transcribe_replay_hands_a_stuck_job_to_the_copy(stack, store):
    """A real redrive: the upload's S3 event is received max_receive_count times and dead-letters."""
    sqs, s3 = aws.client("sqs"), aws.client("s3")
    stuck = make_job(store)  # a worker died on it again and again: PROCESSING, claimed by the message
    failed = make_job(store)  # the worker gave up: FAILED, final
    drain(stack.transcribe_queue.name)  # the s3:TestEvent from provisioning
    for job in (stuck, failed):
        s3.put_object(Bucket=stack.audio_bucket.name, Key=job.audio_key, Body=b"RIFF")
        store.jobs.mark_queued(job.job_id, now_iso())
    events = {}
    for _ in range(stack.transcribe_queue.max_receive_count):
        for m in sqs.receive_message(
            QueueUrl=url(stack.transcribe_queue.name), MaxNumberOfMessages=10, VisibilityTimeout=0, WaitTimeSeconds=0
        ).get("Messages", []):
            if ops.describe_body("transcribe", m["Body"])[0]:
                events[m["MessageId"]] = m
            else:  # an s3:TestEvent: not part of this story
                sqs.delete_message(QueueUrl=url(stack.transcribe_queue.name), ReceiptHandle=m["ReceiptHandle"])
    by_job = {ops.describe_body("transcribe", m["Body"])[0][0]: mid for mid, m in events.items()}
    store.jobs.claim(stuck.job_id, by_job[stuck.job_id])
    store.jobs.claim(failed.job_id, by_job[failed.job_id])
    store.jobs.fail(failed.job_id, "could not decode")
    sqs.receive_message(QueueUrl=url(stack.transcribe_queue.name), WaitTimeSeconds=1)  # redrive happens here

    entries = {e.job_ids[0]: e for e in ops.dlq_list("transcribe")}
    assert set(entries) == {stuck.job_id, failed.job_id}
    assert stuck.audio_key in entries[stuck.job_id].summary
    assert entries[stuck.job_id].job_status == ["PROCESSING"] and entries[failed.job_id].job_status == ["FAILED"]
    assert entries[stuck.job_id].message_id == by_job[stuck.job_id]  # SQS keeps the id through the DLQ

    results = {r.job_ids[0]: r for r in ops.dlq_replay("transcribe")}
    assert "claim handed to the replayed message" in results[stuck.job_id].note
    assert "final" in results[failed.job_id].note
    new_id = results[stuck.job_id].new_message_id
    # The worker that receives the copy may claim the job; the dead message no longer can.
    assert store.jobs.claim(stuck.job_id, new_id).attempts == 2
    assert visible(stack.transcribe_queue.dlq_name) == (0, 0)


def test_cli_register_and_dispatch(stack, notify_dlq, capsys):
    parser = argparse.ArgumentParser(prog="hark")
    sub = parser.add_subparsers(dest="command", required=True)
    ops.register(sub)  # as hark.client.cli does

    args = parser.parse_args(["dlq", "list", "notify"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "3 message(s) in the notify DLQ" in out and notify_dlq[0].job_id in out and "[FAILED]" in out

    args = parser.parse_args(["dlq", "replay", "notify", "--all", "--dry-run"])
    assert args.func(args) == 0
    assert "would move 3 message(s)" in capsys.readouterr().out
    assert visible(stack.notify_queue.dlq_name) == (3, 0)

    args = parser.parse_args(["dlq", "replay", "notify", "--job", notify_dlq[1].job_id, "--json"])
    assert args.func(args) == 0
    [moved] = json.loads(capsys.readouterr().out)
    assert moved["moved"] and moved["job_ids"] == [notify_dlq[1].job_id]
    assert visible(stack.notify_queue.dlq_name) == (2, 0)

    with pytest.raises(SystemExit):
        parser.parse_args(["dlq", "replay", "notify"])  # --job or --all is required


def test_upload_status_dlq_lists_and_replays_the_uploads_s3_event(stack, store):
    """The upload-status function's queue gets the same S3 event (SNS raw delivery); after max_receive_count
    failed receives it dead-letters, and `hark dlq` shows and moves it like the others."""
    sqs, s3 = aws.client("sqs"), aws.client("s3")
    queue = stack.upload_status_queue
    drain(queue.name)  # the s3:TestEvent from provisioning
    job = make_job(store)
    s3.put_object(Bucket=stack.audio_bucket.name, Key=job.audio_key, Body=b"RIFF")
    bodies = set()
    for _ in range(queue.max_receive_count):
        for m in sqs.receive_message(
            QueueUrl=url(queue.name), MaxNumberOfMessages=10, VisibilityTimeout=0, WaitTimeSeconds=1
        ).get("Messages", []):
            bodies.add(m["Body"])
    sqs.receive_message(QueueUrl=url(queue.name), WaitTimeSeconds=1)  # redrive happens here
    [body] = bodies

    [entry] = ops.dlq_list("upload-status")
    assert entry.job_ids == [job.job_id] and job.audio_key in entry.summary and entry.job_status == ["UPLOADING"]
    [dry] = ops.dlq_replay("upload-status", dry_run=True)
    assert not dry.moved and dry.note == "dry run: will be marked QUEUED"

    store.jobs.mark_queued(job.job_id, now_iso())  # a worker took the transcribe queue's copy meanwhile
    [moved] = ops.dlq_replay("upload-status", job_id=job.job_id)
    assert moved.moved and moved.note == "job is QUEUED: already past UPLOADING, nothing to do"
    assert visible(queue.dlq_name) == (0, 0)
    assert [m["Body"] for m in drain(queue.name)] == [body]  # the same event, back on its own queue


def test_undelivered_upload_events_are_listed_and_replayed_to_every_queue_the_topic_feeds(stack, store, capsys):
    """The uploads topic's dead-letter queue (in AWS, SNS puts there an S3 event a queue's policy refused;
    the UploadsUndelivered alarm): `hark dlq` lists it with its job, and a replay sends it to each queue
    the topic feeds, so the job is queued and transcribed whichever copy was lost."""
    sqs, s3 = aws.client("sqs"), aws.client("s3")
    topic = stack.uploads_topic
    for name in topic.raw_subscribers:
        drain(name)
    job = make_job(store)
    s3.put_object(Bucket=stack.audio_bucket.name, Key=job.audio_key, Body=b"RIFF")
    # The event as SNS delivered it; say the transcribe queue's copy was refused, and both are gone.
    [body] = {m["Body"] for name in topic.raw_subscribers for m in drain(name)}
    sqs.send_message(QueueUrl=url(topic.undelivered_queue), MessageBody=body)

    [entry] = ops.dlq_list("undelivered")
    assert entry.job_ids == [job.job_id] and job.audio_key in entry.summary and entry.job_status == ["UPLOADING"]
    [dry] = ops.dlq_replay("undelivered", dry_run=True)
    assert not dry.moved and dry.note == "dry run: will be marked QUEUED and transcribed"
    assert visible(topic.undelivered_queue) == (1, 0)

    assert ops.main(["dlq", "replay", "undelivered", "--job", job.job_id]) == 0
    assert "moved 1 message(s) to every queue the uploads topic feeds" in capsys.readouterr().out
    assert visible(topic.undelivered_queue) == (0, 0)
    for name in topic.raw_subscribers:  # the same event, on each queue the topic feeds
        assert [m["Body"] for m in drain(name)] == [body], name
