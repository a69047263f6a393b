"""`hark transcribe --prompt/--translate/--language NAME`: what the CLI sends, and the one line it answers
bad steering with (exit 2, before anything is uploaded)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hark.domain.api_schemas import PROMPT_MAX_CHARS
from hark.local.emulator import free_port
from tests.unit.test_cli_errors import AUDIO, run


class Recorder:
    """A loopback API that records each create-job body and refuses it (so the CLI stops there)."""

    def __init__(self):
        self.bodies: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                outer.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                data = json.dumps({"error": {"code": "stop", "message": "recorded"}}).encode()
                self.send_response(400)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder():
    r = Recorder()
    yield r
    r.stop()


@pytest.fixture
def clip(tmp_path):
    path = tmp_path / "memo.wav"
    path.write_bytes(AUDIO)
    return path


def test_prompt_translate_and_a_language_name_are_sent_as_the_api_takes_them(recorder, clip, capsys):
    code, _, err = run(
        capsys, "transcribe", str(clip), "--server", recorder.url, "--token", "t",
        "--language", "Español", "--prompt", "Quilter, Nguyen", "--translate",
    )  # fmt: skip
    assert code == 1 and "recorded" in err
    (body,) = recorder.bodies
    assert (body["language"], body["prompt"], body["task"]) == ("es", "Quilter, Nguyen", "translate")


def test_without_steering_the_body_is_plain_transcription(recorder, clip, capsys):
    run(capsys, "transcribe", str(clip), "--server", recorder.url, "--token", "t")
    (body,) = recorder.bodies
    assert body["language"] == "auto" and body["task"] == "transcribe" and "prompt" not in body


def test_an_unknown_language_is_one_line_before_any_request(clip, capsys):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens: a request would be a different error
    code, out, err = run(
        capsys, "transcribe", str(clip), str(clip), "--server", url, "--token", "t", "--language", "Klingon"
    )
    assert code == 2 and out == ""
    assert err.splitlines() == [
        "hark: --language: Unknown language 'Klingon': use auto, a Whisper language code (en, es, fr, ...) "
        "or a language's name (English, Spanish, français, ...)."
    ]


def test_a_prompt_over_the_limit_is_one_line_before_any_request(clip, capsys):
    url = f"http://127.0.0.1:{free_port()}"
    long = "x" * (PROMPT_MAX_CHARS + 1)
    code, _, err = run(capsys, "transcribe", str(clip), "--server", url, "--token", "t", "--prompt", long)
    assert code == 2
    assert err.splitlines() == [
        f"hark: --prompt is {PROMPT_MAX_CHARS + 1} characters; at most {PROMPT_MAX_CHARS} are used"
    ]
