"""The GPU workers' scaling policy: one definition, read by the CDK app and the autoscaling simulator.

The workers scale on **time, not message counts**: the *expected wait* of a message queued now,

    expected wait = audio seconds queued / (workers x measured speed)

where audio seconds queued = visible messages x the mean audio seconds per message transcribed in the
last period (chunking bounds a message to `chunk_threshold_seconds` of audio, so the mean is a fair
per-message estimate), the speed is the audio seconds per model second the workers measured in the
same period (their `AudioSeconds` and `ProcessingSeconds` EMF metrics), and workers is the ECS
service's *desired* count: workers still starting count, so a step is not taken twice while its
instances boot. Three rules, each a CloudWatch alarm on a metric-math expression driving an
Application Auto Scaling step policy on the desired count:

- scale out: expected wait above `target_wait_seconds` -> add a percentage of the fleet that grows with
  the breach (`scale_out_steps`: the wait as a multiple of the target -> percent), at least
  `min_step_workers`;
- scale in: *work per worker* ((messages in flight + visible) / desired) below `scale_in_work_per_worker`
  -> remove a percentage that grows as the fleet idles (`scale_in_steps`). Each band removes at most
  the idle share, so a step never leaves fewer workers than messages in hand (see `adjust`), and an
  idle fleet goes to zero;
- wake: no desired worker and visible messages -> add `wake_workers` (scale from zero).

The expressions use the metric ids below; `adjust()` and `decide()` replay the same rules in Python so
the simulator and the tests agree with the alarms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Metric ids of the expressions (hark_infra.workers.scaling_metrics builds the metrics).
VISIBLE, INFLIGHT, TASKS, DESIRED = "visible", "inflight", "tasks", "desired"
AUDIO, MODEL, DONE = "audio", "model", "done"  # Sum(AudioSeconds), Sum(ProcessingSeconds), SampleCount(AudioSeconds)
COST = "cost"  # Sum(CostUsd): the jobs' own cost, their model seconds at the configured price (issue 13.5)

# The GPU pool (every type has one GPU and takes one worker task), with its vCPUs: the G-instance vCPU
# quotas count these. Cheapest on-demand first: on-demand capacity takes them in this order.
GPU_INSTANCE_VCPUS = {"g4dn.xlarge": 4, "g4dn.2xlarge": 8, "g6.xlarge": 4, "g5.xlarge": 4}
# Amazon Transcribe batch, standard, tier 1 (first 250,000 min/month), us-east-1 list price: what the
# dashboard and the simulator compare the fleet's cost per audio hour with (the AWS pricing page,
# https://aws.amazon.com/transcribe/pricing/, as of 2026-11-23; check it).
TRANSCRIBE_USD_PER_MINUTE = 0.024


@dataclass(frozen=True)
class Datapoints:
    """One alarm period's values of the expressions' inputs (what CloudWatch hands the metric math)."""

    visible: int  # ApproximateNumberOfMessagesVisible
    inflight: int  # ApproximateNumberOfMessagesNotVisible
    desired: int  # the service's desired count
    audio_seconds: float = 0.0  # audio transcribed in the period (Sum of AudioSeconds)
    model_seconds: float = 0.0  # time the workers spent on it (Sum of ProcessingSeconds)
    done: int = 0  # messages transcribed in the period (SampleCount of AudioSeconds)


@dataclass(frozen=True)
class ScalingPolicy:
    target_wait_seconds: float = 240  # scale out when a message queued now would wait longer than this
    # (wait / target at least, percent added): AAS picks the band the breach falls in. Small steps near
    # the target (a slow morning ramp), doubling and tripling when the wait runs away (a burst).
    scale_out_steps: tuple[tuple[float, int], ...] = ((1.0, 10), (1.5, 25), (2.0, 50), (3.0, 100), (5.0, 200))
    scale_in_work_per_worker: float = 0.9  # scale in when more than 1 in 10 workers has nothing to do
    # (work per worker at most, percent removed), each band removing no more than its idle share.
    scale_in_steps: tuple[tuple[float, int], ...] = ((0.9, 5), (0.75, 10), (0.5, 25), (0.25, 50))
    min_step_workers: int = 2  # MinAdjustmentMagnitude of the scale-out policy (scale-in: 1, see adjust)
    wake_workers: int = 1  # workers started when work arrives at an empty fleet
    min_workers: int = 0  # zero when idle: GPUs cost money
    # Sized from the 300k spike day (docs/scaling.md): its afternoon peak takes ~200 workers at the
    # assumed 40x real time; the cap leaves 20 % headroom (at 20x the spike day needs ~400). The G-instance vCPU quotas must cover it
    # (`vcpu_quota`); `-c hark:maxWorkers=N` lowers it for a smaller account.
    max_workers: int = 240
    # Used while no worker reported in a period (the fleet is waking): Whisper large-v3-turbo on a T4
    # until measured, and a chunk-sized message.
    assumed_speed: float = 40.0
    assumed_audio_per_message_seconds: float = 300.0
    period_seconds: int = 60  # metric period of every alarm
    scale_out_evaluation_periods: int = 2  # minutes above the target before adding workers
    scale_in_evaluation_periods: int = 5  # minutes of idle workers before removing some
    wake_evaluation_periods: int = 1
    scale_out_cooldown_seconds: int = 120
    scale_in_cooldown_seconds: int = 180

    def __post_init__(self) -> None:
        if self.target_wait_seconds <= 0:
            raise ValueError("target_wait_seconds must be positive")
        if not 0 <= self.min_workers <= self.max_workers or self.max_workers < 1:
            raise ValueError("need 0 <= min_workers <= max_workers and max_workers >= 1")
        if self.min_step_workers < 1 or self.wake_workers < 1:
            raise ValueError("steps must be positive")
        out = self.scale_out_steps
        if not out or out[0][0] != 1.0 or any(a[0] >= b[0] or a[1] > b[1] for a, b in zip(out, out[1:])):
            raise ValueError("scale_out_steps: ascending ratios from 1.0, non-decreasing percentages")
        if any(p <= 0 for _, p in out):
            raise ValueError("scale_out_steps: percentages must be positive")
        ins = self.scale_in_steps
        if not ins or ins[0][0] != self.scale_in_work_per_worker or not 0 < ins[0][0] <= 1:
            raise ValueError("scale_in_steps must start at scale_in_work_per_worker (at most 1)")
        for bound, pct in ins:
            # A band removing more than its idle share could stop workers that hold messages.
            if not 0 < pct <= round(100 * (1 - bound)) or bound <= 0:
                raise ValueError(f"scale_in_steps: removing {pct}% at {bound} work per worker strands work")
        if any(a[0] <= b[0] or a[1] > b[1] for a, b in zip(ins, ins[1:])):
            raise ValueError("scale_in_steps: descending bounds, non-decreasing percentages")

    # ---- the CloudWatch metric-math expressions ----

    @property
    def expected_wait_expression(self) -> str:
        """Seconds a message queued now waits: visible x audio per message / (desired x speed); 0 with
        no desired worker (the wake rule covers that). With no report in a period (no worker running
        yet) the assumed speed and message size stand in (FILL)."""
        per_message = f"(FILL({AUDIO}, {self.assumed_audio_per_message_seconds:g}) / FILL({DONE}, 1))"
        speed = f"(FILL({AUDIO}, {self.assumed_speed:g}) / FILL({MODEL}, 1))"
        return f"IF(FILL({DESIRED}, 0) > 0, FILL({VISIBLE}, 0) * {per_message} / (FILL({DESIRED}, 0) * {speed}), 0)"

    @property
    def measured_speed_expression(self) -> str:
        """Audio seconds per model second the workers reported (the dashboard's speed graph)."""
        return f"FILL({AUDIO}, 0) / FILL({MODEL}, 1)"

    def cost_per_audio_hour_expression(self, usd_per_worker_hour: float, period_seconds: int) -> str:
        """Fleet dollars per audio hour transcribed in a period: running tasks x the period x the price,
        over the audio the workers reported (0 when nothing was transcribed)."""
        return (
            f"IF(FILL({AUDIO}, 0) > 0, FILL({TASKS}, 0) * {period_seconds / 3600:g} * {usd_per_worker_hour:g}"
            f" / ({AUDIO} / 3600), 0)"
        )

    @property
    def job_cost_per_audio_hour_expression(self) -> str:
        """Dollars per audio hour as the jobs record it (each its share of model time at the configured
        instance price, HARK_INSTANCE_USD_PER_HOUR): what the work cost with the fleet's idle time left
        out, next to the fleet's cost above; 0 when nothing was transcribed."""
        return f"IF(FILL({AUDIO}, 0) > 0, FILL({COST}, 0) / ({AUDIO} / 3600), 0)"

    @property
    def work_per_worker_expression(self) -> str:
        """Messages in hand or waiting per desired worker; 1 (no action) with no desired worker."""
        return f"IF(FILL({DESIRED}, 0) > 0, (FILL({INFLIGHT}, 0) + FILL({VISIBLE}, 0)) / FILL({DESIRED}, 0), 1)"

    @property
    def wake_expression(self) -> str:
        """1 when messages wait and no worker is desired, else 0. Container Insights may publish no
        DesiredTaskCount while the service is at zero, so a missing value counts as 0 (FILL); without
        it the expression has no data exactly when it matters and the fleet never wakes."""
        return f"IF(FILL({DESIRED}, 0) == 0 AND {VISIBLE} > 0, 1, 0)"

    # ---- the same rules in Python ----

    def expected_wait(self, d: Datapoints) -> float:
        if d.desired <= 0:
            return 0.0
        per_message = (d.audio_seconds if d.done else self.assumed_audio_per_message_seconds) / max(d.done, 1)
        speed = d.audio_seconds / d.model_seconds if d.done and d.model_seconds > 0 else self.assumed_speed
        return d.visible * per_message / (d.desired * speed)

    def work_per_worker(self, d: Datapoints) -> float:
        return (d.inflight + d.visible) / d.desired if d.desired > 0 else 1.0

    def breached(self, d: Datapoints) -> str | None:
        """The rule whose alarm condition holds this period: wake, out or in (out before in, as AAS
        picks the larger capacity when a scale-out and a scale-in policy trigger together)."""
        if d.desired == 0:
            return "wake" if d.visible > 0 else None
        if self.expected_wait(d) > self.target_wait_seconds:
            return "out"
        if self.work_per_worker(d) < self.scale_in_work_per_worker:
            return "in"
        return None

    def percent(self, rule: str, d: Datapoints) -> int:
        """The step adjustment AAS applies: the band the breach falls in. Scale-out bands are
        [lower, upper) above the threshold; scale-in bands (lower, upper] below it (AWS's step
        scaling bounds)."""
        if rule == "out":
            ratio = self.expected_wait(d) / self.target_wait_seconds
            return max(p for r, p in self.scale_out_steps if ratio >= r)
        work = self.work_per_worker(d)
        return -max(p for bound, p in self.scale_in_steps if work <= bound)

    def min_adjustment(self, rule: str) -> int:
        """MinAdjustmentMagnitude: scale-in keeps 1, so no band removes more than its idle share."""
        return self.min_step_workers if rule == "out" else 1

    def step(self, current: int, percent: int, minimum: int = 1) -> int:
        """Workers added (or removed, negative) by a PercentChangeInCapacity step, rounded as
        Application Auto Scaling documents (a magnitude above 1 rounds toward zero, between 0 and 1 to
        1) and then raised to MinAdjustmentMagnitude `minimum`."""
        change = current * percent / 100
        magnitude = math.floor(abs(change)) if abs(change) >= 1 else (1 if change else 0)
        return int(math.copysign(max(magnitude, minimum), percent))

    def adjust(self, rule: str, desired: int, d: Datapoints) -> int:
        """The desired count after `rule` fires at `desired` (clamped to min..max workers)."""
        if rule == "wake":
            target = max(desired, self.wake_workers)
        else:
            target = desired + self.step(desired, self.percent(rule, d), self.min_adjustment(rule))
        return max(self.min_workers, min(self.max_workers, target))

    def decide(self, d: Datapoints) -> int:
        """The desired count after one evaluation (alarm durations and cooldowns aside)."""
        rule = self.breached(d)
        return d.desired if rule is None else self.adjust(rule, d.desired, d)


@dataclass(frozen=True)
class NotifierScaling:
    """The notification worker (Fargate) scales on its queue's visible messages: one task sends the
    emails in turn, a few a second, and a spike day's peak completes ~10 jobs a second."""

    min_tasks: int = 1
    max_tasks: int = 6  # SES's starting production rate is 14 emails/s: more senders would be throttled
    scale_out_visible: int = 100  # emails waiting: add a task (+2 above 4x this)
    scale_in_visible: int = 10  # ... below this, remove one
    period_seconds: int = 60
    evaluation_periods: int = 2  # both directions: a flap costs a 0.25-vCPU Fargate task, not a GPU
    cooldown_seconds: int = 120

    def __post_init__(self) -> None:
        if not 1 <= self.min_tasks <= self.max_tasks or not 0 <= self.scale_in_visible < self.scale_out_visible:
            raise ValueError("need 1 <= min_tasks <= max_tasks and scale_in_visible < scale_out_visible")


NOTIFIER_SCALING = NotifierScaling()


def vcpu_quota(max_workers: int, vcpus: dict[str, int] = GPU_INSTANCE_VCPUS) -> int:
    """vCPUs the G-instance quotas (on-demand L-DB2E81BA and spot L-3819A6DF) must allow: every worker
    may land on the pool's largest type (spot picks by price and capacity)."""
    return max_workers * max(vcpus.values())


DEFAULT_POLICY = ScalingPolicy()
