"""Issue 21: hostile files through the real transcription worker against the emulator. Each ends FAILED
with a clear reason or transcribed, the worker stays up (other jobs lose nothing), and memory stays
bounded whatever a header claims; a message that killed workers runs alone, then fails with a reason."""

from __future__ import annotations

import signal
from pathlib import Path

from hark.domain import aws
from hark.domain.jobs import JobStatus, now_iso
from hark.domain.messages import ChunkMessage
from hark.domain.wer import word_error_rate
from tests.hostile_audio import EMPTY, TOO_LONG, corpus, lying_flac
from tests.integration.test_ops_dlq import make_job
from tests.integration.test_transcription_worker import (
    ENGLISH,
    assert_exactly_once,
    drain,
    notified_job_ids,
    read_transcript,
    submit,
    wait_finished,
    wait_queue_empty,
)
from tests.unit.test_decoding import FRAME_HEADROOM
from tests.workers import WorkerProcess
from worker.transcription.ending import stopped_workers

MB = 1024 * 1024
GROWTH_BOUND = 500 * MB  # issue 21: no worker grows by more than this, whatever the file


def memory(worker: WorkerProcess, field: str) -> int:
    """VmRSS (now) or VmHWM (the peak so far) of the worker's process, in bytes."""
    for line in Path(f"/proc/{worker.proc.pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/{worker.proc.pid}/status")


def decoder_peaks(worker: WorkerProcess) -> dict[str, int]:
    """The decoding child's peak for each job decoded (or refused by its decoding)."""
    return {line["job_id"]: line["decoder_peak_rss_bytes"] for line in worker.logged("decoded")}


def test_fuzz_corpus_each_file_fails_with_its_reason_or_is_transcribed(stack, workers, tmp_path):
    worker = workers(HARK_MAX_AUDIO_SECONDS="60")
    before = memory(worker, "VmHWM")
    cases = {submit(case.path).job_id: case for case in corpus(tmp_path / "hostile")}
    finished = wait_finished(list(cases), timeout=600)

    wrong = {}
    for job_id, case in cases.items():
        job = finished[job_id]
        if case.reason is not None:
            if job.status != JobStatus.FAILED or not (job.error or "").startswith(case.reason):
                wrong[case.name] = f"{job.status}: {job.error!r}, expected FAILED {case.reason!r}"
        elif job.status != JobStatus.COMPLETED or not case.seconds[0] <= job.duration_seconds <= case.seconds[1]:
            wrong[case.name] = f"{job.status} {job.duration_seconds} s ({job.error}), expected {case.seconds} s"
    assert wrong == {}
    assert {c.reason for c in cases.values()} >= {EMPTY, TOO_LONG}

    assert worker.proc.poll() is None, "the worker died"
    peaks = decoder_peaks(worker)
    # every file reached the decoder but the empty one, refused before it
    undecoded = {c.name: (finished[j].status, finished[j].error) for j, c in cases.items() if j not in peaks}
    assert set(undecoded) == {c.name for c in cases.values() if c.reason == EMPTY}, undecoded
    assert max(peaks.values()) <= min(peaks.values()) + FRAME_HEADROOM, peaks
    grown = memory(worker, "VmHWM") - before
    print(
        f"worker peak grew {grown / MB:.0f} MB; decoder peaks {min(peaks.values()) / MB:.0f}-{max(peaks.values()) / MB:.0f} MB"
    )
    assert grown <= GROWTH_BOUND
    wait_queue_empty(stack.transcribe_queue.name)
    assert_exactly_once(finished, notified_job_ids())


def test_a_flac_whose_header_lies_is_measured_by_decoding(stack, workers, speech, tmp_path):
    """The issue's file: 5 hours of silence whose STREAMINFO says one second, with the worker's default
    limits (4 hours, chunks past 10 minutes). It fails with the length found while decoding, a real job
    beside it is done, and the worker grows by less than the issue's bound. Then a 15-minute one that
    also claims a second is chunked by its decoded length and completes as no speech."""
    worker = workers()
    before = memory(worker, "VmHWM")
    five_hours = submit(lying_flac(tmp_path / "five-hours.flac", hours=5))
    beside = submit(speech(ENGLISH, "en", "mp3"))
    finished = wait_finished([five_hours.job_id, beside.job_id], timeout=900)
    failed = finished[five_hours.job_id]
    assert failed.status == JobStatus.FAILED
    assert failed.error == f"{TOO_LONG} 240 minutes (found while decoding)"
    done = finished[beside.job_id]
    assert done.status == JobStatus.COMPLETED
    assert word_error_rate(ENGLISH, read_transcript(done, "txt")[0], "en") <= 0.2
    assert worker.proc.poll() is None, "the worker died"
    grown = memory(worker, "VmHWM") - before
    peaks = decoder_peaks(worker)
    print(f"worker peak grew {grown / MB:.0f} MB; decoder peaks {sorted(p // MB for p in peaks.values())} MB")
    assert grown <= GROWTH_BOUND
    assert len(peaks) == 2 and max(peaks.values()) <= min(peaks.values()) + FRAME_HEADROOM

    quarter = submit(lying_flac(tmp_path / "quarter-hour.flac", hours=0.25))
    chunked = wait_finished([quarter.job_id], timeout=900)[quarter.job_id]
    assert chunked.status == JobStatus.COMPLETED and chunked.no_speech
    assert chunked.duration_seconds == 900 and chunked.chunks_total == 3
    finished[quarter.job_id] = chunked
    assert worker.proc.poll() is None, "the worker died"
    wait_queue_empty(stack.transcribe_queue.name)
    assert_exactly_once(finished, notified_job_ids())


def test_a_message_that_kills_workers_runs_alone_then_fails_with_a_reason(stack, workers, speech):
    """Workers are killed (SIGKILL, as the kernel's OOM killer does) while they hold one job's message.
    Received again, it runs with nothing else in hand; on the queue's last receive, after a death on each
    earlier one, the job fails with the reason and the user is told. A job sent beside it completes."""
    lease = {"HARK_VISIBILITY_LEASE_SECONDS": "4"}  # a killed worker's message is back within 4 s
    killer = submit(speech(" ".join([ENGLISH] * 3), "en", "mp3"))
    deaths = stack.transcribe_queue.max_receive_count - 1
    for n in range(deaths):
        worker = workers(f"dies-{n}", **lease)
        worker.wait_for("job claimed")
        claim = worker.logged("job claimed")[0]
        assert claim["job_id"] == killer.job_id and claim["receive_count"] == n + 1
        if n:
            assert worker.logged("received before: running alone")
        worker.proc.send_signal(signal.SIGKILL)
        worker.proc.wait()

    last = workers("last", **lease)
    beside = submit(speech("Please call me back tomorrow morning.", "en", "wav"))
    finished = wait_finished([killer.job_id, beside.job_id], timeout=300)
    failed = finished[killer.job_id]
    assert failed.status == JobStatus.FAILED and failed.error == stopped_workers(deaths)
    assert failed.attempts == deaths + 1
    assert finished[beside.job_id].status == JobStatus.COMPLETED
    (alone,) = last.logged("received before: running alone")
    assert alone["receive_count"] == deaths + 1
    assert last.proc.poll() is None
    wait_queue_empty(stack.transcribe_queue.name)
    assert aws.job_store().jobs.get(killer.job_id).status == JobStatus.FAILED
    assert_exactly_once(finished, notified_job_ids())


def test_a_chunk_that_killed_workers_fails_its_job_on_its_last_receive(stack, workers):
    """A chunk message received by workers that died with it (each receive left with nothing recorded, as
    after a SIGKILL) and once retried after an error: on the queue's last receive it runs alone and fails
    its job with the deaths counted (the error is not one), the user is told; the job does not stay
    PROCESSING for good once the message is dead-lettered."""
    store, sqs = aws.job_store(), aws.client("sqs")
    queue = aws.queue_url(stack.transcribe_queue.name)
    job_id = make_job(store).job_id
    store.jobs.mark_queued(job_id, now_iso())
    store.jobs.claim(job_id, "the-upload-message")
    store.jobs.set_chunks(job_id, 3, 900.0)
    chunk = ChunkMessage(
        job_id=job_id, user_id="user_a", index=1, total=3, offset=300.0, duration=300.0, key="chunks/1.flac"
    )
    for message in drain(stack.transcribe_queue.name):  # S3's test event from provisioning, if no worker ran yet
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    sqs.send_message(QueueUrl=queue, MessageBody=chunk.model_dump_json())
    last = stack.transcribe_queue.max_receive_count
    for receive in range(1, last):
        [message] = sqs.receive_message(QueueUrl=queue, VisibilityTimeout=0, WaitTimeSeconds=5)["Messages"]
        assert message["Body"] == chunk.model_dump_json()
        if receive == 1:  # this one's worker retried it after an error: no death
            store.jobs.record_chunk_return(job_id, chunk.index, receive, "a storage or queue service error (SlowDown)")

    worker = workers()
    finished = wait_finished([job_id], timeout=120)
    failed = finished[job_id]
    assert failed.status == JobStatus.FAILED and failed.error == stopped_workers(last - 2), failed.error
    (stopped,) = worker.logged("a worker stopped while this chunk was in hand")
    assert stopped["times"] == last - 2 and stopped["index"] == chunk.index
    (alone,) = worker.logged("received before: running alone")
    assert alone["receive_count"] == last
    wait_queue_empty(stack.transcribe_queue.name)
    assert_exactly_once(finished, notified_job_ids())
