"""The web page's "Record live" (issue 24) in Debian's Chromium against the whole local stack: a fake microphone
plays a real recording (Chromium's --use-file-for-fake-audio-capture, played once), the page streams it through
its AudioWorklet to the live WebSocket on the stack's own port, shows partials then finals, and on Stop saves the
recording, wrapped as WAV in the browser, as an ordinary job that is transcribed with its downloads."""

from __future__ import annotations

import numpy as np
import pytest
from playwright.sync_api import expect

from hark.client.live import pcm
from hark.domain.wer import word_error_rate
from tests.conftest import SHARED_SPEECH
from tests.e2e.conftest import launch_chromium
from tests.e2e.test_web import TRANSCRIBE_TIMEOUT_MS, sign_in
from tests.media import RATE, wav

pytestmark = pytest.mark.e2e

CLIP = SHARED_SPEECH / "en_jfk.flac"  # 11 s, three phrases with pauses between them


@pytest.fixture(scope="module")
def microphone(tmp_path_factory):
    """The clip as a 16 kHz mono WAV (what Chromium's fake capture reads), and its length in seconds."""
    samples = np.frombuffer(pcm(CLIP, RATE), "<i2").astype(np.float32) / 32768
    return wav(tmp_path_factory.mktemp("microphone") / "jfk.wav", samples[None, :]), len(samples) / RATE


@pytest.fixture(scope="module")
def browser(microphone):
    """Chromium whose microphone plays the clip once (then silence), allowed without asking."""
    playwright, browser = launch_chromium(
        (
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-audio-capture={microphone[0]}%noloop",
        )
    )
    yield browser
    browser.close()
    playwright.stop()


def test_record_live_shows_partials_and_finals_then_saves_the_recording_as_a_job(page, live_stack, microphone):
    _, seconds = microphone
    sign_in(page, live_stack.url, "live-web@example.com")
    # Every text a partial showed, however briefly (each is replaced by the next, or cleared by a final).
    page.evaluate("""() => {
        window.partialsSeen = [];
        const p = document.getElementById("live-partial");
        new MutationObserver(() => { if (p.textContent) window.partialsSeen.push(p.textContent); })
            .observe(p, {childList: true, characterData: true, subtree: true});
    }""")

    # A language the service does not know: its refusal is shown, the button is back, and nothing is saved.
    page.get_by_label("Spoken language").fill("Klingon")
    page.get_by_role("button", name="Record live").click()
    expect(page.locator("#live-error")).to_contain_text("refused the stream's settings")
    expect(page.locator("#live-error")).to_contain_text("Klingon")
    expect(page.get_by_role("button", name="Record live")).to_be_enabled()
    expect(page.locator("#live-status")).to_be_empty()

    page.get_by_label("Spoken language").fill("English")
    page.get_by_role("button", name="Record live").click()
    expect(page.get_by_role("button", name="Stop")).to_be_enabled()
    page.wait_for_function("() => window.partialsSeen.length > 0")
    expect(page.locator("#live-finals li").first).to_be_visible(timeout=30_000)
    # The whole clip has gone into the microphone (the page counts what it captured): then Stop.
    page.wait_for_function(
        "(s) => Number(document.getElementById('live-status').dataset.seconds) >= s", arg=seconds, timeout=60_000
    )
    page.get_by_role("button", name="Stop").click()
    expect(page.locator("#live-status")).to_contain_text("Saved as live-", timeout=60_000)
    expect(page.locator("#live-error")).to_be_empty()
    expect(page.locator("#jobs > li")).to_have_count(1)  # the refused attempt saved nothing

    finals = page.locator("#live-finals li").all_inner_texts()
    said = " ".join(text.split(" ", 1)[1] for text in finals)  # each is "mm:ss text"
    reference = (CLIP.with_suffix(".txt")).read_text()
    assert word_error_rate(reference, said, "en") <= 0.25, said

    # The recording is an ordinary job: the browser's WAV, transcribed in batch, with its downloads.
    job = page.locator("#jobs > li", has_text="live-")
    expect(job.locator(".badge")).to_have_attribute("data-status", "COMPLETED", timeout=TRANSCRIBE_TIMEOUT_MS)
    expect(job.locator("a.dl")).to_have_count(4)
    transcript = page.request.get(job.locator('a.dl[data-format="txt"]').get_attribute("href")).text()
    assert word_error_rate(reference, transcript, "en") <= 0.25, transcript
    assert not page.js_errors, page.js_errors
