"""The live service reports its load (worker/live/load.py) as the EMF lines the scaling policy's metric is
made of (hark.domain.live_metrics): the streams open on a real WebSocket to the app and the requests in flight,
counted while they are open. No model: a stream that sends no audio and a request held at its credential
check never decode."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping

import pytest
from starlette.testclient import TestClient

from hark.api.auth import Identity
from hark.domain import live_metrics
from hark.domain.api_keys import KEY_PREFIX
from hark.domain.settings import Settings
from worker.live.app import create_app

EVERY = 0.01  # report period (s): the service's own loop, only faster
ALICE = Identity("user_alice", "a@example.com")
TOKEN, HELD = f"{KEY_PREFIX}alice", f"{KEY_PREFIX}held"  # shaped as API keys, checked by `authenticate` below


class Reports:
    """The EMF lines on stdout, read as they come."""

    def __init__(self, capsys: pytest.CaptureFixture[str]):
        self.capsys = capsys

    def next_with(self, streams: int, requests: int) -> dict:
        """Waits for a report of exactly these counts (the positive signal a change took effect)."""
        while True:
            for line in self.capsys.readouterr().out.splitlines():
                emf = json.loads(line) if line.startswith('{"_aws"') else None
                counts = emf and (emf[live_metrics.ACTIVE_STREAMS], emf[live_metrics.REQUESTS_IN_FLIGHT])
                if counts == ([streams], [requests]):  # EMF values are lists (of one value a report)
                    return emf
            time.sleep(EVERY)


def test_the_streams_open_and_the_requests_in_flight_are_reported_per_task_and_for_the_service(capsys):
    held = threading.Event()  # a request whose credential check waits for it stays in flight

    def authenticate(headers: Mapping[str, str]) -> Identity:
        if headers["authorization"] == f"Bearer {HELD}":
            held.wait()
        return ALICE

    reports = Reports(capsys)
    app = create_app(Settings(), authenticate=authenticate, report_seconds=EVERY)
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(app) as client:
        idle = reports.next_with(streams=0, requests=0)  # zeros too: an idle task pulls the average down
        (definition,) = idle["_aws"]["CloudWatchMetrics"]
        assert definition["Namespace"] == live_metrics.NAMESPACE
        service, task = live_metrics.SERVICE_DIMENSION, live_metrics.TASK_DIMENSION
        assert definition["Dimensions"] == [[service], [service, task]]
        assert idle[service] == live_metrics.SERVICE and idle[task]
        assert {m["Name"] for m in definition["Metrics"]} == {
            live_metrics.ACTIVE_STREAMS,
            live_metrics.REQUESTS_IN_FLIGHT,
        }

        with (
            client.websocket_connect("/v1/live?sample_rate=16000", headers=bearer) as first,
            client.websocket_connect("/v1/live?sample_rate=16000", headers=bearer),
        ):
            reports.next_with(streams=2, requests=0)
            first.send_text('{"type": "stop"}')
            assert first.receive_json() == {"type": "done", "text": ""}
            reports.next_with(streams=1, requests=0)
            request = threading.Thread(
                target=client.post,
                args=("/v1/audio/transcriptions",),
                kwargs={"headers": {"Authorization": f"Bearer {HELD}"}},
            )
            request.start()
            reports.next_with(streams=1, requests=1)
            held.set()
            request.join()
            reports.next_with(streams=1, requests=0)
        reports.next_with(streams=0, requests=0)  # the client went away: its stream is no longer counted
