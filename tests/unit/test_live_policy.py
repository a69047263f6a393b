"""The live service's small rules, without the model: LocalAgreement's prefix and the browser tickets."""

from __future__ import annotations

import pytest

from hark.api.auth import Identity, Unauthorized
from hark.domain.transcript import Word
from worker.live.streaming import agreed_prefix
from worker.live.websocket import Tickets


def words(*texts: str) -> list[Word]:
    return [Word(start=i, end=i + 0.5, word=t, probability=0.9) for i, t in enumerate(texts)]


def test_two_decodings_agree_on_their_common_first_words_whatever_the_case_and_punctuation():
    previous = words(" And", " so,", " my", " fellow", " America")
    current = words(" and", " so", " my", " fellow", " Americans,", " ask")
    assert [w.word for w in agreed_prefix(previous, current)] == [" and", " so", " my", " fellow"]


def test_nothing_is_agreed_when_the_first_words_differ_or_there_was_no_earlier_decoding():
    assert agreed_prefix(words(" Ask"), words(" As", " not")) == []
    assert agreed_prefix([], words(" ask")) == []


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_ticket_opens_one_stream_for_its_user_within_its_lifetime():
    clock = Clock()
    tickets = Tickets(seconds=30, clock=clock)
    alice, bob = Identity("user_alice", "a@example.com"), Identity("user_bob", "b@example.com")
    first, second = tickets.issue(alice), tickets.issue(bob)
    assert first != second
    clock.now += 29
    assert tickets.redeem(first) == alice
    with pytest.raises(Unauthorized):  # used
        tickets.redeem(first)
    clock.now += 1
    with pytest.raises(Unauthorized):  # 30 s old: expired
        tickets.redeem(second)
    with pytest.raises(Unauthorized):  # never issued
        tickets.redeem("made-up")
