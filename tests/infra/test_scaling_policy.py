"""hark.ops.scaling: the policy the CDK app deploys and the simulator replays, checked against hand-worked
cases and Application Auto Scaling's documented step arithmetic."""

from __future__ import annotations

import dataclasses

import pytest

from hark.ops.scaling import DEFAULT_POLICY as P
from hark.ops.scaling import Datapoints, ScalingPolicy, vcpu_quota

# A policy with round numbers for the hand-worked cases (the deployed one may be retuned).
H = ScalingPolicy(
    target_wait_seconds=240,
    scale_out_steps=((1.0, 10), (1.5, 25), (2.0, 50), (3.0, 100), (5.0, 200)),
    scale_in_work_per_worker=0.9,
    scale_in_steps=((0.9, 5), (0.75, 10), (0.5, 25), (0.25, 50)),
    min_step_workers=2,
    max_workers=240,
    assumed_speed=40,
    assumed_audio_per_message_seconds=300,
)


def test_expected_wait_is_audio_queued_over_workers_times_measured_speed():
    # 10 messages reported: 3,000 audio s in 75 model s -> 300 s a message at 40x; 120 visible, 10 workers:
    # 120 x 300 audio s / (10 x 40) = 90 s.
    d = Datapoints(visible=120, inflight=10, desired=10, audio_seconds=3000, model_seconds=75, done=10)
    assert H.expected_wait(d) == pytest.approx(90)
    # The same queue measured at 20x (150 model s) waits twice as long.
    assert H.expected_wait(dataclasses.replace(d, model_seconds=150)) == pytest.approx(180)
    # No report this period (the fleet is waking): the assumed 300 s a message at 40x stand in.
    assert H.expected_wait(Datapoints(visible=64, inflight=0, desired=2)) == pytest.approx(64 * 300 / (2 * 40))
    assert H.expected_wait(Datapoints(visible=5, inflight=0, desired=0)) == 0  # the wake rule's case


def test_scale_out_only_above_the_target():
    at_target = Datapoints(visible=64, inflight=2, desired=2)  # 64 x 300 / 80 = 240 s: not above
    assert H.breached(at_target) is None and H.decide(at_target) == 2
    above = Datapoints(visible=65, inflight=2, desired=2)  # 243.75 s: the first band, 10 % of 2 = 0.2
    # AAS rounds 0.2 up to 1, then MinAdjustmentMagnitude (2) applies: 2 -> 4.
    assert H.breached(above) == "out" and H.decide(above) == 4


@pytest.mark.parametrize(
    ("ratio", "after"),
    [
        (1.2, 110),  # [1, 1.5) x target: +10 % of 100
        (1.5, 125),  # a band's lower bound is inclusive above the threshold
        (2.5, 150),
        (4.0, 200),
        (6.0, 240),  # +200 % = 300, capped at max_workers
    ],
)
def test_scale_out_bands_grow_with_the_breach(ratio, after):
    # 100 workers, 40x, 300 s a message: wait = visible x 300 / 4000 = visible x 0.075 s.
    visible = round(ratio * 240 / 0.075)
    d = Datapoints(visible=visible, inflight=100, desired=100, audio_seconds=30000, model_seconds=750, done=100)
    assert H.expected_wait(d) == pytest.approx(ratio * 240)
    assert H.decide(d) == after


def test_percent_steps_round_as_application_auto_scaling_documents():
    # AWS's examples: 12.7 -> 12, 0.67 -> 1, -0.58 -> -1, -6.67 -> -6 ...
    assert H.step(127, 10) == 12
    assert H.step(67, 1) == 1
    assert H.step(58, -1) == -1
    assert H.step(667, -1) == -6
    # ... and MinAdjustmentMagnitude: 25 % of 4 tasks is 1, with a minimum of 2 the service gains 2.
    assert H.step(4, 25, 2) == 2


@pytest.mark.parametrize(
    ("desired", "inflight", "visible", "after"),
    [
        (20, 17, 0, 19),  # 0.85 a worker: the (0.75, 0.9] band, -5 % of 20 = -1
        (20, 15, 0, 18),  # 0.75: the (0.5, 0.75] band (upper bound inclusive below the threshold), -10 %
        (20, 10, 0, 15),  # 0.5: -25 %
        (20, 2, 0, 10),  # 0.1: -50 %
        (20, 18, 0, 20),  # 0.9 is not below the threshold: no action
        (20, 10, 8, 20),  # messages waiting count as work: 0.9
        (3, 2, 0, 2),  # 0.67: -10 % of 3 = -0.3, rounded to -1
        (1, 0, 0, 0),  # an idle worker: -50 % of 1 rounds to -1, to zero
        (1, 1, 0, 1),  # a worker with a message is kept
        (1, 0, 1, 1),  # ... and so is one with a message waiting
    ],
)
def test_scale_in_on_work_per_worker(desired, inflight, visible, after):
    assert H.decide(Datapoints(visible=visible, inflight=inflight, desired=desired)) == after


def test_scale_in_never_leaves_fewer_workers_than_messages_in_hand_or_waiting():
    for policy in (H, P):
        for desired in range(1, 250):
            for work in range(0, desired + 1):
                d = Datapoints(visible=0, inflight=work, desired=desired)
                if policy.breached(d) == "in":
                    assert policy.adjust("in", desired, d) >= work, (desired, work)


def test_wake_from_zero_and_stay_at_zero_when_idle():
    assert H.decide(Datapoints(visible=1, inflight=0, desired=0)) == H.wake_workers
    assert H.decide(Datapoints(visible=0, inflight=0, desired=0)) == 0


def test_expressions_carry_the_policy():
    assert "FILL(audio, 300)" in H.expected_wait_expression and "FILL(audio, 40)" in H.expected_wait_expression
    assert H.wake_expression == "IF(FILL(desired, 0) == 0 AND visible > 0, 1, 0)"
    assert "inflight" in H.work_per_worker_expression and "visible" in H.work_per_worker_expression


def test_g_instance_quota_covers_every_worker_on_the_largest_type():
    # The pool's largest is g4dn.2xlarge: 8 vCPUs (AWS's instance type specifications).
    assert vcpu_quota(10) == 80
    assert vcpu_quota(P.max_workers) == P.max_workers * 8


def test_invalid_policies_are_rejected():
    with pytest.raises(ValueError, match="strands work"):
        ScalingPolicy(scale_in_steps=((0.9, 20), (0.5, 25)))  # -20 % at 90 % busy would stop busy workers
    with pytest.raises(ValueError, match="scale_in_steps must start"):
        ScalingPolicy(scale_in_work_per_worker=0.8)
    with pytest.raises(ValueError, match="scale_out_steps"):
        ScalingPolicy(scale_out_steps=((1.5, 10),))
    with pytest.raises(ValueError, match="target_wait_seconds"):
        ScalingPolicy(target_wait_seconds=0)
    with pytest.raises(ValueError):
        ScalingPolicy(min_workers=5, max_workers=2)
