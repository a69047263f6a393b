"""The live service's small rules, without the model: LocalAgreement's prefix and the browser tickets (in the
emulator's table)."""

from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from hark.api.auth import Identity, Unauthorized
from hark.domain import aws
from hark.domain.live_tickets import LiveTickets
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
        self.now = time.time()  # epoch seconds, as the expiry and the table's TTL read them

    def __call__(self) -> float:
        return self.now


def test_a_ticket_opens_one_stream_for_its_user_within_its_lifetime(stack):
    """In the emulator's tickets table, which every live task shares: one task issues, another redeems."""
    clock = Clock()
    table = aws.table(stack.live_tickets_table.name)
    issuing, opening = (Tickets(LiveTickets(table, seconds=30, clock=clock)) for _ in range(2))
    alice, bob = Identity("user_alice", "a@example.com"), Identity("user_bob", "b@example.com")
    first, second = issuing.issue(alice), issuing.issue(bob)
    assert first != second
    # the table holds each ticket's SHA-256, whose it is and until when; never the ticket
    items = aws.client("dynamodb").scan(TableName=stack.live_tickets_table.name)["Items"]
    assert {i["ticket_sha256"]["S"] for i in items} == {hashlib.sha256(t.encode()).hexdigest() for t in (first, second)}
    assert {(i["user_id"]["S"], i["email"]["S"], int(i["expires_at"]["N"])) for i in items} == {
        (who.user_id, who.email, int(clock.now) + 30) for who in (alice, bob)
    }
    assert first not in json.dumps(items) and second not in json.dumps(items)
    clock.now += 29
    assert opening.redeem(first) == alice
    with pytest.raises(Unauthorized):  # used, on either task
        opening.redeem(first)
    with pytest.raises(Unauthorized):
        issuing.redeem(first)
    clock.now += 1
    with pytest.raises(Unauthorized):  # 30 s old: expired
        opening.redeem(second)
    for made_up in ("made-up", ""):  # never issued
        with pytest.raises(Unauthorized):
            opening.redeem(made_up)


def test_of_tasks_racing_to_redeem_one_ticket_exactly_one_gets_it(stack):
    tickets = Tickets(LiveTickets(aws.table(stack.live_tickets_table.name)))
    ticket = tickets.issue(Identity("user_alice", "a@example.com"))

    def redeem(_) -> Identity | None:
        try:
            return tickets.redeem(ticket)
        except Unauthorized:
            return None

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(redeem, range(8)))
    assert [a for a in answers if a is not None] == [Identity("user_alice", "a@example.com")]
