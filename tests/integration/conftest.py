"""Fixtures of the integration tests: workers as child processes against the emulator."""

from __future__ import annotations

import os

import pytest

from tests.workers import WorkerProcess


@pytest.fixture
def workers(tmp_path, model_dir):
    """start(**env) -> a started WorkerProcess; all are stopped at the end of the test."""
    started: list[WorkerProcess] = []

    def start(name: str = "worker", ready: bool = True, **env) -> WorkerProcess:
        environment = {
            **os.environ,
            "HARK_MODEL_DIR": str(model_dir),
            "HARK_MODEL_NAME": model_dir.name,  # what its transcripts and metrics name
            "HARK_POLL_WAIT_SECONDS": "1",
            "HARK_CPU_THREADS": "2",
            "PYTHONUNBUFFERED": "1",
            **{k: str(v) for k, v in env.items()},
        }
        worker = WorkerProcess("worker.transcription", tmp_path / f"{name}-{len(started)}.log", environment)
        started.append(worker)
        if ready:
            worker.wait_for("worker ready", timeout=90)
        return worker

    yield start
    for worker in started:
        worker.stop()
