"""The web app end to end: Debian's Chromium, driven by Playwright, against the whole local stack.

A user signs in with the dev sign-in, uploads a spoken English clip from the file picker, watches it
go to COMPLETED, reads it in the transcript viewer and downloads the four formats; a text file named
.wav ends FAILED with a readable reason; a .txt is refused before upload; an invalid token signs the
user out with a message.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

SENTENCE = "The quick brown fox jumps over the lazy dog. Hark turns speech into text."
TRANSCRIBE_TIMEOUT_MS = 180_000


def screenshot_dir() -> Path:
    return Path(os.environ.get("TMP") or tempfile.gettempdir())


def sign_in(page, url: str, email: str) -> None:
    page.goto(f"{url}/")
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#session")).to_contain_text(f"Signed in as {email}")
    expect(page.get_by_role("heading", name="Upload recordings")).to_be_visible()


def job_item(page, filename: str):
    return page.locator("#jobs > li", has_text=filename)


def test_sign_in_upload_watch_and_read(page, live_stack, speech, tmp_path):
    clip = tmp_path / "quick-brown-fox.wav"
    shutil.copy(speech(SENTENCE), clip)
    not_audio = tmp_path / "meeting-notes.wav"
    not_audio.write_text("These are my meeting notes, not a recording.\n" * 20)
    wrong_type = tmp_path / "notes.txt"
    wrong_type.write_text("plain text\n")

    sign_in(page, live_stack.url, "web@example.com")
    expect(page.locator("#jobs-empty")).to_be_visible()

    # A file the API refuses (415) never becomes a job: its message is shown by the upload form.
    page.locator("#file-input").set_input_files(wrong_type)
    expect(page.locator("#upload-errors")).to_contain_text("notes.txt")
    expect(page.locator("#upload-errors")).to_contain_text(re.compile(r"not accepted|not allowed", re.I))

    # The spoken clip: uploaded straight to S3, then QUEUED -> PROCESSING -> COMPLETED.
    page.get_by_label("Spoken language").fill("English")  # a name or a code (hark/domain/languages.py)
    page.locator("#file-input").set_input_files(clip)
    item = job_item(page, clip.name)
    expect(item).to_be_visible()
    badge = item.locator(".badge")
    expect(badge).to_have_text(re.compile("Uploading|Queued|Transcribing|Completed"))
    expect(badge).to_have_attribute("data-status", "COMPLETED", timeout=TRANSCRIBE_TIMEOUT_MS)
    expect(page.locator("#announcer")).to_contain_text("transcript ready")

    # Four download links, each a working presigned URL.
    links = item.locator("a.dl")
    expect(links).to_have_count(4)
    bodies = {}
    for fmt in ("txt", "json", "srt", "vtt"):
        href = item.locator(f'a.dl[data-format="{fmt}"]').get_attribute("href")
        r = page.request.get(href)
        assert r.ok, f"{fmt}: HTTP {r.status}"
        bodies[fmt] = r.text()
    assert re.search(r"fox", bodies["txt"], re.I), bodies["txt"]
    assert bodies["vtt"].startswith("WEBVTT"), bodies["vtt"][:200]
    assert "-->" in bodies["srt"], bodies["srt"][:200]

    # The viewer: segments with mm:ss timestamps, language, duration, copy.
    item.get_by_role("button", name="View transcript").click()
    viewer = page.get_by_role("dialog")
    expect(viewer).to_be_visible()
    expect(viewer.locator(".segment").first).to_be_visible()
    text = " ".join(viewer.locator(".segment p").all_inner_texts()).lower()
    for word in ("fox", "lazy", "dog"):
        assert word in text, f"{word!r} not in the transcript: {text!r}"
    expect(viewer.locator(".segment .ts").first).to_have_text(re.compile(r"^\d\d:\d\d$"))
    expect(viewer.locator("#viewer-meta")).to_contain_text("English")
    expect(viewer.locator("#viewer-meta")).to_contain_text(re.compile(r"Duration\s*\d+ s"))
    expect(viewer.locator("#viewer-downloads a.dl")).to_have_count(4)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    viewer.get_by_role("button", name="Copy text").click()
    expect(viewer.locator("#copy-status")).to_contain_text("Copied")
    page.screenshot(path=str(screenshot_dir() / "hark-web-viewer.png"))
    page.keyboard.press("Escape")
    expect(viewer).to_be_hidden()

    # A text file named .wav is accepted for upload, then fails in the worker with a reason.
    page.locator("#file-input").set_input_files(not_audio)
    bad = job_item(page, not_audio.name)
    expect(bad.locator(".badge")).to_have_attribute("data-status", "FAILED", timeout=TRANSCRIBE_TIMEOUT_MS)
    reason = bad.locator(".job-error").inner_text()
    assert len(reason) > len("Reason: ") + 10 and "Traceback" not in reason, reason
    expect(bad.locator("a.dl")).to_have_count(0)
    page.screenshot(path=str(screenshot_dir() / "hark-web-jobs.png"), full_page=True)

    # Delete (with confirm): the failed job leaves the list.
    page.once("dialog", lambda d: d.accept())
    bad.get_by_role("button", name=f"Delete {not_audio.name}").click()
    expect(bad).to_have_count(0)
    page.reload()
    expect(job_item(page, clip.name)).to_be_visible()
    expect(job_item(page, not_audio.name)).to_have_count(0)

    assert not page.js_errors, page.js_errors


def test_rejected_token_signs_out_with_message(page, live_stack):
    sign_in(page, live_stack.url, "expired@example.com")
    # The API answers 401 to a token it cannot verify: the app signs the user out and says why.
    page.evaluate("""() => {
        const s = JSON.parse(sessionStorage.getItem("hark.session"));
        s.token = s.token.slice(0, -6) + "AAAAAA";
        sessionStorage.setItem("hark.session", JSON.stringify(s));
    }""")
    page.get_by_role("button", name="Refresh").click()
    expect(page.locator("#notice")).to_contain_text("sign in again")
    expect(page.get_by_label("Email")).to_be_visible()
    expect(page.locator("#session")).to_be_hidden()

    sign_in(page, live_stack.url, "expired@example.com")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Email")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('hark.session')") is None
    assert not page.js_errors, page.js_errors


def test_a_recording_without_speech_says_so_and_names_no_language(page, live_stack, tmp_path):
    silence = tmp_path / "empty-room.wav"
    subprocess.run(["sox", "-n", "-r", "16000", "-c", "1", str(silence), "trim", "0", "6"], check=True)
    sign_in(page, live_stack.url, "quiet@example.com")
    page.locator("#file-input").set_input_files(silence)
    item = job_item(page, silence.name)
    expect(item.locator(".badge")).to_have_attribute("data-status", "COMPLETED", timeout=TRANSCRIBE_TIMEOUT_MS)
    note = item.locator('[data-note="no-speech"]')
    expect(note).to_contain_text("No speech detected")
    expect(page.locator("#announcer")).to_contain_text(f"{silence.name}: no speech detected")
    meta = item.locator(".job-meta").inner_text()
    assert not re.search(r"English|Spanish", meta), meta  # no language is claimed
    assert not page.js_errors, page.js_errors
