"""The autoscaling simulator replays hark.scaling's policy: it scales up under a burst, drains, goes
back to zero when idle, never passes the maximum, and every step it takes is one the policy allows."""

from __future__ import annotations

import dataclasses

import pytest

from hark.scaling import DEFAULT_POLICY, ScalingPolicy
from loadtests.autoscale_sim import (
    SCENARIOS,
    TRANSCRIBE_USD_PER_MINUTE,
    FleetModel,
    Result,
    Upload,
    burst,
    idle_night,
    main,
    percentile,
    simulate,
    steady_day,
)

SMALL_FLEET = dataclasses.replace(DEFAULT_POLICY, max_workers=7)


def aas_step(policy: ScalingPolicy, fleet: int) -> int:
    """Application Auto Scaling's PercentChangeInCapacity step as AWS documents it: the percentage of
    the current capacity rounded toward zero, then raised to MinAdjustmentMagnitude. Written from the
    documentation, not from ScalingPolicy.step, which it checks."""
    return max(int(fleet * policy.step_percent / 100), policy.min_step_workers)


@pytest.fixture(scope="module")
def burst_run() -> Result:
    return simulate(burst(), DEFAULT_POLICY, name="burst")


@pytest.fixture(scope="module")
def runs(burst_run) -> list[Result]:
    return [
        burst_run,
        simulate(steady_day(), DEFAULT_POLICY, name="steady"),
        simulate(idle_night(), DEFAULT_POLICY, name="night"),
        simulate(burst(n=2000), SMALL_FLEET, name="small fleet burst"),
        simulate(
            burst(n=2000),
            dataclasses.replace(DEFAULT_POLICY, scale_out_backlog=30, scale_in_backlog=3),
            name="low thresholds",
        ),
    ]


def test_scales_up_under_a_burst(burst_run):
    outs = [a for a in burst_run.actions if a.rule == "out"]
    assert burst_run.actions[0].rule == "wake" and burst_run.actions[0].after == DEFAULT_POLICY.wake_workers
    assert outs, "a burst of 5,000 uploads must add workers"
    assert burst_run.max_desired == DEFAULT_POLICY.max_workers
    assert burst_run.max_running == DEFAULT_POLICY.max_workers
    assert burst_run.max_backlog >= 5000  # everything arrives before the first instance is up


def test_drains_the_backlog(runs):
    for r in runs:
        assert r.unfinished == 0, r.scenario
        assert len(r.turnarounds) == r.jobs, r.scenario
        assert r.samples[-1].visible == 0 and r.samples[-1].inflight == 0, r.scenario


def test_returns_to_zero_when_idle(runs):
    for r in runs:
        last = r.samples[-1]
        assert last.desired == 0 and last.running == 0, r.scenario
        assert r.actions[-1].after == 0, r.scenario
        assert r.idle_again_at is not None and r.idle_again_at >= max(r.turnarounds), r.scenario


def test_wakes_from_zero_for_each_lonely_upload():
    r = simulate([Upload(600, 60), Upload(4 * 3600, 60)], DEFAULT_POLICY, name="two")
    assert [a.rule for a in r.actions] == ["wake", "in", "wake", "in"]
    model = FleetModel()
    # Each waits for a cold start (instance gone after the linger) plus up to one alarm period.
    for wait in r.queue_waits:
        assert model.start_delay_s <= wait <= model.start_delay_s + 2 * DEFAULT_POLICY.period_seconds


def test_never_exceeds_the_maximum(runs):
    for r in runs:
        cap = r.policy.max_workers
        assert all(a.after <= cap for a in r.actions), r.scenario
        assert all(s.running <= cap and s.desired <= cap for s in r.samples), r.scenario
    small = runs[3]
    assert small.max_desired == small.max_running == 7


def test_steps_follow_the_policy(runs):
    for r in runs:
        p = r.policy
        for a in r.actions:
            assert p.min_workers <= a.after <= p.max_workers
            if a.rule == "wake":
                assert a.running == 0 and a.visible > 0
                assert a.after == max(a.before, p.wake_workers)
            elif a.rule == "out":
                assert a.visible / a.running > p.scale_out_backlog
                assert a.after == min(p.max_workers, a.before + aas_step(p, a.before))
            else:
                assert a.rule == "in"
                assert a.visible / a.running < p.scale_in_backlog
                # A small fleet scales in only once nothing is left: it never strands work.
                assert a.running > p.min_step_workers or a.visible + a.inflight == 0
                assert a.after == max(p.min_workers, a.before - aas_step(p, a.before))


def test_step_sizes_are_max_of_percent_and_minimum():
    p = DEFAULT_POLICY
    assert p.step(1) == aas_step(p, 1) == p.min_step_workers
    assert p.step(100) == aas_step(p, 100)
    assert p.step(77) == aas_step(p, 77)
    big = dataclasses.replace(p, max_workers=200)
    r = simulate(burst(n=20000, window_s=300), big, dataclasses.replace(FleetModel(), start_delay_s=60), "big")
    sizes = [a.after - a.before for a in r.actions if a.rule == "out"]
    assert any(s > p.min_step_workers for s in sizes), sizes  # past 50 workers the 20% step dominates
    for a in r.actions:
        if a.rule == "out":
            assert a.after - a.before == min(big.max_workers - a.before, aas_step(p, a.before))


def test_cooldowns_and_evaluation_periods(runs):
    for r in runs:
        p = r.policy
        for rule, cooldown in (("out", p.scale_out_cooldown_seconds), ("in", p.scale_in_cooldown_seconds)):
            times = [a.at for a in r.actions if a.rule == rule]
            assert all(b - a >= cooldown for a, b in zip(times, times[1:])), (r.scenario, rule)
        # Scale-in needs scale_in_evaluation_periods low samples in a row before it.
        for a in r.actions:
            if a.rule == "in":
                before = [
                    s for s in r.samples if a.at - p.period_seconds * p.scale_in_evaluation_periods < s.at <= a.at
                ]
                assert len(before) == p.scale_in_evaluation_periods


def test_cost_accounting(runs):
    for r in runs:
        assert r.instance_hours >= r.worker_hours > 0, r.scenario
        assert r.cost_spot < r.cost_on_demand
        assert r.transcribe_cost >= r.audio_hours * 60 * TRANSCRIBE_USD_PER_MINUTE - 1e-9
    # A large burst keeps the fleet busy: far cheaper per audio hour than Transcribe's $1.44.
    burst_run = runs[0]
    assert burst_run.cost_on_demand / burst_run.audio_hours < 0.1 * TRANSCRIBE_USD_PER_MINUTE * 60


def test_nothing_to_do_costs_nothing():
    r = simulate([], DEFAULT_POLICY, name="empty")
    assert r.actions == [] and r.instance_hours == 0 and r.cost_on_demand == 0 and r.jobs == 0


def test_deterministic():
    first = [simulate(make(), DEFAULT_POLICY, name=name) for name, make in SCENARIOS.items()]
    second = [simulate(make(), DEFAULT_POLICY, name=name) for name, make in SCENARIOS.items()]
    for a, b in zip(first, second):
        assert a.actions == b.actions and a.queue_waits == b.queue_waits and a.instance_hours == b.instance_hours


def test_percentile_is_nearest_rank():
    assert percentile([], 50) == 0
    assert percentile([3, 1, 2], 50) == 2
    assert percentile(list(range(1, 101)), 95) == 95


def test_cli_prints_the_table(capsys):
    assert main(["--scenario", "night", "--markdown", "--set", "start_delay_s=120"]) == 0
    out = capsys.readouterr().out
    assert "| idle night" in out and "Transcribe $/audio h" in out and "start_delay_s=120" in out


def test_policy_is_the_deployed_one():
    # The simulator reads the same frozen dataclass as the CDK app; a bad policy is refused there.
    with pytest.raises(ValueError):
        ScalingPolicy(scale_out_backlog=10, scale_in_backlog=10)
