"""hark.domain.links: the signed, expiring tokens of the links in emails, checked against HMAC-SHA256 itself."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets

import pytest

from hark.domain import links
from hark.domain.keys import TRANSCRIPT_FORMATS

KEY = secrets.token_urlsafe(48).encode()
T0 = 1_750_000_000  # an arbitrary issue time
DAY = 24 * 3600


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _payload(token: str) -> dict:
    part = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _with_payload(token: str, **changes) -> str:
    """The token with its payload edited and its old signature kept: what a tamperer can make."""
    payload = {**_payload(token), **changes}
    return _b64(json.dumps(payload, separators=(",", ":")).encode()) + "." + token.split(".")[1]


def test_token_is_the_documented_hmac_sha256_of_the_payload():
    token = links.issue("job1", "user_a", "srt", DAY, KEY, now=T0)
    payload_b64, mac = token.split(".")
    expected = hmac.new(KEY, b"hark-link.v1." + payload_b64.encode(), hashlib.sha256).digest()
    assert mac == _b64(expected)
    assert _payload(token) == {"v": 1, "j": "job1", "u": "user_a", "f": "srt", "e": T0 + DAY}
    assert "X-Amz" not in token and "Credential" not in token  # no AWS signature or credential inside


def test_valid_until_its_expiry_and_not_a_second_longer():
    token = links.issue("job1", "user_a", "txt", DAY, KEY, now=T0)
    claims = links.verify(token, KEY, now=T0 + DAY - 60)  # issue + 23 h 59 m
    assert claims == links.LinkClaims("job1", "user_a", "txt", T0 + DAY)
    assert links.verify(token, KEY, now=T0 + DAY) == claims  # the last second still counts
    with pytest.raises(links.LinkExpired) as err:
        links.verify(token, KEY, now=T0 + DAY + 1)
    assert err.value.claims == claims


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda t: _with_payload(t, j="job2"), id="other-job"),
        pytest.param(lambda t: _with_payload(t, u="user_b"), id="other-user"),
        pytest.param(lambda t: _with_payload(t, f="json"), id="other-format"),
        pytest.param(lambda t: _with_payload(t, e=T0 + 30 * DAY), id="later-expiry-old-signature"),
        pytest.param(lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"), id="last-signature-char"),
        pytest.param(
            lambda t: (
                t.split(".")[0]
                + "."
                + _b64(
                    bytes([base64.urlsafe_b64decode(t.split(".")[1] + "=")[0] ^ 1])
                    + base64.urlsafe_b64decode(t.split(".")[1] + "=")[1:]
                )
            ),
            id="flipped-signature-byte",
        ),
        pytest.param(lambda t: t.split(".")[0] + "." + _b64(b"\0" * 32), id="zero-signature"),
        pytest.param(lambda t: t.split(".")[0], id="no-signature"),
        pytest.param(lambda t: t[:40], id="cut-short"),
        pytest.param(lambda t: t + "x", id="extra-character"),
        pytest.param(lambda t: t.replace(".", "", 1), id="no-dot"),
        pytest.param(lambda t: "garbage", id="garbage"),
        pytest.param(lambda t: "", id="empty"),
        pytest.param(lambda t: "a" * 5000 + "." + "b" * 43, id="huge"),
        pytest.param(lambda t: "é" + t, id="non-ascii"),
    ],
)
def test_every_edit_is_refused_as_invalid(edit):
    token = links.issue("job1", "user_a", "txt", DAY, KEY, now=T0)
    with pytest.raises(links.LinkInvalid):
        links.verify(edit(token), KEY, now=T0 + 60)


def test_an_expired_edited_link_is_invalid_not_expired():
    """Only a link we signed learns that it expired; a forged one learns nothing."""
    token = _with_payload(links.issue("job1", "user_a", "txt", DAY, KEY, now=T0), j="job2")
    with pytest.raises(links.LinkInvalid):
        links.verify(token, KEY, now=T0 + 2 * DAY)


def test_another_deployments_key_is_refused():
    token = links.issue("job1", "user_a", "txt", DAY, KEY, now=T0)
    with pytest.raises(links.LinkInvalid):
        links.verify(token, secrets.token_urlsafe(48).encode(), now=T0)


def test_a_well_signed_but_meaningless_payload_is_refused():
    """Defence in depth: even under our key, only the payload shape we write is accepted."""
    for payload in (
        {"v": 2, "j": "job1", "u": "user_a", "f": "txt", "e": T0 + DAY},
        {"v": 1, "j": "job1", "u": "user_a", "f": "pdf", "e": T0 + DAY},
        {"v": 1, "j": "../x", "u": "user_a", "f": "txt", "e": T0 + DAY},
        {"v": 1, "j": "job1", "u": "user_a", "f": "txt", "e": "tomorrow"},
        ["not", "an", "object"],
    ):
        payload_b64 = _b64(json.dumps(payload).encode())
        mac = _b64(hmac.new(KEY, b"hark-link.v1." + payload_b64.encode(), hashlib.sha256).digest())
        with pytest.raises(links.LinkInvalid):
            links.verify(f"{payload_b64}.{mac}", KEY, now=T0)


def test_refuses_to_sign_with_a_short_key_or_bad_claims():
    with pytest.raises(ValueError):
        links.issue("job1", "user_a", "txt", DAY, b"short", now=T0)
    with pytest.raises(ValueError):
        links.issue("job1", "user_a", "pdf", DAY, KEY, now=T0)
    with pytest.raises(ValueError):
        links.issue("job/1", "user_a", "txt", DAY, KEY, now=T0)


def test_every_format_has_its_own_link():
    tokens = {links.issue("job1", "user_a", f, DAY, KEY, now=T0) for f in TRANSCRIPT_FORMATS}
    assert len(tokens) == len(TRANSCRIPT_FORMATS)
    assert links.link_url("https://api.example.com/prod/", "tok") == "https://api.example.com/prod/links/tok"


@pytest.mark.parametrize(
    "recording, fmt, name",
    [
        ("meeting notes.m4a", "txt", "meeting notes.txt"),
        ("entrevista año.mp3", "srt", "entrevista año.srt"),
        ("../../etc/passwd", "json", "passwd.json"),
        ('a"b;c\\d.wav', "vtt", "d.vtt"),
        ("no-extension", "txt", "no-extension.txt"),
        (".hidden", "txt", ".hidden.txt"),
        ("", "txt", "transcript.txt"),
    ],
)
def test_download_name_is_the_recording_with_the_formats_extension(recording, fmt, name):
    assert links.download_filename(recording, fmt) == name


def test_content_disposition_has_an_ascii_fallback_and_the_utf8_name():
    header = links.content_disposition("entrevista año.srt")
    assert header == "attachment; filename=\"entrevista ano.srt\"; filename*=UTF-8''entrevista%20a%C3%B1o.srt"
    assert links.content_disposition("plain.txt") == "attachment; filename=\"plain.txt\"; filename*=UTF-8''plain.txt"
