"""The workers' timing settings against the definitions they must respect (hark.domain.aws, hark.domain.resources,
botocore's retry policy) and the runtime's backoff by receive count."""

from __future__ import annotations

from botocore.retries.standard import ExponentialBackoff

from hark.domain import aws
from hark.domain.resources import resources
from hark.domain.settings import Settings
from worker.runtime import MAX_VISIBILITY, Backoff


def worst_ses_call_seconds() -> float:
    """The longest one SES call can take: every attempt hits both timeouts, plus botocore's standard-mode
    backoff between attempts (at most min(2^i, cap) each, plus its retry-after allowance)."""
    config = aws.client("ses").meta.config
    attempts = config.retries["total_max_attempts"]
    waits = sum(
        min(ExponentialBackoff._BASE**i, ExponentialBackoff._MAX_BACKOFF)
        + ExponentialBackoff._RETRY_AFTER_MAX_ADDITIONAL
        for i in range(attempts - 1)
    )
    return attempts * (config.connect_timeout + config.read_timeout) + waits


def test_send_lease_outlasts_the_worst_ses_call():
    settings = Settings()
    assert settings.notify_lease_seconds > worst_ses_call_seconds()
    # ... and a killed sender's email still goes out within the 2 minutes the runbook promises: the
    # next delivery comes back within the visibility lease and waits out the send lease.
    assert max(settings.notify_lease_seconds, settings.visibility_lease_seconds) < 120


def test_stop_budget_lets_a_worst_ses_call_finish():
    from worker.runtime import stop_margin

    settings = Settings()
    assert settings.stop_timeout_seconds - stop_margin(settings.stop_timeout_seconds) > worst_ses_call_seconds()


def test_lease_is_shorter_than_the_queue_timeout():
    settings = Settings()
    res = resources()
    # A killed worker's message is visible again after the lease, well before the queue's own timeout.
    assert 3 <= settings.visibility_lease_seconds < res.transcribe_queue.visibility_timeout_seconds


def test_listed_backoff_follows_the_retry_delays_then_repeats_the_last():
    steps = Settings().retry_delays_seconds
    backoff = Backoff.listed(steps)
    assert [backoff.delay(n) for n in range(1, len(steps) + 1)] == steps
    assert backoff.delay(len(steps) + 5) == steps[-1]
    assert backoff.delay(0) == steps[0]  # a missing receive count counts as the first


def test_exponential_backoff_doubles_up_to_its_cap():
    settings = Settings()
    base, cap = settings.notify_backoff_base_seconds, settings.notify_backoff_max_seconds
    backoff = Backoff.exponential(base, cap)
    assert [backoff.delay(n) for n in (1, 2, 3)] == [int(base), int(base * 2), int(base * 4)]
    assert backoff.delay(40) == cap
    assert Backoff.exponential(base, 10 * MAX_VISIBILITY).delay(60) == MAX_VISIBILITY  # SQS's own limit
