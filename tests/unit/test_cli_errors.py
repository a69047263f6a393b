"""The CLI against stand-in stacks on loopback: every failure is one line on stderr and a documented exit
code (hark.client.cli.EXIT_*), never a traceback; progress only on a terminal; several files as one JSON array
or JSON lines; --output-dir with --format all; --server without a scheme.

The stand-in answers with bodies built from the API's own schemas (hark.domain.api_schemas), so the typed
client parses them as it parses the real API's."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from hark.client import cli
from hark.domain import api_schemas
from hark.local.emulator import free_port

AUDIO = b"RIFF" + b"\0" * 64
REPO = Path(__file__).resolve().parents[2]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def clip(tmp_path: Path, name: str = "memo.wav") -> Path:
    path = tmp_path / name
    path.write_bytes(AUDIO)
    return path


def job_view(stack: StubStack, job_id: str, status: str, **fields) -> dict:
    """A JobView as the API answers it, every key present."""
    links = None
    if status == "COMPLETED":
        links = {fmt: f"{stack.url}/t/{job_id}.{fmt}" for fmt in cli.ALL_FORMATS}
    view = {
        "job_id": job_id,
        "status": status,
        "filename": "memo.wav",
        "content_type": "audio/wav",
        "size": len(AUDIO),
        "language": "auto",
        "detected_language": None,
        "duration_seconds": None,
        "no_speech": False,
        "created_at": "2026-11-23T10:00:00Z",
        "updated_at": "2026-11-23T10:00:00Z",
        "queued_at": None,
        "started_at": None,
        "finished_at": None,
        "error": None,
        "chunks": None,
        "transcript": links,
        **fields,
    }
    return api_schemas.JobView.model_validate(view).model_dump(mode="json", by_alias=True)


def error_body(code: str, message: str) -> dict:
    return api_schemas.ErrorResponse(error=api_schemas.ErrorDetail(code=code, message=message)).model_dump()


class StubStack:
    """A stand-in stack on loopback. POST /jobs creates a job (ids j1, j2, ... in order) with an upload
    form pointing back here; each GET /jobs/{id} answers the next of `states(job_id)` (the last one
    repeats); GET /jobs lists them; /jobs/{id}/transcript links /t/{id}.{fmt}, whose text is `transcript(job_id, fmt)`.
    Subclasses change what they need."""

    def __init__(self):
        outer = self
        self.created: list[str] = []
        self.polls: dict[str, int] = {}
        self.requests: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.requests.append(f"POST {self.path}")
                if self.path == "/jobs":
                    self.answer(*outer.create(json.loads(body)))
                else:
                    self.answer(*outer.upload())
                    outer.uploaded()

            def do_GET(self):
                outer.requests.append(f"GET {self.path}")
                self.answer(*outer.get(self.path))

            def answer(self, status: int, body, headers: dict | None = None):
                data = (body if isinstance(body, bytes) else json.dumps(body).encode()) if body is not None else b""
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def create(self, body: dict) -> tuple[int, dict]:
        job_id = f"j{len(self.created) + 1}"
        self.created.append(job_id)
        form = {"url": f"{self.url}/upload", "method": "POST", "fields": {}, "expires_at": "2026-11-23T10:15:00Z"}
        return 201, {"job": job_view(self, job_id, "UPLOADING", filename=body["filename"]), "upload": form}

    def upload(self) -> tuple[int, bytes | None]:
        return 204, None

    def uploaded(self) -> None:
        pass

    def states(self, job_id: str) -> list[dict]:
        return [job_view(self, job_id, "COMPLETED")]

    def transcript(self, job_id: str, fmt: str) -> str:
        if fmt == "json":
            return json.dumps({"text": f"words of {job_id}", "segments": []})
        return f"words of {job_id} as {fmt}\n"

    def get(self, path: str) -> tuple:
        route, _, query = path.partition("?")
        parts = route.strip("/").split("/")
        if parts == ["jobs"]:
            return 200, {"items": [job_view(self, j, "UPLOADING") for j in reversed(self.created)], "next_cursor": None}
        if parts[0] == "jobs" and len(parts) == 2:
            states = self.states(parts[1])
            n = self.polls[parts[1]] = self.polls.get(parts[1], 0) + 1
            return 200, states[min(n, len(states)) - 1]
        if parts[0] == "jobs" and len(parts) == 3:
            fmt = dict(p.split("=", 1) for p in query.split("&") if p).get("format", "txt")
            link = {"url": f"{self.url}/t/{parts[1]}.{fmt}", "format": fmt, "expires_at": "2026-11-23T10:15:00Z"}
            return 200, link
        if parts[0] == "t":
            job_id, fmt = parts[1].rsplit(".", 1)
            return 200, self.transcript(job_id, fmt).encode()
        return 404, error_body("route_not_found", "no such route")

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stack():
    s = StubStack()
    yield s
    s.stop()


# -- the server cannot be reached, or goes away ---------------------------------------------------
def test_server_down_is_one_line_and_exit_3(tmp_path, capsys):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    code, out, err = run(capsys, "transcribe", str(clip(tmp_path)), "--server", url, "--token", "t")
    assert code == cli.EXIT_UNREACHABLE and out == ""
    assert err.splitlines() == [f"hark: cannot reach {url}/jobs: is the server running? (--server changes the address)"]


class VanishingStack(StubStack):
    """Accepts the job and the upload, then stops: the CLI's next poll finds nothing listening."""

    def __init__(self):
        self.gone = threading.Event()
        super().__init__()

    def uploaded(self) -> None:
        threading.Thread(target=self.stop, daemon=True).start()

    def stop(self):
        super().stop()
        self.gone.set()


def test_stack_stopping_while_the_cli_waits_is_one_line(tmp_path, capsys, monkeypatch):
    memo = clip(tmp_path)
    stack = VanishingStack()
    import httpx

    original = httpx.Client.request

    def poll_after_the_stack_is_gone(self, method, url, *args, **kwargs):
        if method.upper() == "GET":
            assert stack.gone.wait(30), "the stand-in stack did not stop"
        return original(self, method, url, *args, **kwargs)

    monkeypatch.setattr(httpx.Client, "request", poll_after_the_stack_is_gone)
    code, out, err = run(capsys, "transcribe", str(memo), "--server", stack.url, "--token", "t")
    assert code == cli.EXIT_UNREACHABLE and out == ""
    assert err.splitlines() == [
        f"{memo}: uploaded as job j1",
        f"hark: cannot reach {stack.url}/jobs/j1: is the server running? (--server changes the address)",
    ]


# -- --server -------------------------------------------------------------------------------------
def test_server_without_a_scheme_is_http_on_this_machine(tmp_path, capsys, stack):
    memo = clip(tmp_path)
    code, out, err = run(capsys, "transcribe", str(memo), "--server", f"127.0.0.1:{stack.port}", "--token", "t")
    assert code == cli.EXIT_OK, err
    assert out == "words of j1 as txt\n"
    assert stack.requests[0] == "POST /jobs"


@pytest.mark.parametrize(
    ("given", "url"),
    [
        ("localhost:8000", "http://localhost:8000"),
        ("127.0.0.1:8000/", "http://127.0.0.1:8000"),
        ("[::1]:8000", "http://[::1]:8000"),
        ("api.example.com", "https://api.example.com"),  # anything not on this machine: https
        ("abc.execute-api.eu-west-1.amazonaws.com/prod", "https://abc.execute-api.eu-west-1.amazonaws.com/prod"),
        ("http://api.example.com", "http://api.example.com"),  # a scheme given is kept
    ],
)
def test_server_scheme_inference(given, url):
    assert cli.normalise_server(given) == url


@pytest.mark.parametrize("given", ["ftp://api.example.com", "http://", "127.0.0.1:port", "https://:8000"])
def test_a_server_that_is_not_an_http_url_is_exit_2_before_any_request(tmp_path, capsys, given):
    code, out, err = run(capsys, "transcribe", str(clip(tmp_path)), "--server", given, "--token", "t")
    assert code == cli.EXIT_USAGE and out == ""
    assert err.splitlines() == [
        f"hark: --server {given!r} is not an http(s) URL, e.g. https://api.example.com or 127.0.0.1:8000"
    ]


# -- what the API refuses -------------------------------------------------------------------------
class RefusingStack(StubStack):
    """Refuses the token (401, API Gateway's body) or one file (415, the API's body)."""

    def __init__(self, status: int, code: str, message: str, only: str | None = None):
        self.refusal, self.only = (status, error_body(code, message)), only
        super().__init__()

    def create(self, body: dict):
        if self.only is None or body["filename"] == self.only:
            return self.refusal
        return super().create(body)


def test_a_refused_token_is_one_line_and_exit_4(tmp_path, capsys):
    message = (
        "Your session token or API key is missing, expired, revoked or not valid: sign in again, or use a valid key."
    )
    stack = RefusingStack(401, "unauthorized", message)
    try:
        code, out, err = run(capsys, "transcribe", str(clip(tmp_path)), "--server", stack.url, "--token", "t")
    finally:
        stack.stop()
    assert code == cli.EXIT_AUTH and out == ""
    assert err.splitlines() == [f"hark: {stack.url} refused the token: {message} (HTTP 401)"]


def test_an_api_key_and_a_token_together_are_exit_2_before_any_request(tmp_path, capsys, stack):
    argv = ("--server", stack.url, "--api-key", "hark_sk_x", "--token", "t")
    code, out, err = run(capsys, "transcribe", str(clip(tmp_path)), *argv)
    assert code == cli.EXIT_USAGE and out == "" and stack.requests == []
    assert err.splitlines() == ["hark: pass --api-key or --token, not both"]


def test_a_refused_file_is_its_line_and_exit_1_and_the_others_are_still_done(tmp_path, capsys):
    message = "The file's extension .txt is not audio we accept."
    stack = RefusingStack(415, "unsupported_extension", message, only="notes.txt")
    notes, memo = clip(tmp_path, "notes.txt"), clip(tmp_path, "memo.wav")
    try:
        code, out, err = run(capsys, "transcribe", str(notes), str(memo), "--server", stack.url, "--token", "t")
    finally:
        stack.stop()
    assert code == cli.EXIT_FAILED
    assert err.splitlines() == [f"{notes}: {message}", f"{memo}: uploaded as job j1"]
    assert out == f"==> {memo} <==\nwords of j1 as txt\n"


def test_a_missing_file_is_its_line_and_exit_1(tmp_path, capsys, stack):
    code, out, err = run(capsys, "transcribe", str(tmp_path / "nope.wav"), "--server", stack.url, "--token", "t")
    assert code == cli.EXIT_FAILED and out == ""
    assert err.splitlines() == [f"{tmp_path / 'nope.wav'}: no such file"]
    assert stack.requests == []


class FailingStack(StubStack):
    def states(self, job_id):
        return [job_view(self, job_id, "FAILED", error="The file is not an audio file we can decode.")]


def test_a_failed_job_is_its_line_and_exit_1(tmp_path, capsys):
    memo, stack = clip(tmp_path), FailingStack()
    try:
        code, out, err = run(capsys, "transcribe", str(memo), "--server", stack.url, "--token", "t")
    finally:
        stack.stop()
    assert code == cli.EXIT_FAILED and out == ""
    assert err.splitlines() == [
        f"{memo}: uploaded as job j1",
        f"{memo}: transcription failed: The file is not an audio file we can decode.",
    ]


class SilentStack(StubStack):
    """A stack that finishes the job at once with nothing said (no_speech), its transcript empty."""

    def states(self, job_id):
        return [job_view(self, job_id, "COMPLETED", no_speech=True)]

    def transcript(self, job_id, fmt):
        return ""


def test_no_speech_is_said_on_stderr_and_the_empty_transcript_is_still_a_success(tmp_path, capsys):
    memo, stack = clip(tmp_path, "empty-room.wav"), SilentStack()
    try:
        code, out, err = run(capsys, "transcribe", str(memo), "--server", stack.url, "--token", "t")
    finally:
        stack.stop()
    assert code == cli.EXIT_OK and out == ""
    assert err.splitlines() == [f"{memo}: uploaded as job j1", f"{memo}: no speech detected (the transcript is empty)"]


def test_an_unexpected_error_is_one_line_and_exit_70(tmp_path, capsys, stack, monkeypatch):
    from hark.client import Hark

    def broken(self, *args, **kwargs):
        raise RuntimeError("something nobody foresaw")

    monkeypatch.setattr(Hark, "submit", broken)
    code, out, err = run(capsys, "transcribe", str(clip(tmp_path)), "--server", stack.url, "--token", "t")
    assert code == cli.EXIT_BUG and out == ""
    assert err.splitlines() == [
        "hark: unexpected error: RuntimeError: something nobody foresaw (a bug in hark: please report this line)"
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "all"], "--format all writes one file per format: add --output-dir DIR"),
        (["--jsonl", "--format", "txt"], "--jsonl prints JSON transcripts on stdout: use it with --format json"),
        (["--chars-per-line", "20"], "--chars-per-line and --lines-per-cue shape captions: add --format srt"),
        (["--language", "xx"], "--language: Unknown language 'xx': use auto, "),
    ],
)
def test_options_that_do_not_go_together_are_exit_2_and_nothing_is_sent(tmp_path, capsys, stack, args, message):
    code, out, err = run(capsys, "transcribe", str(clip(tmp_path)), *args, "--server", stack.url, "--token", "t")
    assert code == cli.EXIT_USAGE and out == ""
    assert len(err.splitlines()) == 1 and err.startswith(f"hark: {message}")
    assert stack.requests == []


def test_an_unknown_option_is_one_line_and_exit_2(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["transcribe", "memo.wav", "--bogus"])
    assert exited.value.code == cli.EXIT_USAGE
    assert capsys.readouterr().err.splitlines() == ["hark: unrecognized arguments: --bogus (see hark --help)"]


def test_the_exit_codes_are_in_the_help(capsys):
    with pytest.raises(SystemExit):
        cli.main(["transcribe", "--help"])
    out = capsys.readouterr().out
    for code in (cli.EXIT_OK, cli.EXIT_FAILED, cli.EXIT_USAGE, cli.EXIT_UNREACHABLE, cli.EXIT_AUTH, cli.EXIT_BUG):
        assert f"\n  {code} " in out


# -- several files, formats, --output-dir ---------------------------------------------------------
def test_several_files_in_json_are_one_json_array_on_stdout(tmp_path, capsys, stack):
    a, b = clip(tmp_path, "a.wav"), clip(tmp_path, "b.wav")
    code, out, _ = run(capsys, "transcribe", str(a), str(b), "--format", "json", "--server", stack.url, "--token", "t")
    assert code == cli.EXIT_OK
    assert json.loads(out) == [
        {"file": str(a), "text": "words of j1", "segments": []},
        {"file": str(b), "text": "words of j2", "segments": []},
    ]


def test_jsonl_is_one_json_document_a_line(tmp_path, capsys, stack):
    a, b = clip(tmp_path, "a.wav"), clip(tmp_path, "b.wav")
    code, out, _ = run(capsys, "transcribe", str(a), str(b), "--jsonl", "--server", stack.url, "--token", "t")
    assert code == cli.EXIT_OK
    assert [json.loads(line) for line in out.splitlines()] == [
        {"file": str(a), "text": "words of j1", "segments": []},
        {"file": str(b), "text": "words of j2", "segments": []},
    ]


def test_output_dir_with_format_all_writes_a_file_per_recording_and_format(tmp_path, capsys, stack):
    a, b = clip(tmp_path, "a.wav"), clip(tmp_path, "b.mp3")
    out_dir = tmp_path / "out" / "new"  # made as needed
    code, out, _ = run(
        capsys,
        "transcribe",
        str(a),
        str(b),
        "--format",
        "all",
        "--output-dir",
        str(out_dir),
        "--server",
        stack.url,
        "--token",
        "t",
    )
    assert code == cli.EXIT_OK
    written = [out_dir / f"{stem}.{fmt}" for stem in ("a", "b") for fmt in cli.ALL_FORMATS]
    assert out.splitlines() == [str(p) for p in written]  # stdout lists what was written
    assert sorted(out_dir.iterdir()) == sorted(written)
    assert (out_dir / "b.srt").read_text() == "words of j2 as srt\n"
    assert json.loads((out_dir / "a.json").read_text()) == {"text": "words of j1", "segments": []}


def test_output_dir_refuses_two_recordings_with_one_name(tmp_path, capsys, stack):
    (tmp_path / "x").mkdir()
    a, b = clip(tmp_path, "memo.wav"), clip(tmp_path / "x", "memo.mp3")
    code, _, err = run(
        capsys, "transcribe", str(a), str(b), "--output-dir", str(tmp_path / "out"), "--server", stack.url
    )
    assert code == cli.EXIT_USAGE
    assert err.splitlines() == ["hark: --output-dir: several files would be written as memo.<ext>: rename one"]


# -- progress while waiting: on a terminal only -----------------------------------------------------
class ChunkedStack(StubStack):
    """QUEUED, then PROCESSING with chunks 1 of 2 and 2 of 2, then COMPLETED."""

    def states(self, job_id):
        return [
            job_view(self, job_id, "QUEUED"),
            job_view(self, job_id, "PROCESSING", chunks={"done": 1, "total": 2}),
            job_view(self, job_id, "PROCESSING", chunks={"done": 2, "total": 2}),
            job_view(self, job_id, "COMPLETED", chunks={"done": 2, "total": 2}),
        ]


def hark_cli(*args: str, stderr) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARK_")}
    return subprocess.Popen(
        [sys.executable, "-m", "hark.client.cli", *args], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=stderr
    )


def on_a_terminal(stack: StubStack, memo: Path) -> tuple[int | None, bytes, str]:
    """`hark transcribe memo` with stderr on a pseudo-terminal: (exit code, stdout, what the terminal showed)."""
    primary, secondary = pty.openpty()
    try:
        proc = hark_cli("transcribe", str(memo), "--server", stack.url, "--token", "t", stderr=secondary)
        os.close(secondary)
        seen = b""
        while True:  # read the terminal until the CLI closes it (it exits)
            ready, _, _ = select.select([primary], [], [], 60)
            assert ready, f"the CLI went silent: {seen!r}"
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # EIO: every writer closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        out, _ = proc.communicate(timeout=60)
    finally:
        os.close(primary)
        stack.stop()
    return proc.returncode, out, seen.decode().replace("\r\n", "\n")


def test_progress_is_shown_on_a_terminal(tmp_path):
    memo = clip(tmp_path)
    code, out, shown = on_a_terminal(ChunkedStack(), memo)
    assert code == cli.EXIT_OK, shown
    assert out == b"words of j1 as txt\n"
    lines = shown.split("\n")
    assert lines[0] == f"{memo}: uploaded as job j1"
    states = [state.strip() for state in lines[1].split("\r") if state.strip()]
    assert [s.rsplit(",", 1)[0] for s in states] == [
        f"{memo}: QUEUED",
        f"{memo}: PROCESSING, chunk 1 of 2",
        f"{memo}: PROCESSING, chunk 2 of 2",
        f"{memo}: COMPLETED, chunk 2 of 2",
    ]
    assert all(s.endswith(" elapsed") and ":" in s.rsplit(",", 1)[1] for s in states)
    assert lines[2:] == [""]  # the last state stays on its line; nothing else


def test_a_failure_after_progress_is_on_its_own_line(tmp_path):
    memo = clip(tmp_path)
    code, out, shown = on_a_terminal(FailingStack(), memo)
    assert code == cli.EXIT_FAILED and out == b""
    lines = shown.split("\n")
    assert lines[1].strip().startswith(f"{memo}: FAILED, 0:0")
    assert lines[2:] == [f"{memo}: transcription failed: The file is not an audio file we can decode.", ""]


class ThrottlingStack(StubStack):
    """API Gateway throttling the second poll (429 with Retry-After), then the job completes."""

    def get(self, path):
        if path == "/jobs/j1" and self.polls.get("j1") == 1:
            self.polls["j1"] = 2
            return 429, error_body("request_refused", "Too Many Requests"), {"Retry-After": "0"}
        return super().get(path)

    def states(self, job_id):
        return [job_view(self, job_id, "QUEUED"), job_view(self, job_id, "QUEUED"), job_view(self, job_id, "COMPLETED")]


def test_a_throttled_poll_waits_and_polls_again(tmp_path, capsys):
    memo, stack = clip(tmp_path), ThrottlingStack()
    try:
        code, out, err = run(capsys, "transcribe", str(memo), "--server", stack.url, "--token", "t")
    finally:
        stack.stop()
    assert code == cli.EXIT_OK, err
    assert out == "words of j1 as txt\n"
    assert stack.requests.count("GET /jobs/j1") == 3  # polled, throttled, polled to COMPLETED


def test_no_progress_when_stderr_is_not_a_terminal(tmp_path):
    memo, stack = clip(tmp_path), ChunkedStack()
    try:
        proc = hark_cli("transcribe", str(memo), "--server", stack.url, "--token", "t", stderr=subprocess.PIPE)
        out, err = proc.communicate(timeout=120)
    finally:
        stack.stop()
    assert proc.returncode == cli.EXIT_OK
    assert out == b"words of j1 as txt\n"
    assert err.decode().splitlines() == [f"{memo}: uploaded as job j1"]  # and no progress
    assert stack.polls["j1"] == 4  # it did wait through every state


def ops_command(env: dict[str, str], *argv: str) -> tuple[int, str]:
    """`hark dlq ...` in a process of its own, with only `env` (no AWS credentials unless given)."""
    base = {"PATH": os.environ["PATH"], "HOME": env.pop("HOME"), "AWS_EC2_METADATA_DISABLED": "true"}
    answer = subprocess.run(
        [sys.executable, "-m", "hark.client.cli", *argv], env={**base, **env}, capture_output=True, text=True, cwd=REPO
    )
    return answer.returncode, answer.stderr


def test_an_operator_command_without_aws_credentials_says_what_to_set_and_exits_4(tmp_path):
    none = str(tmp_path / "none")
    env = {
        "HOME": str(tmp_path),
        "AWS_SHARED_CREDENTIALS_FILE": none,
        "AWS_CONFIG_FILE": none,
        "HARK_REGION": "eu-west-1",
    }
    code, err = ops_command(env, "dlq", "list", "transcribe")
    assert code == cli.EXIT_AUTH, err
    [line] = err.splitlines()
    assert line.startswith("hark: no AWS credentials: set AWS_PROFILE") and "HARK_AWS_ENDPOINT_URL" in line


def test_an_operator_command_refused_by_aws_or_unreachable_is_one_line(tmp_path, emulator):
    from hark.local.emulator import LOCAL_CREDENTIALS

    local = {"HOME": str(tmp_path), **LOCAL_CREDENTIALS, "AWS_MAX_ATTEMPTS": "1"}
    # A stack name with no queues behind it: SQS's own refusal, named.
    env = {**local, "HARK_AWS_ENDPOINT_URL": emulator.endpoint, "HARK_STACK": "no-such-stack"}
    code, err = ops_command(env, "dlq", "list", "notify")
    assert code == cli.EXIT_FAILED, err
    [line] = err.splitlines()
    assert line.startswith("hark: AWS refused GetQueueUrl: AWS.SimpleQueueService.NonExistentQueue: "), line
    # Nothing listening at the endpoint.
    endpoint = f"http://127.0.0.1:{free_port()}"
    code, err = ops_command({**local, "HARK_AWS_ENDPOINT_URL": endpoint}, "dlq", "list", "notify")
    assert code == cli.EXIT_UNREACHABLE, err
    [line] = err.splitlines()
    assert line.startswith(f"hark: cannot reach {endpoint}") and "is the stack running?" in line, line
