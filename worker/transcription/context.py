"""What every step of the transcription pipeline works with: clients, the job store, queue URLs, the
engine, settings, and the worker's logger and metrics (one service name for both)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from hark.domain import aws
from hark.domain.jobs import JobStore
from hark.domain.resources import Resources
from hark.domain.settings import Settings
from worker.runtime import Telemetry

from .engine import Engine

SERVICE = "transcription-worker"
logger = Logger(service=SERVICE)
metrics = Metrics(namespace="Hark", service=SERVICE)


@dataclass
class Context:
    settings: Settings
    engine: Engine
    res: Resources
    store: JobStore
    telemetry: Telemetry
    s3: Any  # boto3 clients: typed by botocore at run time
    sqs: Any
    transcribe_url: str
    notify_url: str
    webhook_url: str  # the webhook queue (worker/webhooks)

    @classmethod
    def create(cls, settings: Settings, engine: Engine) -> Context:
        res = aws.stack_resources()
        return cls(
            settings=settings,
            engine=engine,
            res=res,
            store=aws.job_store(),
            telemetry=Telemetry(logger, metrics),
            s3=aws.client("s3"),
            sqs=aws.client("sqs"),
            transcribe_url=aws.queue_url(res.transcribe_queue.name),
            notify_url=aws.queue_url(res.notify_queue.name),
            webhook_url=aws.queue_url(res.webhook_queue.name),
        )

    @property
    def last_attempt(self) -> int:
        """The receive after which a failure is final: the queue's redrive count, or sooner if fewer retry
        delays are configured."""
        return min(self.res.transcribe_queue.max_receive_count, len(self.settings.retry_delays_seconds) + 1)

    def metric(self, name: str, value: float, unit: MetricUnit = MetricUnit.Count) -> None:
        self.telemetry.metric(name, value, unit)

    def record_speed(self, audio_seconds: float, model_seconds: float, wall_seconds: float) -> None:
        """One transcription (a whole job or a chunk): its audio, its share of the model's time, what that
        cost, and how long it took from download to transcript. Sums of AudioSeconds over ProcessingSeconds
        are the speed the scaling policy reads (hark/ops/scaling.py): model time, not wall time, since the
        messages in flight overlap."""
        self.metric("AudioSeconds", audio_seconds, MetricUnit.Seconds)
        self.metric("ProcessingSeconds", model_seconds, MetricUnit.Seconds)
        self.metric("CostUsd", self.cost_usd(model_seconds), MetricUnit.NoUnit)
        self.metric("WallSeconds", wall_seconds, MetricUnit.Seconds)
        if audio_seconds > 0:
            self.metric("RealTimeFactor", model_seconds / audio_seconds, MetricUnit.NoUnit)

    def cost_usd(self, model_seconds: float) -> float:
        return round(model_seconds * self.settings.usd_per_model_second, 8)


def seconds_since(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        then = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0.0, time.time() - then.timestamp())
