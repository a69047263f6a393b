"""hark.scaling: the policy the CDK app deploys and the simulator replays."""

from __future__ import annotations

import pytest

from hark.scaling import DEFAULT_POLICY as P
from hark.scaling import ScalingPolicy


def test_defaults_match_the_issue():
    assert (P.scale_out_backlog, P.scale_in_backlog, P.step_percent, P.min_step_workers) == (500, 200, 20, 10)
    assert P.min_workers == 0 and P.max_workers >= 1


@pytest.mark.parametrize(("current", "step"), [(0, 10), (1, 10), (49, 10), (50, 10), (55, 11), (100, 20)])
def test_step_is_max_of_20_percent_and_10_workers(current, step):
    assert P.step(current) == step


def test_scale_out_above_threshold_and_capped():
    assert P.decide(tasks=2, visible=2 * 500 + 1) == 12
    assert P.decide(tasks=2, visible=2 * 500) == 2  # not above: dead band
    assert P.decide(tasks=P.max_workers, visible=10**6) == P.max_workers


def test_wake_from_zero_and_stay_at_zero_when_idle():
    assert P.decide(tasks=0, visible=1) == P.wake_workers
    assert P.decide(tasks=0, visible=0, inflight=0) == 0


def test_small_fleet_keeps_its_workers_while_work_remains():
    assert P.decide(tasks=3, visible=10, inflight=3) == 3  # below 200 per worker, but work remains
    assert P.decide(tasks=1, visible=0, inflight=1) == 1  # a job in flight is not killed
    assert P.decide(tasks=3, visible=0, inflight=0) == 0  # idle: down to zero


def test_large_fleet_scales_in_and_never_to_zero_with_work_left():
    assert P.decide(tasks=20, visible=100) == 10
    for tasks in range(P.min_step_workers + 1, 60):
        assert P.decide(tasks=tasks, visible=1) >= 1


def test_expressions_use_the_thresholds():
    assert "200" in P.scale_in_expression and f"tasks > {P.min_step_workers}" in P.scale_in_expression
    assert P.wake_expression == "IF(FILL(tasks, 0) == 0 AND visible > 0, 1, 0)"


def test_invalid_policies_are_rejected():
    with pytest.raises(ValueError):
        ScalingPolicy(scale_out_backlog=100, scale_in_backlog=100)
    with pytest.raises(ValueError):
        ScalingPolicy(min_workers=5, max_workers=2)
