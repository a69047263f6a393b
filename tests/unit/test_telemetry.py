"""A worker's metrics and its log lines share stdout (worker/runtime.py, Telemetry): each EMF document must
reach it whole, on its own line, whatever the other messages' threads log meanwhile."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import threading

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from worker.runtime import Telemetry


class Stdout(io.StringIO):
    """stdout that notes, at each write, whether another thread could write a log record at that moment:
    a record is written only by a thread holding its handler's lock (logging.Handler.handle)."""

    def __init__(self):
        super().__init__()
        self.handler = logging.StreamHandler(self)
        self.writes: list[tuple[str, bool]] = []

    def write(self, text: str) -> int:
        self.writes.append((text, self._free_to_another_thread()))
        return super().write(text)

    def _free_to_another_thread(self) -> bool:
        lock = self.handler.lock
        assert lock is not None
        got: list[bool] = []

        def try_lock() -> None:
            got.append(lock.acquire(blocking=False))
            if got[0]:
                lock.release()

        thread = threading.Thread(target=try_lock)
        thread.start()
        thread.join()
        return got[0]


def test_an_emf_document_and_its_newline_are_written_with_log_records_held_off():
    stdout = Stdout()
    logger = Logger(service="telemetry-test", logger_handler=stdout.handler)
    telemetry = Telemetry(logger, Metrics(namespace="HarkTest", service="telemetry-test"))

    with contextlib.redirect_stdout(stdout):  # where powertools prints the EMF document
        logger.info("before")
        telemetry.metric("JobsCompleted", 1, MetricUnit.Count)
        telemetry.flush()

    texts = [text for text, _ in stdout.writes]
    at = next(i for i, text in enumerate(texts) if text.startswith('{"_aws"'))
    assert texts[at + 1] == "\n"  # print's second write
    assert stdout.writes[at][1] is stdout.writes[at + 1][1] is False, "a log record could land inside the EMF line"
    assert stdout.writes[0][1] is False  # the check can see the lock held: a record's own write holds it
    lines = [json.loads(line) for line in stdout.getvalue().splitlines()]
    assert lines[0]["message"] == "before"
    assert lines[1]["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [{"Name": "JobsCompleted", "Unit": "Count"}]
