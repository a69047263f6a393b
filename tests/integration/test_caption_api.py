"""GET /jobs/{id}/transcript with caption settings: srt/vtt re-rendered from the stored JSON in the asked style."""

from __future__ import annotations

import requests

from hark.api import control
from hark.domain import aws
from hark.domain.keys import transcript_key
from hark.domain.settings import get_settings
from hark.domain.transcript import MAX_CHARS_PER_LINE, MIN_CHARS_PER_LINE, Segment, Transcript, Word, render_json
from tests.integration.test_api import ALICE, _complete, assert_error, call, new_job


def spoken(text: str) -> list[Word]:
    return [Word(start=i * 0.4, end=i * 0.4 + 0.3, word=" " + w, probability=0.9) for i, w in enumerate(text.split())]


def stored_job(stack) -> str:
    """A COMPLETED job whose stored files are its JSON transcript and sentinel srt/vtt (the worker's)."""
    job_id = new_job()["job"]["job_id"]
    _complete(job_id)
    words = spoken("I came, I saw. It was good & then we left.")
    transcript = Transcript(
        language="en",
        duration=5,
        model="m",
        segments=[Segment(start=0, end=4.3, text="".join(w.word for w in words).strip(), words=words)],
    )
    s3 = aws.client("s3")
    s3.put_object(
        Bucket=stack.transcripts_bucket.name,
        Key=transcript_key(ALICE, job_id, "json"),
        Body=render_json(transcript).encode(),
    )
    for fmt in ("srt", "vtt"):
        s3.put_object(
            Bucket=stack.transcripts_bucket.name, Key=transcript_key(ALICE, job_id, fmt), Body=f"stored {fmt}".encode()
        )
    return job_id


def fetch(job_id: str, **query) -> str:
    status, link = call("GET", f"/jobs/{job_id}/transcript", query={k: str(v) for k, v in query.items()})
    assert status == 200, link
    return requests.get(link["url"], timeout=10).content.decode()


def test_captions_in_a_requested_style_are_rendered_from_the_json(stack):
    job_id = stored_job(stack)
    # One line of 20: "I came, I saw. It" fits and the sentence end is the best cut; then "It was good & then"
    # (18) with "we" not fitting (21): no punctuation, so the latest gap (tests/unit/test_transcript_render.py).
    assert fetch(job_id, format="srt", chars_per_line=20, lines_per_cue=1) == (
        "1\n00:00:00,000 --> 00:00:01,500\nI came, I saw.\n\n"
        "2\n00:00:01,600 --> 00:00:03,500\nIt was good & then\n\n"
        "3\n00:00:03,600 --> 00:00:04,300\nwe left.\n"
    )
    vtt = fetch(job_id, format="vtt", chars_per_line=20, lines_per_cue=1)
    assert vtt.startswith("WEBVTT\n\n") and "00:00:01.600 --> 00:00:03.500\nIt was good &amp; then\n" in vtt
    # Only one setting given: the other keeps its default (2 lines): everything fits one cue of two lines.
    assert fetch(job_id, format="srt", chars_per_line=24) == (
        "1\n00:00:00,000 --> 00:00:04,300\nI came, I saw. It was\ngood & then we left.\n"
    )


def test_the_default_style_is_the_stored_file(stack):
    job_id = stored_job(stack)
    settings = get_settings()
    assert fetch(job_id, format="srt") == "stored srt"
    assert (
        fetch(
            job_id,
            format="vtt",
            chars_per_line=settings.caption_chars_per_line,
            lines_per_cue=settings.caption_lines_per_cue,
        )
        == "stored vtt"
    )


def test_bad_caption_settings_are_refused_and_change_nothing(stack):
    job_id = stored_job(stack)
    path = f"/jobs/{job_id}/transcript"
    # Caption settings on a format that has no captions: 400, naming the formats that do.
    _, body = call("GET", path, query={"format": "txt", "chars_per_line": "30"})
    assert_error((400, body), 400, "validation_error")
    assert "srt" in body["error"]["message"]
    # Out of range or not a number: 400 naming the parameter.
    for query in (
        {"format": "srt", "chars_per_line": str(MIN_CHARS_PER_LINE - 1)},
        {"format": "srt", "chars_per_line": str(MAX_CHARS_PER_LINE + 1)},
        {"format": "vtt", "lines_per_cue": "0"},
        {"format": "vtt", "lines_per_cue": "two"},
    ):
        status, body = call("GET", path, query=query)
        assert_error((status, body), 400, "validation_error")
        assert next(k for k in query if k != "format") in body["error"]["message"]
    assert fetch(job_id, format="srt") == "stored srt"  # nothing replaced


def test_styled_captions_are_deleted_with_the_job(stack):
    job_id = stored_job(stack)
    fetch(job_id, format="srt", chars_per_line=30)
    s3, bucket = aws.client("s3"), stack.transcripts_bucket.name
    assert any("/captions/" in o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))
    control.delete_job(control.Caller(ALICE), job_id)  # what DELETE /jobs/{id} runs
    assert s3.list_objects_v2(Bucket=bucket).get("Contents", []) == []
