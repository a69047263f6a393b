"""The Lambda authorizer against every token attack of issue 3, with a real JWKS over HTTP.

Each denial must raise exactly Exception("Unauthorized") (API Gateway's 401), log the real reason,
and keep that reason out of what API Gateway sees.
"""

from __future__ import annotations

import base64
import json
import logging
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from hark.api import auth
from hark.api.auth import TokenVerifier, Unauthorized, api_wildcard_arn, bearer_token
from hark.domain.settings import get_settings
from lambdas.authorizer import handler as authorizer
from tests.json_server import JsonServer

ORIGIN = "https://app.hark.example"
METHOD_ARN = "arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/GET/jobs/42"


def _rsa():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


KEY, OTHER_KEY, ROTATED_KEY = _rsa(), _rsa(), _rsa()


def _jwk(private, kid: str) -> dict:
    jwk = json.loads(RSAAlgorithm.to_jwk(private.public_key()))
    return {**jwk, "kid": kid, "use": "sig", "alg": "RS256"}


class JWKS(JsonServer):
    """A JWKS endpoint on loopback that counts its requests; the served keys can change (rotation)."""

    def __init__(self, keys: list[dict]):
        self.keys = keys
        super().__init__(lambda path: (200, {"keys": self.keys}))
        self.url = f"{self.origin}/.well-known/jwks.json"
        self.issuer = self.origin


@pytest.fixture
def jwks(monkeypatch):
    server = JWKS([_jwk(KEY, "k1")])
    monkeypatch.setenv("HARK_ISSUER", server.issuer)
    monkeypatch.setenv("HARK_AUTHORIZED_PARTIES", json.dumps([ORIGIN, "http://127.0.0.1:8000"]))
    monkeypatch.setenv("HARK_JWT_LEEWAY_SECONDS", "30")
    monkeypatch.delenv("HARK_JWKS_URL", raising=False)
    get_settings.cache_clear()
    auth.verifier_for.cache_clear()
    yield server
    server.close()
    get_settings.cache_clear()
    auth.verifier_for.cache_clear()


def claims(server: JWKS, **overrides) -> dict:
    now = int(time.time())
    base = {
        "iss": server.issuer,
        "sub": "user_2abcDEF123",
        "azp": ORIGIN,
        "sid": "sess_1",
        "iat": now - 5,
        "nbf": now - 5,
        "exp": now + 60,
        "email": "ada@example.com",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload: dict, key=KEY, kid: str | None = "k1", alg: str = "RS256") -> str:
    headers = {"kid": kid} if kid else {}
    return jwt.encode(payload, key, algorithm=alg, headers=headers)


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


def event(token_header: str | None = None, **headers) -> dict:
    if token_header is not None:
        headers["Authorization"] = token_header
    return {"type": "REQUEST", "methodArn": METHOD_ARN, "headers": headers, "requestContext": {"requestId": "req-1"}}


class LogCapture(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)

    @property
    def reasons(self) -> list[str]:
        return [getattr(r, "reason", "") for r in self.records if r.getMessage() == "denied"]


@pytest.fixture
def logs():
    capture = LogCapture()
    target = logging.getLogger(authorizer.logger.name)
    target.addHandler(capture)
    yield capture
    target.removeHandler(capture)


def deny(ev: dict, logs: LogCapture, reason_part: str) -> None:
    with pytest.raises(Exception) as info:
        authorizer.handler(ev, None)
    assert type(info.value) is Exception and info.value.args == ("Unauthorized",)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert logs.reasons, "the denial was not logged"
    reason = logs.reasons[-1]
    assert reason_part.lower() in reason.lower(), reason
    # The reason never reaches API Gateway: only the bare "Unauthorized" does.
    assert reason not in str(info.value)


# -- allowed -----------------------------------------------------------------------------------
def test_valid_token_is_allowed_for_the_whole_api(jwks, logs):
    result = authorizer.handler(event(f"Bearer {sign(claims(jwks))}"), None)
    assert result["principalId"] == "user_2abcDEF123"
    assert result["context"] == {"user_id": "user_2abcDEF123", "email": "ada@example.com"}
    (statement,) = result["policyDocument"]["Statement"]
    assert statement == {
        "Action": "execute-api:Invoke",
        "Effect": "Allow",
        "Resource": "arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/*",
    }
    assert result["policyDocument"]["Version"] == "2012-10-17"
    assert not logs.reasons


def test_missing_email_claim_gives_empty_string(jwks):
    result = authorizer.handler(event(f"Bearer {sign(claims(jwks, email=None))}"), None)
    assert result["context"]["email"] == ""


def test_header_name_is_case_insensitive_and_scheme_too(jwks):
    token = sign(claims(jwks))
    assert authorizer.handler(event(None, authorization=f"bearer {token}"), None)["principalId"]


def test_leeway_accepts_just_expired(jwks):
    now = int(time.time())
    token = sign(claims(jwks, exp=now - 10, iat=now - 100, nbf=now - 100))
    assert authorizer.handler(event(f"Bearer {token}"), None)["principalId"]


def test_second_configured_origin_is_accepted(jwks):
    token = sign(claims(jwks, azp="http://127.0.0.1:8000"))
    assert authorizer.handler(event(f"Bearer {token}"), None)["principalId"]


# -- denied --------------------------------------------------------------------------------------
def test_alg_none(jwks, logs):
    token = f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': 'k1'})}.{b64(claims(jwks))}."
    deny(event(f"Bearer {token}"), logs, "algorithm 'none'")


def test_hs256_signed_with_the_public_key(jwks, logs):
    public_pem = KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "JWT", "kid": "k1"}
    import hashlib
    import hmac

    signing_input = f"{b64(header)}.{b64(claims(jwks))}"
    signature = base64.urlsafe_b64encode(hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest())
    token = f"{signing_input}.{signature.decode().rstrip('=')}"
    deny(event(f"Bearer {token}"), logs, "algorithm 'HS256'")


def test_expired(jwks, logs):
    now = int(time.time())
    token = sign(claims(jwks, exp=now - 120, iat=now - 600, nbf=now - 600))
    deny(event(f"Bearer {token}"), logs, "expired")


def test_not_yet_valid(jwks, logs):
    now = int(time.time())
    token = sign(claims(jwks, nbf=now + 300, iat=now - 5, exp=now + 900))
    deny(event(f"Bearer {token}"), logs, "not yet valid")


def test_wrong_issuer(jwks, logs):
    deny(event(f"Bearer {sign(claims(jwks, iss=jwks.issuer + '/'))}"), logs, "wrong issuer")
    deny(event(f"Bearer {sign(claims(jwks, iss='https://evil.example'))}"), logs, "wrong issuer")


def test_wrong_azp(jwks, logs):
    deny(event(f"Bearer {sign(claims(jwks, azp='https://evil.example'))}"), logs, "azp")
    deny(event(f"Bearer {sign(claims(jwks, azp=None))}"), logs, "azp")


def test_unknown_kid(jwks, logs):
    deny(event(f"Bearer {sign(claims(jwks), key=OTHER_KEY, kid='nope')}"), logs, "unknown kid")


def test_known_kid_wrong_key(jwks, logs):
    deny(event(f"Bearer {sign(claims(jwks), key=OTHER_KEY, kid='k1')}"), logs, "signature")


def test_missing_kid(jwks, logs):
    deny(event(f"Bearer {sign(claims(jwks), kid=None)}"), logs, "no kid")


def test_tampered_payload(jwks, logs):
    header, _, signature = sign(claims(jwks)).split(".")
    forged = b64(claims(jwks, sub="user_victim"))
    deny(event(f"Bearer {header}.{forged}.{signature}"), logs, "signature")


def test_truncated_token(jwks, logs):
    token = sign(claims(jwks))
    deny(event(f"Bearer {token[:-10]}"), logs, "")
    deny(event(f"Bearer {token.rsplit('.', 1)[0]}"), logs, "not 'Bearer <jwt>'")
    deny(event(f"Bearer {token[:40]}"), logs, "")


@pytest.mark.parametrize(
    "headers, reason",
    [
        ({}, "no Authorization header"),
        ({"Authorization": ""}, "not 'Bearer <jwt>'"),
        ({"Authorization": "Bearer"}, "not 'Bearer <jwt>'"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "not 'Bearer <jwt>'"),
        ({"Authorization": "Token abc.def.ghi"}, "not 'Bearer <jwt>'"),
        ({"Authorization": "Bearer not a token"}, "not 'Bearer <jwt>'"),
        ({"Authorization": "Bearer a.b.c"}, "malformed"),
        # Shaped like an API key but not one: refused before any table is read (hark.domain.api_keys).
        ({"Authorization": "Bearer hark_sk_0123"}, "unknown, malformed or revoked API key"),
        ({"Authorization": "Bearer hark_sk_a.b.c"}, "unknown, malformed or revoked API key"),
        ({"Authorization": "Bearer " + "a" * 9000}, "longer than"),
        ({"Authorization": "Bearer x.y.z", "authorization": "Bearer x.y.z"}, "more than one"),
    ],
)
def test_missing_or_malformed_header(jwks, logs, headers, reason):
    deny({"type": "REQUEST", "methodArn": METHOD_ARN, "headers": headers}, logs, reason)


def test_token_only_from_the_authorization_header(jwks, logs):
    token = sign(claims(jwks))
    ev = {
        "type": "REQUEST",
        "methodArn": METHOD_ARN,
        "headers": {"Cookie": f"__session={token}"},
        "queryStringParameters": {"token": token, "access_token": token},
    }
    deny(ev, logs, "no Authorization header")


def test_missing_required_claims(jwks, logs):
    deny(event(f"Bearer {sign(claims(jwks, exp=None))}"), logs, "missing claim: exp")
    deny(event(f"Bearer {sign(claims(jwks, nbf=None))}"), logs, "missing claim: nbf")
    deny(event(f"Bearer {sign(claims(jwks, sub=None))}"), logs, "missing claim: sub")


def test_sub_unusable_as_key_prefix(jwks, logs):
    deny(event(f"Bearer {sign(claims(jwks, sub='../other-user'))}"), logs, "sub")


def test_bad_method_arn(jwks, logs):
    ev = event(f"Bearer {sign(claims(jwks))}")
    ev["methodArn"] = "not-an-arn"
    deny(ev, logs, "methodArn")


def test_jwks_unreachable_is_a_denial(jwks, logs):
    jwks.close()
    deny(event(f"Bearer {sign(claims(jwks))}"), logs, "JWKS unreachable")


def test_no_exception_escapes_on_garbage_event(jwks, logs):
    for garbage in (None, [], {"headers": "x"}, {"headers": {"Authorization": 5}}):
        with pytest.raises(Exception) as info:
            authorizer.handler(garbage, None)
        assert info.value.args == ("Unauthorized",)


# -- key cache -------------------------------------------------------------------------------------
class Clock:
    """PyJWT's key cache and refresh cooldown read time.monotonic(): this clock moves only when told."""

    def __init__(self):
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def __getattr__(self, name):  # everything else from the real time module
        return getattr(time, name)


@pytest.fixture
def clock(monkeypatch):
    import jwt.api_jwk
    import jwt.jwk_set_cache
    import jwt.jwks_client

    fake = Clock()
    for module in (jwt.api_jwk, jwt.jwk_set_cache, jwt.jwks_client):
        monkeypatch.setattr(module, "time", fake)
    return fake


def test_keys_cached_across_invocations(jwks):
    for _ in range(5):
        authorizer.handler(event(f"Bearer {sign(claims(jwks))}"), None)
    assert jwks.requests == 1


def test_unknown_kid_refreshes_once_then_rate_limited(jwks, clock):
    cooldown = 1.0
    verifier = TokenVerifier(jwks.url, jwks.issuer, [ORIGIN], refresh_cooldown_seconds=cooldown)
    bogus = [sign(claims(jwks), key=OTHER_KEY, kid=f"bogus-{i}") for i in range(20)]  # signing is slow: before
    late = sign(claims(jwks), key=OTHER_KEY, kid="bogus-late")
    rotated = sign(claims(jwks), key=ROTATED_KEY, kid="k2")
    assert verifier.verify(sign(claims(jwks))).user_id == "user_2abcDEF123"
    assert jwks.requests == 1
    clock.now += cooldown + 0.1
    # Key rotation: a new kid appears in the JWKS; the first token with it triggers one refresh.
    jwks.keys = [_jwk(KEY, "k1"), _jwk(ROTATED_KEY, "k2")]
    assert verifier.verify(rotated).user_id
    assert jwks.requests == 2
    # A flood of made-up kids right after: no further fetch inside the cooldown.
    for token in bogus:
        with pytest.raises(Unauthorized, match="unknown kid"):
            verifier.verify(token)
    assert jwks.requests == 2
    clock.now += cooldown + 0.1
    with pytest.raises(Unauthorized, match="unknown kid"):
        verifier.verify(late)
    assert jwks.requests == 3  # one refresh once the cooldown has passed
    # Known kids keep working from the cache throughout.
    assert verifier.verify(rotated).user_id
    assert jwks.requests == 3


def test_removed_key_stops_working_after_cache_lifespan(jwks, clock):
    verifier = TokenVerifier(jwks.url, jwks.issuer, [ORIGIN], cache_seconds=0.5, refresh_cooldown_seconds=0)
    verifier.verify(sign(claims(jwks)))
    jwks.keys = [_jwk(ROTATED_KEY, "k2")]
    assert verifier.verify(sign(claims(jwks))).user_id  # still cached
    clock.now += 0.6
    with pytest.raises(Unauthorized, match="unknown kid"):
        verifier.verify(sign(claims(jwks)))


# -- helpers ----------------------------------------------------------------------------------------
def test_wildcard_arn():
    assert api_wildcard_arn("arn:aws:execute-api:us-east-1:1:api/stage/POST/jobs/x/transcript") == (
        "arn:aws:execute-api:us-east-1:1:api/stage/*"
    )
    with pytest.raises(Unauthorized):
        api_wildcard_arn("arn:aws:execute-api:us-east-1:1:api")


def test_bearer_token_parsing():
    assert bearer_token({"AUTHORIZATION": "Bearer a.b.c"}) == "a.b.c"
    assert bearer_token({"Authorization": "  Bearer   a.b.c  "}) == "a.b.c"
