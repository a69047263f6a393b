"""The suite on three workers: `make test` runs `pytest -n 3 --dist loadgroup` (pytest-xdist; docs/testing.md).

xdist sends each group of tests to one worker, whole. A test's group (`group_of`) is, in this order:
- an explicit `@pytest.mark.xdist_group("name")`;
- the group of an expensive session fixture it uses (SHARED_SESSION_FIXTURES): every test of the running
  local stack (`hark up`: an emulator, the API's Lambda processes, three workers and their models) runs on
  one worker, and every test of the synthesised CDK app on one, so each is built once, not once per worker;
- else its module, so that module-scoped fixtures (a model, a built image environment) are built once.
A new test gets its group from the fixtures it asks for.

The groups go out heaviest first, by a cheap measure known before anything runs: a group holding a test
marked `slow` first, then the groups of the shared session fixtures, then the rest by their number of tests.

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


def _weight(group: str, items: list[pytest.Item]) -> tuple[int, int, int]:
    slow = any(item.get_closest_marker("slow") for item in items)
    return (not slow, group not in SHARED_SESSION_FIXTURES.values(), -len(items))


@pytest.hookimpl(trylast=True)  # after any other hook has deselected or reordered
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    folder = session_dir()
    if not is_xdist_worker(config) or folder is None:
        return
    by_group: dict[str, list[pytest.Item]] = {}
    for item in items:
        by_group.setdefault(group_of(item), []).append(item)
    # Heaviest first: the scheduler hands the groups out in collection order. Stable within a group.
    order = sorted(by_group, key=lambda g: _weight(g, by_group[g]))
    items[:] = [item for group in order for item in by_group[group]]
    groups = {item.nodeid: group for group in order for item in by_group[group]}
    path = folder / f"groups-{os.environ['PYTEST_XDIST_WORKER']}.json"
    path.with_suffix(".tmp").write_text(json.dumps(groups))
    path.with_suffix(".tmp").rename(path)  # whole, before the worker reports its collection


class GroupScheduling(LoadScopeScheduling):
    """xdist's load-by-scope scheduling with each test's group as its scope, in the workers' order."""

    def __init__(self, config: pytest.Config, log=None) -> None:
        super().__init__(config, log)
        config.option.loadscopereorder = False  # the workers' order is already heaviest first
        self.groups: dict[str, str] = {}

    def _split_scope(self, nodeid: str) -> str:
        if nodeid not in self.groups:  # first asked once every worker has collected
            folder = session_dir()
            assert folder is not None
            for path in sorted(folder.glob("groups-*.json")):
                self.groups.update(json.loads(path.read_text()))
        return self.groups[nodeid]


def pytest_xdist_make_scheduler(config: pytest.Config, log) -> GroupScheduling | None:
    return GroupScheduling(config, log) if config.getvalue("dist") == "loadgroup" else None
