"""The viewer's player in the real browser (issue 11, item 6): the recording plays from its short-lived link,
a sentence seeks it (click, or Enter/Space when focused), the sentence being played is highlighted as the
player moves, and `/` focuses a search that marks and counts the matches. Also the upload form's steering:
a language by name, a prompt and the translate switch reach the job."""

from __future__ import annotations

import math
import re
import shutil
import wave

import pytest
from playwright.sync_api import expect

from tests.e2e.test_web import TRANSCRIBE_TIMEOUT_MS, job_item, sign_in

pytestmark = pytest.mark.e2e

# Three sentences with pauses between them: one segment of the batched pipeline (up to 30 s of speech), shown
# as its three sentences (from the word timestamps), each a place to play from.
SENTENCES = (
    "The orchard behind the school has eleven apple trees.",
    "Every autumn the children pick the apples and press them into juice.",
    "The juice is sold at the winter market to pay for new books.",
)
PAUSE_SECONDS = 2.0


def joined(speech, path):
    """One WAV of the sentences, PAUSE_SECONDS of silence between them."""
    frames, params = [], None
    for sentence in SENTENCES:
        with wave.open(str(speech(sentence)), "rb") as w:
            params = w.getparams()
            frames.append(w.readframes(w.getnframes()))
    assert params is not None
    silence = b"\0" * int(params.framerate * PAUSE_SECONDS) * params.sampwidth * params.nchannels
    with wave.open(str(path), "wb") as out:
        out.setparams(params)
        out.writeframes(silence.join(frames))
    return path


def current_time(page) -> float:
    return page.evaluate("document.getElementById('viewer-audio').currentTime")


def wait_playing_from(page, start: float) -> None:
    """The player is at or past `start` and moving (a positive signal, not a sleep)."""
    page.wait_for_function(
        f"(() => {{ const a = document.getElementById('viewer-audio'); return !a.paused && a.currentTime >= {start}; }})()"
    )


def test_play_seek_highlight_and_search(page, live_stack, speech, tmp_path):
    clip = joined(speech, tmp_path / "orchard.wav")
    sign_in(page, live_stack.url, "player@example.com")
    page.get_by_label("Spoken language").fill("english")
    page.locator("#file-input").set_input_files(clip)
    item = job_item(page, clip.name)
    expect(item.locator(".badge")).to_have_attribute("data-status", "COMPLETED", timeout=TRANSCRIBE_TIMEOUT_MS)
    item.get_by_role("button", name="View transcript").click()
    viewer = page.get_by_role("dialog")
    sentences = viewer.locator("#segments .line")
    expect(sentences).to_have_count(len(SENTENCES))
    starts = [float(s) for s in sentences.evaluate_all("items => items.map(i => i.dataset.start)")]
    assert starts == sorted(starts) and starts[1] > starts[0]

    # The recording comes from the short-lived link (the emulator's S3, as CSP media-src allows).
    audio = viewer.locator("#viewer-audio")
    expect(audio).to_have_attribute("src", re.compile(r"^http://127\.0\.0\.1:\d+/.*uploads/"))
    page.wait_for_function("document.getElementById('viewer-audio').readyState >= 1")  # metadata loaded
    duration = page.evaluate("document.getElementById('viewer-audio').duration")
    assert math.isfinite(duration) and duration > starts[-1]  # the whole recording

    # Click the second sentence: the player jumps there and plays; that sentence is highlighted.
    sentences.nth(1).click()
    wait_playing_from(page, starts[1])
    assert current_time(page) < starts[2]
    expect(sentences.nth(1)).to_have_class(re.compile(r"\bplaying\b"))
    expect(sentences.nth(1)).to_have_attribute("aria-current", "true")
    expect(viewer.locator(".playing")).to_have_count(1)

    # The highlight follows the player: moved to the first sentence, then playing on from the pause before
    # the second into it (nothing is highlighted in the pause).
    page.evaluate(f"document.getElementById('viewer-audio').currentTime = {starts[0]}")
    expect(sentences.nth(0)).to_have_class(re.compile(r"\bplaying\b"))
    expect(sentences.nth(1)).not_to_have_class(re.compile(r"\bplaying\b"))
    page.evaluate(f"document.getElementById('viewer-audio').currentTime = {starts[1] - 1.5}")
    expect(sentences.nth(1)).not_to_have_class(re.compile(r"\bplaying\b"))
    expect(sentences.nth(1)).to_have_class(re.compile(r"\bplaying\b"), timeout=30_000)
    assert current_time(page) >= starts[1]

    # Keyboard: focus the third sentence and press Enter, then Space on the first.
    sentences.nth(2).focus()
    page.keyboard.press("Enter")
    wait_playing_from(page, starts[2])
    expect(sentences.nth(2)).to_have_class(re.compile(r"\bplaying\b"))
    sentences.nth(0).focus()
    page.keyboard.press(" ")
    page.wait_for_function(f"document.getElementById('viewer-audio').currentTime < {starts[1]}")  # back at the first
    expect(sentences.nth(0)).to_have_class(re.compile(r"\bplaying\b"))
    expect(sentences.nth(0)).to_be_focused()

    # `/` focuses the search; a word is marked wherever it is, and counted.
    page.keyboard.press("/")
    search = viewer.get_by_label("Search the transcript")
    expect(search).to_be_focused()
    page.keyboard.type("juice")
    marks = viewer.locator("#segments mark")
    texts = [t.lower() for t in sentences.all_inner_texts()]
    expected = sum(t.count("juice") for t in texts)
    assert expected >= 2, texts  # "press them into juice", "The juice is sold"
    expect(marks).to_have_count(expected)
    expect(viewer.locator("#search-count")).to_have_text(f"{expected} matches")
    assert {m.lower() for m in marks.all_inner_texts()} == {"juice"}
    # Enter in the search plays from the first sentence with a match.
    page.keyboard.press("Enter")
    first_match = next(i for i, t in enumerate(texts) if "juice" in t)
    wait_playing_from(page, starts[first_match])
    expect(sentences.nth(first_match)).to_be_focused()
    # Nothing found: no marks, said so; cleared: no count.
    search.fill("zebra")
    expect(marks).to_have_count(0)
    expect(viewer.locator("#search-count")).to_have_text("0 matches")
    search.fill("")
    expect(viewer.locator("#search-count")).to_have_text("")
    assert not page.js_errors, page.js_errors


def test_the_upload_form_sends_a_language_name_a_prompt_and_translate(page, live_stack, speech, tmp_path):
    clip = tmp_path / "steered.wav"
    shutil.copy(speech("Mister Quilter is the apostle of the middle classes."), clip)
    sign_in(page, live_stack.url, "steer@example.com")
    page.get_by_label("Spoken language").fill("Klingon")
    page.locator("#file-input").set_input_files(clip)
    expect(page.locator("#upload-errors")).to_contain_text("Unknown language 'Klingon'")
    expect(job_item(page, clip.name)).to_have_count(0)  # refused: no job

    page.get_by_label("Spoken language").fill("English")
    page.get_by_label(re.compile("Names and terms")).fill("Quilter")
    page.get_by_label("Translate to English").check()
    with page.expect_response(lambda r: r.url.endswith("/jobs") and r.request.method == "POST") as created:
        page.locator("#file-input").set_input_files(clip)
    job = created.value.json()["job"]
    assert (job["language"], job["prompt"], job["task"]) == ("en", "Quilter", "translate")
    item = job_item(page, clip.name)
    expect(item.locator(".badge")).to_have_attribute("data-status", "COMPLETED", timeout=TRANSCRIBE_TIMEOUT_MS)
    item.get_by_role("button", name="View transcript").click()
    meta = page.get_by_role("dialog").locator("#viewer-meta")
    expect(meta).to_contain_text("Translated to English")
    expect(meta).to_contain_text("Quilter")
    expect(page.get_by_role("dialog").locator("#segments")).to_contain_text("Quilter")
    assert not page.js_errors, page.js_errors


def test_an_expired_recording_link_is_replaced_once_and_a_broken_one_is_reported(page, live_stack, speech, tmp_path):
    """A viewer left open past its recording link's expiry: S3 answers the old link 403, and the page asks
    GET /jobs/{id}/audio for a new one and plays on. A link that fails before its expiry (the recording was
    removed) is reported, not fetched again and again. The expiry is the API's own `expires_at`, moved into
    the past on its way to the page; S3's 403 is answered for the emulator, which does not check expiry."""
    clip = tmp_path / "expiry.wav"
    shutil.copy(speech("The library opens at nine on weekdays."), clip)
    sign_in(page, live_stack.url, "expiry@example.com")
    page.locator("#file-input").set_input_files(clip)
    item = job_item(page, clip.name)
    expect(item.locator(".badge")).to_have_attribute("data-status", "COMPLETED", timeout=TRANSCRIBE_TIMEOUT_MS)

    link_calls: list[str] = []
    refused: list[str] = []

    def audio_link(route):  # the first link of each opening arrives already expired
        response = route.fetch()
        link = response.json()
        link_calls.append(link["url"])
        if len(link_calls) == 1:
            link["expires_at"] = "2000-01-01T00:00:00Z"
        route.fulfill(response=response, json=link)

    def recording(route):  # S3's answer to an expired presigned URL, once
        if not refused:
            refused.append(route.request.url)
            route.fulfill(status=403, content_type="application/xml", body="<Error><Code>AccessDenied</Code></Error>")
        else:
            route.fallback()

    page.route(re.compile(r".*/jobs/[^/]+/audio$"), audio_link)
    page.route(re.compile(r".*/uploads/.*"), recording)
    item.get_by_role("button", name="View transcript").click()
    viewer = page.get_by_role("dialog")
    # The new link loads (polled from here: the page's CSP refuses the string predicates wait_for_function sends).
    expect(viewer.locator("#viewer-audio")).to_have_js_property("readyState", 4, timeout=30_000)
    assert len(link_calls) == 2 and len(refused) == 1
    expect(viewer.locator("#viewer-error")).to_have_text("")

    # Closed and opened again: this time the (fresh) link fails too, before its expiry: said, not retried.
    page.keyboard.press("Escape")
    link_calls.clear()
    page.unroute(re.compile(r".*/jobs/[^/]+/audio$"))
    page.route(re.compile(r".*/jobs/[^/]+/audio$"), lambda route: (link_calls.append("fresh"), route.fallback()))
    page.unroute(re.compile(r".*/uploads/.*"))
    page.route(re.compile(r".*/uploads/.*"), lambda route: route.fulfill(status=403, body=""))
    item.get_by_role("button", name="View transcript").click()
    expect(viewer.locator("#viewer-error")).to_have_text(
        "The recording could not be played (it may have been removed)."
    )
    assert link_calls == ["fresh"]
