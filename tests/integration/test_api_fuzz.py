"""Property-based fuzzing of the API Lambda's handler with hypothesis, against the emulator.

Beside the schemathesis test (tests/e2e/test_schemathesis.py, which generates requests from
docs/openapi.json through the local gateway), this one builds the REST proxy events themselves,
including what no schema describes: any method on any path, any content type, bodies of any JSON
value, deep nesting, broken UTF-8 and base64, odd headers and query strings. Whatever the client
sends, the answer is never a 5xx, and every refusal is the one error shape with the API's headers.
"""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hark.domain.settings import get_settings
from hark.local.gateway import LambdaContext
from lambdas.api import handler as api
from tests.events import authorizer_context, rest_proxy_event

from .test_api import ALICE, new_job, proxy_event

EXAMPLES = 300

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)


def now_and_then(usual: st.SearchStrategy, odd: st.SearchStrategy) -> st.SearchStrategy:
    return st.integers(0, 5).flatmap(lambda n: odd if n == 0 else usual)


# Near-valid bodies: the documented fields, each replaced by any JSON value now and then.
field_values = {
    "filename": now_and_then(
        st.sampled_from(["a.mp3", "会議.mp3", "запись.mp3", "تسجيل.wav", "a.MP3", "../x.wav", "noext", ""]),
        st.text(max_size=300),
    ),
    "content_type": now_and_then(st.sampled_from(["audio/mpeg", "audio/wav", "text/html"]), st.text(max_size=80)),
    "size": now_and_then(
        st.integers(min_value=1, max_value=10**6),
        st.integers(min_value=-5, max_value=2**40) | st.sampled_from([True, "123", 1.5, None]),
    ),
    "language": now_and_then(st.sampled_from(["auto", "en", "es"]), st.text(max_size=8)),
}


near_valid = st.fixed_dictionaries({k: now_and_then(v, json_values) for k, v in field_values.items()}).flatmap(
    lambda body: st.sets(st.sampled_from(sorted(body)), max_size=2).map(
        lambda dropped: {k: v for k, v in body.items() if k not in dropped}
    )
)
raw_bodies = st.one_of(
    near_valid.map(json.dumps),
    near_valid.map(json.dumps),
    st.none(),
    st.text(max_size=200),
    json_values.map(json.dumps),
    near_valid.map(json.dumps),
    st.integers(min_value=1, max_value=5000).map(lambda n: "[" * n),
    st.integers(min_value=1, max_value=50).map(lambda n: '{"a":' * n + "1" + "}" * n),
    st.integers(min_value=4000, max_value=6000).map(lambda n: '{"size": ' + "9" * n + "}"),
)
content_types = st.sampled_from(
    ["application/json"] * 6
    + ["application/json; charset=utf-8", "text/plain", "application/x-www-form-urlencoded", "", "APPLICATION/JSON"]
) | st.text(max_size=40)
segments = st.text(st.characters(blacklist_characters="/"), min_size=1, max_size=40) | st.sampled_from(
    ["..", "%2e%2e", "x" * 200, "ü"]
)


@st.composite
def events(draw, job_ids: list[str]) -> dict:
    ident = draw(st.sampled_from(job_ids) | segments)
    # Mostly the routes the API has, with their own methods (so bodies and parameters reach the
    # handlers); now and then any method on any path.
    routes = [
        ("POST", "/jobs", "/jobs"),
        ("POST", "/jobs", "/jobs"),
        ("POST", "/jobs", "/jobs"),
        ("GET", "/jobs", "/jobs"),
        ("GET", "/jobs/{id}", f"/jobs/{ident}"),
        ("DELETE", "/jobs/{id}", f"/jobs/{ident}"),
        ("GET", "/jobs/{id}/transcript", f"/jobs/{ident}/transcript"),
        ("GET", "/links/{token}", f"/links/{ident}"),
    ]
    method, resource, path = draw(st.sampled_from(routes))
    if draw(st.integers(0, 4)) == 0:
        method = draw(st.sampled_from(["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"]))
        if draw(st.booleans()):
            resource, path = "/{proxy+}", "/" + draw(st.text(max_size=60))
    params = None
    if "{id}" in resource:
        params = {"id": ident}
    elif "{token}" in resource:
        params = {"token": ident}
    headers = {"Authorization": "Bearer x.y.z", "Content-Type": draw(content_types)}
    if draw(st.booleans()):
        headers["Idempotency-Key"] = draw(st.text(max_size=300))
    if draw(st.booleans()):
        headers["Origin"] = draw(st.sampled_from(["http://127.0.0.1:8000", "https://evil.example"]))
    query = draw(
        st.none()
        | st.dictionaries(
            st.sampled_from(["limit", "cursor", "format"]) | st.text(max_size=8), st.text(max_size=80), max_size=3
        )
    )
    body = draw(raw_bodies)
    is_b64 = False
    if draw(st.integers(0, 9)) == 0:  # a binary body, as API Gateway passes one: base64 of any bytes
        body, is_b64 = base64.b64encode(draw(st.binary(max_size=200))).decode(), True
    elif draw(st.integers(0, 19)) == 0:
        body, is_b64 = draw(st.text(max_size=40)), True  # not even base64
    user = draw(st.sampled_from([ALICE, ALICE, ALICE, None]))
    return rest_proxy_event(
        method,
        resource,
        path,
        path_params=params,
        headers=headers,
        query=query,
        body=body,
        is_base64=is_b64,
        authorizer=authorizer_context(user) if user else None,
        stage="v1",
    )


def check_answer(event: dict, result: dict) -> None:
    status = result["statusCode"]
    assert status < 500, (event, result)
    headers = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
    headers.update({k.lower(): v[-1] for k, v in (result.get("multiValueHeaders") or {}).items()})
    assert headers["x-content-type-options"] == "nosniff" and headers["cache-control"] == "no-store", result
    if status >= 400:
        body = json.loads(result["body"])
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, result
        assert isinstance(body["error"]["message"], str) and body["error"]["message"], result


@st.composite
def create_events(draw) -> dict:
    """POST /jobs as the web app and CLI send it (JSON, signed in), with any body."""
    body = draw(st.one_of(near_valid.map(json.dumps), raw_bodies))
    headers = {"Content-Type": draw(st.sampled_from(["application/json", "application/json; charset=utf-8"]))}
    if draw(st.integers(0, 3)) == 0:
        headers["Idempotency-Key"] = draw(st.text(min_size=1, max_size=300))
    return proxy_event("POST", "/jobs", raw_body=body, headers=headers)


def test_no_job_body_gets_a_5xx(stack):
    @given(event=create_events())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    def check(event):
        check_answer(event, api.handler(event, LambdaContext("hark-api")))

    check()


def test_no_client_input_gets_a_5xx(stack):
    job_ids = [new_job()["job"]["job_id"] for _ in range(2)]

    @given(event=events(job_ids))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    def check(event):
        check_answer(event, api.handler(event, LambdaContext("hark-api")))

    check()


@pytest.mark.parametrize("n", [2048, 100_000])
def test_nested_brackets_of_any_length_are_a_4xx(stack, n):
    # The attack, with and without the size bound: never a RecursionError reaching the catch-all.
    result = api.handler(proxy_event("POST", "/jobs", raw_body="[" * n), LambdaContext("hark-api"))
    too_large = n > get_settings().max_body_bytes
    assert result["statusCode"] == (413 if too_large else 400), result
    assert json.loads(result["body"])["error"]["code"] == ("body_too_large" if too_large else "validation_error")
