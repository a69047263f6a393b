"""The worker task definitions carry the workers' own defaults (hark/domain/settings.py), not copies of them."""

from __future__ import annotations

from hark.domain.settings import Settings
from tests.infra.test_workers_stack import STACK, _container

DEFAULTS = Settings.model_fields


def test_stop_timeout_is_the_workers_stop_budget(synth):
    """ECS's SIGTERM -> SIGKILL and the budget the worker plans its hand-back in are one number."""
    for family in (f"{STACK}-transcription", f"{STACK}-notification"):
        _, c = _container(synth, family)
        env = {e["Name"]: e["Value"] for e in c["Environment"]}
        assert c["StopTimeout"] == DEFAULTS["stop_timeout_seconds"].default, family
        assert float(env["HARK_STOP_TIMEOUT_SECONDS"]) == c["StopTimeout"], family


def test_short_lease_with_heartbeat_in_both_workers(synth):
    """A killed task's message comes back within the lease, not the queue's visibility timeout."""
    for family in (f"{STACK}-transcription", f"{STACK}-notification"):
        _, c = _container(synth, family)
        env = {e["Name"]: e["Value"] for e in c["Environment"]}
        assert int(env["HARK_VISIBILITY_LEASE_SECONDS"]) == DEFAULTS["visibility_lease_seconds"].default, family
    _, c = _container(synth, f"{STACK}-notification")
    env = {e["Name"]: e["Value"] for e in c["Environment"]}
    assert int(env["HARK_NOTIFY_LEASE_SECONDS"]) == DEFAULTS["notify_lease_seconds"].default
