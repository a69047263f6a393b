"""API keys (issue 23) against the emulator: the routes through the API Lambda with the events API Gateway
sends, the Lambda authorizer and hark.api.auth.identify with a key, last_used_at's writes and the rate limit."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from hark.api.auth import Unauthorized, identify
from hark.domain import aws
from hark.domain.api_keys import LAST_USED_PRECISION_SECONDS, RATE_WINDOW_SECONDS, RateLimited
from hark.domain.jobs import now_iso
from hark.domain.settings import get_settings
from lambdas.authorizer import handler as authorizer
from tests.events import authorizer_context, rest_proxy_event
from tests.links import invoke

ALICE, BOB = "user_alice", "user_bob"
METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/v1/GET/jobs"


def request(method: str, path: str, user: str = ALICE, body=None, key_id: str | None = None, **headers):
    """(status, headers, JSON body or None) of the API Lambda's answer to the event API Gateway sends."""
    resource = "/api-keys/{id}" if path.count("/") == 2 else path
    params = {"id": path.rsplit("/", 1)[1]} if resource.endswith("{id}") else None
    context = {**authorizer_context(user), **({"key_id": key_id} if key_id else {})}
    event = rest_proxy_event(
        method,
        resource,
        path,
        path_params=params,
        headers={"Authorization": "Bearer x", "Content-Type": "application/json", **headers},
        body=body if body is None or isinstance(body, str) else json.dumps(body),
        authorizer=context,
    )
    return invoke(event)


def answer(result: tuple[int, dict, dict | None]) -> tuple[int, dict | None]:
    return result[0], result[2]


def create_key(user: str = ALICE, name: str = "nightly backup") -> dict:
    status, body = answer(request("POST", "/api-keys", user, {"name": name}))
    assert status == 201, body
    return body


def stored_items(stack) -> list[dict]:
    return aws.client("dynamodb").scan(TableName=stack.api_keys_table.name)["Items"]


def test_a_key_is_shown_once_stored_as_its_sha256_and_is_its_user(stack):
    created = create_key(name="  nightly \t backup  ")
    assert set(created) == {"id", "name", "key", "created_at"}
    assert created["name"] == "nightly backup"  # whitespace runs as one space
    assert re.fullmatch(rf"hark_sk_{created['id']}_[A-Za-z0-9_-]{{43}}", created["key"]), created["key"]
    (item,) = stored_items(stack)
    assert item["secret_sha256"]["S"] == hashlib.sha256(created["key"].encode()).hexdigest()
    assert created["key"] not in json.dumps(item)  # the key itself is never stored

    who = identify(created["key"])
    assert (who.user_id, who.email, who.key_id) == (ALICE, f"{ALICE}@example.com", created["id"])
    status, listed = answer(request("GET", "/api-keys"))
    assert status == 200
    (view,) = listed["items"]
    assert view["id"] == created["id"] and "key" not in view and created["key"] not in json.dumps(listed)
    assert view["last_used_at"] is not None  # identify marked it used

    # A key with another secret, or no key shape at all, is nobody.
    forged = created["key"][:-6] + ("AAAAAA" if not created["key"].endswith("AAAAAA") else "BBBBBB")
    for bearer in (forged, f"hark_sk_{created['id']}", "hark_sk_"):
        with pytest.raises(Unauthorized):
            identify(bearer)


def test_the_authorizer_lets_a_key_in_as_its_user_until_it_is_revoked_and_only_its_owner_revokes(stack):
    created = create_key()
    event = {"type": "TOKEN", "authorizationToken": f"Bearer {created['key']}", "methodArn": METHOD_ARN}
    allowed = authorizer.handler(event, None)
    assert allowed["principalId"] == ALICE
    assert allowed["context"] == {"user_id": ALICE, "email": f"{ALICE}@example.com", "key_id": created["id"]}

    # Another user: the same 404 as an unknown id, nothing revoked, and their list does not show it.
    status, body = answer(request("DELETE", f"/api-keys/{created['id']}", BOB))
    assert status == 404 and body["error"]["code"] == "api_key_not_found", body
    assert answer(request("GET", "/api-keys", BOB)) == (200, {"items": []})
    assert authorizer.handler(event, None)["principalId"] == ALICE

    assert answer(request("DELETE", f"/api-keys/{created['id']}")) == (204, None)
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorizer.handler(event, None)
    assert answer(request("DELETE", f"/api-keys/{created['id']}"))[0] == 404  # already gone
    assert stored_items(stack) == []


BAD_NAMES = {  # body -> what the 400's message says
    "empty": ({"name": ""}, "name"),
    "blank": ({"name": "   "}, "the name is empty"),
    "number": ({"name": 5}, "name"),
    "too long": ({"name": "x" * 101}, "name"),
    "control character": ({"name": "bell\x07"}, "control or invisible"),
    "missing": ({}, "name is required"),
}


def test_bad_input_is_refused_with_what_is_wrong_and_stores_nothing(stack):
    for case, (body, says) in BAD_NAMES.items():
        status, answered = answer(request("POST", "/api-keys", body=body))
        assert status == 400 and answered["error"]["code"] == "validation_error", (case, answered)
        assert says in answered["error"]["message"], (case, answered)
    status, answered = answer(request("POST", "/api-keys", body="name=x", **{"Content-Type": "text/plain"}))
    assert status == 415 and answered["error"]["code"] == "unsupported_body_type", answered
    assert answer(request("DELETE", "/api-keys/0123456789abcdef"))[0] == 404  # no such key
    assert stored_items(stack) == []


def test_last_used_at_is_written_at_most_once_a_minute(stack):
    store = aws.api_key_store()
    _, key = store.create(ALICE, "ci")
    t0 = 1_900_000_000.0
    assert store.verify(key, now=t0) is not None
    assert store.list_for_user(ALICE)[0].last_used_at == now_iso(t0)
    store.verify(key, now=t0 + LAST_USED_PRECISION_SECONDS - 1)  # within the minute: no write
    assert store.list_for_user(ALICE)[0].last_used_at == now_iso(t0)
    store.verify(key, now=t0 + LAST_USED_PRECISION_SECONDS + 1)
    assert store.list_for_user(ALICE)[0].last_used_at == now_iso(t0 + LAST_USED_PRECISION_SECONDS + 1)


@pytest.fixture
def two_a_minute(monkeypatch):
    monkeypatch.setenv("HARK_API_KEY_REQUESTS_PER_MINUTE", "2")
    get_settings.cache_clear()
    yield 2
    monkeypatch.undo()
    get_settings.cache_clear()


def test_a_key_past_its_requests_a_minute_is_429_with_retry_after_and_other_credentials_are_not(stack, two_a_minute):
    first, second = create_key(name="first")["id"], create_key(name="second")["id"]
    for _ in range(two_a_minute):
        assert request("GET", "/jobs", key_id=first)[0] == 200
    status, headers, body = request("GET", "/jobs", key_id=first)
    assert status == 429 and body["error"]["code"] == "rate_limited", body
    assert 1 <= int(headers["retry-after"]) <= RATE_WINDOW_SECONDS
    assert (headers["ratelimit-limit"], headers["ratelimit-remaining"]) == ("2", "0")
    assert request("GET", "/jobs", key_id=second)[0] == 200  # per key
    assert request("GET", "/jobs")[0] == 200  # a session token: the stage's throttle only

    # The window is a minute: the next one starts from nothing, and DynamoDB's TTL removes the old one.
    store = aws.api_key_store()
    window_start = 1_900_000_020.0 - 1_900_000_020.0 % RATE_WINDOW_SECONDS
    assert store.take_request(first, 2, now=window_start + 59) == 1
    assert store.take_request(first, 2, now=window_start + 59.5) == 0
    with pytest.raises(RateLimited) as limited:
        store.take_request(first, 2, now=window_start + 59.5)
    assert limited.value.retry_after == 1
    assert store.take_request(first, 2, now=window_start + RATE_WINDOW_SECONDS) == 1
    windows = [i for i in stored_items(stack) if i["key_id"]["S"].startswith("rate#")]
    assert windows and all(int(i["expires_at"]["N"]) > 0 for i in windows)
