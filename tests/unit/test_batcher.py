"""The engine's batch scheduler (worker/transcription/engine.py, Batcher): pieces of every job in flight
fill one batch, one piece per job per turn, so a long job's pieces are interleaved with short ones; and
its audio budget (AudioBudget)."""

from __future__ import annotations

import os
import threading
import time
from types import SimpleNamespace

import numpy as np

from hark.domain.settings import Settings
from worker.transcription.engine import (
    AudioBudget,
    Batcher,
    DecodeOptions,
    Group,
    JobRun,
    ModelSlots,
    Piece,
    replica_threads,
    resolve_replicas,
)


class Recorder:
    """What the batcher hands the model: the engine's settings, and a decode that records each batch."""

    def __init__(self, batch_size: int, fail_on: str | None = None, replicas: int = 1):
        self.settings = Settings(batch_size=batch_size, model_replicas=replicas)
        self.replicas = replicas
        self.batches: list[list[str]] = []
        self.fail_on = fail_on
        self.gate: threading.Event | None = None  # set: a batch waits for it before it returns
        self.running: list[list[str]] = []  # the batches being decoded now
        self.overlapped: list[tuple[list[str], list[str]]] = []  # pairs of batches decoded at the same time
        self._lock = threading.Lock()

    def engine(self) -> SimpleNamespace:
        return SimpleNamespace(
            settings=self.settings, decode=self.decode, replicas=self.replicas, slots=ModelSlots(self.replicas)
        )

    def decode(self, pieces: list[Piece]) -> None:
        names = [p.group.language for p in pieces]  # the tests name each piece by its group's "language"
        with self._lock:
            self.batches.append(names)
            self.overlapped += [(other, names) for other in self.running]
            self.running.append(names)
        if self.gate is not None:
            self.gate.wait(10)
        with self._lock:
            self.running.remove(names)
        if self.fail_on and any(n.startswith(self.fail_on) for n in names):
            raise RuntimeError("the model failed")
        for p in pieces:
            p.segments = []


def job(name: str, pieces: int, prompt_tokens: int = 0) -> JobRun:
    run = JobRun(samples=np.zeros(16000, dtype=np.float32), options=DecodeOptions(), prompt_tokens=prompt_tokens)
    for i in range(pieces):
        group = Group(language=f"{name}{i}", speech=None)
        group.pieces.append(Piece(run, group, np.zeros((80, 10), dtype=np.float32), float(i), 1.0))
        run.groups.append(group)
    return run


def submit_together(batcher: Batcher, runs: list[JobRun]) -> None:
    with batcher._ready:  # the batcher's lock is re-entrant: it takes nothing until all are queued
        for run in runs:
            batcher.submit(run)


def test_a_long_job_shares_batches_with_short_ones_round_robin():
    model = Recorder(batch_size=4)
    batcher = Batcher(model.engine())
    long, shorts = job("L", 7), [job(f"s{n}", 1) for n in range(3)]
    submit_together(batcher, [long, *shorts])
    for run in [long, *shorts]:
        run.wait()
    assert model.batches == [["L0", "s00", "s10", "s20"], ["L1", "L2", "L3", "L4"], ["L5", "L6"]]


def test_jobs_whose_prompts_differ_in_length_never_share_a_batch():
    """CTranslate2's generate refuses a batch whose prompts put <|startoftranscript|> at different positions
    (a job with an initial prompt beside one without): such jobs wait for the next batch, in their turn."""
    model = Recorder(batch_size=4)
    batcher = Batcher(model.engine())
    plain, prompted, other, plain2 = job("a", 2), job("p", 1, prompt_tokens=9), job("q", 1, 5), job("b", 1)
    submit_together(batcher, [plain, prompted, other, plain2])
    for run in (plain, prompted, other, plain2):
        run.wait()
    assert model.batches == [["a0", "b0", "a1"], ["p0"], ["q0"]]


def test_a_failed_batch_fails_the_jobs_in_it_and_the_batcher_goes_on():
    model = Recorder(batch_size=2, fail_on="bad")
    batcher = Batcher(model.engine())
    bad, good = job("bad", 3), job("good", 3)
    submit_together(batcher, [bad, good])
    outcome: dict[str, BaseException | None] = {}
    for name, run in (("bad", bad), ("good", good)):
        try:
            run.wait()
            outcome[name] = None
        except RuntimeError as err:
            outcome[name] = err
    assert str(outcome["bad"]) == "the model failed" and outcome["good"] is not None  # shared the failed batch
    later = job("later", 2)
    batcher.submit(later)
    later.wait()  # the batcher goes on after a failure
    assert model.batches[-1] == ["later0", "later1"]


def wait_running(model: Recorder, count: int) -> None:
    deadline = time.monotonic() + 10
    while len(model.running) < count:  # batches decoding at once, held there by the gate
        assert time.monotonic() < deadline, model.batches
        time.sleep(0.01)


def test_with_two_replicas_two_batches_run_at_once_each_an_even_share_of_what_waits():
    """HARK_MODEL_REPLICAS=2: two batcher threads decode at once. A batch takes at most its share of the pieces
    waiting over the replicas free to take one (6 over 2, then 4 over 1; within batch_size 2 here), one piece per job per turn, each
    job's pieces in order; a job may be in both batches (only its word timings wait: Group.in_turn)."""
    model = Recorder(batch_size=2, replicas=2)
    model.gate = threading.Event()
    batcher = Batcher(model.engine())
    long, short1, short2 = job("L", 4), job("s", 1), job("t", 1)
    submit_together(batcher, [long, short1, short2])
    wait_running(model, 2)
    model.gate.set()
    for run in (long, short1, short2):
        run.wait()
    assert model.batches[0] == ["L0", "s0"]  # round-robin from the front
    assert model.batches[1] == ["t0", "L1"]  # the next turn: the long job again, its next piece
    assert sorted(model.overlapped[0]) == [["L0", "s0"], ["t0", "L1"]]
    long_pieces = [n for b in model.batches for n in b if n.startswith("L")]
    assert long_pieces == ["L0", "L1", "L2", "L3"]  # taken in order
    assert sorted(n for b in model.batches for n in b) == ["L0", "L1", "L2", "L3", "s0", "t0"]


def test_a_long_job_alone_is_split_evenly_across_the_replicas():
    """One long recording and nothing else: both replicas work on it (before, one batch of 8 on one replica
    left the other idle)."""
    model = Recorder(batch_size=8, replicas=2)
    model.gate = threading.Event()
    batcher = Batcher(model.engine())
    long = job("L", 6)
    submit_together(batcher, [long])
    wait_running(model, 2)
    model.gate.set()
    long.wait()
    assert model.batches == [["L0", "L1", "L2"], ["L3", "L4", "L5"]]


def pieces_of(group: Group, run: JobRun, count: int) -> list[Piece]:
    for i in range(count):
        group.pieces.append(Piece(run, group, np.zeros((80, 10), dtype=np.float32), float(i), 1.0))
    return group.pieces


def test_word_timings_of_a_group_are_made_in_piece_order_whatever_batch_finishes_first():
    """Two replicas decode pieces 0-1 and 2-3 of one group at once; the later batch's word timings wait for
    the earlier one's (the last speech time carries from piece to piece, as in the pipeline)."""
    run, group = job("x", 0), Group(language="en", speech=None)
    pieces = pieces_of(group, run, 4)
    order: list[str] = []
    later_waiting = threading.Event()

    def later() -> None:
        later_waiting.set()
        with group.in_turn(pieces[2], 2):
            order.append("pieces 2-3")

    thread = threading.Thread(target=later)
    thread.start()
    later_waiting.wait(10)
    with group.in_turn(pieces[0], 2):
        assert order == []  # the later batch has not made its timings before these
        order.append("pieces 0-1")
    thread.join(10)
    assert order == ["pieces 0-1", "pieces 2-3"]


def test_a_failed_earlier_batch_releases_the_later_ones_with_an_error():
    run, group = job("x", 0), Group(language="en", speech=None)
    pieces = pieces_of(group, run, 2)
    raised: list[BaseException] = []

    def later() -> None:
        try:
            with group.in_turn(pieces[1], 1):
                pass
        except RuntimeError as err:
            raised.append(err)

    thread = threading.Thread(target=later)
    thread.start()
    try:
        with group.in_turn(pieces[0], 1):
            raise ValueError("alignment failed")
    except ValueError:
        pass
    thread.join(10)
    assert not thread.is_alive() and [str(e) for e in raised] == ["an earlier batch of this recording failed"]


def test_model_slots_let_one_call_per_replica_in_and_are_reentrant():
    slots = ModelSlots(2)
    release = threading.Event()
    entered: list[str] = []

    def hold(name: str) -> None:
        with slots, slots:  # re-entrant: a charged call that calls detect_language takes no second slot
            entered.append(name)
            release.wait(10)

    threads = [threading.Thread(target=hold, args=(n,)) for n in ("a", "b", "c")]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while len(entered) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert len(entered) == 2  # the third waits for a free slot
    release.set()
    for thread in threads:
        thread.join(10)
    assert sorted(entered) == ["a", "b", "c"]


def test_audio_budget_bounds_the_audio_inside_the_engine():
    """HARK_MAX_AUDIO_SECONDS_IN_FLIGHT: a job waits until its audio fits; one bigger than the whole budget
    runs alone; nothing to hold never waits."""
    budget = AudioBudget(100)
    entered: list[str] = []

    def enter(name: str, seconds: float, leave: threading.Event) -> threading.Thread:
        def hold() -> None:
            with budget.hold(seconds):
                entered.append(name)
                leave.wait(10)

        thread = threading.Thread(target=hold)
        thread.start()
        return thread

    def until(condition) -> None:
        deadline = time.monotonic() + 10
        while not condition():
            assert time.monotonic() < deadline
            time.sleep(0.01)

    first_leaves, second_leaves, big_leaves = threading.Event(), threading.Event(), threading.Event()
    first = enter("first", 60, first_leaves)
    until(lambda: entered == ["first"])
    second = enter("second", 60, second_leaves)  # 120 > 100: waits for the first
    with budget.hold(0):
        entered.append("nothing")
    assert entered == ["first", "nothing"] and budget.used == 60
    first_leaves.set()
    until(lambda: entered[-1] == "second")
    big = enter("big", 500, big_leaves)  # bigger than the budget: waits until it is alone, then runs
    assert entered[-1] == "second"
    second_leaves.set()
    until(lambda: entered[-1] == "big")
    assert budget.used == 500
    big_leaves.set()
    for thread in (first, second, big):
        thread.join(10)
    assert budget.used == 0


def test_model_replicas_default_to_two_on_the_cpu_and_one_on_a_gpu_and_share_the_cpu_threads():
    """HARK_MODEL_REPLICAS=0 (the default): two replicas on a CPU of two cores or more, one on a GPU; a
    number given is kept. HARK_CPU_THREADS (or all cores when 0) are divided among the replicas."""
    assert Settings().model_replicas == 0
    cores = os.cpu_count() or 1
    assert resolve_replicas(0, "cpu") == (2 if cores >= 2 else 1)
    assert resolve_replicas(0, "cuda") == 1
    assert resolve_replicas(3, "cpu") == 3
    assert replica_threads(4, 2) == 2 and replica_threads(1, 2) == 1  # never fewer than one thread
    assert replica_threads(0, 2) == max(1, cores // 2)
    assert replica_threads(0, 1) == 0  # one replica: CTranslate2's own default, as before
