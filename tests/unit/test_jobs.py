"""The job state machine against the emulator's DynamoDB: forward-only, conditional, idempotent."""

import pytest

from hark.domain import aws
from hark.domain.jobs import Job, JobStatus, TransitionRefused, new_job_id, now_iso


def make_job(user="user_a", **kw) -> Job:
    job_id = new_job_id()
    data = dict(
        job_id=job_id,
        user_id=user,
        email="a@example.com",
        filename="a.wav",
        content_type="audio/wav",
        size_bytes=10,
        audio_key=f"uploads/{user}/{job_id}/a.wav",
        status=JobStatus.UPLOADING,
        created_at=now_iso(),
        updated_at=now_iso(),
    )
    data.update(kw)
    return Job(**data)


@pytest.fixture
def store(stack):
    return aws.job_store()


def test_forward_only(store):
    job = store.jobs.create(make_job())
    assert store.jobs.mark_queued(job.job_id, now_iso()).status == JobStatus.QUEUED
    with pytest.raises(TransitionRefused):
        store.jobs.mark_queued(job.job_id, now_iso())
    claimed = store.jobs.claim(job.job_id, "m1")
    assert claimed.status == JobStatus.PROCESSING and claimed.attempts == 1
    assert store.jobs.claim(job.job_id, "m1").attempts == 2  # the same message back: a retry
    with pytest.raises(TransitionRefused):
        store.jobs.claim(job.job_id, "m2")  # a duplicate event
    done = store.jobs.complete(job.job_id, "en", 3.5)
    assert done.status == JobStatus.COMPLETED and done.detected_language == "en"
    with pytest.raises(TransitionRefused):
        store.jobs.complete(job.job_id, "en", 3.5)
    with pytest.raises(TransitionRefused):
        store.jobs.fail(job.job_id, "late")
    assert store.jobs.count_unfinished("user_a") == 0


def test_unknown_job_refused(store):
    with pytest.raises(TransitionRefused):
        store.jobs.claim("nope", "m1")


def test_chunks_counted_once(store):
    job = store.jobs.create(make_job())
    store.jobs.claim(job.job_id, "m1")
    store.jobs.set_chunks(job.job_id, 3, 1800.0)
    store.jobs.chunk_done(job.job_id, 0)
    assert store.jobs.chunk_done(job.job_id, 0).chunks_done == 1  # redelivered chunk
    assert store.jobs.chunk_done(job.job_id, 2).chunks_done == 2


def test_owner_and_listing(store):
    jobs = [store.jobs.create(make_job()) for _ in range(5)]
    store.jobs.create(make_job(user="user_b"))
    assert store.jobs.get_owned(jobs[0].job_id, "user_b") is None
    assert store.jobs.count_unfinished("user_a") == 5
    page, last = store.jobs.list_for_user("user_a", limit=3)
    assert [j.job_id for j in page] == [j.job_id for j in reversed(jobs)][:3]
    assert last == {"job_id": page[-1].job_id, "user_id": "user_a", "created_at": page[-1].created_at}
    rest, end = store.jobs.list_for_user("user_a", limit=3, start=last)
    assert [j.job_id for j in rest] == [jobs[1].job_id, jobs[0].job_id] and end is None


def test_notification_claimed_once(store):
    job = store.jobs.create(make_job())
    assert store.notification.claim(job.job_id, 60)
    assert not store.notification.claim(job.job_id, 60)
    store.notification.release(job.job_id)
    assert store.notification.claim(job.job_id, 60)
    store.notification.mark_notified(job.job_id, "ses-1")
    assert not store.notification.claim(job.job_id, 60)


def test_abandoned_upload_expires_but_a_received_one_lives_on(store):
    import time

    from hark.domain.jobs import ABANDONED_UPLOAD_TTL_SECONDS, RECORD_TTL_SECONDS

    job = store.jobs.create(make_job())
    expiry = lambda: int(store.table.get({"job_id": job.job_id})["expires_at"])  # noqa: E731
    assert abs(expiry() - (time.time() + ABANDONED_UPLOAD_TTL_SECONDS)) < 60  # DynamoDB's TTL removes it
    store.jobs.mark_queued(job.job_id, now_iso())
    assert abs(expiry() - (time.time() + RECORD_TTL_SECONDS)) < 60


def test_adopt_claim_hands_a_processing_job_to_a_replayed_message(store):
    job = store.jobs.create(make_job())
    store.jobs.claim(job.job_id, "dead")
    assert store.jobs.get(job.job_id).owner_message_id == "dead"
    assert not store.jobs.adopt_claim(job.job_id, "someone-else", "copy")  # only the dead message's claim moves
    assert store.jobs.adopt_claim(job.job_id, "dead", "copy")
    with pytest.raises(TransitionRefused):
        store.jobs.claim(job.job_id, "dead")
    assert store.jobs.claim(job.job_id, "copy").attempts == 2
    store.jobs.complete(job.job_id, "en", 1.0)
    assert not store.jobs.adopt_claim(job.job_id, "copy", "again")  # a finished job is final
    assert not store.jobs.adopt_claim("nope", "dead", "copy")


def test_claims_lost_are_those_neither_retried_nor_handed_back(store):
    """Four claims by one message: one ended in an error (retried), one was handed back by a stopping
    worker, one by another message's id is not its to record, one is in progress: two lost (the one in
    progress among them, as Job.claims_lost says). A finished job has none."""
    job = store.jobs.create(make_job())
    store.jobs.claim(job.job_id, "m1")
    store.jobs.record_attempt_error(job.job_id, "a storage or queue service error (SlowDown)")
    store.jobs.claim(job.job_id, "m1")
    store.jobs.record_hand_back(job.job_id, "m1")
    store.jobs.claim(job.job_id, "m1")
    store.jobs.record_hand_back(job.job_id, "m2")  # not the claim's message: nothing recorded
    claimed = store.jobs.claim(job.job_id, "m1")
    assert (claimed.attempts, claimed.failed_attempts, claimed.handed_back) == (4, 1, 1)
    assert claimed.claims_lost == 2
    assert store.jobs.complete(job.job_id, "en", 1.0).claims_lost == 0
    store.jobs.record_hand_back(job.job_id, "m1")  # finished: nothing recorded
    assert store.jobs.get(job.job_id).handed_back == 1


def test_chunk_deaths_are_receives_neither_retried_nor_handed_back(store):
    """Chunk 2's receives: the 1st retried after an error, the 2nd handed back, the 3rd died; chunk 0's
    first died. Recorded returns of one chunk say nothing of another; a finished job records nothing."""
    job = store.jobs.create(make_job())
    store.jobs.claim(job.job_id, "upload")
    store.jobs.set_chunks(job.job_id, 3, 900.0)
    store.jobs.record_chunk_return(job.job_id, 2, 1, "a storage or queue service error (SlowDown)")
    store.jobs.record_chunk_return(job.job_id, 2, 2)  # a stopping worker's hand-back
    read = store.jobs.get(job.job_id)
    assert read.chunk_returns == {"2:1", "2:2"} and read.last_error == "a storage or queue service error (SlowDown)"
    assert [read.chunk_deaths(2, receive) for receive in (1, 2, 3, 4)] == [0, 0, 0, 1]
    assert [read.chunk_deaths(0, receive) for receive in (1, 2)] == [0, 1]
    store.jobs.complete(job.job_id, "en", 900.0)
    store.jobs.record_chunk_return(job.job_id, 0, 1)
    assert store.jobs.get(job.job_id).chunk_returns == {"2:1", "2:2"}


def test_attempt_error_and_send_lease_are_read_back(store):
    import time

    job = store.jobs.create(make_job())
    store.jobs.claim(job.job_id, "m1")
    store.jobs.record_attempt_error(job.job_id, "a network error reaching the storage or queue service")
    assert store.jobs.get(job.job_id).last_error == "a network error reaching the storage or queue service"
    store.jobs.complete(job.job_id, "en", 1.0)
    before = int(time.time())
    assert store.notification.claim(job.job_id, 60)
    assert before + 60 <= store.jobs.get(job.job_id).notify_lease_until <= int(time.time()) + 60
    store.notification.mark_notified(job.job_id, "ses-1")
    done = store.jobs.get(job.job_id)
    assert done.notified_at and done.email_message_id == "ses-1" and done.notify_lease_until is None


def test_completion_records_model_seconds_and_cost_and_the_view_shows_them(store):
    """Issue 13.5: what a job took is on its record and in GET /jobs/{id}; the cost is the model time at
    the configured price (Settings: hourly instance price over workers per instance)."""
    from hark.domain.api_schemas import job_view
    from hark.domain.settings import Settings

    settings = Settings(instance_usd_per_hour=0.72, workers_per_instance=2)
    assert settings.usd_per_model_second == pytest.approx(0.72 / 2 / 3600)
    job = store.jobs.create(make_job())
    store.jobs.mark_queued(job.job_id, now_iso())
    store.jobs.claim(job.job_id, "m1")
    store.jobs.complete(job.job_id, "en", 40.0, model_seconds=8.0, cost_usd=8.0 * 0.72 / 2 / 3600)
    done = store.jobs.get(job.job_id)
    assert done.model_seconds == 8.0 and done.cost_usd == pytest.approx(0.0008)
    view = job_view(done)
    assert (view.model_seconds, view.real_time_factor, view.cost_usd) == (8.0, 0.2, done.cost_usd)
    # Before it completes (or for a job from before these fields) the view says nothing rather than 0.
    pending = job_view(store.jobs.create(make_job()))
    assert (pending.model_seconds, pending.real_time_factor, pending.cost_usd) == (None, None, None)
