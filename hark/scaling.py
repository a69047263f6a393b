"""The GPU workers' scaling policy: one definition, read by the CDK app and the autoscaling simulator.

The workers scale on *backlog per worker*: visible messages on the transcribe queue divided by the
running worker tasks (docs/scaling.md says why). Three rules, each a CloudWatch alarm on a metric-math
expression driving an Application Auto Scaling step policy on the ECS service's desired count:

- scale out: backlog per worker above `scale_out_backlog` -> add max(`step_percent`%, `min_step_workers`);
- scale in: backlog per worker below `scale_in_backlog` -> remove max(`step_percent`%, `min_step_workers`),
  but only while it cannot strand work: a fleet no larger than one minimum step scales in only once the
  queue is empty (nothing visible, nothing in flight), so it never drops to zero with jobs left;
- wake: no running worker and visible messages -> add `wake_workers` (scale from zero).

The expressions use the metric ids below: `visible` (ApproximateNumberOfMessagesVisible), `inflight`
(ApproximateNumberOfMessagesNotVisible) and `tasks` (Container Insights RunningTaskCount).
`decide()` replays the same rules in Python so the simulator and the tests agree with the alarms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

VISIBLE, INFLIGHT, TASKS = "visible", "inflight", "tasks"


@dataclass(frozen=True)
class ScalingPolicy:
    scale_out_backlog: float = 500  # visible messages per running worker above which we add workers
    scale_in_backlog: float = 200  # ... below which we remove workers
    step_percent: int = 20  # each step changes the fleet by this percentage of its size ...
    min_step_workers: int = 10  # ... and by at least this many workers
    wake_workers: int = 1  # workers started when work arrives at an empty fleet
    min_workers: int = 0  # zero when idle: GPUs cost money
    max_workers: int = 20  # bounded by the account's G-instance vCPU quota (docs/deploy.md)
    period_seconds: int = 60  # metric period of every alarm
    scale_out_evaluation_periods: int = 2  # minutes above the threshold before adding workers
    scale_in_evaluation_periods: int = 15  # minutes below the threshold before removing workers
    wake_evaluation_periods: int = 1
    scale_out_cooldown_seconds: int = 120
    scale_in_cooldown_seconds: int = 600

    def __post_init__(self) -> None:
        if not 0 <= self.scale_in_backlog < self.scale_out_backlog:
            raise ValueError("scale_in_backlog must be below scale_out_backlog (a dead band between them)")
        if not 0 <= self.min_workers <= self.max_workers or self.max_workers < 1:
            raise ValueError("need 0 <= min_workers <= max_workers and max_workers >= 1")
        if self.step_percent <= 0 or self.min_step_workers < 1 or self.wake_workers < 1:
            raise ValueError("steps must be positive")

    # ---- the CloudWatch metric-math expressions (ids: visible, inflight, tasks) ----

    @property
    def backlog_expression(self) -> str:
        """Visible messages per running worker; 0 with no worker (the wake rule covers that case)."""
        return f"IF({TASKS} > 0, {VISIBLE} / {TASKS}, 0)"

    @property
    def scale_in_expression(self) -> str:
        """Backlog per worker where scaling in is safe; otherwise the scale-in threshold (no action)."""
        return (
            f"IF({TASKS} > 0 AND ({TASKS} > {self.min_step_workers} OR {VISIBLE} + {INFLIGHT} == 0), "
            f"{VISIBLE} / {TASKS}, {self.scale_in_backlog:g})"
        )

    @property
    def wake_expression(self) -> str:
        """1 when messages wait and no worker runs, else 0. Container Insights may publish no
        RunningTaskCount at all while the service has no task, so a missing value counts as 0 (FILL);
        without it the expression has no data exactly when it matters and the fleet never wakes."""
        return f"IF(FILL({TASKS}, 0) == 0 AND {VISIBLE} > 0, 1, 0)"

    # ---- the same rules in Python ----

    def step(self, current: int) -> int:
        """Workers added or removed by one step: max(step_percent of the fleet, min_step_workers).

        Application Auto Scaling rounds a percentage step down, then applies MinAdjustmentMagnitude.
        """
        return max(math.floor(current * self.step_percent / 100), self.min_step_workers)

    def decide(self, tasks: int, visible: int, inflight: int = 0) -> int:
        """The desired worker count after one evaluation (alarm durations and cooldowns aside)."""
        if tasks == 0:
            target = self.wake_workers if visible > 0 else 0
        elif visible / tasks > self.scale_out_backlog:
            target = tasks + self.step(tasks)
        elif (tasks > self.min_step_workers or visible + inflight == 0) and visible / tasks < self.scale_in_backlog:
            target = tasks - self.step(tasks)
        else:
            target = tasks
        return max(self.min_workers, min(self.max_workers, target))


DEFAULT_POLICY = ScalingPolicy()
