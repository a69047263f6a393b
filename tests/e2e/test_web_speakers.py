"""Speaker labels (issue 14) from the web page and the CLI, on the whole local stack (`hark up`): a
two-person conversation joined from real recordings (hark.evaluation.der.join), the real diarization model."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from playwright.sync_api import expect

from hark.evaluation import der
from tests.conftest import SHARED_SPEECH
from tests.e2e.test_web import job_item, sign_in
from worker.transcription import audio

pytestmark = pytest.mark.e2e

# The first job that asks loads the diarization model in the worker (tens of seconds on 2 busy cores).
LABELLED_TIMEOUT_MS = 420_000


@pytest.fixture(scope="module")
def conversation(tmp_path_factory):
    voices = {
        name: audio.load(SHARED_SPEECH / f, 3600)[: 12 * der.SAMPLE_RATE]
        for name, f in (("jfk", "en_jfk.flac"), ("libri", "en_librispeech_2412-153948-0000.flac"))
    }
    samples, _ = der.join(voices)
    path = tmp_path_factory.mktemp("speakers") / "two-people.flac"
    path.write_bytes(audio.encode_flac(samples))
    return path


def test_switch_colours_and_local_renames(page, live_stack, conversation):
    sign_in(page, live_stack.url, "speakers@example.com")
    bodies: list[dict] = []
    page.on(
        "request",
        lambda r: bodies.append(json.loads(r.post_data)) if r.method == "POST" and r.url.endswith("/jobs") else None,
    )

    # The count needs the switch; a count out of range is refused on the page, before any request.
    expect(page.locator("#speakers-expected")).to_be_disabled()
    page.get_by_label("Label speakers").check()
    page.locator("#speakers-expected").fill("11")
    page.locator("#file-input").set_input_files(conversation)
    expect(page.locator("#upload-errors")).to_contain_text("How many people speak: a whole number from 1 to 10")
    assert bodies == []

    page.locator("#speakers-expected").fill("2")
    page.locator("#file-input").set_input_files(conversation)
    item = job_item(page, conversation.name)
    expect(item.locator(".badge")).to_have_attribute("data-status", "COMPLETED", timeout=LABELLED_TIMEOUT_MS)
    assert bodies[-1]["speaker_labels"] is True and bodies[-1]["speakers_expected"] == 2

    item.get_by_role("button", name="View transcript").click()
    viewer = page.get_by_role("dialog")
    chips = viewer.locator("#segments .spk")
    expect(chips.first).to_have_text("A")
    expect(viewer.locator("#viewer-meta")).to_contain_text(re.compile(r"Speakers\s*2"))
    # One colour per speaker: A and B differ.
    colour = "el => getComputedStyle(el).backgroundColor"
    a = viewer.locator('#segments .spk[data-speaker="A"]').first.evaluate(colour)
    b = viewer.locator('#segments .spk[data-speaker="B"]').first.evaluate(colour)
    assert a != b

    # Rename A: every chip of A changes, and the name is still there when the viewer opens again.
    viewer.get_by_label("Name for speaker A").fill("Kennedy")
    expect(viewer.locator('#segments .spk[data-speaker="A"]').first).to_have_text("Kennedy")
    expect(viewer.locator('#segments .spk[data-speaker="A"]').filter(has_text=re.compile("^A$"))).to_have_count(0)
    viewer.get_by_role("button", name="Close transcript").click()
    item.get_by_role("button", name="View transcript").click()
    expect(viewer.locator('#segments .spk[data-speaker="A"]').first).to_have_text("Kennedy")
    expect(viewer.get_by_label("Name for speaker A")).to_have_value("Kennedy")
    assert not page.js_errors, page.js_errors


def test_cli_speakers(live_stack, conversation):
    run = subprocess.run(
        [sys.executable, "-m", "hark.client.cli", "transcribe", str(conversation), "--speakers"],
        env=live_stack.env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines and all(re.match(r"^[AB]: \S", line) for line in lines), run.stdout
    assert {line[0] for line in lines} == {"A", "B"}
