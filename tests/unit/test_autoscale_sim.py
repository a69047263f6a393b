"""The autoscaling simulator replays hark.ops.scaling's policy: hand-worked timelines and costs, the traffic
shapes it is fed, AWS's step arithmetic on every action it takes, and the issue's targets measured on
the mission and spike days."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from hark.ops.scaling import DEFAULT_POLICY, Datapoints, ScalingPolicy
from loadtests.autoscale_sim import (
    INSTANCE_PRICES,
    MAX_AUDIO_S,
    MIN_AUDIO_S,
    PEAK_TO_MEAN,
    POLL_INTERVAL_S,
    REPO,
    SCENARIOS,
    TARGETS,
    TRANSCRIBE_USD_PER_MINUTE,
    UPLOAD_S,
    FleetModel,
    Instance,
    Result,
    Upload,
    as_dict,
    audio_lengths,
    burst,
    control_plane,
    deployed_context,
    deployed_policy,
    diurnal_weights,
    idle_night,
    main,
    mission_day,
    mixed_on_demand_hours,
    percentile,
    render,
    simulate,
    steady_day,
)

MODEL = FleetModel()
POLICY = deployed_policy()
SMALL_FLEET = dataclasses.replace(POLICY, max_workers=7)


def aas_step(current: int, percent: float, minimum: int) -> int:
    """Application Auto Scaling's PercentChangeInCapacity as AWS documents it: above 1 in magnitude the
    change rounds toward zero, between 0 and 1 it becomes 1 (or -1); then MinAdjustmentMagnitude.
    Written from the documentation, not from ScalingPolicy.step, which it checks."""
    change = current * percent / 100
    if change == 0:
        return 0
    magnitude = int(abs(change)) if abs(change) >= 1 else 1
    return int(math.copysign(max(magnitude, minimum), change))


def band(policy: ScalingPolicy, rule: str, d: Datapoints) -> int:
    """The step adjustment AWS picks for a breach, from the policy's bands (written out again here)."""
    if rule == "out":
        per_message = d.audio_seconds / d.done if d.done else policy.assumed_audio_per_message_seconds
        speed = d.audio_seconds / d.model_seconds if d.done else policy.assumed_speed
        ratio = d.visible * per_message / (d.desired * speed) / policy.target_wait_seconds
        return [p for r, p in policy.scale_out_steps if ratio >= r][-1]
    work = (d.inflight + d.visible) / d.desired
    return -[p for b, p in policy.scale_in_steps if work <= b][-1]


# -- hand-worked timelines ---------------------------------------------------------------------------
def test_one_upload_on_an_idle_fleet_hand_worked():
    """A 60 s recording at t=630. Alarms evaluate every 60 s: at 660 one message is visible and no worker
    desired -> wake, 0 -> 1. The instance starts 300 s later (960); the worker takes 3 s + 60/40 s = 4.5 s:
    transcript at 964.5, 334.5 s after the upload. From 1020 the worker is idle (work per worker 0 < 0.9):
    the fifth idle period in a row, 1260, scales in 1 -> 0. The instance lingers 900 s: billed 660..2160."""
    r = simulate([Upload(630, 60)], POLICY, MODEL, "one")
    assert [(a.at, a.rule, a.before, a.after) for a in r.actions] == [(660, "wake", 0, 1), (1260, "in", 1, 0)]
    assert r.queue_waits == [pytest.approx(330)]
    assert r.turnarounds == [pytest.approx(334.5)]
    assert r.busy_hours == pytest.approx(4.5 / 3600)
    assert r.worker_hours == pytest.approx(300 / 3600)
    assert r.instance_hours == pytest.approx(1500 / 3600)
    on_demand, _ = INSTANCE_PRICES["g4dn.xlarge"]
    assert r.cost_on_demand == pytest.approx(1500 / 3600 * on_demand)
    # One instance is the deployed mix's on-demand base: the mix pays on-demand for it.
    assert r.cost_deployed_mix == pytest.approx(r.cost_on_demand)
    assert r.transcribe_cost == pytest.approx(TRANSCRIBE_USD_PER_MINUTE)  # one minute of audio


def test_a_long_recording_is_split_and_its_chunks_transcribed_hand_worked():
    """1,200 s at t=30: wake at 60, worker at 360. The split message takes 3 s + 1200/300 s = 7 s and
    queues round(1200/300) = 4 chunks of 300 s; the one worker transcribes them in turn, 3 + 300/40 =
    10.5 s each: transcript at 367 + 42 = 409, turnaround 379 s."""
    r = simulate([Upload(30, 1200)], POLICY, MODEL, "long")
    assert r.turnarounds == [pytest.approx(379)]
    assert len(r.queue_waits) == 5  # the split message and four chunks
    assert r.busy_hours == pytest.approx((7 + 4 * 10.5) / 3600)


def test_deployed_mix_hand_worked():
    """Base 1 on-demand, 25 % of the rest (rounded toward on-demand): 5 instances -> 1 + ceil(1) = 2
    on-demand; 2 -> 1 + ceil(0.25) = 2; 9 -> 1 + 2 = 3."""
    m = dataclasses.replace(MODEL, on_demand_base=1, on_demand_percent_above_base=25)
    assert [m.on_demand_count(n) for n in (0, 1, 2, 5, 9)] == [0, 1, 2, 2, 3]
    # Five instances for an hour, then one of them for another hour: 2 h + 1 h on-demand.
    instances = [Instance(0, 3600) for _ in range(4)] + [Instance(0, 7200)]
    assert mixed_on_demand_hours(instances, m) == pytest.approx(3)


def test_the_simulated_mix_is_the_deployed_one():
    context = deployed_context()
    assert MODEL.on_demand_base == context["hark:onDemandBaseWorkers"]
    assert MODEL.on_demand_percent_above_base == context["hark:onDemandPercentAboveBase"]
    assert POLICY.max_workers == context["hark:maxWorkers"]


# -- traffic ------------------------------------------------------------------------------------------
def test_recordings_average_ten_minutes_with_a_tail_to_four_hours():
    import random

    lengths = audio_lengths(random.Random(7), 200_000)
    assert sum(lengths) / len(lengths) == pytest.approx(600, rel=0.02)
    assert min(lengths) >= MIN_AUDIO_S and max(lengths) <= MAX_AUDIO_S == 4 * 3600
    # Log-normal, sigma 1: P(longer than the mean x e^(1.5)) = P(Z > 2) = 2.3 %.
    tail = sum(1 for a in lengths if a > 600 * math.exp(1.5)) / len(lengths)
    assert tail == pytest.approx(0.0228, abs=0.002)
    assert Upload(0, 600).bytes == pytest.approx(20e6)  # ~20 MB for 10 minutes


def test_the_day_peaks_at_the_stated_ratio():
    w = diurnal_weights()
    hours = [sum(w[h * 60 : h * 60 + 60]) for h in range(24)]
    assert max(hours) / (sum(hours) / 24) == pytest.approx(PEAK_TO_MEAN, rel=1e-6)
    assert 12 <= hours.index(max(hours)) <= 15  # early afternoon
    day = mission_day()
    assert len(day) == 100_000 and all(0 <= u.at < 86400 for u in day)
    counts = [0] * 24
    for u in day:
        counts[int(u.at // 3600)] += 1
    assert max(counts) / (len(day) / 24) == pytest.approx(PEAK_TO_MEAN, rel=0.03)


# -- replaying the policy -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def runs() -> list[Result]:
    return [
        simulate(burst(), POLICY, MODEL, "burst"),
        simulate(steady_day(), POLICY, MODEL, "steady", 1),
        simulate(idle_night(), POLICY, MODEL, "night"),
        simulate(burst(n=2000), SMALL_FLEET, MODEL, "small fleet burst"),
        simulate(burst(n=2000), POLICY, dataclasses.replace(MODEL, real_time_factor=20), "burst at 20x"),
    ]


def test_drains_and_returns_to_zero(runs):
    for r in runs:
        assert r.unfinished == 0 and len(r.turnarounds) == r.jobs, r.scenario
        last = r.samples[-1]
        assert (last.visible, last.inflight, last.desired, last.running) == (0, 0, 0, 0), r.scenario
        assert r.actions[-1].after == 0, r.scenario
        assert r.idle_again_at is not None and r.idle_again_at >= max(r.turnarounds), r.scenario


def test_never_exceeds_the_maximum(runs):
    for r in runs:
        cap = r.policy.max_workers
        assert all(a.after <= cap for a in r.actions), r.scenario
        assert all(s.running <= cap and s.desired <= cap for s in r.samples), r.scenario
    small = runs[3]
    assert small.max_desired == small.max_running == 7


def test_every_step_is_the_one_aws_would_take(runs):
    for r in runs:
        p = r.policy
        for a in r.actions:
            d = a.data
            assert d.desired == a.before
            if a.rule == "wake":
                assert d.desired == 0 and d.visible > 0 and a.after == max(a.before, p.wake_workers)
                continue
            minimum = p.min_step_workers if a.rule == "out" else 1
            expected = a.before + aas_step(a.before, band(p, a.rule, d), minimum)
            assert a.after == max(p.min_workers, min(p.max_workers, expected)), (r.scenario, a)
            if a.rule == "in":  # never fewer workers than messages in hand or waiting
                assert a.after >= d.inflight + d.visible or a.after == d.desired - 1 >= d.inflight


def test_steps_are_not_taken_twice_while_instances_start(runs):
    """The expected wait divides by the desired count: workers still starting count, so the same
    backlog does not trigger a second step while the first one's instances boot."""
    r = runs[0]
    outs = [a for a in r.actions if a.rule == "out"]
    assert outs
    for a, b in zip(outs, outs[1:]):
        # A later step saw the larger fleet the earlier one asked for.
        assert b.data.desired >= a.after


def test_cooldowns_and_evaluation_periods(runs):
    for r in runs:
        p = r.policy
        for rule, cooldown in (("out", p.scale_out_cooldown_seconds), ("in", p.scale_in_cooldown_seconds)):
            times = [a.at for a in r.actions if a.rule == rule]
            assert all(b - a >= cooldown for a, b in zip(times, times[1:])), (r.scenario, rule)
        for a in r.actions:
            if a.rule == "in":
                window = [
                    s for s in r.samples if a.at - p.period_seconds * p.scale_in_evaluation_periods < s.at <= a.at
                ]
                assert len(window) == p.scale_in_evaluation_periods
                assert all((s.inflight + s.visible) / s.desired < p.scale_in_work_per_worker for s in window)


def test_cost_accounting(runs):
    on_demand, spot = INSTANCE_PRICES[MODEL.instance_type]
    for r in runs:
        assert r.instance_hours >= r.worker_hours >= r.busy_hours > 0, r.scenario
        assert r.cost_on_demand == pytest.approx(r.instance_hours * on_demand)
        assert r.cost_spot == pytest.approx(r.instance_hours * spot)
        assert r.cost_spot <= r.cost_deployed_mix <= r.cost_on_demand
        assert r.transcribe_cost >= r.audio_hours * 60 * TRANSCRIBE_USD_PER_MINUTE - 1e-9


def test_nothing_to_do_costs_nothing():
    r = simulate([], POLICY, MODEL, "empty")
    assert r.actions == [] and r.instance_hours == 0 and r.cost_deployed_mix == 0 and r.jobs == 0


def test_deterministic():
    a = simulate(steady_day(), POLICY, MODEL, "a")
    b = simulate(steady_day(), POLICY, MODEL, "b")
    assert a.actions == b.actions and a.queue_waits == b.queue_waits and a.instance_hours == b.instance_hours


def test_percentile_is_nearest_rank():
    assert percentile([], 50) == 0
    assert percentile([3, 1, 2], 50) == 2
    assert percentile(list(range(1, 101)), 95) == 95


# -- the targets, measured on the deployed policy --------------------------------------------
@pytest.fixture(scope="module")
def mission() -> Result:
    s = SCENARIOS["mission"]
    return simulate(s.make(), POLICY, MODEL, s.name, s.days)


@pytest.fixture(scope="module")
def spike() -> Result:
    s = SCENARIOS["spike"]
    return simulate(s.make(), POLICY, MODEL, s.name, s.days)


def test_mission_day_meets_its_targets(mission):
    assert mission.jobs == 100_000 and mission.unfinished == 0 and mission.handed_back == 0
    assert mission.audio_hours == pytest.approx(100_000 * 10 / 60, rel=0.02)  # ~16,700 audio hours
    assert mission.turnaround(95) <= TARGETS["mission p95 upload-to-transcript (s)"]
    assert mission.idle_ratio <= TARGETS["idle worker-hours / busy worker-hours"]
    # Held near the target: the 95th percentile of queue waits is within a minute of it.
    assert mission.wait(95) <= POLICY.target_wait_seconds + 60


def test_spike_day_meets_its_target_below_the_cap(spike):
    assert spike.unfinished == 0 and spike.handed_back == 0
    assert spike.turnaround(95) <= TARGETS["spike p95 upload-to-transcript (s)"]
    assert spike.idle_ratio <= TARGETS["idle worker-hours / busy worker-hours"]
    assert spike.max_desired < POLICY.max_workers  # max_workers is headroom on the spike day, not a limit


def test_the_docs_tables_come_from_this_run(mission, spike):
    """docs/loadtests.md and docs/scaling.md carry the script's rows for the mission and spike days
    verbatim: regenerate them with `--markdown` after changing the policy or the model."""
    docs = [(REPO / "docs" / name).read_text() for name in ("loadtests.md", "scaling.md")]
    for r in (mission, spike):
        row = render([as_dict(r)], markdown=True).splitlines()[2]
        for text in docs:
            assert row in text, row


def test_control_plane_paper_calculation_hand_worked():
    """2 uploads/s, p95 turnaround 284 s: each tab polls for 16 s of upload + 284 s = 300 s, so 600 tabs;
    polling every 2 s (frontend/app.js) that is 300 requests/s, plus 2 creates: 302; at 0.1 s each,
    31 concurrent Lambda invocations."""
    needs = control_plane({"peak_uploads_per_s": 2.0, "p95_turnaround_s": 284.0, "jobs": 1000})
    assert POLL_INTERVAL_S == 2.0 and pytest.approx(16) == UPLOAD_S
    assert needs["tabs polling (uploads/s x (upload + p95 turnaround))"] == 600
    assert needs["API requests/s (polls every POLL_MS + creates)"] == 302
    assert needs["Lambda concurrency (requests/s x seconds per request)"] == 31


def test_the_api_throttle_covers_the_spike_days_peak(spike):
    from hark.api.http_api import HTTP_API

    needs = control_plane(as_dict(spike))
    requests = needs["API requests/s (polls every POLL_MS + creates)"]
    assert requests <= HTTP_API.throttle.rate_limit == deployed_context()["hark:apiRateLimit"]
    assert HTTP_API.throttle.burst_limit == deployed_context()["hark:apiBurstLimit"]


# -- the command line -----------------------------------------------------------------------------------
def test_json_has_one_object_per_run(capsys):
    assert main(["--json", "--scenario", "night", "--set", "start_delay_s=120"]) == 0
    rows = json.loads(capsys.readouterr().out)
    (row,) = rows
    for key in (
        "scenario",
        "jobs",
        "audio_hours",
        "p95_turnaround_s",
        "max_workers",
        "cost_usd_on_demand",
        "cost_usd_spot",
        "cost_usd_deployed_mix",
    ):
        assert key in row, key
    assert row["scenario"] == SCENARIOS["night"].name and row["jobs"] == len(idle_night())


def test_markdown_sweeps_the_speed_for_the_mission_scenarios(capsys, monkeypatch):
    # A tiny stand-in for the spike day keeps this fast; the sweep and the targets table are the point.
    monkeypatch.setitem(
        SCENARIOS, "spike", dataclasses.replace(SCENARIOS["spike"], make=lambda: steady_day(n=300, seed=9))
    )
    assert main(["--markdown", "--scenario", "spike", "--speeds", "20,40,60"]) == 0
    out = capsys.readouterr().out
    assert out.count("| spike day") == 3
    assert "| 20x |" in out and "| 40x |" in out and "| 60x |" in out
    assert "| spike p95 upload-to-transcript (s) | 1,800 |" in out


def test_bad_overrides_are_refused(capsys):
    with pytest.raises(SystemExit):
        main(["--set", "no_such_field=1"])
    assert "unknown field" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--set", "instance_type=p5.48xlarge", "--scenario", "night"])
    assert "instance_type must be one of" in capsys.readouterr().err


def test_the_price_table_covers_the_pool():
    from hark.ops.scaling import GPU_INSTANCE_VCPUS

    assert set(INSTANCE_PRICES) == set(GPU_INSTANCE_VCPUS)
    assert all(0 < spot < on_demand for on_demand, spot in INSTANCE_PRICES.values())


def test_default_policy_is_the_deployed_one_but_the_cap():
    assert dataclasses.replace(DEFAULT_POLICY, max_workers=POLICY.max_workers) == POLICY
