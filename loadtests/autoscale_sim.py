"""A deterministic simulator of the GPU worker fleet scaling on queue backlog.

It replays `hark.scaling.ScalingPolicy` (the policy the CDK app deploys) against traffic shapes and
reports what a user waits and what the fleet costs, next to Amazon Transcribe's per-minute price.

What is modelled (each a named parameter of `FleetModel`):
- the alarms: every `period_seconds` the metrics (visible messages, messages in flight, running
  tasks) go through `ScalingPolicy.decide()`; a rule acts after its evaluation periods in a row and
  outside its cooldown, changing the ECS service's desired count by `ScalingPolicy.step(desired)`
  (Application Auto Scaling applies a step to the current desired count), or waking the fleet from
  zero with `wake_workers`;
- capacity: a new task waits `start_delay_s` for its g4dn instance (capacity provider, boot, ECS
  agent, image pull, model load); an empty instance stays up `instance_linger_s` before the capacity
  provider removes it, and a task placed on it starts in `warm_start_s`;
- the work, as the transcription worker does it: a recording up to `chunk_threshold_s` is one message
  taking `overhead_s + audio / real_time_factor`; a longer one is a split message (decode, VAD, cut:
  `audio / split_rtf`) that queues ~`chunk_target_s` chunk messages, transcribed in parallel;
- scale-in: ECS stops idle tasks first; a busy task finishes its message if it can within
  `stop_timeout_s` (the task's stopTimeout), else hands it back to the queue (counted);
- billing: per instance-second from launch to release, 60 s minimum (EC2 Linux on-demand and spot).

Deterministic: traffic comes from a seeded `random.Random`, events are ordered by (time, sequence).
Pure Python, a full run of every scenario takes a few seconds.

    .venv/bin/python -m loadtests.autoscale_sim                 # every scenario, the deployed policy
    .venv/bin/python -m loadtests.autoscale_sim --markdown      # the table in docs/loadtests.md
    .venv/bin/python -m loadtests.autoscale_sim --set scale_out_backlog=30 --set scale_in_backlog=5
"""

from __future__ import annotations

import argparse
import dataclasses
import heapq
import math
import random
import sys
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from hark.scaling import DEFAULT_POLICY, ScalingPolicy
from hark.settings import Settings

# -- prices (us-east-1, Linux, USD) -----------------------------------------------------------------
# AWS list prices as published on the AWS pricing pages; not re-read on PRICES_AS_OF (no internet on
# the build machines): check https://aws.amazon.com/ec2/pricing/on-demand/, the Spot price history
# (`aws ec2 describe-spot-price-history --instance-types g4dn.xlarge`) and
# https://aws.amazon.com/transcribe/pricing/ before relying on them.
PRICES_AS_OF = "2026-11-23"
G4DN_XLARGE_ON_DEMAND_USD_PER_HOUR = 0.526  # unchanged since g4dn's launch (2019)
G4DN_XLARGE_SPOT_USD_PER_HOUR = 0.21  # typical recent us-east-1 spot price (varies by AZ and week)
TRANSCRIBE_USD_PER_MINUTE = 0.024  # Amazon Transcribe batch, standard, tier 1 (first 250,000 min/month)
TRANSCRIBE_MINIMUM_SECONDS = 15  # Transcribe bills per second, at least 15 s per request
EC2_MINIMUM_BILLED_SECONDS = 60

_SETTINGS = Settings.model_fields  # defaults only: the simulation must not depend on HARK_* variables


@dataclass(frozen=True)
class FleetModel:
    start_delay_s: float = 300.0  # desired count up -> task RUNNING on a new g4dn (CAS ~60 s, boot, pull, load)
    warm_start_s: float = 30.0  # ... on an instance still up (image cached, model load only)
    instance_linger_s: float = 900.0  # an empty instance stays until the capacity provider scales in
    real_time_factor: float = 40.0  # audio seconds per second, Whisper large-v3-turbo batched fp16 on a T4
    overhead_s: float = 3.0  # per message: S3 get, decode, four transcript writes, DynamoDB, SQS
    split_rtf: float = 300.0  # split message: decode + VAD + FLAC chunks, audio seconds per second
    chunk_threshold_s: float = _SETTINGS["chunk_threshold_seconds"].default
    chunk_target_s: float = _SETTINGS["chunk_target_seconds"].default
    stop_timeout_s: float = _SETTINGS["stop_timeout_seconds"].default
    on_demand_usd_per_hour: float = G4DN_XLARGE_ON_DEMAND_USD_PER_HOUR
    spot_usd_per_hour: float = G4DN_XLARGE_SPOT_USD_PER_HOUR
    max_sim_seconds: float = 4 * 24 * 3600  # hard stop (a policy that never drains still ends)


# -- traffic ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Upload:
    at: float  # seconds from the start
    audio_s: float


def audio_lengths(rng: random.Random, n: int, median_s: float = 480, sigma: float = 1.0) -> list[float]:
    """Recording lengths: log-normal, median 8 min (voice memos to meetings and lectures), 5 s to 4 h."""
    mu = math.log(median_s)
    return [min(4 * 3600.0, max(5.0, rng.lognormvariate(mu, sigma))) for _ in range(n)]


def steady_day(n: int = 2400, seed: int = 1) -> list[Upload]:
    """A working day: `n` uploads over 24 h, quiet at night, peaking early afternoon (about 3x mean)."""
    rng = random.Random(seed)
    weights = [0.08 + max(0.0, math.sin(math.pi * (m / 60 - 7) / 14)) ** 1.5 for m in range(1440)]
    minutes = rng.choices(range(1440), weights=weights, k=n)
    times = sorted(m * 60 + rng.random() * 60 for m in minutes)
    return [Upload(t, a) for t, a in zip(times, audio_lengths(rng, n))]


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


SCENARIOS: dict[str, Callable[[], list[Upload]]] = {
    "steady day (2,400 uploads/24 h)": steady_day,
    "burst (5,000 uploads in 10 min)": burst,
    "idle night (6 uploads/8 h)": idle_night,
}


# -- the simulation --------------------------------------------------------------------------------
@dataclass
class Job:
    id: int
    arrived: float
    audio_s: float
    chunks_left: int = 0
    started: float | None = None
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
    busy_until: float = 0.0
    draining: bool = False


@dataclass(frozen=True)
class ScaleAction:
    at: float
    rule: str  # wake | out | in
    before: int  # desired count before
    after: int
    running: int
    visible: int
    inflight: int


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
    max_backlog: int
    max_desired: int
    max_running: int
    queue_waits: list[float]  # per message: enqueued -> picked up
    turnarounds: list[float]  # per job: uploaded -> transcript written
    worker_hours: float  # tasks RUNNING
    instance_hours: float  # billed: launch -> release, 60 s minimum each
    actions: list[ScaleAction]
    samples: list[Sample]
    handed_back: int
    unfinished: int
    ended_at: float
    idle_again_at: float | None  # when the desired count last reached 0 (after the last job finished)

    @property
    def cost_on_demand(self) -> float:
        return self.instance_hours * self.model.on_demand_usd_per_hour

    @property
    def cost_spot(self) -> float:
        return self.instance_hours * self.model.spot_usd_per_hour

    transcribe_cost: float = 0.0

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


class Simulation:
    def __init__(
        self,
        uploads: Iterable[Upload],
        policy: ScalingPolicy = DEFAULT_POLICY,
        model: FleetModel = FleetModel(),
        name: str = "",
    ):
        self.policy, self.model, self.name = policy, model, name
        self.uploads = sorted(uploads, key=lambda u: u.at)
        self.now = 0.0
        self.events: list[tuple[float, int, str, object]] = []
        self._seq = 0
        self.queue: deque[Message] = deque()
        self.workers: dict[int, Worker] = {}
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
        self._ids = 0

    # -- plumbing --
    def at(self, when: float, kind: str, payload: object = None) -> None:
        self._seq += 1
        heapq.heappush(self.events, (when, self._seq, kind, payload))

    def next_id(self) -> int:
        self._ids += 1
        return self._ids

    def running(self) -> list[Worker]:
        return [w for w in self.workers.values() if w.state in ("idle", "busy")]

    def active(self) -> list[Worker]:
        """Tasks that count toward the desired count (not draining, not stopped)."""
        return [w for w in self.workers.values() if w.state != "stopped" and not w.draining]

    # -- work --
    def enqueue(self, message: Message) -> None:
        message.id = self.next_id()
        self.queue.append(message)
        self.max_backlog = max(self.max_backlog, len(self.queue))

    def service_time(self, message: Message) -> float:
        if message.kind == "split":
            return self.model.overhead_s + message.audio_s / self.model.split_rtf
        return self.model.overhead_s + message.audio_s / self.model.real_time_factor

    def dispatch(self) -> None:
        for worker in sorted(self.workers.values(), key=lambda w: w.id):
            if not self.queue:
                return
            if worker.state == "idle" and not worker.draining:
                message = self.queue.popleft()
                self.waits.append(self.now - message.enqueued)
                if message.job.started is None:
                    message.job.started = self.now
                worker.state, worker.message = "busy", message
                worker.busy_until = self.now + self.service_time(message)
                self.at(worker.busy_until, "done", (worker.id, message.id))

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
        worker.message = None
        if worker.draining:
            self.stop(worker)
        else:
            worker.state = "idle"

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
        self.release(worker.instance)

    def reconcile(self) -> None:
        active = self.active()
        if len(active) < self.desired:
            for _ in range(self.desired - len(active)):
                instance, delay = self.take_instance()
                worker = Worker(self.next_id(), instance, ready_at=self.now + delay)
                self.workers[worker.id] = worker
                self.at(worker.ready_at, "ready", worker.id)
        elif len(active) > self.desired:
            # ECS stops tasks not yet running first, then idle ones, then the busy ones closest to done.
            order = {"starting": 0, "idle": 1, "busy": 2}
            victims = sorted(active, key=lambda w: (order[w.state], w.busy_until, -w.id))
            for worker in victims[: len(active) - self.desired]:
                if worker.state in ("starting", "idle"):
                    self.stop(worker)
                elif worker.busy_until - self.now <= self.model.stop_timeout_s:
                    worker.draining = True  # finishes its message, then exits
                else:  # SIGTERM: the worker hands its message back and exits
                    message = worker.message
                    worker.message = None
                    self.handed_back += 1
                    self.stop(worker)
                    message.enqueued = self.now
                    self.enqueue(message)  # a fresh id: the pending "done" event no longer matches

    # -- the alarms --
    def evaluate(self) -> None:
        running = self.running()
        tasks, visible = len(running), len(self.queue)
        inflight = sum(1 for w in running if w.state == "busy")
        self.samples.append(Sample(self.now, self.desired, tasks, visible, inflight))
        target = self.policy.decide(tasks, visible, inflight)
        rule = None
        if target > tasks:
            rule = "wake" if tasks == 0 else "out"
        elif target < tasks:
            rule = "in"
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
        cooldown = {
            "wake": p.scale_out_cooldown_seconds,
            "out": p.scale_out_cooldown_seconds,
            "in": p.scale_in_cooldown_seconds,
        }[rule]
        if self.breaches[rule] < periods or self.now - self.last_action[rule] < cooldown:
            return
        if rule == "wake":
            after = max(self.desired, p.wake_workers)
        elif rule == "out":
            after = self.desired + p.step(self.desired)
        else:
            after = self.desired - p.step(self.desired)
        after = max(p.min_workers, min(p.max_workers, after))
        if after == self.desired:
            return
        self.actions.append(ScaleAction(self.now, rule, self.desired, after, tasks, visible, inflight))
        self.last_action[rule] = self.now
        self.desired = after
        self.reconcile()

    # -- the loop --
    def settled(self) -> bool:
        return (
            self.next_upload >= len(self.uploads)
            and not self.queue
            and self.desired == 0
            and all(w.state == "stopped" for w in self.workers.values())
        )

    def run(self) -> Result:
        self.next_upload = 0
        for upload in self.uploads:
            self.at(upload.at, "upload", upload)
        self.at(0.0, "evaluate")
        while self.events:
            when, _, kind, payload = heapq.heappop(self.events)
            if when > self.model.max_sim_seconds:
                break
            self.now = when
            if kind == "upload":
                self.next_upload += 1
                job = Job(len(self.jobs), self.now, payload.audio_s)
                self.jobs.append(job)
                split = job.audio_s > self.model.chunk_threshold_s
                self.enqueue(Message(job, "split" if split else "whole", job.audio_s, self.now))
            elif kind == "ready":
                worker = self.workers[payload]
                if worker.state == "starting":
                    worker.state, worker.started = "idle", self.now
            elif kind == "done":
                worker_id, message_id = payload
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
        running = self.running()
        self.samples.append(
            Sample(self.now, self.desired, len(running), len(self.queue), sum(1 for w in running if w.state == "busy"))
        )
        return self.result()

    def result(self) -> Result:
        end = self.now
        for instance in self.instances:
            if instance.released is None:
                instance.released = instance.linger_until if instance.linger_until is not None else end
        for worker in self.workers.values():
            if worker.started is not None and worker.stopped is None:
                worker.stopped = end
        billed = sum(max(EC2_MINIMUM_BILLED_SECONDS, i.released - i.launched) for i in self.instances)
        worked = sum(w.stopped - w.started for w in self.workers.values() if w.started is not None)
        done = [j for j in self.jobs if j.finished is not None]
        zero = [a.at for a in self.actions if a.after == 0]
        transcribe = sum(max(TRANSCRIBE_MINIMUM_SECONDS, j.audio_s) for j in self.jobs) / 60 * TRANSCRIBE_USD_PER_MINUTE
        return Result(
            scenario=self.name,
            policy=self.policy,
            model=self.model,
            jobs=len(self.jobs),
            audio_hours=sum(j.audio_s for j in self.jobs) / 3600,
            max_backlog=self.max_backlog,
            max_desired=max([self.policy.min_workers, *(a.after for a in self.actions)]),
            max_running=max([0, *(s.running for s in self.samples)]),
            queue_waits=self.waits,
            turnarounds=[j.finished - j.arrived for j in done],
            worker_hours=worked / 3600,
            instance_hours=billed / 3600,
            actions=self.actions,
            samples=self.samples,
            handed_back=self.handed_back,
            unfinished=len(self.jobs) - len(done),
            ended_at=end,
            idle_again_at=zero[-1] if zero and self.desired == 0 else None,
            transcribe_cost=transcribe,
        )


def simulate(
    uploads: Iterable[Upload], policy: ScalingPolicy = DEFAULT_POLICY, model: FleetModel = FleetModel(), name: str = ""
) -> Result:
    return Simulation(uploads, policy, model, name).run()


# -- reporting -------------------------------------------------------------------------------------
def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


COLUMNS = (
    "scenario",
    "jobs",
    "audio h",
    "max backlog",
    "max workers",
    "scale actions",
    "queue wait p50",
    "queue wait p95",
    "turnaround p95",
    "worker-h",
    "billed instance-h",
    "on-demand $",
    "spot $",
    "$/audio h on-demand",
    "$/audio h spot",
    "Transcribe $",
    "Transcribe $/audio h",
)


def row(r: Result) -> list[str]:
    per = (lambda cost: f"{cost / r.audio_hours:.3f}") if r.audio_hours else (lambda cost: "-")
    return [
        r.scenario,
        f"{r.jobs:,}",
        f"{r.audio_hours:,.1f}",
        f"{r.max_backlog:,}",
        str(r.max_desired),
        str(len(r.actions)),
        _duration(r.wait(50)),
        _duration(r.wait(95)),
        _duration(r.turnaround(95)),
        f"{r.worker_hours:.1f}",
        f"{r.instance_hours:.1f}",
        f"{r.cost_on_demand:,.2f}",
        f"{r.cost_spot:,.2f}",
        per(r.cost_on_demand),
        per(r.cost_spot),
        f"{r.transcribe_cost:,.2f}",
        per(r.transcribe_cost),
    ]


def render(results: list[Result], markdown: bool) -> str:
    rows = [list(COLUMNS), *(row(r) for r in results)]
    if markdown:
        lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(COLUMNS)]
        lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
        return "\n".join(lines)
    # Transposed for a terminal: one column per scenario.
    width = max(len(c) for c in COLUMNS)
    out = []
    for i, name in enumerate(COLUMNS):
        values = [r[i] for r in rows[1:]]
        out.append(f"{name:<{width}}  " + "  ".join(f"{v:>34}" for v in values))
    return "\n".join(out)


def parse_overrides(pairs: list[str], cls):
    kinds = {f.name: f.type for f in dataclasses.fields(cls)}
    values = {}
    for pair in pairs:
        key, _, raw = pair.partition("=")
        if key not in kinds:
            continue
        values[key] = float(raw) if "float" in str(kinds[key]) else int(raw)
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=["all", "steady", "burst", "night"], default="all")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a ScalingPolicy or FleetModel field (repeatable)",
    )
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    parser.add_argument("--actions", action="store_true", help="also print every scaling action")
    args = parser.parse_args(argv)

    known = {f.name for f in dataclasses.fields(ScalingPolicy)} | {f.name for f in dataclasses.fields(FleetModel)}
    unknown = [p for p in args.set if p.partition("=")[0] not in known]
    if unknown:
        parser.error(f"unknown field(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    policy = dataclasses.replace(DEFAULT_POLICY, **parse_overrides(args.set, ScalingPolicy))
    model = dataclasses.replace(FleetModel(), **parse_overrides(args.set, FleetModel))

    names = list(SCENARIOS)
    chosen = {"all": names, "steady": names[:1], "burst": names[1:2], "night": names[2:3]}[args.scenario]
    results = [simulate(SCENARIOS[name](), policy, model, name) for name in chosen]
    print(f"policy: {policy}")
    print(f"fleet:  {model}")
    print(
        f"prices ({PRICES_AS_OF}, us-east-1): g4dn.xlarge ${model.on_demand_usd_per_hour}/h on-demand, "
        f"${model.spot_usd_per_hour}/h spot; Amazon Transcribe ${TRANSCRIBE_USD_PER_MINUTE}/min "
        f"(${TRANSCRIBE_USD_PER_MINUTE * 60:.2f}/audio h)\n"
    )
    print(render(results, args.markdown))
    for r in results:
        if r.unfinished or r.handed_back:
            print(f"\n{r.scenario}: {r.unfinished} jobs unfinished at the end, {r.handed_back} messages handed back")
        if args.actions:
            print(f"\n{r.scenario}: scaling actions")
            for a in r.actions:
                print(
                    f"  t={_duration(a.at):>8}  {a.rule:<4} {a.before:>3} -> {a.after:<3} "
                    f"(running {a.running}, visible {a.visible})"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
