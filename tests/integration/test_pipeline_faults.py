"""Issue 4, transcription side: duplicates, crashes, retries, poison, SIGTERM (long audio across workers:
test_long_audio.py).

Real worker processes, the real model and moto's server; faults are real too (a killed process, a
missing bucket, a duplicated event body). Every test ends asserting that no job was lost and none
was done twice: each job finished, and exactly one notification per job.
"""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import datetime

import pytest

from hark.domain import aws, keys
from hark.domain.jobs import JobStatus
from hark.domain.resources import TRANSCRIPTS_PREFIX, upload_status_function
from hark.domain.settings import Settings, get_settings
from hark.domain.wer import word_error_rate
from hark.local.event_source import SqsEventSource
from tests.integration.test_notification_worker import sent_emails
from tests.integration.test_transcription_worker import (
    ENGLISH,
    WORDS_A_MINUTE,
    assert_exactly_once,
    create_job,
    drain,
    english_prose,
    notified_job_ids,
    object_exists,
    post_upload,
    read_transcript,
    submit,
    wait_finished,
    wait_queue_empty,
)
from tests.workers import WorkerProcess

POLL_WAIT_SECONDS = 1  # the workers' long poll in these tests
# How soon a message that turned visible is received and claimed: within one poll (the emulator
# re-checks a long-polled queue once a second), plus the claim's own round trips: two polls cover both.
RECEIVE_SLACK_SECONDS = 2 * POLL_WAIT_SECONDS


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def wait_busy(candidates: list[WorkerProcess], timeout: float = 120) -> WorkerProcess:
    """The first of `candidates` to start transcribing."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for worker in candidates:
            if worker.logged("transcribing"):
                return worker
        time.sleep(0.1)
    pytest.fail("no worker started transcribing")


def test_duplicate_event_gives_one_transcript(stack, workers, speech):
    job = submit(speech(ENGLISH, "en", "mp3"))
    sqs = aws.client("sqs")
    url = aws.queue_url(stack.transcribe_queue.name)
    # Take the real S3 event off the queue and deliver its body twice (S3 delivers at least once).
    taken = drain(stack.transcribe_queue.name)
    events = [m for m in taken if job.job_id in m["Body"]]
    assert len(events) == 1
    for m in taken:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    for _ in range(2):
        sqs.send_message(QueueUrl=url, MessageBody=events[0]["Body"])

    pair = [workers("a"), workers("b")]
    done = wait_finished([job.job_id])
    assert done[job.job_id].status == JobStatus.COMPLETED
    wait_queue_empty(stack.transcribe_queue.name)
    # A third copy after the job finished is dropped too.
    sqs.send_message(QueueUrl=url, MessageBody=events[0]["Body"])
    wait_queue_empty(stack.transcribe_queue.name)
    claimed = sum(len(w.logged("job claimed")) for w in pair)
    duplicates = sum(len([x for x in w.lines() if x.get("message", "").startswith("duplicate event")]) for w in pair)
    assert claimed == 1 and duplicates == 2
    assert_exactly_once(done, notified_job_ids())


def test_killed_busy_worker_recovers_within_the_lease(stack, workers, speech, emulator, tmp_path):
    """Crash recovery in minutes: a SIGKILLed worker's message comes back after the short lease
    (HARK_VISIBILITY_LEASE_SECONDS, the default the local stack and ECS run with), not the queue's
    15-minute visibility timeout; the job is finished once, with one transcript and one email."""
    settings = Settings()  # the defaults: the test sets no lease of its own
    lease = settings.visibility_lease_seconds
    pair = [
        workers("a", HARK_POLL_WAIT_SECONDS=POLL_WAIT_SECONDS),
        workers("b", HARK_POLL_WAIT_SECONDS=POLL_WAIT_SECONDS),
    ]
    notifier = WorkerProcess(
        "worker.notification",
        tmp_path / "notifier.log",
        {**os.environ, "PYTHONUNBUFFERED": "1", "HARK_POLL_WAIT_SECONDS": "1"},
    )
    try:
        text = english_prose(WORDS_A_MINUTE)  # about a minute of speech
        job = submit(speech(text, "en", "mp3"))
        busy = wait_busy(pair)
        first_claim = epoch(
            aws.job_store().jobs.get(job.job_id).started_at
        )  # just after its receive: the lease's start
        busy.proc.send_signal(signal.SIGKILL)
        killed = time.time()
        busy.proc.wait()
        survivor = next(w for w in pair if w is not busy)

        done = wait_finished([job.job_id], timeout=lease + 300)[job.job_id]
        assert done.status == JobStatus.COMPLETED and done.attempts == 2  # the same message, claimed again
        survivor.wait_for("job completed")  # logged just after the job's record turns COMPLETED
        assert not busy.logged("job completed")
        assert word_error_rate(text, read_transcript(done, "txt")[0], "en") <= 0.2

        # The message was visible again one lease after the killed worker's receive (no heartbeat
        # renewed it after the kill): claim to claim is the lease plus receiving it once visible. So
        # the recovery from the kill costs at most the lease on top of the run that completed the job.
        second_claim, finished = epoch(done.started_at), epoch(done.finished_at)
        run = finished - second_claim
        recovered = finished - killed
        print(
            f"claim -> claimed again {second_claim - first_claim:.1f} s, kill -> claimed again "
            f"{second_claim - killed:.1f} s, kill -> COMPLETED {recovered:.1f} s (lease {lease} s, the "
            f"completing run {run:.1f} s; the issue's bound 180 s; the queue's own timeout "
            f"{stack.transcribe_queue.visibility_timeout_seconds} s)"
        )
        assert second_claim - first_claim <= lease + RECEIVE_SLACK_SECONDS
        assert recovered <= lease + RECEIVE_SLACK_SECONDS + run

        # One email: wait until both queues are empty with nothing in flight, then count.
        wait_queue_empty(stack.transcribe_queue.name)
        wait_queue_empty(stack.notify_queue.name, timeout=120)
        emails = [e for e in sent_emails(emulator.endpoint) if job.job_id in e["raw_data"]]
        assert len(emails) == 1 and len(notifier.logged("email sent")) == 1
        s3 = aws.client("s3")
        listed = s3.list_objects_v2(
            Bucket=stack.transcripts_bucket.name, Prefix=keys.job_prefix(TRANSCRIPTS_PREFIX, job.user_id, job.job_id)
        )
        assert sorted(o["Key"] for o in listed.get("Contents", [])) == sorted(
            keys.transcript_key(job.user_id, job.job_id, fmt) for fmt in keys.TRANSCRIPT_FORMATS
        )
    finally:
        notifier.stop()


def test_transient_failure_is_retried_then_failed_to_the_dlq(stack, workers, speech):
    # A real fault: the transcripts bucket is gone, so every attempt fails writing the transcript.
    aws.client("s3").delete_bucket(Bucket=stack.transcripts_bucket.name)
    delays = [1, 1, 1]
    worker = workers(HARK_RETRY_DELAYS_SECONDS=json.dumps(delays))
    job = submit(speech("Please call me back tomorrow morning.", "en", "wav"))
    done = wait_finished([job.job_id], timeout=120)[job.job_id]

    # The last attempt is the queue's last receive before the redrive (or sooner with fewer delays).
    attempts = min(stack.transcribe_queue.max_receive_count, len(delays) + 1)
    assert done.status == JobStatus.FAILED and done.attempts == attempts
    assert done.error.startswith(f"transcription failed after {attempts} attempts: a storage or queue service error")
    assert done.last_error.startswith("a storage or queue service error")  # what the retries met
    assert len(worker.logged("attempt failed; retrying later")) == attempts - 1
    assert len(worker.logged("last attempt failed: job failed, message left for the dead-letter queue")) == 1
    deadline = time.time() + 30
    dead = []
    while not dead and time.time() < deadline:
        dead = drain(stack.transcribe_queue.dlq_name)
    assert len(dead) == 1 and job.job_id in dead[0]["Body"]
    assert int(dead[0]["Attributes"]["ApproximateReceiveCount"]) >= attempts
    assert_exactly_once({job.job_id: done}, notified_job_ids())


def test_poison_message_goes_to_the_dlq(stack, workers):
    sqs = aws.client("sqs")
    url = aws.queue_url(stack.transcribe_queue.name)
    bodies = ["this is not json", json.dumps({"kind": "chunk", "job_id": "x"})]
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=body)
    worker = workers()
    deadline = time.time() + 60
    dead: list[dict] = []
    while len(dead) < 2 and time.time() < deadline:
        dead += drain(stack.transcribe_queue.dlq_name)
    assert sorted(m["Body"] for m in dead) == sorted(bodies)
    # Each body is received max_receive_count times, then SQS's redrive moves it.
    receives = len(bodies) * stack.transcribe_queue.max_receive_count
    assert len(worker.logged("unreadable message: left for the dead-letter queue")) == receives
    assert worker.proc.poll() is None  # the worker carries on
    assert notified_job_ids() == []


def test_sigterm_finishes_or_hands_back_in_time(stack, workers, speech):
    # Time enough: the current job is finished, then the worker exits.
    patient = workers("patient")
    quick = submit(speech("Please call me back tomorrow morning.", "en", "wav"))
    patient.wait_for("job claimed")
    patient.proc.send_signal(signal.SIGTERM)
    assert patient.proc.wait(60) == 0
    assert patient.logged("job completed") and patient.logged("worker stopped")

    # Not enough: the message is handed back at once for another worker, and the worker exits in time.
    stop_timeout = 3
    hurried = workers("hurried", HARK_STOP_TIMEOUT_SECONDS=str(stop_timeout))
    # About two minutes: one batch of its pieces takes several times the 2.4 s the worker may wait.
    slow = submit(speech(english_prose(2 * WORDS_A_MINUTE), "en", "mp3"))
    hurried.wait_for("transcribing")
    sent = time.monotonic()
    hurried.proc.send_signal(signal.SIGTERM)
    assert hurried.proc.wait(10) == 0
    took = time.monotonic() - sent
    print(f"exit {took:.1f} s after SIGTERM (stop timeout {stop_timeout} s)")
    # Gone before the SIGKILL that ECS sends when the stop timeout runs out.
    assert took <= stop_timeout and hurried.logged("out of time: message handed back")
    assert not hurried.logged("job completed")

    successor = workers("successor")
    done = wait_finished([quick.job_id, slow.job_id], timeout=180)
    assert all(j.status == JobStatus.COMPLETED for j in done.values())
    assert done[slow.job_id].attempts == 2
    successor.wait_for("job completed")  # logged just after the job's record turns COMPLETED
    wait_queue_empty(stack.transcribe_queue.name)
    assert_exactly_once(done, notified_job_ids())


def test_sigterm_while_idle_exits_at_once(stack, workers):
    # Scale-in (or Ctrl-C on `hark up`) of an idle worker must not sit out a 20 s long poll.
    poll = 20
    idle = workers("idle", HARK_POLL_WAIT_SECONDS=str(poll))  # ready: polling, or about to
    sent = time.monotonic()
    idle.proc.send_signal(signal.SIGTERM)
    assert idle.proc.wait(poll) == 0
    took = time.monotonic() - sent
    print(f"idle worker exited {took:.2f} s after SIGTERM (long poll {poll} s)")
    assert took < poll and (idle.logged("worker stopped while idle") or idle.logged("worker stopped"))


def test_job_deleted_while_transcribing_leaves_nothing(stack, workers, speech):
    from hark.api.control import Caller, delete_job

    job = submit(speech(english_prose(WORDS_A_MINUTE), "en", "mp3"))
    worker = workers("w")
    worker.wait_for("transcribing")
    delete_job(Caller(user_id=job.user_id, email="a@example.com"), job.job_id)  # what DELETE /jobs/{id} runs
    worker.wait_for("job deleted while it ran: its transcripts removed", timeout=180)
    wait_queue_empty(stack.transcribe_queue.name)
    s3 = aws.client("s3")
    left = s3.list_objects_v2(
        Bucket=stack.transcripts_bucket.name, Prefix=keys.job_prefix("transcripts/", job.user_id, job.job_id)
    )
    assert left.get("KeyCount", 0) == 0
    assert aws.job_store().jobs.get(job.job_id) is None
    assert job.job_id not in notified_job_ids()  # nobody is emailed about a job they deleted


@pytest.fixture
def upload_status(stack):
    """The upload-status function behind its SQS event source, as `hark up` runs it (in-process)."""
    source = SqsEventSource(upload_status_function(stack), get_settings().region).start()
    yield source
    source.stop()


def wait_status(job_id: str, status: JobStatus, timeout: float = 60):
    deadline = time.time() + timeout
    while True:
        job = aws.job_store().jobs.get(job_id)
        if job and job.status == status:
            return job
        assert time.time() < deadline, f"{job_id} is {job.status if job else None}, never {status}"
        time.sleep(0.1)


def visible_messages(name: str) -> int:
    attrs = aws.client("sqs").get_queue_attributes(
        QueueUrl=aws.queue_url(name), AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"])


def test_upload_is_queued_as_it_lands_whatever_the_workers_do(stack, upload_status, workers, speech):
    """Issue 10, item 7: the upload-status function sees the upload arrive (S3 -> SNS -> its own queue),
    so QUEUED shows with no worker running, and while the only worker is busy with another job."""
    # No worker at all (a fleet scaled to zero): QUEUED at once, with the real size; the upload's event
    # waits on the transcribe queue for a worker, untouched.
    first = submit(speech(english_prose(2 * WORDS_A_MINUTE), "en", "mp3"))  # about two minutes
    queued = wait_status(first.job_id, JobStatus.QUEUED)
    assert queued.queued_at and queued.uploaded_bytes == queued.size_bytes and queued.attempts == 0
    assert visible_messages(stack.transcribe_queue.name) >= 1  # its event (beside S3's test event), unread

    # An upload for a deleted job is deleted by the status function alone, no worker involved.
    gone = create_job("gone.wav", "audio/wav")
    aws.job_store().jobs.delete(gone.job_id)
    post_upload(gone.audio_key, speech("hello there", "en", "wav"), "audio/wav")
    deadline = time.time() + 60
    while object_exists(stack.audio_bucket.name, gone.audio_key):
        assert time.time() < deadline, "the orphan upload was never deleted"
        time.sleep(0.1)

    # The one worker takes the first job; a second upload is QUEUED while it is still busy with it (one
    # message in flight: a worker with free slots would take the second at once).
    worker = workers("only", HARK_MAX_MESSAGES_IN_FLIGHT="1")
    wait_busy([worker])
    second = submit(speech("Please call me back tomorrow morning.", "en", "wav"))
    wait_status(second.job_id, JobStatus.QUEUED)
    assert aws.job_store().jobs.get(first.job_id).status == JobStatus.PROCESSING

    done = wait_finished([first.job_id, second.job_id], timeout=240)
    assert all(j.status == JobStatus.COMPLETED for j in done.values())
    assert epoch(done[second.job_id].queued_at) < epoch(done[second.job_id].started_at)
    wait_queue_empty(stack.transcribe_queue.name)
    wait_queue_empty(stack.upload_status_queue.name)
    assert drain(stack.upload_status_queue.dlq_name) == []
    assert_exactly_once(done, notified_job_ids())
    # The worker's copy of the orphan's event found no job either: deleting the absent object is a no-op.
    orphan_lines = worker.logged("upload for a job that does not exist (deleted, or never created): object deleted")
    assert [line["key"] for line in orphan_lines] == [gone.audio_key]
    assert not object_exists(stack.audio_bucket.name, gone.audio_key)


# -- several messages in flight at one worker (issue 15) ----------------------------------------------------
IN_FLIGHT = 3


def wait_logged(worker: WorkerProcess, message: str, count: int, timeout: float = 180) -> list[str]:
    """The job ids of `worker`'s log lines `message`, once there are `count` of them."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = [line["job_id"] for line in worker.logged(message)]
        if len(found) >= count:
            return found
        assert worker.proc.poll() is None, worker.log_path.read_text()[-3000:]
        time.sleep(0.1)
    pytest.fail(f"the worker did not log {message!r} {count} times")


def wait_transcribing(worker: WorkerProcess, count: int) -> list[str]:
    return wait_logged(worker, "transcribing", count)


def test_sigterm_hands_back_every_message_in_flight(stack, workers, speech):
    """Out of time after SIGTERM with several messages in hand: every unfinished one is handed back at
    once (visibility 0) and the process exits before the stop timeout; a successor finishes them all,
    each once. A hand-back is no worker's death: it is recorded on the job, and the successor, whose
    receive is the last attempt here (one retry delay configured), transcribes the jobs where it would
    fail a job whose message was in hand when a worker died."""
    stop_timeout = 3
    # About two minutes each: none finishes within the stop timeout on the CPU, even the first to start
    # when its pieces make a batch of their own. The number said first makes each recording its own file.
    text = english_prose(2 * WORDS_A_MINUTE)
    jobs = [submit(speech(f"{n}. {text}", "en", "mp3")) for n in range(IN_FLIGHT)]
    hurried = workers(
        "hurried", HARK_STOP_TIMEOUT_SECONDS=str(stop_timeout), HARK_MAX_MESSAGES_IN_FLIGHT=str(IN_FLIGHT)
    )
    started = wait_transcribing(hurried, IN_FLIGHT)
    sent = time.monotonic()
    hurried.proc.send_signal(signal.SIGTERM)
    assert hurried.proc.wait(10) == 0
    took = time.monotonic() - sent
    print(f"{len(started)} in flight; exit {took:.1f} s after SIGTERM (stop timeout {stop_timeout} s)")
    assert took <= stop_timeout
    handed_back = {line["message_id"] for line in hurried.logged("out of time: message handed back")}
    assert len(handed_back) == IN_FLIGHT and not hurried.logged("job completed")
    store = aws.job_store().jobs
    assert all(store.get(j.job_id).handed_back == 1 for j in jobs)

    successor = workers(
        "successor", HARK_MAX_MESSAGES_IN_FLIGHT=str(IN_FLIGHT), HARK_RETRY_DELAYS_SECONDS=json.dumps([1])
    )
    done = wait_finished([j.job_id for j in jobs], timeout=300)
    assert all(j.status == JobStatus.COMPLETED and j.attempts == 2 for j in done.values()), done
    assert not successor.logged("a worker stopped while this message was in hand")
    assert not successor.logged("received before: running alone")  # no death: they shared the batches
    assert len(wait_logged(successor, "job completed", IN_FLIGHT)) == IN_FLIGHT
    wait_queue_empty(stack.transcribe_queue.name)
    assert_exactly_once(done, notified_job_ids())


def test_killed_worker_with_several_in_flight_loses_nothing_and_repeats_nothing(stack, workers, speech):
    """SIGKILL with several messages in hand, one of them perhaps just finished: each comes back after the
    lease (no heartbeat renews it), another worker finishes what is unfinished, and every job ends with one
    transcript and one notification."""
    lease = 6  # short, so the test does not sit out the default minute; the heartbeat runs every lease / 3
    env = dict(HARK_VISIBILITY_LEASE_SECONDS=str(lease), HARK_MAX_MESSAGES_IN_FLIGHT=str(IN_FLIGHT))
    texts = ["Please call me back tomorrow morning.", ENGLISH, english_prose(3 * len(ENGLISH.split()))]
    jobs = [submit(speech(t, "en", "wav")) for t in texts]
    doomed = workers("doomed", **env)
    wait_transcribing(doomed, IN_FLIGHT)
    doomed.proc.send_signal(signal.SIGKILL)
    doomed.proc.wait()
    finished_before = {line["job_id"] for line in doomed.logged("job completed")}

    survivor = workers("survivor", **env)
    done = wait_finished([j.job_id for j in jobs], timeout=lease + 300)
    assert all(j.status == JobStatus.COMPLETED for j in done.values())
    completed_after = set(wait_logged(survivor, "job completed", len(jobs) - len(finished_before)))
    print(f"finished before the kill: {len(finished_before)}, by the survivor: {len(completed_after)}")
    assert finished_before.isdisjoint(completed_after)
    assert finished_before | completed_after == {j.job_id for j in jobs}
    for job in jobs:
        assert done[job.job_id].attempts == (1 if job.job_id in finished_before else 2)
        assert word_error_rate(reference_text(texts, jobs, job), read_transcript(job, "txt")[0], "en") <= 0.2
    wait_queue_empty(stack.transcribe_queue.name)
    assert_exactly_once(done, notified_job_ids())


def reference_text(texts: list[str], jobs: list, job) -> str:
    return texts[[j.job_id for j in jobs].index(job.job_id)]
