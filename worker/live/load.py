"""The live service's load as CloudWatch metrics (hark.domain.live_metrics, issue 24): what the scaling
policy reads (infra/hark_infra/live.py). A WebSocket stream is one long request to the balancer, so its
request count does not say how busy a task is; this does: the streams open and the sync requests in flight,
every REPORT_SECONDS, zeros included (a task with nothing open pulls the average per task down).

EMF on stdout, which the task's log driver sends to CloudWatch Logs, which makes the metrics: no API call and
no permission. Powertools' EMF provider of our own, not its `Metrics`, whose metric set all instances in a
process share (`hark up` runs the API's handler in the same process)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sized

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

from hark.domain import live_metrics
from worker.live.service import Live


def report(streams: int, requests: int, task: str) -> None:
    """One EMF line: both counts under {service} (all tasks) and {service, task} (this one)."""
    emf = AmazonCloudWatchEMFProvider(namespace=live_metrics.NAMESPACE, service=live_metrics.SERVICE)
    emf.add_dimensions(**{live_metrics.SERVICE_DIMENSION: live_metrics.SERVICE, live_metrics.TASK_DIMENSION: task})
    emf.add_metric(name=live_metrics.ACTIVE_STREAMS, unit=MetricUnit.Count, value=streams)
    emf.add_metric(name=live_metrics.REQUESTS_IN_FLIGHT, unit=MetricUnit.Count, value=requests)
    emf.flush_metrics()


async def report_every(seconds: float, streams: Sized, live: Live) -> None:
    """`report` of len(streams) and live.in_flight now, then every `seconds`, until cancelled."""
    task = socket.gethostname()  # in the awsvpc network mode, the task's own network interface's name
    while True:
        report(len(streams), live.in_flight, task)
        await asyncio.sleep(seconds)
