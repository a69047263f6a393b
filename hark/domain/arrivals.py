"""What an upload's arrival means for its job, decided in one place for everyone who sees it arrive.

The upload's S3 event reaches two consumers (docs/architecture.md, "QUEUED when the upload lands"): the
upload-status function, which marks the job QUEUED at once whatever the workers are doing, and the
transcription worker, which does the work. Both call `receive_upload`, which is idempotent:
- an object for a job that does not exist (deleted, expired, never created) or whose record names
  another key is deleted at once: nothing may keep audio that no job accounts for;
- otherwise an UPLOADING job becomes QUEUED, with the event's time and the object's real size
  (`uploaded_bytes`, which the job shows; the worker fails a job whose size differs from the one
  declared, worker/transcription/audio.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from hark.domain.jobs import Job, JobStatus, JobStore, TransitionRefused
from hark.domain.messages import UploadEvent


@dataclass(frozen=True)
class Arrival:
    job: Job | None  # the job as it is now; None when the object was an orphan and has been deleted
    orphan_reason: str | None = None  # why the object was deleted (for the log)
    queued: bool = False  # this call moved the job to QUEUED


def receive_upload(store: JobStore, s3, event: UploadEvent) -> Arrival:
    job = store.get(event.job_id)
    reason = None
    if job is None:
        reason = "upload for a job that does not exist (deleted, or never created): object deleted"
    elif job.user_id != event.user_id or job.audio_key != event.key:
        reason = "upload does not match its job's record: object deleted"
    if reason:
        # Idempotent: a second consumer of the same event (or a redelivery) deletes nothing twice.
        s3.delete_object(Bucket=event.bucket, Key=event.key)
        return Arrival(job=None, orphan_reason=reason)
    assert job is not None
    if job.status != JobStatus.UPLOADING:
        return Arrival(job=job)  # already QUEUED (the other consumer) or further on
    try:
        return Arrival(job=store.mark_queued(job.job_id, event.event_time, event.size), queued=True)
    except TransitionRefused:
        # The other consumer got there first, or the job was deleted just now (then the API's
        # second sweep of the job's prefix removes the object).
        return Arrival(job=store.get(job.job_id))
