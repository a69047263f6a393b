"""`hark smoke` against the live local stack, in a subprocess, as an operator runs it against AWS."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hark.client import smoke
from hark.local.emulator import free_port

pytestmark = pytest.mark.e2e


def hark(*args: str, env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hark.client.cli", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_smoke_passes_every_check_on_the_local_stack(live_stack):
    token = live_stack.token("smoke-e2e@example.com")
    run = hark("smoke", "--server", live_stack.url, "--token", token, env=live_stack.env())
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    lines = run.stdout.splitlines()
    # One line per check, in order, each passed; then the summary.
    checks = [line.split()[1] for line in lines[:-1]]
    assert checks == list(smoke.CHECKS)
    assert all(line.startswith("ok  ") for line in lines[:-1]), run.stdout
    assert lines[-1] == f"smoke: {len(smoke.CHECKS)} of {len(smoke.CHECKS)} checks passed"
    status = lines[checks.index("status")]
    assert "-> COMPLETED in" in status and "(language en," in status  # the bundled clip is English


def test_smoke_fails_a_transcript_that_does_not_match_the_reference(live_stack, tmp_path):
    """The txt check compares with the reference: a wrong reference is a failed check and exit 1."""
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("completely different words that nobody said in this recording at all")
    recording, _ = smoke.bundled_recording()
    run = hark(
        "smoke",
        "--server",
        live_stack.url,
        "--token",
        live_stack.token("smoke-e2e@example.com"),
        "--file",
        str(recording),
        "--reference",
        str(wrong),
        env=live_stack.env(),
    )
    assert run.returncode == 1, run.stdout
    failed = [line.split()[1] for line in run.stdout.splitlines() if line.startswith("FAIL")]
    assert failed == ["txt"]
    assert run.stdout.splitlines()[-1].endswith("failed: txt")
    # The job was still deleted.
    assert any(line.startswith("ok    delete") for line in run.stdout.splitlines())


def test_a_wrong_token_is_one_clear_line_and_exit_1(live_stack):
    run = hark("smoke", "--server", live_stack.url, "--token", "not-a-token", env=live_stack.env(), timeout=60)
    assert run.returncode == 1
    assert run.stdout == ""
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    assert run.stderr.startswith(f"hark smoke: {live_stack.url} refused the token (HTTP 401)")


def test_a_server_that_is_down_is_one_clear_line_and_exit_1(live_stack):
    down = f"http://127.0.0.1:{free_port()}"
    run = hark("smoke", "--server", down, "--token", "anything", env=live_stack.env(), timeout=60)
    assert run.returncode == 1
    assert run.stderr == f"hark smoke: cannot reach {down}: check --server (the ApiUrl output, or `make up`)\n"


def test_a_missing_file_is_one_clear_line_and_exit_1(live_stack, tmp_path):
    run = hark(
        "smoke",
        "--server",
        live_stack.url,
        "--token",
        "anything",
        "--file",
        str(tmp_path / "nope.flac"),
        env=live_stack.env(),
        timeout=60,
    )
    assert run.returncode == 1
    assert run.stderr == f"hark smoke: {tmp_path / 'nope.flac'}: no such file\n"
