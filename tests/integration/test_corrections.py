"""PUT /jobs/{id}/transcript (issue 26): a person's corrections become the transcript's next revision, served in
every format and caption style; the model's own stays at ?revision=0; stale, foreign and out-of-range saves are
refused and change nothing; of saves racing for one revision exactly one wins."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import requests

from hark.api import control
from hark.domain import aws
from hark.domain.api_schemas import CorrectTranscriptRequest, SegmentText
from hark.domain.jobs import Jobs
from hark.domain.keys import job_prefix, transcript_key
from hark.domain.resources import TRANSCRIPTS_PREFIX
from hark.domain.transcript import RENDERERS, Segment, Transcript, Word
from tests.integration.test_api import ALICE, BOB, _complete, assert_error, call, new_job


def timed(words: str, start: float, speaker: str) -> list[Word]:
    return [
        Word(start=start + i * 0.5, end=start + i * 0.5 + 0.4, word=" " + w, probability=0.8, speaker=speaker)
        for i, w in enumerate(words.split())
    ]


def completed_job(stack) -> str:
    """A COMPLETED job whose stored JSON is the model's: two segments, speakers A and B."""
    job_id = new_job()["job"]["job_id"]
    _complete(job_id)
    first, second = timed("I came I saw", 0.0, "A"), timed("it was good", 3.0, "B")
    transcript = Transcript(
        language="en",
        duration=5,
        model="m",
        segments=[
            Segment(start=0.0, end=2.0, text=" I came I saw", words=first, speaker="A"),
            Segment(start=3.0, end=4.5, text=" it was good", words=second, speaker="B"),
        ],
    )
    for fmt, render in RENDERERS.items():  # as the worker writes them
        aws.client("s3").put_object(
            Bucket=stack.transcripts_bucket.name,
            Key=transcript_key(ALICE, job_id, fmt),
            Body=render(transcript).encode(),
        )
    return job_id


def fetch(job_id: str, **query) -> str:
    status, link = call("GET", f"/jobs/{job_id}/transcript", query={k: str(v) for k, v in query.items()})
    assert status == 200, link
    return requests.get(link["url"], timeout=10).content.decode()


def put(job_id: str, body: dict, user: str = ALICE):
    return call("PUT", f"/jobs/{job_id}/transcript", body=body, user=user)


def stored_keys(stack, job_id: str) -> list[str]:
    listed = aws.client("s3").list_objects_v2(
        Bucket=stack.transcripts_bucket.name, Prefix=job_prefix(TRANSCRIPTS_PREFIX, ALICE, job_id)
    )
    return sorted(o["Key"] for o in listed.get("Contents", []))


def test_a_correction_is_the_latest_revision_in_every_format_and_the_model_stays_at_revision_0(stack):
    job_id = completed_job(stack)
    assert call("GET", f"/jobs/{job_id}")[1]["transcript_revision"] == 0
    body = {"revision": 0, "segments": [{"index": 0, "text": "We came, we saw"}], "speaker_names": {"A": "Morgan"}}
    assert put(job_id, body) == (200, {"revision": 1})

    job = call("GET", f"/jobs/{job_id}")[1]
    # Reference "we came we saw it was good" (7 words), the model's "i came i saw it was good": 2 substitutions.
    assert job["transcript_revision"] == 1
    assert job["corrections"] == {"word_error_rate": round(2 / 7, 4), "edited_segments": 1}
    latest = Transcript.model_validate_json(requests.get(job["transcript"]["json"], timeout=10).content)
    segment = latest.segments[0]
    assert segment.text == "We came, we saw" and "".join(w.word for w in segment.words).strip() == segment.text
    assert segment.start <= segment.words[0].start and segment.words[-1].end <= segment.end  # inside the segment
    assert [w.start for w in segment.words] == sorted(w.start for w in segment.words)
    assert latest.segments[1].text == " it was good" and latest.speaker_names == {"A": "Morgan"}
    srt = fetch(job_id, format="srt")
    assert "Morgan: We came, we saw" in srt and "B: it was good" in srt
    assert fetch(job_id, format="txt") == "Morgan: We came, we saw\nB: it was good\n"
    assert "\nMorgan: We came,\n" in fetch(job_id, format="srt", chars_per_line=20, lines_per_cue=1)  # a styled one
    # The model's own, in any format and style.
    assert fetch(job_id, format="txt", revision=0) == "A: I came I saw\nB: it was good\n"
    assert "A: I came I saw" in fetch(job_id, format="srt", chars_per_line=20, revision=0)
    assert_error(call("GET", f"/jobs/{job_id}/transcript", query={"revision": "2"}), 400, "validation_error")

    # Revision 2, made on 1: names kept, the WER is against the latest correction.
    assert put(job_id, {"revision": 1, "segments": [{"index": 1, "text": "It was good."}]}) == (200, {"revision": 2})
    job = call("GET", f"/jobs/{job_id}")[1]
    # Its text changed ("It was good."), its normalised words did not: two segments edited, the WER as before.
    assert job["corrections"] == {"word_error_rate": round(2 / 7, 4), "edited_segments": 2}
    assert fetch(job_id, format="txt") == "Morgan: We came, we saw\nB: It was good.\n"
    assert fetch(job_id, format="txt", revision=1) == "Morgan: We came, we saw\nB: it was good\n"

    # Every revision is deleted with the job.
    assert any("/revisions/" in k for k in stored_keys(stack, job_id))
    assert call("DELETE", f"/jobs/{job_id}")[0] == 204
    assert stored_keys(stack, job_id) == []


def test_stale_foreign_and_bad_corrections_are_refused_and_change_nothing(stack):
    job_id = completed_job(stack)
    assert put(job_id, {"revision": 0, "segments": [{"index": 0, "text": "We came"}]})[0] == 200
    before = stored_keys(stack, job_id)
    edit = {"index": 1, "text": "x"}
    # Another tab saved revision 1 after this one read revision 0.
    assert (
        "revision 1"
        in assert_error(put(job_id, {"revision": 0, "segments": [edit]}), 409, "revision_conflict")["message"]
    )
    assert_error(put(job_id, {"revision": 1, "segments": [edit]}, user=BOB), 404, "job_not_found")
    assert (
        "segment 2"
        in assert_error(put(job_id, {"revision": 1, "segments": [{"index": 2, "text": "x"}]}), 400, "validation_error")[
            "message"
        ]
    )
    assert_error(put(job_id, {"revision": 1, "speaker_names": {"C": "Kim"}}), 400, "validation_error")
    assert_error(put(job_id, {"revision": 1, "speaker_names": {"A": "  "}}), 400, "validation_error")
    assert_error(put(job_id, {"revision": 1, "segments": [edit, edit]}), 400, "validation_error")
    assert_error(put(job_id, {"revision": "1", "segments": [edit]}), 400, "validation_error")
    assert_error(put(job_id, {"revision": 1, "segments": [{"index": -1, "text": "x"}]}), 400, "validation_error")
    assert call("GET", f"/jobs/{job_id}")[1]["transcript_revision"] == 1
    assert stored_keys(stack, job_id) == before
    unfinished = new_job()["job"]["job_id"]
    assert_error(put(unfinished, {"revision": 0, "segments": [edit]}), 409, "transcript_not_ready")


def test_of_saves_racing_for_one_revision_exactly_one_wins(stack, monkeypatch):
    job_id = completed_job(stack)
    racers = 4
    barrier = threading.Barrier(racers)
    save = Jobs.save_revision

    def together(self, *args, **kwargs):  # every save has written its files before any takes the revision
        barrier.wait()
        return save(self, *args, **kwargs)

    monkeypatch.setattr(Jobs, "save_revision", together)

    def correct(n: int) -> str:
        request = CorrectTranscriptRequest(revision=0, segments=[SegmentText(index=0, text=f"take {n}")])
        try:
            control.correct_transcript(control.Caller(ALICE), job_id, request)
            return "saved"
        except control.ApiError as err:
            return err.code

    with ThreadPoolExecutor(racers) as pool:
        outcomes = sorted(pool.map(correct, range(racers)))
    assert outcomes == ["revision_conflict"] * (racers - 1) + ["saved"]
    assert call("GET", f"/jobs/{job_id}")[1]["transcript_revision"] == 1
    # Only the winner's files are left: the model's four formats and one revision's.
    revisions = {k.split("/revisions/")[1].split("/")[0] for k in stored_keys(stack, job_id) if "/revisions/" in k}
    assert len(revisions) == 1 and len(stored_keys(stack, job_id)) == 4 + 4
