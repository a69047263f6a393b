"""The API Lambda against the emulator, called with API Gateway REST proxy events as the gateway sends them."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
import requests
from werkzeug.http import parse_options_header

from hark.api import cursors
from hark.api.webapp import HARDENING_HEADERS
from hark.domain import aws, links
from hark.domain.jobs import JobStatus, now_iso
from hark.domain.keys import chunk_key, part_key, transcript_key, upload_key
from hark.domain.settings import get_settings
from hark.domain.uploads import decode_policy
from hark.local.gateway import LambdaContext
from lambdas.api import handler as api
from tests.events import authorizer_context, rest_proxy_event

ALICE, BOB = "user_alice", "user_bob"
GOOD_BODY = {"filename": "a.mp3", "content_type": "audio/mpeg", "size": 10}


def proxy_event(
    method: str,
    path: str,
    *,
    user: str | None = ALICE,
    body=None,
    query: dict | None = None,
    headers: dict | None = None,
    raw_body: str | None = None,
) -> dict:
    resource = path
    params = None
    parts = path.strip("/").split("/")
    if len(parts) >= 2:
        params = {"id": parts[1]}
        resource = "/jobs/{id}" + ("/transcript" if len(parts) == 3 else "")
    hdrs = {"Authorization": "Bearer x.y.z", "Content-Type": "application/json", **(headers or {})}
    if raw_body is None and body is not None:
        raw_body = json.dumps(body)
    return rest_proxy_event(
        method,
        resource,
        path,
        path_params=params,
        headers=hdrs,
        query=query,
        body=raw_body,
        authorizer=authorizer_context(user) if user is not None else None,
    )


def call(method: str, path: str, **kwargs) -> tuple[int, dict | None]:
    result = api.handler(proxy_event(method, path, **kwargs), LambdaContext("hark-api"))
    body = result.get("body")
    return result["statusCode"], (json.loads(body) if body else None)


def new_job(user: str = ALICE, **overrides) -> dict:
    body = {"filename": "meeting.mp3", "content_type": "audio/mpeg", "size": 1234, **overrides}
    status, data = call("POST", "/jobs", user=user, body=body)
    assert status == 201, data
    return data


def assert_error(status_and_body, status: int, code: str | None = None) -> dict:
    got, body = status_and_body
    assert got == status, body
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["message"].strip() and body["error"]["code"].islower()
    if code:
        assert body["error"]["code"] == code, body
    return body["error"]


# -- create ------------------------------------------------------------------------------------------
def test_create_job(stack):
    data = new_job(language="es")
    job, upload = data["job"], data["upload"]
    assert job["status"] == "UPLOADING" and job["language"] == "es" and job["size"] == 1234
    assert job["filename"] == "meeting.mp3" and job["transcript"] is None and job["chunks"] is None
    assert set(job) == {
        "job_id",
        "status",
        "filename",
        "content_type",
        "size",
        "language",
        "detected_language",
        "prompt",
        "task",
        "speaker_labels",
        "speakers_expected",
        "min_speakers",
        "max_speakers",
        "duration_seconds",
        "no_speech",
        "created_at",
        "updated_at",
        "queued_at",
        "started_at",
        "finished_at",
        "error",
        "chunks",
        "model_seconds",
        "real_time_factor",
        "cost_usd",
        "transcript",
        "notify",
        "webhook",
    }
    assert job["notify"] == ["email"] and job["webhook"] is None  # the default: email only
    assert (job["model_seconds"], job["real_time_factor"], job["cost_usd"]) == (None, None, None)
    assert upload["method"] == "POST" and upload["expires_at"].endswith("Z")
    assert upload["fields"]["key"] == upload_key(ALICE, job["job_id"], "meeting.mp3")
    assert upload["fields"]["Content-Type"] == "audio/mpeg"
    stored = aws.job_store().get(job["job_id"])
    assert stored.user_id == ALICE and stored.status == JobStatus.UPLOADING and stored.email == f"{ALICE}@example.com"


def test_upload_policy_pins_the_declared_size_and_content_type(stack):
    upload = new_job(content_type="audio/webm;codecs=opus", filename="rec.webm", size=54_321)["upload"]
    policy = decode_policy(upload["fields"])
    conditions = policy["conditions"]
    assert ["content-length-range", 54_321, 54_321] in conditions  # S3 refuses any other size
    assert {"Content-Type": "audio/webm"} in conditions
    assert {"bucket": stack.audio_bucket.name} in conditions
    assert {"key": upload["fields"]["key"]} in conditions
    assert policy["expiration"] == upload["expires_at"]


def test_presigned_post_upload_over_http(stack):
    data = new_job(filename="../../etc/Grabación final.mp3", size=11)
    upload = data["upload"]
    assert upload["fields"]["key"].endswith("/Grabacion_final.mp3")
    response = requests.post(
        upload["url"], data=upload["fields"], files={"file": ("x.mp3", b"hello audio")}, timeout=10
    )
    assert response.status_code in (200, 204), response.text
    obj = aws.client("s3").get_object(Bucket=stack.audio_bucket.name, Key=upload["fields"]["key"])
    assert obj["Body"].read() == b"hello audio"
    assert obj["ContentType"] == "audio/mpeg"
    assert data["job"]["filename"] == "Grabación final.mp3"  # the path goes, the name stays as written


def attachment_name(header: str) -> str:
    """The file name a browser saves under: werkzeug's parser, which prefers `filename*` (RFC 6266 4.3)."""
    disposition, params = parse_options_header(header)
    assert disposition == "attachment", header
    return params["filename"]


@pytest.mark.parametrize(
    "filename, content_type",
    [
        ("会議.mp3", "audio/mpeg"),
        ("запись.mp3", "audio/mpeg"),
        ("تسجيل.wav", "audio/wav"),
        ("Ελληνικά.flac", "audio/flac"),
    ],
)
def test_names_in_any_script_are_kept_and_downloads_carry_them(stack, filename, content_type):
    data = new_job(filename=filename, content_type=content_type, size=11)
    job, upload = data["job"], data["upload"]
    stem, ext = filename.rsplit(".", 1)
    # Kept for people; the key is ASCII under the job's prefix, with the same extension.
    assert job["filename"] == filename
    key = upload["fields"]["key"]
    assert key.startswith(f"uploads/{ALICE}/{job['job_id']}/") and key.isascii() and key.endswith(f".{ext}")
    assert aws.job_store().get(job["job_id"]).audio_key == key
    response = requests.post(upload["url"], data=upload["fields"], files={"file": ("f", b"hello audio")}, timeout=10)
    assert response.status_code in (200, 204), response.text
    assert aws.client("s3").head_object(Bucket=stack.audio_bucket.name, Key=key)["ContentLength"] == 11
    _, listed = call("GET", "/jobs")
    assert [j["filename"] for j in listed["items"]] == [filename]
    # Downloads are named after the recording, in its script: GET /jobs/{id}/transcript and the job's links.
    _complete(job["job_id"])
    s3 = aws.client("s3")
    for fmt in ("txt", "srt"):
        s3.put_object(Bucket=stack.transcripts_bucket.name, Key=transcript_key(ALICE, job["job_id"], fmt), Body=b"x")
        status, link = call("GET", f"/jobs/{job['job_id']}/transcript", query={"format": fmt})
        assert status == 200
        got = requests.get(link["url"], timeout=10)
        assert got.status_code == 200 and got.content == b"x"
        assert attachment_name(got.headers["Content-Disposition"]) == f"{stem}.{fmt}"
        assert got.headers["Content-Disposition"].isascii()  # a header is ASCII: the name rides in filename*
    _, view = call("GET", f"/jobs/{job['job_id']}")
    got = requests.get(view["transcript"]["srt"], timeout=10)
    assert attachment_name(got.headers["Content-Disposition"]) == f"{stem}.srt"


def test_max_size_is_configurable(stack, monkeypatch):
    monkeypatch.setenv("HARK_MAX_UPLOAD_BYTES", "1000")
    get_settings.cache_clear()
    try:
        err = assert_error(
            call("POST", "/jobs", body={"filename": "a.mp3", "content_type": "audio/mpeg", "size": 1001}),
            413,
            "file_too_large",
        )
        assert "1000" in err["message"]
        upload = new_job(size=1000)["upload"]
        assert ["content-length-range", 1000, 1000] in decode_policy(upload["fields"])["conditions"]
    finally:
        monkeypatch.delenv("HARK_MAX_UPLOAD_BYTES")
        get_settings.cache_clear()


def test_over_default_max_is_413(stack):
    err = assert_error(
        call("POST", "/jobs", body={"filename": "a.mp3", "content_type": "audio/mpeg", "size": 2 * 1024**3 + 1}), 413
    )
    assert "2 GiB" in err["message"]


@pytest.mark.parametrize(
    "filename, content_type, code",
    [
        ("notes.txt", "audio/mpeg", "unsupported_extension"),
        ("noext", "audio/mpeg", "unsupported_extension"),
        ("song.mp3.exe", "audio/mpeg", "unsupported_extension"),
        ("a.mp3", "application/pdf", "unsupported_media_type"),
        ("a.mp3", "text/html", "unsupported_media_type"),
        ("a.mp3", "video/mp4", "unsupported_media_type"),
    ],
)
def test_type_and_extension_allowlist_415(stack, filename, content_type, code):
    err = assert_error(
        call("POST", "/jobs", body={"filename": filename, "content_type": content_type, "size": 10}), 415, code
    )
    assert ".mp3" in err["message"] or "audio/mpeg" in err["message"]  # says which are accepted


@pytest.mark.parametrize(
    "body, field",
    [
        ({"content_type": "audio/mpeg", "size": 10}, "filename"),
        ({"filename": "a.mp3", "size": 10}, "content_type"),
        ({"filename": "a.mp3", "content_type": "audio/mpeg"}, "size"),
        ({"filename": "a.mp3", "content_type": "audio/mpeg", "size": 0}, "size"),
        ({"filename": "a.mp3", "content_type": "audio/mpeg", "size": -5}, "size"),
        ({"filename": "a.mp3", "content_type": "audio/mpeg", "size": "big"}, "size"),
        ({"filename": "a.mp3", "content_type": "audio/mpeg", "size": 10, "language": "xx"}, "language"),
        ({"filename": "", "content_type": "audio/mpeg", "size": 10}, "filename"),
        ({"filename": ["a"], "content_type": "audio/mpeg", "size": 10}, "filename"),
    ],
)
def test_validation_400_names_the_field(stack, body, field):
    err = assert_error(call("POST", "/jobs", body=body), 400, "validation_error")
    assert field in err["message"]


@pytest.mark.parametrize("raw", ["{not json", "[]", "null", "42", '"text"', "", "\udcff"[:0] + "\x00"])
def test_bad_bodies_are_400(stack, raw):
    assert_error(call("POST", "/jobs", raw_body=raw), 400)


def test_base64_garbage_body_is_400(stack):
    ev = proxy_event("POST", "/jobs", raw_body="//79/A==")
    ev["isBase64Encoded"] = True
    result = api.handler(ev, LambdaContext("hark-api"))
    assert result["statusCode"] == 400, result


@pytest.mark.parametrize(
    "content_type, raw",
    [
        ("text/plain", "a=b"),
        ("text/plain", json.dumps(GOOD_BODY)),  # JSON text, but not declared as JSON
        ("application/x-www-form-urlencoded", "filename=a.mp3&content_type=audio%2Fmpeg&size=10"),
        ("multipart/form-data; boundary=x", '--x\r\nContent-Disposition: form-data; name="size"\r\n\r\n10\r\n--x--'),
    ],
)
def test_a_body_that_is_not_json_is_415_and_creates_nothing(stack, content_type, raw):
    assert_error(
        call("POST", "/jobs", raw_body=raw, headers={"Content-Type": content_type}), 415, "unsupported_body_type"
    )
    assert_nothing_left(stack)


def assert_nothing_left(stack) -> None:
    """No job record, no idempotency record, no object: a refused request leaves no trace."""
    for table in stack.tables:
        assert aws.client("dynamodb").scan(TableName=table.name)["Items"] == [], table.name
    for bucket in (stack.audio_bucket.name, stack.transcripts_bucket.name):
        assert aws.client("s3").list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0, bucket


@pytest.mark.parametrize(
    "raw, status, code, says",
    [
        # ~2 KB of `[`: refused by the depth scan before any parser recursion (was a RecursionError 500).
        ("[" * 2048, 400, "validation_error", "levels deep"),
        ('{"filename": ' + "[" * 500 + "]" * 500 + "}", 400, "validation_error", "levels deep"),
        # Larger than the API reads: refused before it is scanned or parsed.
        ("[" * (17 * 1024), 413, "body_too_large", "bytes"),
        ('{"filename": "' + "a" * (17 * 1024) + '.mp3"}', 413, "body_too_large", "bytes"),
        # Only an object is a body (an array was read as its first element).
        (json.dumps([GOOD_BODY]), 400, "validation_error", "JSON array"),
        ("null", 400, "validation_error", "JSON null"),
        ('"text"', 400, "validation_error", "JSON string"),
        ("true", 400, "validation_error", "JSON boolean"),
        ("42", 400, "validation_error", "JSON number"),
        # Not plain JSON: a key twice, NaN, a number past Python's digit limit, a lone surrogate.
        (
            '{"filename": "a.mp3", "content_type": "audio/mpeg", "size": 10, "size": 20}',
            400,
            "validation_error",
            "twice",
        ),
        ('{"filename": "a.mp3", "content_type": "audio/mpeg", "size": NaN}', 400, "validation_error", "NaN"),
        (
            '{"filename": "a.mp3", "content_type": "audio/mpeg", "size": ' + "9" * 5000 + "}",
            400,
            "validation_error",
            "not valid JSON",
        ),
        (
            '{"filename": "\\ud800.mp3", "content_type": "audio/mpeg", "size": 10}',
            400,
            "validation_error",
            "Unicode",
        ),
    ],
    ids=[
        "nested-2KB",
        "nested-field",
        "over-size-array",
        "over-size-object",
        "array",
        "null",
        "string",
        "bool",
        "number",
        "duplicate-key",
        "nan",
        "huge-number",
        "lone-surrogate",
    ],
)
def test_bad_bodies_get_their_exact_answer_and_create_nothing(stack, raw, status, code, says):
    err = assert_error(call("POST", "/jobs", raw_body=raw), status, code)
    assert says in err["message"], err
    assert_nothing_left(stack)


@pytest.mark.parametrize(
    "field, value",
    [
        ("size", True),
        ("size", "123"),
        ("size", 12.0),
        ("size", [10]),
        ("filename", 123),
        ("content_type", None),
        ("language", 1),
    ],
)
def test_types_are_strict_nothing_is_coerced(stack, field, value):
    err = assert_error(call("POST", "/jobs", body={**GOOD_BODY, field: value}), 400, "validation_error")
    assert err["message"].startswith(f"{field}: "), err
    assert_nothing_left(stack)


def test_every_api_answer_is_nosniff_and_no_store(stack):
    created = api.handler(proxy_event("POST", "/jobs", body=GOOD_BODY), LambdaContext("hark-api"))
    job_id = json.loads(created["body"])["job"]["job_id"]
    answers = {
        "201": created,
        "200": api.handler(proxy_event("GET", f"/jobs/{job_id}"), LambdaContext("hark-api")),
        "409": api.handler(proxy_event("GET", f"/jobs/{job_id}/transcript"), LambdaContext("hark-api")),
        "400": api.handler(proxy_event("POST", "/jobs", raw_body="[" * 2048), LambdaContext("hark-api")),
        "404": api.handler(proxy_event("GET", "/nowhere"), LambdaContext("hark-api")),
        "204": api.handler(proxy_event("DELETE", f"/jobs/{job_id}"), LambdaContext("hark-api")),
    }
    for name, result in answers.items():
        assert str(result["statusCode"]) == name, result
        headers = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
        headers.update({k.lower(): v[-1] for k, v in (result.get("multiValueHeaders") or {}).items()})
        assert headers["x-content-type-options"] == "nosniff", name
        assert headers["cache-control"] == "no-store", name
        for header, value in HARDENING_HEADERS.items():  # and the rest of what every answer carries
            assert headers[header.lower()] == value, (name, header)


def test_no_authorizer_context_is_401(stack):
    assert_error(call("GET", "/jobs", user=None), 401, "unauthorized")


def test_user_only_from_authorizer_context(stack):
    """Headers, query or body naming another user change nothing."""
    new_job(BOB)
    status, data = call("GET", "/jobs", query={"user_id": BOB}, headers={"X-User-Id": BOB})
    assert status == 200 and data["items"] == []


def test_unknown_route_and_method(stack):
    # The answer API Gateway's MISSING_AUTHENTICATION_TOKEN gateway response gives, from the one definition.
    from hark.api.http_api import MISSING_AUTHENTICATION_TOKEN

    for method, path in (("GET", "/nope"), ("PATCH", "/jobs"), ("POST", "/jobs/x/transcript")):
        err = assert_error(call(method, path), MISSING_AUTHENTICATION_TOKEN.status, MISSING_AUTHENTICATION_TOKEN.code)
        assert err["message"] == MISSING_AUTHENTICATION_TOKEN.message


# -- idempotency -------------------------------------------------------------------------------------------
def test_same_idempotency_key_same_job(stack):
    body = {"filename": "a.mp3", "content_type": "audio/mpeg", "size": 10}
    s1, first = call("POST", "/jobs", body=body, headers={"Idempotency-Key": "k-123"})
    s2, second = call("POST", "/jobs", body=body, headers={"idempotency-key": "k-123"})
    assert s1 == s2 == 201
    assert first["job"]["job_id"] == second["job"]["job_id"]
    assert second["upload"]["fields"]["key"] == first["upload"]["fields"]["key"]
    _, listed = call("GET", "/jobs")
    assert len(listed["items"]) == 1
    # Another key, or another user with the same key: another job.
    _, third = call("POST", "/jobs", body=body, headers={"Idempotency-Key": "k-456"})
    _, bobs = call("POST", "/jobs", user=BOB, body=body, headers={"Idempotency-Key": "k-123"})
    assert len({first["job"]["job_id"], third["job"]["job_id"], bobs["job"]["job_id"]}) == 3
    # No key: every call is a new job.
    _, a = call("POST", "/jobs", body=body)
    _, b = call("POST", "/jobs", body=body)
    assert a["job"]["job_id"] != b["job"]["job_id"]


def test_idempotency_key_reused_with_other_body_is_422(stack):
    call(
        "POST",
        "/jobs",
        body={"filename": "a.mp3", "content_type": "audio/mpeg", "size": 10},
        headers={"Idempotency-Key": "k"},
    )
    assert_error(
        call(
            "POST",
            "/jobs",
            body={"filename": "b.mp3", "content_type": "audio/mpeg", "size": 10},
            headers={"Idempotency-Key": "k"},
        ),
        422,
        "idempotency_key_reused",
    )


def test_replay_shows_current_state(stack):
    body = {"filename": "a.mp3", "content_type": "audio/mpeg", "size": 10}
    _, first = call("POST", "/jobs", body=body, headers={"Idempotency-Key": "k"})
    aws.job_store().mark_queued(first["job"]["job_id"], now_iso())
    _, again = call("POST", "/jobs", body=body, headers={"Idempotency-Key": "k"})
    assert again["job"]["status"] == "QUEUED"


# -- quota ----------------------------------------------------------------------------------------------------
def test_quota_429(stack, monkeypatch):
    monkeypatch.setenv("HARK_MAX_UNFINISHED_JOBS", "3")
    get_settings.cache_clear()
    try:
        ids = [new_job()["job"]["job_id"] for _ in range(3)]
        err = assert_error(
            call("POST", "/jobs", body={"filename": "a.mp3", "content_type": "audio/mpeg", "size": 10}),
            429,
            "too_many_unfinished_jobs",
        )
        assert "You have 3 unfinished jobs" in err["message"] and "wait" in err["message"]
        new_job(BOB)  # per user
        # An idempotent call refused by the quota leaves no record behind: it works once there is room.
        assert_error(
            call(
                "POST",
                "/jobs",
                body={"filename": "a.mp3", "content_type": "audio/mpeg", "size": 10},
                headers={"Idempotency-Key": "q"},
            ),
            429,
        )
        store = aws.job_store()
        store.claim(ids[0], "m1")
        store.fail(ids[0], "broken")
        status, _ = call(
            "POST",
            "/jobs",
            body={"filename": "a.mp3", "content_type": "audio/mpeg", "size": 10},
            headers={"Idempotency-Key": "q"},
        )
        assert status == 201
    finally:
        monkeypatch.delenv("HARK_MAX_UNFINISHED_JOBS")
        get_settings.cache_clear()


# -- reads and isolation -------------------------------------------------------------------------------------
def test_get_job_and_isolation(stack):
    job_id = new_job()["job"]["job_id"]
    status, view = call("GET", f"/jobs/{job_id}")
    assert status == 200 and view["job_id"] == job_id
    foreign = assert_error(call("GET", f"/jobs/{job_id}", user=BOB), 404, "job_not_found")
    unknown = assert_error(call("GET", f"/jobs/{uuid.uuid4().hex}", user=BOB), 404, "job_not_found")
    assert foreign["message"].replace(job_id, "X") == unknown["message"].replace(unknown["message"].split("'")[1], "X")
    for path in (f"/jobs/{job_id}/transcript", f"/jobs/{job_id}"):
        assert_error(call("GET" if path.endswith("transcript") else "DELETE", path, user=BOB), 404, "job_not_found")
    assert aws.job_store().get(job_id) is not None  # Bob's delete did nothing


@pytest.mark.parametrize("job_id", ["..", "a b", "x" * 200, "%2e%2e", "ü"])
def test_odd_ids_are_404_or_400(stack, job_id):
    status, body = call("GET", f"/jobs/{job_id}")
    assert status in (400, 404) and "error" in body


def test_pagination_newest_first(stack):
    ids = [new_job(filename=f"f{i}.mp3")["job"]["job_id"] for i in range(5)]
    new_job(BOB)
    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        status, page = call("GET", "/jobs", query=query)
        assert status == 200 and len(page["items"]) <= 2
        seen += [j["job_id"] for j in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(ids)) and pages >= 3
    _, default = call("GET", "/jobs")
    assert [j["job_id"] for j in default["items"]] == list(reversed(ids))


@pytest.mark.parametrize(
    "query",
    [
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "x"},
        {"cursor": "garbage!"},
        {"cursor": "eyJ1c2VyX2lkIjogInVzZXJfYm9iIn0"},
    ],
)
def test_bad_list_queries_400(stack, query):
    assert_error(call("GET", "/jobs", query=query), 400)


def test_foreign_cursor_is_400(stack):
    for _ in range(3):
        new_job(BOB)
    _, page = call("GET", "/jobs", user=BOB, query={"limit": "1"})
    assert_error(call("GET", "/jobs", query={"cursor": page["next_cursor"]}), 400, "invalid_cursor")


def _b64url_json(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def test_cursors_are_signed_and_bound_to_the_user_and_the_query(stack):
    for _ in range(3):
        new_job(ALICE)
    status, page = call("GET", "/jobs", query={"limit": "1"})
    assert status == 200 and len(page["items"]) == 1
    cursor = page["next_cursor"]
    assert call("GET", "/jobs", query={"limit": "1", "cursor": cursor})[0] == 200  # as given: the next page
    payload_b64, signature = cursor.split(".")
    payload = json.loads(base64.urlsafe_b64decode(payload_b64 + "=" * (-len(payload_b64) % 4)))
    start = payload["k"]
    refused = {
        # The hand-made cursor: before signing, DynamoDB got empty key values (a 500 in AWS).
        "hand-made, empty key values": _b64url_json({"job_id": "", "user_id": ALICE, "created_at": ""}),
        "hand-made, this user's real start key": _b64url_json(start),
        "edited, signature kept": _b64url_json({**payload, "l": 100}) + "." + signature,
        "signed under another key": links.seal(payload, b"k" * 32, cursors.DOMAIN),
        "an email link's token": links.seal(payload, links.signing_key(), b"hark-link.v1."),
        "truncated": cursor[:-5],
        "signature only": signature,
        "payload only": payload_b64,
    }
    for forged in refused.values():
        assert_error(call("GET", "/jobs", query={"limit": "1", "cursor": forged}), 400, "invalid_cursor")
    # Another query: the cursor continues only the query it came from.
    assert_error(call("GET", "/jobs", query={"limit": "2", "cursor": cursor}), 400, "invalid_cursor")
    assert_error(call("GET", "/jobs", query={"cursor": cursor}), 400, "invalid_cursor")  # the default limit, 20
    for state in ("UPLOADING", "COMPLETED"):
        query = {"limit": "1", "status": state, "cursor": cursor}
        assert_error(call("GET", "/jobs", query=query), 400, "invalid_cursor")
    # ... and a filtered page's cursor only that filter.
    _, filtered = call("GET", "/jobs", query={"limit": "1", "status": "UPLOADING"})
    assert filtered["next_cursor"]
    query = {"limit": "1", "status": "UPLOADING", "cursor": filtered["next_cursor"]}
    assert call("GET", "/jobs", query=query)[0] == 200
    assert_error(call("GET", "/jobs", query={"limit": "1", "cursor": filtered["next_cursor"]}), 400, "invalid_cursor")


# -- transcripts --------------------------------------------------------------------------------------------
def _complete(job_id: str) -> None:
    store = aws.job_store()
    store.mark_queued(job_id, now_iso())
    store.claim(job_id, "msg-1")
    store.complete(job_id, "en", 12.5, model_seconds=2.5, cost_usd=0.000365)


def test_transcript_link(stack):
    job_id = new_job()["job"]["job_id"]
    assert_error(call("GET", f"/jobs/{job_id}/transcript"), 409, "transcript_not_ready")
    _complete(job_id)
    s3 = aws.client("s3")
    for fmt in ("txt", "json", "srt", "vtt"):
        s3.put_object(
            Bucket=stack.transcripts_bucket.name, Key=transcript_key(ALICE, job_id, fmt), Body=f"body {fmt}".encode()
        )
    status, link = call("GET", f"/jobs/{job_id}/transcript", query={"format": "srt"})
    assert status == 200 and link["format"] == "srt" and link["expires_at"].endswith("Z")
    assert requests.get(link["url"], timeout=10).content == b"body srt"
    _, default = call("GET", f"/jobs/{job_id}/transcript")
    assert default["format"] == "txt"
    assert_error(call("GET", f"/jobs/{job_id}/transcript", query={"format": "pdf"}), 400, "validation_error")
    _, view = call("GET", f"/jobs/{job_id}")
    assert view["status"] == "COMPLETED" and view["detected_language"] == "en" and view["duration_seconds"] == 12.5
    # What it took (issue 13.5): model seconds, their ratio to the audio's 12.5 s, and the recorded cost.
    assert (view["model_seconds"], view["real_time_factor"], view["cost_usd"]) == (2.5, 2.5 / 12.5, 0.000365)
    assert set(view["transcript"]) == {"txt", "json", "srt", "vtt"}
    assert requests.get(view["transcript"]["vtt"], timeout=10).content == b"body vtt"


# -- delete --------------------------------------------------------------------------------------------------
def test_delete_removes_record_and_objects(stack):
    job_id = new_job()["job"]["job_id"]
    other = new_job()["job"]["job_id"]
    s3, audio, texts = aws.client("s3"), stack.audio_bucket.name, stack.transcripts_bucket.name
    keys = {
        audio: [upload_key(ALICE, job_id, "meeting.mp3"), chunk_key(ALICE, job_id, 0), chunk_key(ALICE, job_id, 1)],
        texts: [transcript_key(ALICE, job_id, "txt"), part_key(ALICE, job_id, 0)],
    }
    for bucket, ks in keys.items():
        for k in ks:
            s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    survivor = upload_key(ALICE, other, "meeting.mp3")
    s3.put_object(Bucket=audio, Key=survivor, Body=b"keep")
    status, body = call("DELETE", f"/jobs/{job_id}")
    assert status == 204 and body is None
    assert aws.job_store().get(job_id) is None
    for bucket in (audio, texts):
        remaining = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
        assert remaining == ([survivor] if bucket == audio else [])
    assert_error(call("GET", f"/jobs/{job_id}"), 404)
    assert_error(call("DELETE", f"/jobs/{job_id}"), 404)


def test_metrics_and_logs_do_not_break_handler(stack, capsys):
    new_job()
    out = capsys.readouterr().out
    assert "JobsCreated" in out  # the EMF blob
