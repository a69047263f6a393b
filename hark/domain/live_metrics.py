"""The live service's load metrics (issue 24): one definition for the service that emits them
(worker/live/load.py) and the scaling policy that reads them (infra/hark_infra/live.py).

Every REPORT_SECONDS each live task writes one EMF line in the workers' namespace with two dimension sets:
{service} (all tasks together: Average is the mean per task, the scaling policy's input; Sum over a period
of REPORT_SECONDS is the total) and {service, task} (one task, for the dashboard and for finding a hot task).
"""

from __future__ import annotations

from hark.domain.accuracy import NAMESPACE

__all__ = ["NAMESPACE"]

SERVICE = "live"  # the `service` dimension's value (and the service's Powertools service name)
SERVICE_DIMENSION = "service"
TASK_DIMENSION = "task"  # the task's host name: in the awsvpc network mode, its own network interface's
REPORT_SECONDS = 60  # one data point per task per minute: the period the scaling policy reads
ACTIVE_STREAMS = "LiveActiveStreams"  # WebSocket streams open on the task
REQUESTS_IN_FLIGHT = "LiveRequestsInFlight"  # OpenAI-compatible requests being answered (or waiting a slot)
