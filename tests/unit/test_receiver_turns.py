"""worker.webhooks.worker.ReceiverTurns: at most `at_once` attempts to one receiver at a time, as many
more waiting for a turn, and the rest deferred at once; other receivers are never held up."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from worker.webhooks.worker import ReceiverTurns

SLOW, OTHER = "http://slow.example:80", "https://other.example:443"


def test_a_busy_receiver_holds_its_own_turns_only():
    turns = ReceiverTurns(at_once=2, wait_seconds=3600)  # a waiter here only ever ends by getting a turn
    assert turns.take(SLOW) and turns.take(SLOW)
    with ThreadPoolExecutor(2) as pool:
        waiters = [pool.submit(turns.take, SLOW) for _ in range(2)]
        with turns._changed:  # both are waiting for a turn now
            turns._changed.wait_for(lambda: turns._waiting[SLOW] == 2)
        assert not turns.take(SLOW)  # 2 running, 2 waiting: the fifth is deferred at once
        assert turns.take(OTHER) and turns.take(OTHER)  # another receiver goes ahead meanwhile
        turns.give_back(SLOW)
        turns.give_back(SLOW)
        assert [w.result() for w in waiters] == [True, True]  # the waiters got the two turns given back
    assert turns._running == {SLOW: 2, OTHER: 2} and not turns._waiting


def test_a_wait_that_gets_no_turn_within_a_deadline_is_a_deferral():
    turns = ReceiverTurns(at_once=1, wait_seconds=0.05)
    assert turns.take(SLOW)
    assert not turns.take(SLOW)  # the running attempt kept its turn past the wait: deferred
    turns.give_back(SLOW)
    assert turns.take(SLOW)  # free again
    turns.give_back(SLOW)
    assert not turns._running and not turns._waiting  # nothing kept for receivers no longer busy
