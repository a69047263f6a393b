"""When the live task takes its target for leaving (worker/live/target.py), over the target states Elastic Load
Balancing documents (API reference, TargetHealth: State and Reason). moto's emulator reports only some of them
(a deregistered target is `unused` at once, never `draining`): tests/e2e/test_live_stream.py drives that one."""

from __future__ import annotations

import pytest

from worker.live.target import leaving


@pytest.mark.parametrize(
    ("health", "was_registered", "leaves"),
    [
        ({"State": "initial", "Reason": "Elb.RegistrationInProgress"}, False, False),
        ({"State": "healthy"}, True, False),
        ({"State": "unhealthy", "Reason": "Target.FailedHealthChecks"}, True, False),
        ({"State": "unused", "Reason": "Target.NotRegistered"}, False, False),  # the task starting, not yet in
        ({"State": "unavailable", "Reason": "Target.NotRegistered"}, False, False),  # moto's, for an id it never saw
        ({"State": "draining", "Reason": "Target.DeregistrationInProgress"}, True, True),  # AWS during the delay
        ({"State": "draining", "Reason": "Target.DeregistrationInProgress"}, False, True),  # the first look drains
        ({"State": "unused", "Reason": "Target.NotRegistered"}, True, True),  # out between two looks (moto: at once)
    ],
)
def test_the_task_leaves_when_its_target_drains_or_is_no_longer_registered(health, was_registered, leaves):
    assert leaving(health, was_registered) is leaves
