"""The suite on four workers: `make test` runs `pytest -n 4 --dist loadgroup` (pytest-xdist; docs/testing.md).

xdist sends each group of tests to one worker, whole. A test's group (`group_of`) is, in this order:
- an explicit `@pytest.mark.xdist_group("name")`;
- the group of an expensive session fixture it uses (SHARED_SESSION_FIXTURES): every test of the running
  local stack (`hark up`: an emulator, the API's Lambda processes, three workers and their models) runs on
  one worker, and every test of the synthesised CDK app on one, so each is built once, not once per worker;
- else its module, so that module-scoped fixtures (a model, a built image environment) are built once.
A new test gets its group from the fixtures it asks for.

The groups go out longest first, by the seconds each took when last measured (tests/durations.json, written
by `make test PYTEST_ARGS=--store-durations`; a group not in it counts DEFAULT_TEST_SECONDS a test), so that
the short ones fill the end and no worker finishes long after the others. Groups of modules marked `waits`
(their tests mostly wait: leases, back-offs, slow receivers) run one at a time: beside one, the other
workers run groups that use the CPU, where two waiting at once would leave a core idle.

xdist's own loadgroup reads the `xdist_group` mark through a node-id suffix that pytest 9.2's structured
node ids ignore (pytest-dev/pytest-xdist#1386): tests of a group are spread as if unmarked. So here the
workers write each test's group to the session's folder as they collect, and the scheduler (xdist's
load-by-scope, the scope being the group) reads it in the controller, which collects nothing itself.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from xdist.scheduler import LoadScopeScheduling

SESSION_DIR = "HARK_TEST_SESSION_DIR"  # a folder for the session, named by the controller for its workers
DURATIONS = Path(__file__).with_name("durations.json")  # seconds per group, as `make test` ran them
DEFAULT_TEST_SECONDS = 0.5  # a test of a group not yet measured
SHARED_SESSION_FIXTURES = {
    "live_stack": "live-stack",
    "live_gateway": "live-stack",
    "synth": "cdk-synth",
    "custom_domain_synth": "cdk-synth",
}


def is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def session_dir() -> Path | None:
    return Path(os.environ[SESSION_DIR]) if os.environ.get(SESSION_DIR) else None


def group_of(item: pytest.Item) -> str:
    marked = item.get_closest_marker("xdist_group")
    if marked:
        return str(marked.args[0] if marked.args else marked.kwargs.get("name", "default"))
    groups = {g for fixture, g in SHARED_SESSION_FIXTURES.items() if fixture in item.fixturenames}
    assert len(groups) <= 1, f"{item.nodeid} uses fixtures of two groups {sorted(groups)}: mark its xdist_group"
    return groups.pop() if groups else item.nodeid.split("::", 1)[0]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--store-durations",
        action="store_true",
        help=f"write each group's seconds to {DURATIONS.name} (with -n: the scheduler's measure)",
    )


def measured_seconds() -> dict[str, float]:
    return json.loads(DURATIONS.read_text()) if DURATIONS.exists() else {}


def longest_first(sizes: dict[str, int], measured: dict[str, float]) -> list[str]:
    """The groups (each with its number of tests) by their measured seconds, longest first; a group not
    measured counts DEFAULT_TEST_SECONDS a test. Ties keep their order."""
    return sorted(sizes, key=lambda g: -measured.get(g, DEFAULT_TEST_SECONDS * sizes[g]))


def next_group(queued: list[str], waits: set[str], waiting_group_out: bool) -> str:
    """The group to hand out next: the first queued, unless a waiting group is out, then the first queued
    that uses the CPU (the first queued where every one left waits)."""
    if waiting_group_out:
        return next((g for g in queued if g not in waits), queued[0])
    return queued[0]


@pytest.hookimpl(trylast=True)  # after any other hook has deselected or reordered
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    folder = session_dir()
    if not is_xdist_worker(config) or folder is None:
        return
    by_group: dict[str, list[pytest.Item]] = {}
    for item in items:
        by_group.setdefault(group_of(item), []).append(item)
    # Longest first: the scheduler hands the groups out in collection order. Stable within a group.
    order = longest_first({g: len(tests) for g, tests in by_group.items()}, measured_seconds())
    items[:] = [item for group in order for item in by_group[group]]
    groups = {item.nodeid: group for group in order for item in by_group[group]}
    waits = sorted({group_of(item) for item in items if item.get_closest_marker("waits")})
    path = folder / f"groups-{os.environ['PYTEST_XDIST_WORKER']}.json"
    path.with_suffix(".tmp").write_text(json.dumps({"groups": groups, "waits": waits}))
    path.with_suffix(".tmp").rename(path)  # whole, before the worker reports its collection


def collected_groups(folder: Path) -> tuple[dict[str, str], set[str]]:
    """Each test's group and the groups that mostly wait, as the workers wrote them."""
    groups: dict[str, str] = {}
    waits: set[str] = set()
    for path in sorted(folder.glob("groups-*.json")):
        written = json.loads(path.read_text())
        groups.update(written["groups"])
        waits.update(written["waits"])
    return groups, waits


class GroupScheduling(LoadScopeScheduling):
    """xdist's load-by-scope scheduling with each test's group as its scope, in the workers' order, and one
    waiting group at a time."""

    def __init__(self, config: pytest.Config, log=None) -> None:
        super().__init__(config, log)
        config.option.loadscopereorder = False  # the workers' order is already longest first
        self.groups: dict[str, str] = {}
        self.waits: set[str] = set()

    def _split_scope(self, nodeid: str) -> str:
        if nodeid not in self.groups:  # first asked once every worker has collected
            folder = session_dir()
            assert folder is not None
            self.groups, self.waits = collected_groups(folder)
        return self.groups[nodeid]

    def _assign_work_unit(self, node) -> None:
        scope = next_group(list(self.workqueue), self.waits, self._a_waiting_group_is_out())
        self.workqueue.move_to_end(scope, last=False)  # xdist hands out the front of the queue
        super()._assign_work_unit(node)

    def _a_waiting_group_is_out(self) -> bool:
        return any(
            scope in self.waits and not all(done.values())
            for assigned in self.assigned_work.values()
            for scope, done in assigned.items()
        )


class DurationRecorder:
    """With --store-durations, the controller adds up each test's seconds (setup, call, teardown) by group and,
    at the end of a run that passed, writes them into DURATIONS (the groups that did not run keep theirs)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.seconds[report.nodeid] = self.seconds.get(report.nodeid, 0.0) + report.duration

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        folder = session_dir()
        if exitstatus != pytest.ExitCode.OK or folder is None:
            return
        groups, _ = collected_groups(folder)
        by_group: dict[str, float] = {}
        for nodeid, seconds in self.seconds.items():
            by_group[groups[nodeid]] = by_group.get(groups[nodeid], 0.0) + seconds
        merged = {**measured_seconds(), **{g: round(s, 1) for g, s in by_group.items()}}
        DURATIONS.write_text(json.dumps(dict(sorted(merged.items())), indent=1) + "\n")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("store_durations") and not is_xdist_worker(config):
        if config.getvalue("dist") != "loadgroup":
            raise pytest.UsageError("--store-durations measures a run on workers: with -n N --dist loadgroup")
        config.pluginmanager.register(DurationRecorder(), "hark-durations")


def pytest_xdist_make_scheduler(config: pytest.Config, log) -> GroupScheduling | None:
    return GroupScheduling(config, log) if config.getvalue("dist") == "loadgroup" else None
