"""The transcript viewer in the real browser: captions in a chosen style, doubtful segments marked."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from playwright.sync_api import expect

from hark.domain.transcript import MAX_CHARS_PER_LINE, MIN_CHARS_PER_LINE
from tests.e2e.test_web import TRANSCRIBE_TIMEOUT_MS, job_item, sign_in

pytestmark = pytest.mark.e2e

SENTENCE = "Captions should be short. Every line fits the screen, and nobody has to read too fast."


def srt_lines(body: str) -> list[str]:
    """The text lines of an SRT file (no numbers, no times, no blank lines)."""
    return [line for line in body.splitlines() if line.strip() and not line.isdigit() and "-->" not in line]


def test_captions_in_a_chosen_style_and_doubtful_segments(page, live_stack, speech, tmp_path):
    clip = tmp_path / "captions.wav"
    shutil.copy(speech(SENTENCE), clip)
    sign_in(page, live_stack.url, "captions@example.com")
    page.locator("#file-input").set_input_files(clip)
    item = job_item(page, clip.name)
    expect(item.locator(".badge")).to_have_attribute("data-status", "COMPLETED", timeout=TRANSCRIBE_TIMEOUT_MS)

    # The worker's quality checks flag doubtful segments in the JSON; a clean clip has none, so the browser is
    # given the real transcript with its first segment flagged and in another language, as the worker writes them.
    def flagged(route):
        response = route.fetch()
        data = response.json()
        data["segments"][0]["flags"] = ["repetition"]
        data["segments"][0]["language"] = "es"
        data["language_share"] = 0.75
        route.fulfill(response=response, body=json.dumps(data))

    page.route(re.compile(r"transcript\.json"), flagged)
    item.get_by_role("button", name="View transcript").click()
    viewer = page.get_by_role("dialog")
    first = viewer.locator(".segment").first
    expect(first).to_have_class(re.compile(r"\bdoubtful\b"))
    expect(first).to_contain_text("Doubtful: possible repetition loop")
    expect(first.locator(".lang")).to_have_text("es")
    expect(viewer.locator("#viewer-meta")).to_contain_text("75% of the speech")
    expect(viewer.locator("#viewer-meta")).to_contain_text(re.compile(r"Doubtful\s*1 of \d+ segments"))

    # Captions of at most 20 characters on one line, made with the keyboard.
    viewer.get_by_label("Characters per line", exact=True).fill("20")
    viewer.get_by_label("Lines per caption", exact=True).fill("1")
    viewer.get_by_role("button", name="Make SRT").focus()
    page.keyboard.press("Enter")
    link = viewer.locator('#caption-links a[data-format="srt"]')
    expect(link).to_have_text("SRT 20×1")
    expect(link).to_be_focused()
    body = page.request.get(link.get_attribute("href")).text()
    lines = srt_lines(body)
    assert lines and all(len(line) <= 20 or " " not in line for line in lines), body
    assert "captions" in " ".join(lines).lower() and "-->" in body

    # Out of range: a clear message, no request, the earlier link left as it was.
    for bad in (str(MIN_CHARS_PER_LINE - 1), str(MAX_CHARS_PER_LINE + 1), ""):
        viewer.get_by_label("Characters per line", exact=True).fill(bad)
        viewer.get_by_role("button", name="Make VTT").click()
        expect(viewer.locator("#viewer-error")).to_contain_text(
            f"Characters per line: a whole number from {MIN_CHARS_PER_LINE} to {MAX_CHARS_PER_LINE}."
        )
        expect(viewer.get_by_label("Characters per line", exact=True)).to_be_focused()
        expect(link).to_have_text("SRT 20×1")
    assert not page.js_errors, page.js_errors


def test_cli_prints_captions_in_a_chosen_style(live_stack, speech):
    import subprocess
    import sys

    audio = speech(SENTENCE, "en", "mp3")
    command = [sys.executable, "-m", "hark.client.cli", "transcribe", str(audio)]
    run = subprocess.run(
        [*command, "--format", "srt", "--chars-per-line", "20", "--lines-per-cue", "1"],
        env=live_stack.env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    lines = srt_lines(run.stdout)
    assert lines and all(len(line) <= 20 or " " not in line for line in lines), run.stdout
    # Caption settings on a format without captions: one clear line, exit 2, nothing uploaded.
    refused = subprocess.run(
        [*command, "--chars-per-line", "20"], env=live_stack.env(), capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.strip() == (
        "hark: --chars-per-line and --lines-per-cue shape captions: add --format srt or --format vtt"
    )
