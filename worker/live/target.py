"""The task watches its own target in the load balancer's target group (issue 24; docs/scaling.md, "The live
service").

Stopping a task (scale-in, a deploy), ECS first deregisters it: the balancer lets its open connections run
for the deregistration delay, then breaks them, and only then does ECS send SIGTERM. A stream still open when
the delay ends would be cut without its last finals and without 1012, so the task does not wait for SIGTERM:
it asks the balancer how its own target is (DescribeTargetHealth) once before it serves, then every
POLL_SECONDS (`TargetWatch`, started by the app's lifespan: worker/live/app.py), and when the target drains it
ends its streams as SIGTERM does (LiveService.restart: no new stream; each open one gets its finals, then 1012).
Sync requests go on: the balancer lets them finish within the delay.

Its target is the task's own: the target type is IP, so the id is the task's IPv4 address (from the ECS task
metadata endpoint v4) and the port the one it serves on.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio.to_thread
from botocore.exceptions import BotoCoreError, ClientError

from hark.domain import aws

logger = logging.getLogger(__name__)

# How often the task asks. The balancer drains for 600 s (infra/hark_infra/live.py, DEREGISTRATION_SECONDS)
# and the streams need at most the stop timeout to end, so 5 s late costs nothing; one call per task every
# 5 s stays far below the Elastic Load Balancing API's per-account request rate for Describe calls.
POLL_SECONDS = 5.0
METADATA_TIMEOUT_SECONDS = 2  # the agent's endpoint is on the task's own host: it answers at once or not at all
# DescribeTargetHealth's states (Elastic Load Balancing API reference, TargetHealth): `draining` while the
# delay runs. A target that is not (or no longer) registered is `unused` with this reason (`unavailable` in
# moto's emulator for an id it never saw; docs/scaling.md, "The live service", says how moto differs).
DRAINING = "draining"
NOT_REGISTERED = "Target.NotRegistered"


@dataclass(frozen=True)
class Target:
    id: str  # the task's IPv4 address (target type IP)
    port: int


def own_target(metadata_uri: str, port: int) -> Target:
    """This task's target: the first IPv4 address of its awsvpc network interface, from the task metadata
    endpoint v4 (`{uri}/task`: every container of the task shares the interface), and `port`."""
    with urllib.request.urlopen(f"{metadata_uri}/task", timeout=METADATA_TIMEOUT_SECONDS) as response:
        task = json.load(response)
    for container in task.get("Containers", []):
        for network in container.get("Networks", []):
            if network.get("NetworkMode") == "awsvpc" and network.get("IPv4Addresses"):
                return Target(network["IPv4Addresses"][0], port)
    raise ValueError(f"the task metadata of {task.get('TaskARN', 'this task')} has no awsvpc IPv4 address")


def target_health(target_group_arn: str, target: Target) -> dict:
    """The target's TargetHealth ({"State", "Reason", "Description"}) in the group."""
    answer = aws.client("elbv2").describe_target_health(
        TargetGroupArn=target_group_arn, Targets=[{"Id": target.id, "Port": target.port}]
    )
    (description,) = answer["TargetHealthDescriptions"]
    return dict(description["TargetHealth"])


def registered(health: dict) -> bool:
    return health.get("Reason") != NOT_REGISTERED


def leaving(health: dict, was_registered: bool) -> bool:
    """The balancer is letting the target go: it drains, or it was registered and no longer is (the delay
    ended between two looks, or moto's emulator, which reports a deregistered target as not registered)."""
    return health.get("State") == DRAINING or (was_registered and not registered(health))


class TargetWatch:
    """Looks at the task's target until it is leaving, then awaits `on_leaving` (once)."""

    def __init__(
        self,
        target_group_arn: str,
        metadata_uri: str,
        port: int,
        on_leaving: Callable[[], Awaitable[None]],
        seconds: float = POLL_SECONDS,
    ):
        self.target_group_arn, self.metadata_uri, self.port = target_group_arn, metadata_uri, port
        self.on_leaving, self.seconds = on_leaving, seconds
        self.target: Target | None = None
        self.was_registered = False
        self.left = False

    async def look(self) -> None:
        """One look. A failed one (the metadata endpoint, AWS) is logged and tried again at the next: never
        fatal."""
        try:
            if self.target is None:
                self.target = await anyio.to_thread.run_sync(own_target, self.metadata_uri, self.port)
            health = await anyio.to_thread.run_sync(target_health, self.target_group_arn, self.target)
        except (BotoCoreError, ClientError, OSError, ValueError, LookupError) as err:
            logger.warning("could not look at this task's target (again in %s s): %r", self.seconds, err)
            return
        if leaving(health, self.was_registered):
            logger.info("target %s is %s: ending the open streams", self.target, health.get("State"))
            self.left = True
            await self.on_leaving()
        self.was_registered = self.was_registered or registered(health)

    async def watch(self) -> None:
        """A look every `seconds` until the target is leaving."""
        while not self.left:
            await anyio.sleep(self.seconds)
            await self.look()
