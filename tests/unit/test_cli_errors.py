"""The CLI answers a server that is down, an address without a scheme, or a stack that stops while it
waits with one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from hark import cli
from hark.local.emulator import free_port

AUDIO = b"RIFF" + b"\0" * 64


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_server_down_is_one_line(tmp_path, capsys):
    clip = tmp_path / "memo.wav"
    clip.write_bytes(AUDIO)
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    code, out, err = run(capsys, "transcribe", str(clip), "--server", url, "--token", "t")
    assert code == 1 and out == ""
    assert err.splitlines() == [f"hark: cannot reach {url}/jobs: is the server running? (--server changes the address)"]


def test_server_without_a_scheme_is_refused_before_any_request(tmp_path, capsys):
    clip = tmp_path / "memo.wav"
    clip.write_bytes(AUDIO)
    code, _, err = run(capsys, "transcribe", str(clip), "--server", "127.0.0.1:8000", "--token", "t")
    assert code == 2
    assert err.splitlines() == [
        "hark: --server '127.0.0.1:8000' is not a URL: give it with its scheme, e.g. http://127.0.0.1:8000"
    ]


class StubStack:
    """A stand-in stack on loopback: POST /jobs creates job `job_id` with an upload form pointing back
    here; what the upload and later requests get is each subclass's."""

    job_id = "j"

    def __init__(self):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path == "/jobs":
                    form = {"url": f"{outer.url}/upload", "fields": {}}
                    self.answer(201, {"job": {"job_id": outer.job_id}, "upload": form})
                else:
                    self.answer(204, None)
                    outer.uploaded()

            def do_GET(self):
                self.answer(200, outer.get(self.path))

            def answer(self, status: int, body):
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def uploaded(self) -> None:
        pass

    def get(self, path: str):
        return None

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class VanishingStack(StubStack):
    """Accepts the job and the upload, then stops: the CLI's next poll finds nothing listening."""

    job_id = "j1"

    def __init__(self):
        self.gone = threading.Event()
        super().__init__()

    def uploaded(self) -> None:
        threading.Thread(target=self.stop, daemon=True).start()

    def stop(self):
        super().stop()
        self.gone.set()


def test_stack_stopping_while_the_cli_waits_is_one_line(tmp_path, capsys, monkeypatch):
    clip = tmp_path / "memo.wav"
    clip.write_bytes(AUDIO)
    stack = VanishingStack()
    import requests

    original = requests.Session.get

    def get_after_the_stack_is_gone(self, *args, **kwargs):
        assert stack.gone.wait(30), "the stand-in stack did not stop"
        return original(self, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "get", get_after_the_stack_is_gone)
    code, out, err = run(capsys, "transcribe", str(clip), "--server", stack.url, "--token", "t")
    assert code == 1 and out == ""
    lines = err.splitlines()
    assert lines[0] == f"{clip}: uploaded as job j1"
    assert lines[1:] == [
        f"hark: cannot reach {stack.url}/jobs/j1: is the server running? (--server changes the address)"
    ]


class SilentStack(StubStack):
    """A stack that finishes the job at once with nothing said (no_speech), its transcript empty."""

    job_id = "j2"

    def get(self, path: str):
        if path == f"/jobs/{self.job_id}":
            links = {fmt: f"{self.url}/t.{fmt}" for fmt in ("txt", "json", "srt", "vtt")}
            return {"job_id": self.job_id, "status": "COMPLETED", "no_speech": True, "transcript": links}
        return None  # the empty transcript


def test_no_speech_is_said_on_stderr_and_the_empty_transcript_is_still_a_success(tmp_path, capsys):
    clip = tmp_path / "empty-room.wav"
    clip.write_bytes(AUDIO)
    stack = SilentStack()
    try:
        code, out, err = run(capsys, "transcribe", str(clip), "--server", stack.url, "--token", "t")
    finally:
        stack.stop()
    assert code == 0 and out == ""
    assert err.splitlines() == [f"{clip}: uploaded as job j2", f"{clip}: no speech detected (the transcript is empty)"]
