"""The locust scenarios run briefly against the real local stack and come back clean.

locust runs as a subprocess: importing it here would monkey-patch the standard library (gevent)
under every other test in the session.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
LOCUSTFILE = REPO / "loadtests" / "locustfile.py"
QUOTA_NAME = "POST /jobs (429 quota)"
COMPLETED_NAME = "upload -> COMPLETED"


def locust_command() -> list[str]:
    script = Path(sys.executable).parent / "locust"
    return [str(script)] if script.exists() else [sys.executable, "-m", "locust"]


def run_locust(
    url: str,
    user_class: str,
    users: int,
    run_time: str,
    out: Path,
    stop_timeout: int = 0,
    extra_env: dict | None = None,
) -> dict[str, dict]:
    """Run one scenario headless; the rows of its _stats.csv by request name."""
    prefix = out / user_class
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HARK_", "AWS_"))}
    env.update(extra_env or {})
    cmd = [
        *locust_command(),
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "-u",
        str(users),
        "-r",
        str(users),
        "--run-time",
        run_time,
        "--stop-timeout",
        str(stop_timeout),
        "--host",
        url,
        "--csv",
        str(prefix),
        "--only-summary",
        "--loglevel",
        "WARNING",
        user_class,
    ]
    try:
        # a guard against a locust that never stops (a user that survives its kill), not a time limit
        done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"locust did not stop after its --run-time {run_time}:\n{err.stdout!r}\n{err.stderr!r}")
    stats = prefix.with_name(prefix.name + "_stats.csv")
    assert stats.exists(), (
        f"locust wrote no stats (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    with open(stats, newline="") as f:
        rows = {row["Name"]: row for row in csv.DictReader(f)}
    failures = prefix.with_name(prefix.name + "_failures.csv").read_text()
    report = f"exit {done.returncode}\nfailures:\n{failures}\nstderr tail:\n{done.stderr[-3000:]}"
    bad = {
        name: row["Failure Count"] for name, row in rows.items() if name != "Aggregated" and int(row["Failure Count"])
    }
    assert not bad, f"failed requests {bad}\n{report}"
    assert done.returncode == 0, report
    return rows


def count(rows: dict[str, dict], name: str) -> int:
    return int(rows[name]["Request Count"]) if name in rows else 0


def summary(rows: dict[str, dict], name: str) -> str:
    r = rows[name]
    return (
        f"{name}: {r['Request Count']} requests, {float(r['Requests/s']):.1f}/s, "
        f"median {r['Median Response Time']} ms, p95 {r['95%']} ms"
    )


def test_api_only_scenario(live_stack, tmp_path):
    rows = run_locust(live_stack.url, "ApiUser", users=3, run_time="10s", out=tmp_path)
    assert count(rows, "POST /dev/token") == 3
    assert count(rows, "POST /jobs") > 0
    assert count(rows, "GET /jobs/{id}") > 0
    assert count(rows, "GET /jobs?limit=20") > 0
    assert int(rows["Aggregated"]["Failure Count"]) == 0
    print(
        "\n"
        + "\n".join(summary(rows, n) for n in ("POST /jobs", "GET /jobs/{id}", "GET /jobs?limit=20"))
        + f"\n429s counted apart: {count(rows, QUOTA_NAME)}"
    )


def test_upload_scenario_reaches_completed(live_stack, tmp_path):
    # Two users, each one job at a time: the single CPU worker keeps up with short clips. The stop
    # timeout lets a job in flight when the run time ends finish (bounded).
    rows = run_locust(
        live_stack.url,
        "TranscribeUser",
        users=2,
        run_time="15s",
        out=tmp_path,
        stop_timeout=60,
        extra_env={"HARK_LOAD_JOB_TIMEOUT": "90", "HARK_LOAD_POLL_INTERVAL": "0.5"},
    )
    assert count(rows, "POST /jobs") > 0
    assert count(rows, "S3 presigned POST") > 0
    assert count(rows, COMPLETED_NAME) >= 1, rows.keys()
    assert int(rows[COMPLETED_NAME]["Failure Count"]) == 0
    assert int(rows["Aggregated"]["Failure Count"]) == 0
    print("\n" + summary(rows, COMPLETED_NAME) + f"\n429s counted apart: {count(rows, QUOTA_NAME)}")
