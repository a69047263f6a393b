"""Operator tools for the dead-letter queues: `hark dlq list|replay QUEUE`, QUEUE one of `QUEUES`.

list   peeks at a DLQ: every message is received with a short visibility, described, and handed back
       at once (visibility 0). Nothing is deleted. A peek counts as a receive, so the receive count
       shown grows by one each time you list.
replay moves messages back to their source queue: receive -> send the same body to the source ->
       delete from the DLQ (SQS's own StartMessageMoveTask would do this in AWS, but the local
       emulator lacks it, and this way one job can be picked out). A crash between send and delete
       leaves a copy in both queues; the consumers are idempotent, so that costs nothing.

What a replayed message does depends on the job, not on the message (docs/runbook.md):
- notify: a job not yet emailed gets its one email; an emailed job's message is dropped.
- webhooks: a job whose webhook was not delivered gets another day of attempts (the receive count
  starts again); a delivered one's message is dropped.
- transcribe: a QUEUED job is transcribed. A PROCESSING job whose claim belongs to the dead message
  (a worker died on it again and again) is handed to the replayed copy, which has a new SQS message
  id, so the worker's claim accepts it. A COMPLETED or FAILED job is final: states only move forward,
  the worker drops the message; to transcribe a failed recording again, upload it again.
- upload-status: the same S3 event; an UPLOADING job is marked QUEUED, any other is left as it is (the
  workers take their own copy of the event from the transcribe queue).
- undelivered: S3 events the uploads topic could not deliver to a queue (a queue policy refused it; the
  `UploadsUndelivered` alarm). Each goes to every queue the topic feeds (transcribe and upload-status):
  the one that missed it acts on it, the other drops its duplicate.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from botocore.exceptions import ClientError

from hark.domain import aws
from hark.domain.keys import parse_upload_key
from hark.domain.messages import (
    BrokenMessage,
    ChunkMessage,
    parse_notify_body,
    parse_transcribe_body,
    parse_webhook_body,
)

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageTypeDef

QUEUES = ("transcribe", "notify", "webhooks", "upload-status", "undelivered")
PEEK_VISIBILITY_SECONDS = 20  # long enough to read the whole DLQ once; handed back right after
MOVE_VISIBILITY_SECONDS = 60  # long enough to send the copy and delete the original


@dataclass
class DlqEntry:
    message_id: str
    receive_count: int
    first_sent: str  # ISO time the message was first sent to the source queue
    job_ids: list[str]
    summary: str
    job_status: list[str] = field(default_factory=list)  # the named jobs' current states
    last_errors: list[str] = field(default_factory=list)  # why each named job's latest attempt failed ("" if none)
    body: str = ""


@dataclass
class ReplayResult:
    message_id: str
    job_ids: list[str]
    moved: bool
    new_message_id: str | None = None
    note: str = ""


def _dead_and_sources(queue: str) -> tuple[str, tuple[str, ...]]:
    """(the dead-letter queue's name, the queues its messages go back to)."""
    res = aws.stack_resources()
    if queue == "undelivered":
        return res.uploads_topic.undelivered_queue, res.uploads_topic.raw_subscribers
    queues = {
        "transcribe": res.transcribe_queue,
        "notify": res.notify_queue,
        "webhooks": res.webhook_queue,
        "upload-status": res.upload_status_queue,
    }
    if queue not in queues:
        raise ValueError(f"unknown queue {queue!r}: one of {', '.join(QUEUES)}")
    return queues[queue].dlq_name, (queues[queue].name,)


def _iso_millis(value: str | None) -> str:
    if not value:
        return ""
    return datetime.fromtimestamp(int(value) / 1000, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def describe_body(queue: str, body: str) -> tuple[list[str], str]:
    """(job ids the body names, a one-line summary)."""
    try:
        if queue == "notify":
            note = parse_notify_body(body)
            return [note.job_id], f"notify job {note.job_id}"
        if queue == "webhooks":
            hook = parse_webhook_body(body)
            return [hook.job_id], f"webhook of job {hook.job_id}"
        parsed = parse_transcribe_body(body)
    except BrokenMessage as err:
        # The DLQ is where unreadable bodies end up: still say which job they seem to name.
        job_ids, what = _loose_description(body)
        return job_ids, f"broken: {err} ({what})"
    if isinstance(parsed, ChunkMessage):
        return [
            parsed.job_id
        ], f"chunk {parsed.index + 1}/{parsed.total} of job {parsed.job_id} at {parsed.offset:.0f}s"
    if not parsed:
        return [], "S3 test event"
    summary = "; ".join(f"upload {u.key} ({u.size} bytes)" for u in parsed)
    return [u.job_id for u in parsed], summary


def _loose_description(body: str) -> tuple[list[str], str]:
    """Best effort for a body the strict parsers refuse: job ids from a job_id field or upload keys."""
    snippet = repr(" ".join(body.split())[:60])
    try:
        data = json.loads(body)
    except (ValueError, TypeError):
        return [], snippet
    if not isinstance(data, dict):
        return [], snippet
    if isinstance(data.get("job_id"), str):
        return [data["job_id"]], f"names job {data['job_id']}"
    keys = []
    for record in data.get("Records") or []:
        try:
            keys.append(unquote_plus(record["s3"]["object"]["key"]))
        except (KeyError, TypeError):
            continue
    job_ids = []
    for key in keys:
        try:
            job_ids.append(parse_upload_key(key).job_id)
        except ValueError:
            pass
    return (job_ids, "upload " + ", ".join(keys)) if keys else ([], snippet)


def _job_states(job_ids: list[str]) -> tuple[list[str], list[str]]:
    """(each named job's status, each one's last attempt error); DELETED for a job that is gone."""
    try:
        store = aws.job_store()
        jobs = [store.jobs.get(job_id) for job_id in job_ids]
    except ClientError:
        return ["?" for _ in job_ids], ["" for _ in job_ids]
    return (
        [job.status.value if job else "DELETED" for job in jobs],
        [(job.last_error or "") if job else "" for job in jobs],
    )


def _receive_all(url: str, visibility: int) -> list[MessageTypeDef]:
    """Every message currently visible in the queue, each once, all kept invisible for `visibility`."""
    sqs = aws.client("sqs")
    seen: dict[str, MessageTypeDef] = {}
    while True:  # a long poll asks every SQS server, so one that brings nothing new means done
        got = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=visibility,
            WaitTimeSeconds=1,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        new = [m for m in got if m["MessageId"] not in seen]
        for m in new:
            seen[m["MessageId"]] = m
        if not new:
            return list(seen.values())


def _hand_back(url: str, messages: list[MessageTypeDef]) -> None:
    sqs = aws.client("sqs")
    for i in range(0, len(messages), 10):
        batch = messages[i : i + 10]
        sqs.change_message_visibility_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0} for n, m in enumerate(batch)
            ],
        )


def _entry(queue: str, m: MessageTypeDef, with_status: bool = True) -> DlqEntry:
    attrs = m.get("Attributes", {})
    job_ids, summary = describe_body(queue, m.get("Body", ""))
    status, errors = _job_states(job_ids) if with_status else ([], [])
    return DlqEntry(
        message_id=m["MessageId"],
        receive_count=int(attrs.get("ApproximateReceiveCount", "0")),
        first_sent=_iso_millis(attrs.get("SentTimestamp")),
        job_ids=job_ids,
        summary=summary,
        job_status=status,
        last_errors=errors,
        body=m.get("Body", ""),
    )


def dlq_list(queue: str) -> list[DlqEntry]:
    """The messages in `queue`'s DLQ, oldest first, without consuming them."""
    url = aws.queue_url(_dead_and_sources(queue)[0])
    messages = _receive_all(url, PEEK_VISIBILITY_SECONDS)
    try:
        entries = [_entry(queue, m) for m in messages]
    finally:
        _hand_back(url, messages)
    return sorted(entries, key=lambda e: (e.first_sent, e.message_id))


# What a replayed undelivered upload event does, by its job's status (any other: dropped as a duplicate).
UNDELIVERED_NOTES = {
    "UPLOADING": "will be marked QUEUED and transcribed",
    "QUEUED": "will be transcribed",
    "DELETED": "job deleted: the upload is deleted",
}


def _replay_note(queue: str, statuses: list[str]) -> str:
    if not statuses:
        return (
            "no job named"
            if queue in ("transcribe", "undelivered")
            else "no job named: the consumer will send it back to the DLQ"
        )
    notes = []
    for status in statuses:
        if queue == "undelivered":  # the upload's S3 event, for every queue the uploads topic feeds
            notes.append(UNDELIVERED_NOTES.get(status, f"job is {status}: the copies are dropped as duplicates"))
        elif queue == "webhooks":
            notes.append(
                "job deleted: the worker drops it"
                if status == "DELETED"
                else "will be delivered again (a fresh day of retries) unless it already was"
            )
        elif queue == "upload-status":  # the body is the upload's S3 event, as on the transcribe queue
            notes.append(
                "will be marked QUEUED"
                if status == "UPLOADING"
                else "job deleted: the function deletes the upload"
                if status == "DELETED"
                else f"job is {status}: already past UPLOADING, nothing to do"
            )
        elif queue == "notify":
            notes.append(
                "will be emailed unless it already was"
                if status in ("COMPLETED", "FAILED")
                else "job deleted: the worker drops it"
                if status == "DELETED"
                else f"job is {status}: the worker retries until it finishes"
            )
        elif status in ("COMPLETED", "FAILED"):
            notes.append(f"job is {status} (final): the worker drops it; upload again to retry")
        elif status == "DELETED":
            notes.append("job deleted: the worker drops it")
        else:
            notes.append(f"job is {status}: will be transcribed")
    return "; ".join(notes)


# Delay of a replayed transcribe message, so that the job's claim points at it before a worker sees it.
REPLAY_DELAY_SECONDS = 5


def dlq_replay(queue: str, job_id: str | None = None, dry_run: bool = False) -> list[ReplayResult]:
    """Move messages from `queue`'s DLQ back to `queue` (each undelivered upload event to every queue the
    uploads topic feeds): those naming `job_id`, or all when None."""
    dead, sources = _dead_and_sources(queue)
    sqs = aws.client("sqs")
    dlq_url, source_urls = aws.queue_url(dead), [aws.queue_url(name) for name in sources]
    messages = _receive_all(dlq_url, MOVE_VISIBILITY_SECONDS)
    results: list[ReplayResult] = []
    untouched: list[MessageTypeDef] = []
    try:
        for m in messages:
            entry = _entry(queue, m)
            if job_id is not None and job_id not in entry.job_ids:
                untouched.append(m)
                continue
            note = _replay_note(queue, entry.job_status)
            if dry_run:
                untouched.append(m)
                results.append(ReplayResult(entry.message_id, entry.job_ids, moved=False, note="dry run: " + note))
                continue
            processing = queue == "transcribe" and "PROCESSING" in entry.job_status
            kwargs: dict[str, Any] = {"MessageBody": m["Body"]}
            if m.get("MessageAttributes"):
                kwargs["MessageAttributes"] = m["MessageAttributes"]
            if processing:
                kwargs["DelaySeconds"] = REPLAY_DELAY_SECONDS
            new_id = ", ".join(sqs.send_message(QueueUrl=url, **kwargs)["MessageId"] for url in source_urls)
            if processing:
                # Jobs.claim lets only the message that holds a PROCESSING job claim it again.
                store = aws.job_store()
                adopted = [
                    j
                    for j, s in zip(entry.job_ids, entry.job_status)
                    if s == "PROCESSING" and store.jobs.adopt_claim(j, entry.message_id, new_id)
                ]
                if adopted:
                    note += f"; claim handed to the replayed message for {', '.join(adopted)}"
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=m["ReceiptHandle"])
            results.append(ReplayResult(entry.message_id, entry.job_ids, moved=True, new_message_id=new_id, note=note))
    finally:
        _hand_back(dlq_url, untouched)
    return results


# -- the `hark dlq` command ---------------------------------------------------------------------
def _cmd_list(args: argparse.Namespace) -> int:
    entries = dlq_list(args.queue)
    if args.json:
        print(json.dumps([asdict(e) for e in entries], indent=2))
        return 0
    if not entries:
        print(f"{args.queue} DLQ is empty")
        return 0
    print(f"{len(entries)} message(s) in the {args.queue} DLQ (receive counts include this peek):")
    for e in entries:
        jobs = ", ".join(f"{j} [{s}]" for j, s in zip(e.job_ids, e.job_status)) or "-"
        print(f"{e.message_id}  receives={e.receive_count}  first_sent={e.first_sent}  jobs={jobs}\n    {e.summary}")
        for job_id, error in zip(e.job_ids, e.last_errors):
            if error:
                print(f"    last error of {job_id}: {error}")
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    job_id = None if args.all else args.job
    results = dlq_replay(args.queue, job_id=job_id, dry_run=args.dry_run)
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2))
        return 0
    verb = "would move" if args.dry_run else "moved"
    for r in results:
        print(
            f"{r.message_id} -> {r.new_message_id or '(not moved)'}  jobs={', '.join(r.job_ids) or '-'}\n    {r.note}"
        )
    where = "every queue the uploads topic feeds" if args.queue == "undelivered" else f"the {args.queue} queue"
    print(f"{verb} {sum(1 for r in results if r.moved or args.dry_run)} message(s) to {where}")
    if job_id and not results:
        print(f"no message in the {args.queue} DLQ names job {job_id}", file=sys.stderr)
        return 1
    return 0


def register(subparsers) -> argparse.ArgumentParser:
    """Add `dlq list|replay` to a parent parser's subparsers (hark.client.cli calls this); run `args.func(args)`."""
    dlq = subparsers.add_parser(
        "dlq",
        help="inspect and replay dead-lettered messages",
        description="Inspect and replay the dead-letter queues.",
    )
    actions = dlq.add_subparsers(dest="dlq_action", required=True)

    queue_help = "whose DLQ; undelivered: the upload events the uploads topic could not deliver"
    ls = actions.add_parser("list", help="show a DLQ's messages without consuming them")
    ls.add_argument("queue", choices=QUEUES, help=queue_help)
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=_cmd_list)

    rp = actions.add_parser("replay", help="move DLQ messages back to their source queue")
    rp.add_argument("queue", choices=QUEUES, help=queue_help)
    which = rp.add_mutually_exclusive_group(required=True)
    which.add_argument("--job", metavar="JOB_ID", help="only the messages naming this job")
    which.add_argument("--all", action="store_true", help="every message in the DLQ")
    rp.add_argument("--dry-run", action="store_true", help="show what would move; move nothing")
    rp.add_argument("--json", action="store_true", help="machine-readable output")
    rp.set_defaults(func=_cmd_replay)
    return dlq


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hark.ops.dlq")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
