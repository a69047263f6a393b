"""The per-user quota of unfinished jobs: exact under concurrency, and every place given back.

The concurrent creates run in separate processes (as separate Lambda execution environments do),
each calling the real API handler against the emulator's DynamoDB.
"""

from __future__ import annotations

import json
import multiprocessing
import time

import pytest

from hark.domain import aws
from hark.domain.jobs import UNFINISHED, JobStatus, now_iso
from hark.domain.settings import get_settings
from hark.local.gateway import LambdaContext

from .test_api import ALICE, BOB, GOOD_BODY, assert_error, call, proxy_event

LIMIT = 5
PARALLEL = 8


@pytest.fixture
def limit(stack, monkeypatch):
    monkeypatch.setenv("HARK_MAX_UNFINISHED_JOBS", str(LIMIT))  # inherited by the child processes
    get_settings.cache_clear()
    yield get_settings().max_unfinished_jobs
    get_settings.cache_clear()


def _create_in_own_process(start, results) -> None:
    """One execution environment: import the handler, wait for the common start, POST /jobs once."""
    from lambdas.api import handler as api

    event = proxy_event("POST", "/jobs", body=GOOD_BODY)
    api.handler(
        proxy_event("GET", "/jobs"), LambdaContext("hark-api")
    )  # warm: clients and imports ready before the race
    start.wait(timeout=120)
    result = api.handler(event, LambdaContext("hark-api"))
    results.put((result["statusCode"], json.loads(result["body"])))


def unfinished_ids(user: str = ALICE) -> set[str]:
    jobs, _ = aws.job_store().list_for_user(user, limit=100)
    return {j.job_id for j in jobs if j.status in UNFINISHED}


def create() -> str:
    status, body = call("POST", "/jobs", body=GOOD_BODY)
    assert status == 201, body
    return body["job"]["job_id"]


def assert_full(limit: int) -> None:
    err = assert_error(call("POST", "/jobs", body=GOOD_BODY), 429, "too_many_unfinished_jobs")
    assert err["message"].startswith(f"You have {limit} unfinished jobs (the limit is {limit})"), err


def test_parallel_creates_at_limit_minus_one_give_exactly_one_201(limit):
    for _ in range(limit - 1):
        create()
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters, as Lambda environments are
    start, results = ctx.Event(), ctx.Queue()
    workers = [ctx.Process(target=_create_in_own_process, args=(start, results)) for _ in range(PARALLEL)]
    for w in workers:
        w.start()
    try:
        start.set()
        answers = [results.get(timeout=180) for _ in workers]
    finally:
        for w in workers:
            w.join(timeout=60)
    statuses = sorted(status for status, _ in answers)
    assert statuses == [201] + [429] * (PARALLEL - 1), answers
    for status, body in answers:
        if status == 429:
            assert body["error"]["code"] == "too_many_unfinished_jobs"
    # Exactly the limit: no overshoot, and the refused ones left no record behind.
    jobs, _ = aws.job_store().list_for_user(ALICE, limit=100)
    assert len(jobs) == limit
    assert aws.job_store().quota_places(ALICE) == {j.job_id for j in jobs}


def test_every_way_a_job_stops_being_unfinished_gives_its_place_back(limit):
    store = aws.job_store()
    ids = [create() for _ in range(limit)]
    assert_full(limit)
    call("POST", "/jobs", user=BOB, body=GOOD_BODY)  # per user: Bob has his own places
    assert store.quota_places(BOB) and not (store.quota_places(BOB) & set(ids))

    # Fails.
    store.fail(ids[0], "The file could not be decoded as audio.")
    ids.append(create())
    assert_full(limit)
    # Completes.
    store.mark_queued(ids[1], now_iso())
    store.claim(ids[1], "m1")
    store.complete(ids[1], "en", 1.0)
    ids.append(create())
    assert_full(limit)
    # Deleted through the API.
    assert call("DELETE", f"/jobs/{ids[2]}")[0] == 204
    ids.append(create())
    assert_full(limit)
    assert store.quota_places(ALICE) == unfinished_ids()


def test_places_of_jobs_that_are_gone_or_abandoned_are_swept_when_full(limit):
    store = aws.job_store()
    ids = [create() for _ in range(limit)]
    table = aws.table(aws.stack_resources().jobs_table.name)
    # The TTL removed one record (the item simply disappears; no code of ours runs).
    table.delete_item(Key={"job_id": ids[0]})
    # An upload that never arrived: its record's expiry (a day after the form's) has passed and the
    # TTL has not removed it yet.
    table.update_item(
        Key={"job_id": ids[1]},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": int(time.time()) - 1},
    )
    # A job finished by a process that stopped before giving its place back.
    store.mark_queued(ids[2], now_iso())
    store.claim(ids[2], "m1")
    table.update_item(
        Key={"job_id": ids[2]},
        UpdateExpression="SET #s = :done REMOVE active_user_id",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":done": JobStatus.COMPLETED.value},
    )
    assert store.quota_places(ALICE) == set(ids)  # nothing has given them back yet
    created = [create() for _ in range(3)]  # the first create finds the set full and sweeps it
    assert_full(limit)
    assert store.get(ids[1]) is None  # the abandoned record went, as the TTL would have taken it
    assert store.get(ids[2]).status == JobStatus.COMPLETED  # finished jobs stay, without a place
    assert store.quota_places(ALICE) == set(ids[3:] + created) == unfinished_ids()


def test_an_upload_landing_during_the_sweep_keeps_its_job(limit):
    store = aws.job_store()
    ids = [create() for _ in range(limit)]
    table = aws.table(aws.stack_resources().jobs_table.name)
    table.update_item(
        Key={"job_id": ids[0]},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": int(time.time()) - 1},
    )
    store.mark_queued(ids[0], now_iso())  # the upload arrived after all: QUEUED, a fresh expiry
    assert store.sweep_quota(ALICE) == 0
    assert store.get(ids[0]).status == JobStatus.QUEUED
    assert_full(limit)


def test_the_quota_item_is_no_job(limit):
    create()
    status, body = call("GET", "/jobs")
    assert status == 200 and len(body["items"]) == 1  # the quota item is in no index
    assert aws.job_store().get(f"quota#{ALICE}") is None
    assert_error(call("GET", f"/jobs/quota%23{ALICE}"), 404, "job_not_found")
