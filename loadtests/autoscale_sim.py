"""A deterministic simulator of the GPU worker fleet scaling on expected wait.

It replays `hark.ops.scaling.ScalingPolicy` (the policy the CDK app deploys, with `infra/cdk.json`'s
`hark:maxWorkers` and spot/on-demand mix) against traffic shapes, from a handful of night uploads to
the mission's 100,000 recordings a day and a 300,000-recording spike day, and reports what a user
waits, how much of the fleet idles and what it costs, next to Amazon Transcribe's per-minute price.

What is modelled (each a named parameter of `FleetModel`):
- the alarms: every `period_seconds` the period's datapoints (visible messages, messages in flight,
  the desired count, and the audio seconds, model seconds and messages the workers reported) go
  through `ScalingPolicy.breached()`; a rule acts after its evaluation periods in a row and outside
  its cooldown, changing the ECS service's desired count by `ScalingPolicy.adjust()` (Application Auto
  Scaling applies a step to the current desired count);
- capacity: a new task waits `start_delay_s` for its GPU instance (capacity provider, boot, ECS
  agent, image pull, model load); an empty instance stays up `instance_linger_s` before the capacity
  provider removes it, and a task placed on it starts in `warm_start_s`;
- the work, as the transcription worker does it: a recording up to `chunk_threshold_s` is one message
  taking `overhead_s + audio / real_time_factor`; a longer one is a split message (decode, VAD, cut:
  `audio / split_rtf`) that queues ~`chunk_target_s` chunk messages, transcribed in parallel; the
  workers report each transcription's audio and model seconds (their AudioSeconds and
  ProcessingSeconds metrics);
- scale-in: ECS does not know which task is idle: it stops tasks still starting first, then the
  newest; a busy task finishes its message if it can within `stop_timeout_s` (the task's
  stopTimeout), else hands it back to the queue (counted);
- billing: per instance-second from launch to release, 60 s minimum, at the `INSTANCE_PRICES` of
  `instance_type`: all on-demand, all spot, and the deployed mix (`on_demand_base` instances
  on-demand, `on_demand_percent_above_base` % of the rest, rounded up, the rest spot).

Deterministic: traffic comes from a seeded `random.Random`, events are ordered by (time, sequence).
Pure Python; the mission scenarios take seconds each.

    .venv/bin/python -m loadtests.autoscale_sim                 # every scenario, the deployed policy
    .venv/bin/python -m loadtests.autoscale_sim --json          # one JSON object per scenario
    .venv/bin/python -m loadtests.autoscale_sim --markdown      # the tables in docs/loadtests.md
    .venv/bin/python -m loadtests.autoscale_sim --scenario mission --set target_wait_seconds=120
"""

from __future__ import annotations

import argparse
import dataclasses
import heapq
import json
import math
import random
import re
import sys
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from hark.domain.settings import Settings
from hark.ops.scaling import (
    DEFAULT_POLICY,
    GPU_INSTANCE_VCPUS,
    TRANSCRIBE_USD_PER_MINUTE,
    Datapoints,
    ScalingPolicy,
    vcpu_quota,
)

# -- prices (us-east-1, Linux, USD) -----------------------------------------------------------------
# AWS *list* prices as published on https://aws.amazon.com/ec2/pricing/on-demand/ (on-demand) and the
# typical spot price seen on https://aws.amazon.com/ec2/spot/pricing/ and in the spot price history
# (`aws ec2 describe-spot-price-history --instance-types g4dn.xlarge`), as of PRICES_AS_OF. The build
# machines have no internet, so they were not re-read that day: check them before relying on a figure.
# Spot moves by AZ and week; Savings Plans and reserved instances would lower the on-demand part.
PRICES_AS_OF = "2026-11-23"
INSTANCE_PRICES: dict[str, tuple[float, float]] = {  # type: (on-demand $/h, typical spot $/h)
    "g4dn.xlarge": (0.526, 0.21),  # T4; on-demand unchanged since g4dn's launch (2019)
    "g4dn.2xlarge": (0.752, 0.30),  # T4, more CPU and memory
    "g6.xlarge": (0.8048, 0.33),  # L4
    "g5.xlarge": (1.006, 0.40),  # A10G
}
TRANSCRIBE_MINIMUM_SECONDS = 15  # Transcribe bills per second, at least 15 s per request
EC2_MINIMUM_BILLED_SECONDS = 60
DAYS_PER_MONTH = 30  # a month of mission days, for the monthly figures

# -- the mission (issue 13) -----------------------------------------------------------------------
MISSION_UPLOADS_PER_DAY = 100_000
SPIKE_UPLOADS_PER_DAY = 300_000
MEAN_AUDIO_S = 600.0  # ~10 minutes a recording ...
MEAN_UPLOAD_BYTES = 20e6  # ... and ~20 MB (about 256 kbit/s: phone and laptop recorders' AAC/MP3)
AUDIO_SIGMA = 1.0  # log-normal spread: most recordings 2-30 min, 1 % over an hour
MIN_AUDIO_S, MAX_AUDIO_S = 5.0, 4 * 3600.0  # voice notes to a four-hour workshop (the cap)
# Peak hour over mean hour. Recordings (meetings, lectures, interviews) are made in working hours and
# uploaded during them, by users in a few neighbouring time zones: ~70 % of a day's uploads land in
# the ten busiest hours, the night keeps a floor (other regions, late uploads). 2.5 is that shape's
# ratio; a single-time-zone audience would be nearer 3, a global one nearer 1.5.
PEAK_TO_MEAN = 2.5
PEAK_HOUR = 14.0  # early afternoon, local time
# Targets the simulator measures the deployed policy against (issue 13).
TARGETS = {
    "mission p95 upload-to-transcript (s)": 15 * 60,
    "spike p95 upload-to-transcript (s)": 30 * 60,
    "mission monthly cost, deployed mix ($)": 2500,
    "idle worker-hours / busy worker-hours": 0.25,
}

_SETTINGS = Settings.model_fields  # defaults only: the simulation must not depend on HARK_* variables
REPO = Path(__file__).resolve().parents[1]
CDK_JSON = REPO / "infra" / "cdk.json"

# -- the control plane at the peak (a paper calculation from a simulated day) --------------------------
# The web app polls while any job of the tab is unfinished: GET /jobs (one page) every POLL_MS.
POLL_INTERVAL_S = int(re.search(r"const POLL_MS = (\d+);", (REPO / "frontend" / "app.js").read_text()).group(1)) / 1000
UPLOAD_S = MEAN_UPLOAD_BYTES * 8 / 10e6  # sending ~20 MB at 10 Mbit/s, the tab polling meanwhile
API_SECONDS_PER_REQUEST = 0.1  # API Lambda duration per request in AWS, warm, DynamoDB included (an assumption)
# One handler "container" (the local gateway runs one invocation at a time, like one Lambda execution
# environment) sustained ~20 requests/s with 4 locust users: docs/loadtests.md, "Figures measured locally".
LOCAL_REQUESTS_PER_CONTAINER_S = 20.0


def deployed_context() -> dict:
    """The deployment's context (infra/cdk.json): max workers and the spot/on-demand mix."""
    return json.loads(CDK_JSON.read_text())["context"]


def deployed_policy() -> ScalingPolicy:
    return dataclasses.replace(DEFAULT_POLICY, max_workers=int(deployed_context()["hark:maxWorkers"]))


@dataclass(frozen=True)
class FleetModel:
    start_delay_s: float = 300.0  # desired count up -> task RUNNING on a new instance (CAS ~60 s, boot, pull, load)
    warm_start_s: float = 30.0  # ... on an instance still up (image cached, model load only)
    instance_linger_s: float = 900.0  # an empty instance stays until the capacity provider scales in
    # Audio seconds per second, Whisper large-v3-turbo batched fp16 on a T4: an ASSUMPTION until measured
    # on one (docs/benchmarks.md); the reports show 20x, 40x and 60x.
    real_time_factor: float = 40.0
    overhead_s: float = 3.0  # per message: S3 get, decode, four transcript writes, DynamoDB, SQS
    split_rtf: float = 300.0  # split message: decode + VAD + FLAC chunks, audio seconds per second
    chunk_threshold_s: float = _SETTINGS["chunk_threshold_seconds"].default
    chunk_target_s: float = _SETTINGS["chunk_target_seconds"].default
    stop_timeout_s: float = _SETTINGS["stop_timeout_seconds"].default
    instance_type: str = "g4dn.xlarge"  # priced from INSTANCE_PRICES (on-demand takes the pool's first)
    on_demand_base: int = int(deployed_context()["hark:onDemandBaseWorkers"])
    on_demand_percent_above_base: int = int(deployed_context()["hark:onDemandPercentAboveBase"])
    max_sim_seconds: float = 4 * 24 * 3600  # hard stop (a policy that never drains still ends)

    @property
    def on_demand_usd_per_hour(self) -> float:
        return INSTANCE_PRICES[self.instance_type][0]

    @property
    def spot_usd_per_hour(self) -> float:
        return INSTANCE_PRICES[self.instance_type][1]

    def on_demand_count(self, instances: int) -> int:
        """On-demand instances among `instances` in the deployed mix (fractions rounded to on-demand)."""
        base = min(instances, self.on_demand_base)
        return base + math.ceil((instances - base) * self.on_demand_percent_above_base / 100)


# -- traffic ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Upload:
    at: float  # seconds from the start
    audio_s: float

    @property
    def bytes(self) -> float:
        return self.audio_s * MEAN_UPLOAD_BYTES / MEAN_AUDIO_S


def audio_lengths(rng: random.Random, n: int, mean_s: float = MEAN_AUDIO_S, sigma: float = AUDIO_SIGMA) -> list[float]:
    """Recording lengths: log-normal with mean `mean_s` (median mean / e^(sigma^2/2): ~6 min for a
    10 min mean), clipped to 5 s .. 4 h."""
    mu = math.log(mean_s) - sigma**2 / 2
    return [min(MAX_AUDIO_S, max(MIN_AUDIO_S, rng.lognormvariate(mu, sigma))) for _ in range(n)]


def diurnal_weights(peak_to_mean: float = PEAK_TO_MEAN, peak_hour: float = PEAK_HOUR) -> list[float]:
    """Relative upload rate for each minute of a day: a working-hours bump (sin^2 from 07:00 to 21:00,
    highest at `peak_hour`) over a constant night floor, the floor chosen so that the busiest hour's
    rate is exactly `peak_to_mean` times the day's mean."""
    start, end = 2 * peak_hour - 21.0, 21.0  # the bump is symmetric around the peak, ends at 21:00
    bump = [
        math.sin(math.pi * (m / 60 - start) / (end - start)) ** 2 if start <= m / 60 <= end else 0.0
        for m in range(1440)
    ]

    def hourly_peak_to_mean(floor: float) -> float:
        w = [b + floor for b in bump]
        hours = [sum(w[h * 60 : h * 60 + 60]) for h in range(24)]
        return max(hours) / (sum(hours) / 24)

    lo, hi = 0.0, 10.0  # more floor, flatter day: bisect for the ratio
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if hourly_peak_to_mean(mid) > peak_to_mean else (lo, mid)
    return [b + hi for b in bump]


def day_of_uploads(n: int, seed: int, peak_to_mean: float = PEAK_TO_MEAN) -> list[Upload]:
    """`n` uploads over 24 h on the diurnal curve, the clock starting at midnight."""
    rng = random.Random(seed)
    minutes = rng.choices(range(1440), weights=diurnal_weights(peak_to_mean), k=n)
    times = sorted(m * 60 + rng.random() * 60 for m in minutes)
    return [Upload(t, a) for t, a in zip(times, audio_lengths(rng, n))]


def mission_day(n: int = MISSION_UPLOADS_PER_DAY, seed: int = 4) -> list[Upload]:
    """The mission: 100,000 recordings (~16,700 audio hours) on the diurnal curve."""
    return day_of_uploads(n, seed)


def spike_day(n: int = SPIKE_UPLOADS_PER_DAY, seed: int = 5) -> list[Upload]:
    """Three times the mission on the same curve (a deadline, an event): 300,000 recordings."""
    return day_of_uploads(n, seed)


def steady_day(n: int = 2400, seed: int = 1) -> list[Upload]:
    """A small deployment's working day: `n` uploads over 24 h on the diurnal curve."""
    return day_of_uploads(n, seed)


def burst(n: int = 5000, window_s: float = 600, start_s: float = 300, seed: int = 2) -> list[Upload]:
    """`n` uploads within `window_s` (a bulk import, a course's lectures) on an idle fleet."""
    rng = random.Random(seed)
    times = sorted(start_s + rng.random() * window_s for _ in range(n))
    return [Upload(t, a) for t, a in zip(times, audio_lengths(rng, n))]


def idle_night(n: int = 6, hours: float = 8, seed: int = 3) -> list[Upload]:
    """A handful of uploads spread over a night: every one wakes the fleet from zero."""
    rng = random.Random(seed)
    times = sorted(rng.random() * hours * 3600 for _ in range(n))
    return [Upload(t, a) for t, a in zip(times, audio_lengths(rng, n))]


@dataclass(frozen=True)
class Scenario:
    key: str
    name: str
    make: Callable[[], list[Upload]]
    days: float | None = None  # traffic of this many days: monthly figures scale from it
    target_p95_s: float | None = None  # the p95 upload-to-transcript target


SCENARIOS: dict[str, Scenario] = {
    s.key: s
    for s in (
        Scenario("mission", "mission day (100,000 uploads/24 h)", mission_day, days=1, target_p95_s=15 * 60),
        Scenario("spike", "spike day (300,000 uploads/24 h)", spike_day, days=1, target_p95_s=30 * 60),
        Scenario("steady", "small day (2,400 uploads/24 h)", steady_day, days=1),
        Scenario("burst", "burst (5,000 uploads in 10 min)", burst),
        Scenario("night", "idle night (6 uploads/8 h)", idle_night),
    )
}
SPEED_SWEEP = (20.0, 40.0, 60.0)  # real-time factors shown for the mission and spike days
SWEPT = ("mission", "spike")


# -- the simulation --------------------------------------------------------------------------------
@dataclass
class Job:
    id: int
    arrived: float
    audio_s: float
    chunks_left: int = 0
    finished: float | None = None


@dataclass
class Message:
    job: Job
    kind: str  # whole | split | chunk
    audio_s: float
    enqueued: float
    id: int = 0


@dataclass
class Instance:
    launched: float
    released: float | None = None
    linger_until: float | None = None


@dataclass
class Worker:
    id: int
    instance: Instance
    ready_at: float
    state: str = "starting"  # starting | idle | busy | stopped
    started: float | None = None  # RUNNING since
    stopped: float | None = None
    message: Message | None = None
    busy_since: float = 0.0
    busy_until: float = 0.0
    draining: bool = False


@dataclass(frozen=True)
class ScaleAction:
    at: float
    rule: str  # wake | out | in
    before: int  # desired count before
    after: int
    data: Datapoints  # what the alarm saw
    running: int


@dataclass(frozen=True)
class Sample:
    at: float
    desired: int
    running: int
    visible: int
    inflight: int


@dataclass
class Result:
    scenario: str
    policy: ScalingPolicy
    model: FleetModel
    jobs: int
    audio_hours: float
    upload_gb: float
    peak_uploads_per_s: float  # busiest minute's uploads / 60
    max_backlog: int
    max_desired: int
    max_running: int
    queue_waits: list[float]  # per message: enqueued -> picked up
    turnarounds: list[float]  # per job: uploaded -> transcript written
    worker_hours: float  # tasks RUNNING
    busy_hours: float  # tasks working on a message
    instance_hours: float  # billed: launch -> release, 60 s minimum each
    on_demand_instance_hours: float  # of those, on-demand in the deployed mix
    actions: list[ScaleAction]
    samples: list[Sample]
    handed_back: int
    unfinished: int
    ended_at: float
    idle_again_at: float | None  # when the desired count last reached 0 (after the last job finished)
    transcribe_cost: float = 0.0
    days: float | None = None

    @property
    def cost_on_demand(self) -> float:
        return self.instance_hours * self.model.on_demand_usd_per_hour

    @property
    def cost_spot(self) -> float:
        return self.instance_hours * self.model.spot_usd_per_hour

    @property
    def cost_deployed_mix(self) -> float:
        spot_hours = self.instance_hours - self.on_demand_instance_hours
        return (
            self.on_demand_instance_hours * self.model.on_demand_usd_per_hour
            + spot_hours * self.model.spot_usd_per_hour
        )

    @property
    def idle_hours(self) -> float:
        return self.worker_hours - self.busy_hours

    @property
    def idle_ratio(self) -> float:
        return self.idle_hours / self.busy_hours if self.busy_hours else 0.0

    def monthly(self, cost: float) -> float | None:
        return cost / self.days * DAYS_PER_MONTH if self.days else None

    def wait(self, q: float) -> float:
        return percentile(self.queue_waits, q)

    def turnaround(self, q: float) -> float:
        return percentile(self.turnarounds, q)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def peak_rate(times: Iterable[float], window_s: float = 60) -> float:
    """The most arrivals in any aligned window of `window_s`, per second."""
    counts: dict[int, int] = {}
    for t in times:
        k = int(t // window_s)
        counts[k] = counts.get(k, 0) + 1
    return max(counts.values(), default=0) / window_s


def mixed_on_demand_hours(instances: list[Instance], model: FleetModel) -> float:
    """Instance-hours the deployed mix runs on-demand: at every moment on_demand_count(n) of the n
    instances up (each billed at least EC2_MINIMUM_BILLED_SECONDS)."""
    edges: list[tuple[float, int]] = []
    for i in instances:
        assert i.released is not None
        edges += [(i.launched, 1), (max(i.released, i.launched + EC2_MINIMUM_BILLED_SECONDS), -1)]
    edges.sort()
    n, last, seconds = 0, 0.0, 0.0
    for t, delta in edges:
        seconds += model.on_demand_count(n) * (t - last)
        n, last = n + delta, t
    return seconds / 3600


class Simulation:
    def __init__(
        self,
        uploads: Iterable[Upload],
        policy: ScalingPolicy = DEFAULT_POLICY,
        model: FleetModel = FleetModel(),
        name: str = "",
        days: float | None = None,
    ):
        self.policy, self.model, self.name, self.days = policy, model, name, days
        self.uploads = sorted(uploads, key=lambda u: u.at)
        self.now = 0.0
        self.events: list[tuple[float, int, str, object]] = []
        self._seq = 0
        self.queue: deque[Message] = deque()
        self.workers: dict[int, Worker] = {}  # every worker ever started
        self.live: dict[int, Worker] = {}  # not stopped
        self.idle: list[int] = []  # heap of idle worker ids (lazily cleaned)
        self.busy = 0
        self.instances: list[Instance] = []
        self.lingering: list[Instance] = []
        self.desired = policy.min_workers
        self.jobs: list[Job] = []
        self.waits: list[float] = []
        self.actions: list[ScaleAction] = []
        self.samples: list[Sample] = []
        self.breaches = {"wake": 0, "out": 0, "in": 0}
        self.last_action = {"wake": -math.inf, "out": -math.inf, "in": -math.inf}
        self.max_backlog = 0
        self.handed_back = 0
        self.busy_seconds = 0.0
        self.reported = [0.0, 0.0, 0]  # this period's audio seconds, model seconds, messages
        self._ids = 0

    def at(self, when: float, kind: str, payload: object = None) -> None:
        self._seq += 1
        heapq.heappush(self.events, (when, self._seq, kind, payload))

    def next_id(self) -> int:
        self._ids += 1
        return self._ids

    def active(self) -> list[Worker]:
        """Tasks that count toward the desired count (not draining, not stopped)."""
        return [w for w in self.live.values() if not w.draining]

    # -- work --
    def enqueue(self, message: Message) -> None:
        message.id = self.next_id()
        self.queue.append(message)
        if len(self.queue) > self.max_backlog:
            self.max_backlog = len(self.queue)

    def service_time(self, message: Message) -> float:
        if message.kind == "split":
            return self.model.overhead_s + message.audio_s / self.model.split_rtf
        return self.model.overhead_s + message.audio_s / self.model.real_time_factor

    def dispatch(self) -> None:
        while self.queue and self.idle:
            worker = self.workers[heapq.heappop(self.idle)]
            if worker.state != "idle" or worker.draining:
                continue
            message = self.queue.popleft()
            self.waits.append(self.now - message.enqueued)
            worker.state, worker.message, worker.busy_since = "busy", message, self.now
            worker.busy_until = self.now + self.service_time(message)
            self.busy += 1
            self.at(worker.busy_until, "done", (worker.id, message.id))

    def set_idle(self, worker: Worker) -> None:
        worker.state = "idle"
        heapq.heappush(self.idle, worker.id)

    def end_busy(self, worker: Worker) -> None:
        self.busy -= 1
        self.busy_seconds += self.now - worker.busy_since
        worker.message = None

    def finish(self, worker: Worker, message: Message) -> None:
        job = message.job
        if message.kind == "whole":
            job.finished = self.now
        elif message.kind == "split":
            n = max(2, round(message.audio_s / self.model.chunk_target_s))
            job.chunks_left = n
            for _ in range(n):
                self.enqueue(Message(job, "chunk", message.audio_s / n, self.now))
        else:
            job.chunks_left -= 1
            if job.chunks_left == 0:
                job.finished = self.now  # the last chunk assembles the transcript
        if message.kind != "split":  # the worker's AudioSeconds / ProcessingSeconds for this period
            self.reported[0] += message.audio_s
            self.reported[1] += self.now - worker.busy_since
            self.reported[2] += 1
        self.end_busy(worker)
        if worker.draining:
            self.stop(worker)
        else:
            self.set_idle(worker)

    # -- capacity --
    def take_instance(self) -> tuple[Instance, float]:
        self.expire_lingering()
        if self.lingering:
            instance = self.lingering.pop()
            instance.linger_until = None
            return instance, self.model.warm_start_s
        instance = Instance(launched=self.now)
        self.instances.append(instance)
        return instance, self.model.start_delay_s

    def expire_lingering(self) -> None:
        keep = []
        for instance in self.lingering:
            assert instance.linger_until is not None
            if instance.linger_until <= self.now:
                instance.released = instance.linger_until
            else:
                keep.append(instance)
        self.lingering = keep

    def release(self, instance: Instance) -> None:
        instance.linger_until = self.now + self.model.instance_linger_s
        self.lingering.append(instance)
        self.at(instance.linger_until, "expire")

    def stop(self, worker: Worker) -> None:
        worker.state, worker.stopped, worker.draining = "stopped", self.now, False
        self.live.pop(worker.id, None)
        self.release(worker.instance)

    def reconcile(self) -> None:
        active = self.active()
        if len(active) < self.desired:
            for _ in range(self.desired - len(active)):
                instance, delay = self.take_instance()
                worker = Worker(self.next_id(), instance, ready_at=self.now + delay)
                self.workers[worker.id] = self.live[worker.id] = worker
                self.at(worker.ready_at, "ready", worker.id)
        elif len(active) > self.desired:
            # ECS stops tasks not yet running first, then (not knowing which are idle) the newest.
            victims = sorted(active, key=lambda w: (w.state != "starting", -w.id))
            for worker in victims[: len(active) - self.desired]:
                if worker.state in ("starting", "idle"):
                    self.stop(worker)
                elif worker.busy_until - self.now <= self.model.stop_timeout_s:
                    worker.draining = True  # finishes its message, then exits
                else:  # SIGTERM: the worker hands its message back and exits
                    message = worker.message
                    assert message is not None
                    self.end_busy(worker)
                    self.handed_back += 1
                    self.stop(worker)
                    message.enqueued = self.now
                    self.enqueue(message)  # a fresh id: the pending "done" event no longer matches

    # -- the alarms --
    def evaluate(self) -> None:
        running = sum(1 for w in self.live.values() if w.state in ("idle", "busy"))
        audio, model, done = self.reported
        self.reported = [0.0, 0.0, 0]
        data = Datapoints(
            visible=len(self.queue),
            inflight=self.busy,
            desired=self.desired,
            audio_seconds=audio,
            model_seconds=model,
            done=done,
        )
        self.samples.append(Sample(self.now, self.desired, running, data.visible, data.inflight))
        rule = self.policy.breached(data)
        for name in self.breaches:
            self.breaches[name] = self.breaches[name] + 1 if name == rule else 0
        if rule is None:
            return
        p = self.policy
        periods = {
            "wake": p.wake_evaluation_periods,
            "out": p.scale_out_evaluation_periods,
            "in": p.scale_in_evaluation_periods,
        }[rule]
        cooldown = p.scale_in_cooldown_seconds if rule == "in" else p.scale_out_cooldown_seconds
        if self.breaches[rule] < periods or self.now - self.last_action[rule] < cooldown:
            return
        after = p.adjust(rule, self.desired, data)
        if after == self.desired:
            return
        self.actions.append(ScaleAction(self.now, rule, self.desired, after, data, running))
        self.last_action[rule] = self.now
        self.desired = after
        self.reconcile()

    # -- the loop --
    def settled(self) -> bool:
        return self.next_upload >= len(self.uploads) and not self.queue and self.desired == 0 and not self.live

    def run(self) -> Result:
        self.next_upload = 0
        uploads, n = self.uploads, len(self.uploads)
        self.at(0.0, "evaluate")
        while self.events or self.next_upload < n:
            # Uploads are already in time order: take the next one unless an event comes first.
            if self.next_upload < n and (not self.events or uploads[self.next_upload].at < self.events[0][0]):
                upload = uploads[self.next_upload]
                if upload.at > self.model.max_sim_seconds:
                    break
                self.next_upload += 1
                self.now = upload.at
                job = Job(len(self.jobs), self.now, upload.audio_s)
                self.jobs.append(job)
                split = job.audio_s > self.model.chunk_threshold_s
                self.enqueue(Message(job, "split" if split else "whole", job.audio_s, self.now))
                self.dispatch()
                continue
            when, _, kind, payload = heapq.heappop(self.events)
            if when > self.model.max_sim_seconds:
                break
            self.now = when
            if kind == "ready":
                worker = self.workers[payload]  # type: ignore[index]
                if worker.state == "starting":
                    worker.started = self.now
                    self.set_idle(worker)
            elif kind == "done":
                worker_id, message_id = payload  # type: ignore[misc]
                worker = self.workers[worker_id]
                if worker.message is not None and worker.message.id == message_id:
                    self.finish(worker, worker.message)
            elif kind == "expire":
                self.expire_lingering()
            elif kind == "evaluate":
                self.evaluate()
                if not self.settled():
                    self.at(self.now + self.policy.period_seconds, "evaluate")
            self.dispatch()
        running = sum(1 for w in self.live.values() if w.state in ("idle", "busy"))
        self.samples.append(Sample(self.now, self.desired, running, len(self.queue), self.busy))
        return self.result()

    def result(self) -> Result:
        end = self.now
        for instance in self.instances:
            if instance.released is None:
                instance.released = instance.linger_until if instance.linger_until is not None else end
        for worker in self.workers.values():
            if worker.started is not None and worker.stopped is None:
                worker.stopped = end
            if worker.state == "busy":  # cut off by max_sim_seconds
                self.busy_seconds += end - worker.busy_since
        billed = sum(
            max(EC2_MINIMUM_BILLED_SECONDS, i.released - i.launched) for i in self.instances if i.released is not None
        )
        worked = sum(
            w.stopped - w.started for w in self.workers.values() if w.started is not None and w.stopped is not None
        )
        done = [j for j in self.jobs if j.finished is not None]
        zero = [a.at for a in self.actions if a.after == 0]
        transcribe = sum(max(TRANSCRIBE_MINIMUM_SECONDS, j.audio_s) for j in self.jobs) / 60 * TRANSCRIBE_USD_PER_MINUTE
        return Result(
            scenario=self.name,
            policy=self.policy,
            model=self.model,
            jobs=len(self.jobs),
            audio_hours=sum(j.audio_s for j in self.jobs) / 3600,
            upload_gb=sum(u.bytes for u in self.uploads) / 1e9,
            peak_uploads_per_s=peak_rate(u.at for u in self.uploads),
            max_backlog=self.max_backlog,
            max_desired=max([self.policy.min_workers, *(a.after for a in self.actions)]),
            max_running=max([0, *(s.running for s in self.samples)]),
            queue_waits=self.waits,
            turnarounds=[j.finished - j.arrived for j in done if j.finished is not None],
            worker_hours=worked / 3600,
            busy_hours=self.busy_seconds / 3600,
            instance_hours=billed / 3600,
            on_demand_instance_hours=mixed_on_demand_hours(self.instances, self.model),
            actions=self.actions,
            samples=self.samples,
            handed_back=self.handed_back,
            unfinished=len(self.jobs) - len(done),
            ended_at=end,
            idle_again_at=zero[-1] if zero and self.desired == 0 else None,
            transcribe_cost=transcribe,
            days=self.days,
        )


def simulate(
    uploads: Iterable[Upload],
    policy: ScalingPolicy = DEFAULT_POLICY,
    model: FleetModel = FleetModel(),
    name: str = "",
    days: float | None = None,
) -> Result:
    return Simulation(uploads, policy, model, name, days).run()


# -- reporting -------------------------------------------------------------------------------------
def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def as_dict(r: Result) -> dict:
    """The machine-readable summary of one run (`--json`)."""
    per_audio_hour = (lambda cost: round(cost / r.audio_hours, 4)) if r.audio_hours else (lambda cost: None)
    monthly = r.monthly(r.cost_deployed_mix)
    # What the work alone costs at spot prices: busy worker-hours, no idle, no start-up, no on-demand.
    floor = r.monthly(r.busy_hours * r.model.spot_usd_per_hour)
    return {
        "scenario": r.scenario,
        "real_time_factor": r.model.real_time_factor,
        "jobs": r.jobs,
        "audio_hours": round(r.audio_hours, 1),
        "upload_gb": round(r.upload_gb, 1),
        "peak_uploads_per_s": round(r.peak_uploads_per_s, 2),
        "max_backlog": r.max_backlog,
        "max_workers": r.max_desired,
        "max_running": r.max_running,
        "scale_actions": len(r.actions),
        "p50_queue_wait_s": round(r.wait(50), 1),
        "p95_queue_wait_s": round(r.wait(95), 1),
        "p50_turnaround_s": round(r.turnaround(50), 1),
        "p95_turnaround_s": round(r.turnaround(95), 1),
        "p99_turnaround_s": round(r.turnaround(99), 1),
        "max_turnaround_s": round(max(r.turnarounds, default=0.0), 1),
        "worker_hours": round(r.worker_hours, 1),
        "busy_worker_hours": round(r.busy_hours, 1),
        "idle_worker_hours": round(r.idle_hours, 1),
        "idle_to_busy": round(r.idle_ratio, 3),
        "instance_hours": round(r.instance_hours, 1),
        "instance_type": r.model.instance_type,
        "cost_usd_on_demand": round(r.cost_on_demand, 2),
        "cost_usd_spot": round(r.cost_spot, 2),
        "cost_usd_deployed_mix": round(r.cost_deployed_mix, 2),
        "cost_usd_per_audio_hour_deployed_mix": per_audio_hour(r.cost_deployed_mix),
        "cost_usd_per_month_deployed_mix": round(monthly, 0) if monthly is not None else None,
        "cost_usd_per_month_busy_hours_at_spot": round(floor, 0) if floor is not None else None,
        "transcribe_usd": round(r.transcribe_cost, 2),
        "transcribe_usd_per_audio_hour": per_audio_hour(r.transcribe_cost),
        "handed_back": r.handed_back,
        "unfinished": r.unfinished,
    }


COLUMNS = (
    ("scenario", lambda d: d["scenario"]),
    ("speed", lambda d: f"{d['real_time_factor']:g}x"),
    ("jobs", lambda d: f"{d['jobs']:,}"),
    ("audio h", lambda d: f"{d['audio_hours']:,.0f}"),
    ("peak uploads/s", lambda d: f"{d['peak_uploads_per_s']:.1f}"),
    ("max workers", lambda d: str(d["max_workers"])),
    ("queue wait p95", lambda d: _duration(d["p95_queue_wait_s"])),
    ("turnaround p50", lambda d: _duration(d["p50_turnaround_s"])),
    ("turnaround p95", lambda d: _duration(d["p95_turnaround_s"])),
    ("busy worker-h", lambda d: f"{d['busy_worker_hours']:,.1f}"),
    ("idle/busy", lambda d: f"{100 * d['idle_to_busy']:.0f} %"),
    ("billed instance-h", lambda d: f"{d['instance_hours']:,.1f}"),
    ("on-demand $", lambda d: f"{d['cost_usd_on_demand']:,.2f}"),
    ("spot $", lambda d: f"{d['cost_usd_spot']:,.2f}"),
    ("deployed mix $", lambda d: f"{d['cost_usd_deployed_mix']:,.2f}"),
    ("mix $/audio h", lambda d: _maybe(d["cost_usd_per_audio_hour_deployed_mix"], "{:.3f}")),
    ("mix $/month", lambda d: _maybe(d["cost_usd_per_month_deployed_mix"], "{:,.0f}")),
    ("floor $/month", lambda d: _maybe(d["cost_usd_per_month_busy_hours_at_spot"], "{:,.0f}")),
    ("Transcribe $", lambda d: f"{d['transcribe_usd']:,.2f}"),
)


def _maybe(value: float | None, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def render(rows: list[dict], markdown: bool) -> str:
    table = [[name for name, _ in COLUMNS], *([cell(d) for _, cell in COLUMNS] for d in rows)]
    if markdown:
        lines = ["| " + " | ".join(table[0]) + " |", "|" + "---|" * len(COLUMNS)]
        lines += ["| " + " | ".join(r) + " |" for r in table[1:]]
        return "\n".join(lines)
    # Transposed for a terminal: one column per run.
    width = max(len(name) for name, _ in COLUMNS)
    out = []
    for i, (name, _) in enumerate(COLUMNS):
        out.append(f"{name:<{width}}  " + "  ".join(f"{r[i]:>38}" for r in table[1:]))
    return "\n".join(out)


def check_targets(rows: list[dict]) -> list[dict]:
    """The issue's targets against the runs at the model's own speed (the first run of each scenario)."""
    first: dict[str, dict] = {}
    for d in rows:
        first.setdefault(d["scenario"], d)
    mission = first.get(SCENARIOS["mission"].name)
    spike = first.get(SCENARIOS["spike"].name)
    out = []
    if mission:
        out.append(_target("mission p95 upload-to-transcript (s)", mission["p95_turnaround_s"]))
        out.append(_target("mission monthly cost, deployed mix ($)", mission["cost_usd_per_month_deployed_mix"]))
        out.append(_target("idle worker-hours / busy worker-hours", mission["idle_to_busy"], "mission"))
    if spike:
        out.append(_target("spike p95 upload-to-transcript (s)", spike["p95_turnaround_s"]))
        out.append(_target("idle worker-hours / busy worker-hours", spike["idle_to_busy"], "spike"))
    return out


def control_plane(d: dict) -> dict:
    """What the API needs at a day's busiest minute if every uploader keeps a tab open until the
    transcript is ready (the worst case: each tab polls on its own)."""
    tabs = d["peak_uploads_per_s"] * (UPLOAD_S + d["p95_turnaround_s"])
    requests = tabs / POLL_INTERVAL_S + d["peak_uploads_per_s"]  # polls + POST /jobs
    return {
        "peak uploads/s (busiest minute)": round(d["peak_uploads_per_s"], 1),
        "tabs polling (uploads/s x (upload + p95 turnaround))": round(tabs),
        "API requests/s (polls every POLL_MS + creates)": round(requests),
        "Lambda concurrency (requests/s x seconds per request)": math.ceil(requests * API_SECONDS_PER_REQUEST),
        "one local handler container, requests/s (measured)": LOCAL_REQUESTS_PER_CONTAINER_S,
        "containers at the local per-container rate": math.ceil(requests / LOCAL_REQUESTS_PER_CONTAINER_S),
        "emails/day (one per job)": d["jobs"],
        "emails/s at the peak": round(d["peak_uploads_per_s"], 1),
    }


def _target(name: str, value: float, run: str = "") -> dict:
    limit = TARGETS[name]
    return {"target": name + (f" ({run})" if run else ""), "limit": limit, "value": value, "met": value <= limit}


def parse_overrides(pairs: list[str], cls) -> dict:
    kinds = {f.name: f.type for f in dataclasses.fields(cls)}
    values: dict = {}
    for pair in pairs:
        key, _, raw = pair.partition("=")
        if key not in kinds:
            continue
        kind = str(kinds[key])
        values[key] = float(raw) if "float" in kind else raw if kind == "str" else int(raw)
    return values


def runs_for(chosen: list[str], speeds: tuple[float, ...]) -> list[tuple[Scenario, float | None]]:
    """Each scenario at the model's speed, then the mission and spike days at the other swept speeds."""
    out: list[tuple[Scenario, float | None]] = [(SCENARIOS[k], None) for k in chosen]
    out += [(SCENARIOS[k], s) for k in chosen if k in SWEPT for s in speeds]
    return out


def _arguments(argv: list[str] | None) -> tuple[argparse.Namespace, ScalingPolicy, FleetModel, tuple[float, ...]]:
    """The command line, the policy and fleet with their --set overrides, and the swept speeds."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--scenario", choices=["all", *SCENARIOS], default="all")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a ScalingPolicy or FleetModel field (repeatable)",
    )
    parser.add_argument("--speeds", default=",".join(f"{s:g}" for s in SPEED_SWEEP), help="swept real-time factors")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--markdown", action="store_true", help="print the markdown tables of docs/loadtests.md")
    output.add_argument("--json", action="store_true", help="print a JSON array, one object per run")
    parser.add_argument("--actions", action="store_true", help="also print every scaling action")
    args = parser.parse_args(argv)

    known = {f.name for f in dataclasses.fields(ScalingPolicy)} | {f.name for f in dataclasses.fields(FleetModel)}
    unknown = [p for p in args.set if p.partition("=")[0] not in known]
    if unknown:
        parser.error(f"unknown field(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    try:
        policy = dataclasses.replace(deployed_policy(), **parse_overrides(args.set, ScalingPolicy))
        model = dataclasses.replace(FleetModel(), **parse_overrides(args.set, FleetModel))
        speeds = tuple(float(s) for s in args.speeds.split(",") if s.strip())
    except ValueError as err:
        parser.error(str(err))
    if model.instance_type not in INSTANCE_PRICES:
        parser.error(f"instance_type must be one of {', '.join(INSTANCE_PRICES)}")
    return args, policy, model, speeds


def _print_targets(rows: list[dict], markdown: bool) -> None:
    targets = check_targets(rows)
    if targets:
        print()
        if markdown:
            print("| target | limit | measured | met |\n|---|---|---|---|")
            for t in targets:
                print(f"| {t['target']} | {t['limit']:,} | {t['value']:,} | {'yes' if t['met'] else 'NO'} |")
        else:
            for t in targets:
                print(f"{t['target']}: {t['value']:,} (limit {t['limit']:,}) {'met' if t['met'] else 'MISSED'}")


def _print_control_plane(rows: list[dict], markdown: bool) -> None:
    spike = next((d for d in rows if d["scenario"] == SCENARIOS["spike"].name), None)
    if spike:
        print(f"\ncontrol plane at the spike day's peak ({spike['real_time_factor']:g}x):")
        needs = control_plane(spike)
        if markdown:
            print("| quantity | value |\n|---|---|")
        for name, value in needs.items():
            print(f"| {name} | {value:,} |" if markdown else f"  {name}: {value:,}")


def _print_leftovers_and_actions(results: list[Result], actions: bool) -> None:
    for r in results:
        if r.unfinished or r.handed_back:
            print(f"\n{r.scenario}: {r.unfinished} jobs unfinished at the end, {r.handed_back} messages handed back")
        if actions:
            print(f"\n{r.scenario} at {r.model.real_time_factor:g}x: scaling actions")
            for a in r.actions:
                print(
                    f"  t={_duration(a.at):>8}  {a.rule:<4} {a.before:>3} -> {a.after:<3} "
                    f"(running {a.running}, visible {a.data.visible}, in flight {a.data.inflight}, "
                    f"wait {r.policy.expected_wait(a.data):.0f} s)"
                )


def main(argv: list[str] | None = None) -> int:
    args, policy, model, speeds = _arguments(argv)
    chosen = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    speeds = tuple(s for s in speeds if s != model.real_time_factor)
    results = []
    for scenario, speed in runs_for(chosen, speeds):
        run_model = model if speed is None else dataclasses.replace(model, real_time_factor=speed)
        results.append(simulate(scenario.make(), policy, run_model, scenario.name, scenario.days))
    rows = [as_dict(r) for r in results]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    on_demand, spot = INSTANCE_PRICES[model.instance_type]
    print(f"policy: {policy}")
    print(f"fleet:  {model}")
    print(
        f"prices (list prices, us-east-1, as of {PRICES_AS_OF}): {model.instance_type} ${on_demand}/h on-demand, "
        f"${spot}/h spot; deployed mix: {model.on_demand_base} on-demand + "
        f"{model.on_demand_percent_above_base} % of the rest; Amazon Transcribe ${TRANSCRIBE_USD_PER_MINUTE}/min "
        f"(${TRANSCRIBE_USD_PER_MINUTE * 60:.2f}/audio h); G-instance vCPU quota for {policy.max_workers} workers: "
        f"{vcpu_quota(policy.max_workers, GPU_INSTANCE_VCPUS)}\n"
    )
    print(render(rows, args.markdown))
    _print_targets(rows, args.markdown)
    _print_control_plane(rows, args.markdown)
    _print_leftovers_and_actions(results, args.actions)
    return 0


if __name__ == "__main__":
    sys.exit(main())
