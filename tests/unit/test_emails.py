"""The "transcript ready" email says which language was spoken, and that the text is English when the job
asked for a translation. Expected names come from Whisper's language table (hark.domain.languages.NAMES)."""

from __future__ import annotations

import pytest

from hark.domain.jobs import Job, JobStatus
from hark.domain.languages import NAMES
from worker.notification.emails import Links, completed_email

LINKS = Links(
    by_format={fmt: f"https://api.example.com/links/{fmt}" for fmt in ("txt", "json", "srt", "vtt")},
    ttl_seconds=24 * 3600,
    web_url="https://hark.example.com/",
)


def finished(**fields) -> Job:
    return Job(
        job_id="job-1",
        user_id="user_a",
        email="ana@example.com",
        filename="entrevista.m4a",
        content_type="audio/mp4",
        size_bytes=1234,
        audio_key="uploads/user_a/job-1/entrevista.m4a",
        status=JobStatus.COMPLETED,
        created_at="2026-11-23T00:00:00Z",
        updated_at="2026-11-23T00:00:00Z",
        duration_seconds=75,
        **fields,
    )


def bodies(job: Job) -> tuple[str, str]:
    msg = completed_email(job, sender="transcripts@hark.local", links=LINKS, preview=None)
    return msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content()


@pytest.mark.parametrize("code", ["es", "en", "uk", "cy"])
def test_the_spoken_language_is_named_from_whispers_table(code):
    text, html = bodies(finished(detected_language=code))
    name = f"{NAMES[code].title()} ({code})"
    assert f"Language: {name}\n" in text and f"<td>{name}</td>" in html
    assert "translated" not in text


def test_a_translated_job_says_the_text_is_english():
    text, html = bodies(finished(detected_language="es", task="translate"))
    assert f"Language: {NAMES['es'].title()} (es), translated to English\n" in text
    assert "translated to English" in html
