"""The transcription worker in a subprocess against the emulator: real model, real S3 events, real SQS.

A job record is created, the audio goes up through a presigned POST, moto's S3 sends the real
ObjectCreated event to the transcribe queue, and `python -m worker.transcription` does the rest.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
import requests

from hark.domain import aws, keys
from hark.domain.jobs import Job, JobStatus, new_job_id, now_iso
from hark.domain.messages import NotifyMessage
from hark.domain.wer import word_error_rate
from tests.conftest import SHARED_SPEECH

REPO = Path(__file__).resolve().parents[2]
ENGLISH = (
    "The committee met on Tuesday morning to review the budget for the new library. "
    "After a long discussion, they agreed to buy more books for the children and to open "
    "the building on Sunday afternoons."
)
SPANISH = (
    "El comité se reunió el martes por la mañana para revisar el presupuesto de la nueva "
    "biblioteca. Después de una larga discusión, acordaron comprar más libros para los niños."
)
WORDS_A_MINUTE = 150  # the speech fixture's espeak-ng speed


def english_prose(words: int) -> str:
    """At least `words` words of English prose (WORDS_A_MINUTE a minute of speech): the sentences of the test
    recordings' English reference texts, in turn. Not one sentence said again and again: Whisper takes such
    text for a decoding loop and the engine re-decodes it at every temperature (worker/transcription/quality.py),
    several times the work of the same length of prose."""
    taken, count = [], 0
    for path in sorted(SHARED_SPEECH.glob("en_*.txt")):
        for sentence in re.split(r"(?<=[.;])\s+(?=[A-Z])", path.read_text().strip()):
            taken.append(sentence)
            count += len(sentence.split())
            if count >= words:
                return " ".join(taken)
    raise AssertionError(f"the English reference texts hold fewer than {words} words")


CONTENT_TYPES = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "m4a": "audio/mp4",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "opus": "audio/opus",
    "webm": "audio/webm",
    "txt": "text/plain",
}


# -- harness (also used by test_pipeline_faults.py, test_long_audio.py) ----------------------------------------------
def create_job(filename: str, content_type: str, user: str = "user_a", language: str = "auto", size: int = 1) -> Job:
    job_id = new_job_id()
    job = Job(
        job_id=job_id,
        user_id=user,
        email=f"{user}@example.com",
        filename=filename,
        content_type=content_type,
        size_bytes=size,
        language=language,
        audio_key=keys.upload_key(user, job_id, filename),
        status=JobStatus.UPLOADING,
        created_at=now_iso(),
        updated_at=now_iso(),
    )
    return aws.job_store().jobs.create(job)


def post_upload(key: str, path: Path, content_type: str) -> None:
    """The browser's upload: a presigned POST straight to the audio bucket."""
    post = aws.client("s3").generate_presigned_post(
        Bucket=aws.stack_resources().audio_bucket.name,
        Key=key,
        Fields={"Content-Type": content_type},
        Conditions=[{"Content-Type": content_type}],
        ExpiresIn=600,
    )
    with open(path, "rb") as f:
        reply = requests.post(
            post["url"], data=post["fields"], files={"file": (path.name, f, content_type)}, timeout=60
        )
    assert reply.status_code in (200, 201, 204), reply.text


def submit(path: Path, language: str = "auto", user: str = "user_a", content_type: str | None = None) -> Job:
    content_type = content_type or CONTENT_TYPES.get(path.suffix.lstrip("."), "application/octet-stream")
    job = create_job(path.name, content_type, user=user, language=language, size=max(path.stat().st_size, 1))
    post_upload(job.audio_key, path, content_type)
    return job


def wait_finished(job_ids: list[str], timeout: float = 240) -> dict[str, Job]:
    store = aws.job_store()
    deadline = time.time() + timeout
    while True:
        jobs = {job_id: store.jobs.get(job_id) for job_id in job_ids}
        if all(j and j.status.finished for j in jobs.values()):
            return jobs
        if time.time() > deadline:
            pytest.fail("not finished: " + ", ".join(f"{k}={v.status if v else None}" for k, v in jobs.items()))
        time.sleep(0.5)


def queue_empty(name: str) -> bool:
    """Nothing visible and nothing in flight: every message there was has been settled."""
    attrs = aws.client("sqs").get_queue_attributes(
        QueueUrl=aws.queue_url(name),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return attrs["ApproximateNumberOfMessages"] == "0" and attrs["ApproximateNumberOfMessagesNotVisible"] == "0"


def wait_queue_empty(name: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while not queue_empty(name):
        assert time.time() < deadline, f"{name} still holds messages"
        time.sleep(0.5)


def drain(queue_name: str) -> list[dict]:
    """Every message now in a queue (kept hidden, so each is counted once)."""
    sqs = aws.client("sqs")
    url = aws.queue_url(queue_name)
    out = []
    while True:
        reply = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=600, AttributeNames=["All"]
        )
        batch = reply.get("Messages", [])
        if not batch:
            return out
        out.extend(batch)


def notified_job_ids() -> list[str]:
    return [NotifyMessage.model_validate_json(m["Body"]).job_id for m in drain(aws.stack_resources().notify_queue.name)]


def read_transcript(job: Job, fmt: str) -> tuple[str, str]:
    obj = aws.client("s3").get_object(
        Bucket=aws.stack_resources().transcripts_bucket.name, Key=keys.transcript_key(job.user_id, job.job_id, fmt)
    )
    return obj["Body"].read().decode("utf-8"), obj["ContentType"]


def assert_exactly_once(jobs: dict[str, Job], notified: list[str]) -> None:
    """No job lost (every one finished) and none done twice (one notification each)."""
    for job_id, job in jobs.items():
        assert job.status.finished, f"{job_id} is {job.status}"
        assert notified.count(job_id) == 1, f"{job_id} notified {notified.count(job_id)} times"
    assert set(notified) <= set(jobs), f"notifications for unknown jobs: {set(notified) - set(jobs)}"


def reference(name: str) -> str:
    return (SHARED_SPEECH / name).with_suffix(".txt").read_text().strip()


# -- tests ---------------------------------------------------------------------------------------
def test_transcribes_every_format_and_language(stack, workers, speech):
    cases = [  # (file, language expected, reference text)
        (speech(ENGLISH, "en", "mp3"), "en", ENGLISH),
        (speech(ENGLISH, "en", "m4a"), "en", ENGLISH),
        (speech(ENGLISH, "en", "webm"), "en", ENGLISH),
        (speech(SPANISH, "es", "ogg"), "es", SPANISH),
        (speech(SPANISH, "es", "opus"), "es", SPANISH),
        (SHARED_SPEECH / "en_jfk.flac", "en", reference("en_jfk.flac")),  # 44.1 kHz stereo
        (SHARED_SPEECH / "en_librispeech_1272-128104-0000.wav", "en", reference("en_librispeech_1272-128104-0000")),
        (SHARED_SPEECH / "es_picovoice_test_es.wav", "es", reference("es_picovoice_test_es")),
        (SHARED_SPEECH / "en_fleurs_000.ogg", "en", reference("en_fleurs_000")),  # Opus in Ogg
    ]
    worker = workers()
    jobs = [submit(path) for path, _, _ in cases]
    # A language asked for is used as given (no detection).
    asked = submit(speech(SPANISH, "es", "wav"), language="es")
    finished = wait_finished([j.job_id for j in [*jobs, asked]])

    for job, (path, language, text) in zip(jobs, cases):
        done = finished[job.job_id]
        assert done.status == JobStatus.COMPLETED, done.error
        assert done.detected_language == language, path.name
        assert done.duration_seconds and done.duration_seconds > 1
        outputs = {fmt: read_transcript(job, fmt) for fmt in keys.TRANSCRIPT_FORMATS}
        assert outputs["txt"][1].startswith("text/plain") and outputs["json"][1] == "application/json"
        assert outputs["srt"][1].startswith("application/x-subrip") and outputs["vtt"][1].startswith("text/vtt")
        assert outputs["vtt"][0].startswith("WEBVTT\n\n") and " --> " in outputs["vtt"][0]
        assert outputs["srt"][0].startswith("1\n00:00:") and "," in outputs["srt"][0].splitlines()[1]
        data = json.loads(outputs["json"][0])
        assert data["language"] == language and data["model"] == "whisper-base"
        assert abs(data["duration"] - done.duration_seconds) < 0.01
        words = [w for s in data["segments"] for w in s["words"]]
        assert words and all(0 <= w["probability"] <= 1 and w["start"] <= w["end"] for w in words)
        # Confidence (issue 26): the mean word probability, each word weighted by its duration (at least 20 ms).
        weights = [max(w["end"] - w["start"], 0.02) for w in words]
        mean = sum(w["probability"] * k for w, k in zip(words, weights)) / sum(weights)
        assert done.confidence is not None and 0 < done.confidence <= 1 and abs(done.confidence - mean) < 1e-3
        doubtful = sum(k for w, k in zip(words, weights) if w["probability"] < 0.5) / sum(weights)
        assert done.low_confidence_share is not None and abs(done.low_confidence_share - doubtful) < 1e-3
        assert data["confidence"] == done.confidence and all(0 < s["confidence"] <= 1 for s in data["segments"])
        error = word_error_rate(text, outputs["txt"][0], language)
        print(f"{path.name}: language {language}, WER {error:.1%}")
        # Accuracy is gated per language against the raw model (tests/integration/test_accuracy_gate.py); here
        # only that each container decoded to this speech, not to noise or another clip.
        assert error < 0.5, outputs["txt"][0]

    assert finished[asked.job_id].status == JobStatus.COMPLETED
    assert finished[asked.job_id].detected_language == "es"
    assert_exactly_once(finished, notified_job_ids())
    # Observability: JSON lines carry the job id; EMF metrics in the Hark namespace.
    assert {j.job_id for j in jobs} <= {line.get("job_id") for line in worker.logged("job completed")}
    emitted = {
        m["Name"]
        for blob in worker.metrics()
        for d in blob["_aws"]["CloudWatchMetrics"]
        for m in d["Metrics"]
        if d["Namespace"] == "Hark"
    }
    assert {
        "JobsCompleted",
        "AudioSeconds",
        "ProcessingSeconds",
        "RealTimeFactor",
        "QueueWaitSeconds",
        "Attempts",
    } <= emitted
    # Confidence by language: one Confidence value per job with speech, dimensioned by its language (written
    # before each job's "job completed" line).
    while not {j.job_id for j in [*jobs, asked]} <= {line.get("job_id") for line in worker.logged("job completed")}:
        time.sleep(0.1)
    by_language: dict[str, list[float]] = {}
    for blob in worker.metrics():
        for d in blob["_aws"]["CloudWatchMetrics"]:
            if {m["Name"] for m in d["Metrics"]} == {"Confidence"}:
                assert sorted(*d["Dimensions"]) == ["language", "service"] and blob["service"] == "transcription-worker"
                by_language.setdefault(blob["language"], []).extend(blob["Confidence"])
    expected: dict[str, list[float]] = {}
    for job in [*jobs, asked]:
        done = finished[job.job_id]
        expected.setdefault(done.detected_language or "", []).append(done.confidence or 0.0)
    assert {k: sorted(v) for k, v in by_language.items()} == {k: sorted(v) for k, v in expected.items()}


def test_bad_inputs_fail_with_a_readable_reason(stack, workers, speech, tmp_path):
    not_audio = tmp_path / "notes.mp3"
    not_audio.write_text("Meeting notes: this is a text file with an audio file's name.\n" * 40)
    garbage = tmp_path / "noise.wav"
    garbage.write_bytes(os.urandom(20000))
    empty = tmp_path / "empty.m4a"
    empty.write_bytes(b"")
    too_long = speech(" ".join([ENGLISH] * 3), "en", "mp3")  # about 40 s, small
    big = tmp_path / "big.wav"
    subprocess.run(
        ["sox", "-n", "-r", "44100", "-c", "2", "-b", "16", str(big), "synth", "8", "sine", "440"], check=True
    )
    workers(HARK_MAX_AUDIO_SECONDS="30", HARK_MAX_UPLOAD_BYTES=str(1024 * 1024))
    jobs = {
        "not an audio file": submit(not_audio),
        "not an audio file ": submit(garbage),
        "the file is empty": submit(empty),
        "the recording is longer than the maximum of 0.5 minutes": submit(too_long),
        "the file is larger than the maximum of 1 MB": submit(big),
    }
    finished = wait_finished([j.job_id for j in jobs.values()], timeout=120)
    for reason, job in jobs.items():
        done = finished[job.job_id]
        assert done.status == JobStatus.FAILED
        assert done.error.startswith(reason.strip()), done.error
    wait_queue_empty(aws.stack_resources().transcribe_queue.name)
    assert_exactly_once(finished, notified_job_ids())


def object_exists(bucket: str, key: str) -> bool:
    try:
        aws.client("s3").head_object(Bucket=bucket, Key=key)
        return True
    except Exception as err:
        if aws.s3_not_found(err):
            return False
        raise


def test_upload_for_a_deleted_or_unknown_job_is_deleted_at_once(stack, workers, speech):
    """Issue 10, item 5: audio no job accounts for does not wait 30 days for the bucket's lifecycle."""
    clip = speech("hello there", "en", "wav")
    deleted = create_job("deleted.wav", "audio/wav", size=clip.stat().st_size)
    aws.job_store().jobs.delete(deleted.job_id)  # what DELETE /jobs/{id} leaves: the form still works for a while
    unknown_key = keys.upload_key("user_a", new_job_id(), "never created.wav")
    # A key under a real job's prefix that is not the key its record names (the API signs only that one).
    kept = create_job("kept.wav", "audio/wav", size=clip.stat().st_size)
    wrong_key = keys.upload_key(kept.user_id, kept.job_id, "another name.wav")
    worker = workers()
    for key in (deleted.audio_key, unknown_key, wrong_key):
        post_upload(key, clip, "audio/wav")

    bucket = stack.audio_bucket.name
    wait_queue_empty(stack.transcribe_queue.name)
    assert not any(object_exists(bucket, k) for k in (deleted.audio_key, unknown_key, wrong_key))
    orphans = worker.logged("upload for a job that does not exist (deleted, or never created): object deleted")
    assert sorted(line["key"] for line in orphans) == sorted([deleted.audio_key, unknown_key])
    (mismatch,) = worker.logged("upload does not match its job's record: object deleted")
    assert mismatch["key"] == wrong_key
    # Nothing else touched: the real job still waits for its own upload; no job created, none notified.
    assert aws.job_store().jobs.get(kept.job_id).status == JobStatus.UPLOADING
    assert aws.job_store().jobs.get(deleted.job_id) is None
    assert notified_job_ids() == []
    assert aws.client("s3").list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


def test_upload_of_another_size_than_declared_fails_with_both_sizes(stack, workers, speech):
    """Issue 10, item 4: declared 1,000 bytes, sent the whole clip: FAILED with a clear reason, and the
    job shows the real size; a job whose upload matches its declaration beside it completes."""
    from hark.domain.api_schemas import job_view

    clip = speech(ENGLISH, "en", "wav")
    real = clip.stat().st_size
    declared = 1000
    liar = create_job(clip.name, "audio/wav", size=declared)
    post_upload(liar.audio_key, clip, "audio/wav")
    honest = submit(speech("Please call me back tomorrow morning.", "en", "mp3"))
    workers()
    finished = wait_finished([liar.job_id, honest.job_id])

    failed = finished[liar.job_id]
    assert failed.status == JobStatus.FAILED
    assert failed.error == (
        f"the uploaded file is {real:,} bytes, not the {declared:,} bytes declared when the upload was created; "
        "upload the file again"
    )
    assert failed.size_bytes == declared and failed.uploaded_bytes == real
    assert job_view(failed).size == real  # what GET /jobs/{id} shows
    assert failed.detected_language is None and failed.duration_seconds is None  # never decoded
    listed = aws.client("s3").list_objects_v2(
        Bucket=stack.transcripts_bucket.name, Prefix=keys.job_prefix("transcripts/", liar.user_id, liar.job_id)
    )
    assert listed.get("KeyCount", 0) == 0  # no transcript of what was not declared

    ok = finished[honest.job_id]
    assert ok.status == JobStatus.COMPLETED and job_view(ok).size == ok.size_bytes == ok.uploaded_bytes
    wait_queue_empty(stack.transcribe_queue.name)
    assert_exactly_once(finished, notified_job_ids())


def test_silence_and_noise_complete_as_no_speech_without_a_language(stack, workers, speech, tmp_path):
    """Issue 10, item 6: no speech is said plainly (no_speech), with no language claimed, even when one
    was asked for; speech beside it is unaffected."""
    made = {
        "silence.wav": ["-r", "16000", "-c", "1", "{out}", "trim", "0", "8"],
        "white noise.wav": ["-r", "44100", "-c", "2", "{out}", "synth", "8", "whitenoise", "vol", "0.3"],
        "brown noise.flac": ["-r", "16000", "-c", "1", "{out}", "synth", "8", "brownnoise", "vol", "0.5"],
    }
    files = []
    for name, args in made.items():
        out = tmp_path / name
        subprocess.run(["sox", "-n", *[str(out) if a == "{out}" else a for a in args]], check=True)
        files.append(out)
    hum = tmp_path / "hum.mp3"  # a mains hum, as ffmpeg encodes it
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "sine=frequency=120:duration=8", str(hum)],
        check=True,
    )
    files.append(hum)
    workers()
    quiet = [submit(path) for path in files]
    asked = submit(files[0], language="es")  # a language asked for is not claimed for silence either
    spoken = submit(speech("Please call me back tomorrow morning.", "en", "wav"))
    finished = wait_finished([j.job_id for j in [*quiet, asked, spoken]])

    for job in [*quiet, asked]:
        done = finished[job.job_id]
        assert done.status == JobStatus.COMPLETED, (job.filename, done.error)
        assert done.no_speech is True and done.detected_language is None, job.filename
        assert done.duration_seconds and abs(done.duration_seconds - 8) < 0.5
        data = json.loads(read_transcript(job, "json")[0])
        assert data["language"] is None and data["segments"] == []
        assert read_transcript(job, "txt")[0].strip() == ""
    said = finished[spoken.job_id]
    assert said.status == JobStatus.COMPLETED and said.no_speech is False and said.detected_language == "en"
    wait_queue_empty(stack.transcribe_queue.name)
    assert_exactly_once(finished, notified_job_ids())


def test_long_recording_without_invented_text(stack, workers):
    """3.9 minutes of real read speech: the batched pipeline keeps WER low where sequential decoding
    with default settings invents text (docs/architecture.md, "Choices, and why")."""
    clip = SHARED_SPEECH / "en_ljspeech_LJ001-0001-0032_long.flac"
    workers()
    job = submit(clip)
    done = wait_finished([job.job_id], timeout=400)[job.job_id]
    assert done.status == JobStatus.COMPLETED, done.error
    assert done.chunks_total is None  # under the chunking threshold: one pass
    text, _ = read_transcript(job, "txt")
    error = word_error_rate(reference(clip.name), text, "en")
    print(f"{clip.name}: {done.duration_seconds:.0f} s, WER {error:.1%}")
    assert error <= 0.08
    segments = json.loads(read_transcript(job, "json")[0])["segments"]
    assert all(a["start"] <= b["start"] for a, b in zip(segments, segments[1:]))
    assert segments[-1]["end"] <= done.duration_seconds + 0.5
    assert_exactly_once({job.job_id: done}, notified_job_ids())


def test_jobs_in_flight_share_batches_and_each_gets_its_own_transcript_and_cost(stack, workers, model_dir):
    """Issue 15 / 13.5: several uploads in flight at one worker decode in shared batches; each job's
    transcript is the one it gets alone (the same engine, one job at a time, in this process), in its own
    language; each records its model seconds, real-time factor and cost at the configured price."""
    from hark.domain.api_schemas import job_view
    from hark.domain.settings import Settings
    from worker.transcription.audio import load
    from worker.transcription.engine import Engine

    clips = [SHARED_SPEECH / n for n in ("en_jfk.flac", "en_fleurs_000.ogg", "en_fleurs_004.ogg")]
    clips += sorted(p for p in SHARED_SPEECH.glob("es_*") if p.suffix != ".txt")[:1]
    assert len(clips) == 4, f"test recordings missing in {SHARED_SPEECH}"
    jobs = [submit(clip) for clip in clips]  # queued before the worker starts: it receives them together
    worker = workers(HARK_MAX_MESSAGES_IN_FLIGHT="4")
    done = wait_finished([j.job_id for j in jobs], timeout=300)
    assert all(j.status == JobStatus.COMPLETED for j in done.values())

    shared = [line["batch_jobs"] for line in worker.logged("transcribed")]
    print(f"jobs per batch seen by each job: {shared}")
    assert len(shared) == len(jobs) and max(shared) >= 2  # pieces of several jobs in one batch

    alone = Engine(Settings(model_dir=str(model_dir)))
    settings = Settings()
    for job, clip in zip(jobs, clips, strict=True):
        data = json.loads(read_transcript(job, "json")[0])
        expected = alone.transcribe(load(clip, 3600), "auto")
        assert data["language"] == expected.language == clip.name[:2]
        assert [(s["start"], s["end"], s["text"]) for s in data["segments"]] == [
            (s.start, s.end, s.text) for s in expected.segments
        ]
        finished = done[job.job_id]
        assert finished.model_seconds and finished.model_seconds > 0
        price = settings.instance_usd_per_hour / settings.workers_per_instance / 3600  # $ per model second
        assert finished.cost_usd == pytest.approx(finished.model_seconds * price, abs=1e-6)
        view = job_view(finished)
        assert view.model_seconds == finished.model_seconds and view.cost_usd == finished.cost_usd
        assert view.real_time_factor == pytest.approx(finished.model_seconds / finished.duration_seconds, abs=1e-4)

    # The EMF metrics sum the same: audio seconds and cost over every job (flushed once each message is
    # settled, just after its job completed: wait for all of them).
    def emitted(name: str) -> list[float]:
        out: list[float] = []
        for line in worker.metrics():
            values = line.get(name, [])
            out += values if isinstance(values, list) else [values]
        return out

    deadline = time.time() + 30
    while len(emitted("CostUsd")) < len(jobs):
        assert time.time() < deadline, "the workers' metrics never covered every job"
        time.sleep(0.2)
    sums = {name: sum(emitted(name)) for name in ("AudioSeconds", "CostUsd", "ProcessingSeconds")}
    assert sums["AudioSeconds"] == pytest.approx(sum(j.duration_seconds for j in done.values()), abs=0.01)
    assert sums["CostUsd"] == pytest.approx(sum(j.cost_usd for j in done.values()), abs=1e-6)
    assert sums["ProcessingSeconds"] == pytest.approx(sum(j.model_seconds for j in done.values()), abs=0.01)
    assert_exactly_once(done, notified_job_ids())
