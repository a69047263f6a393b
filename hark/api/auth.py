"""Bearer token verification for the Lambda authorizer (Clerk session tokens, or the local dev issuer).

Only RS256, only keys from the configured JWKS, exact issuer, azp among the configured origins,
exp and nbf with a small leeway. Every refusal is an `Unauthorized` whose reason is for the log,
never for the response.

Keys: PyJWT's PyJWKClient caches the whole key set for `cache_seconds` and, on a kid it does not
know, refetches the set once - but at most once per `refresh_cooldown_seconds` (its
`cooldown_duration`), so a flood of tokens with made-up kids cannot turn into a flood of JWKS
requests. The per-kid LRU (`cache_keys`) is left off on purpose: it never expires, so a key removed
from the JWKS would stay trusted for the life of a warm Lambda.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import jwt
from jwt import PyJWKClient
from jwt.exceptions import PyJWKClientConnectionError, PyJWKClientError

ALGORITHM = "RS256"
MAX_TOKEN_BYTES = 8192
REQUIRED_CLAIMS = ("exp", "nbf", "iss", "sub")
# The user id becomes part of every S3 key (hark.domain.keys.check_id): refuse anything else up front.
_SUB = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_BEARER = re.compile(r"^Bearer +([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-]*)$", re.IGNORECASE)


class Unauthorized(Exception):
    """The request is refused; `reason` goes to the log only."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Identity:
    user_id: str
    email: str
    session_id: str | None = None


def bearer_token(headers: Mapping[str, str] | None) -> str:
    """The token of the Authorization header (header name case-insensitive). Nothing else is read."""
    values = [v for k, v in (headers or {}).items() if isinstance(k, str) and k.lower() == "authorization"]
    if not values:
        raise Unauthorized("no Authorization header")
    if len(values) > 1:
        raise Unauthorized("more than one Authorization header")
    value = values[0]
    if not isinstance(value, str):
        raise Unauthorized("Authorization header is not a string")
    if len(value) > MAX_TOKEN_BYTES:
        raise Unauthorized(f"Authorization header longer than {MAX_TOKEN_BYTES} bytes")
    match = _BEARER.match(value.strip())
    if not match:
        scheme = value.strip().split(" ", 1)[0][:20]
        raise Unauthorized(f"Authorization header is not 'Bearer <jwt>' (scheme {scheme!r})")
    return match.group(1)


def authorizer_token(event: Mapping) -> str:
    """The bearer token of an API Gateway Lambda authorizer event, of either kind.

    TOKEN: API Gateway passes the identity source header's value as `authorizationToken` (and
    answers 401 itself when the header is missing). REQUEST: the request's headers, names as the
    client sent them (lowercase from HTTP/2 clients).
    """
    kind = event.get("type")
    if kind == "TOKEN":
        token = event.get("authorizationToken")
        return bearer_token({"Authorization": token} if token is not None else {})
    if kind == "REQUEST":
        headers = event.get("headers")
        return bearer_token(headers if isinstance(headers, Mapping) else None)
    raise Unauthorized(f"not an API Gateway authorizer event (type {str(kind)[:20]!r})")


class TokenVerifier:
    def __init__(
        self,
        jwks_url: str,
        issuer: str,
        authorized_parties: list[str] | tuple[str, ...],
        leeway_seconds: int = 30,
        *,
        cache_seconds: float = 300,
        refresh_cooldown_seconds: float = 30,
        timeout_seconds: float = 5,
    ):
        self.issuer = issuer
        self.authorized_parties = frozenset(authorized_parties)
        self.leeway = leeway_seconds
        self.jwks = PyJWKClient(
            jwks_url,
            cache_jwk_set=True,
            lifespan=cache_seconds,
            cooldown_duration=refresh_cooldown_seconds,
            timeout=timeout_seconds,
        )

    def verify(self, token: str) -> Identity:
        key = self._signing_key(token)
        claims = self._verified_claims(token, key)
        return self._identity(claims)

    def _signing_key(self, token: str) -> jwt.PyJWK:
        """The JWKS key the token's header names, once the header asks for RS256 and an RSA key."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as err:
            raise Unauthorized(f"malformed token: {err}") from None
        alg = header.get("alg")
        if alg != ALGORITHM:
            raise Unauthorized(f"algorithm {alg!r} is not allowed (only {ALGORITHM})")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("token header has no kid")
        try:
            key = self.jwks.get_signing_key(kid)
        except PyJWKClientConnectionError as err:
            raise Unauthorized(f"JWKS unreachable: {err}") from None
        except PyJWKClientError as err:
            raise Unauthorized(f"unknown kid {kid[:64]!r}: {err}") from None
        except jwt.PyJWTError as err:  # a JWKS that does not parse
            raise Unauthorized(f"JWKS unusable: {err}") from None
        if key.key_type != "RSA":
            raise Unauthorized(f"kid {kid[:64]!r} is a {key.key_type} key, not RSA")
        return key

    def _verified_claims(self, token: str, key: jwt.PyJWK) -> dict:
        """The claims, once the signature, the issuer, the times and the required claims all check."""
        try:
            return jwt.decode(
                token,
                key.key,
                algorithms=[ALGORITHM],
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": list(REQUIRED_CLAIMS), "verify_aud": False},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token expired") from None
        except jwt.ImmatureSignatureError:
            raise Unauthorized("token not yet valid (nbf/iat in the future)") from None
        except jwt.InvalidIssuerError:
            raise Unauthorized("wrong issuer") from None
        except jwt.InvalidSignatureError:
            raise Unauthorized("signature does not verify") from None
        except jwt.MissingRequiredClaimError as err:
            raise Unauthorized(f"missing claim: {err.claim}") from None
        except jwt.PyJWTError as err:
            raise Unauthorized(f"invalid token: {type(err).__name__}: {err}") from None

    def _identity(self, claims: dict) -> Identity:
        """Who the verified claims name, once azp is an authorized party and sub a usable user id."""
        azp = claims.get("azp")
        if not isinstance(azp, str) or azp not in self.authorized_parties:
            raise Unauthorized(f"azp {str(azp)[:100]!r} is not an authorized party")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not _SUB.match(sub):
            raise Unauthorized("sub is not a usable user id")
        email = claims.get("email")
        sid = claims.get("sid")
        return Identity(
            user_id=sub,
            email=email if isinstance(email, str) else "",
            session_id=sid if isinstance(sid, str) else None,
        )


@lru_cache(maxsize=4)
def verifier_for(jwks_url: str, issuer: str, authorized_parties: tuple[str, ...], leeway_seconds: int) -> TokenVerifier:
    """One verifier (and so one JWKS cache) per configuration, kept for the life of the process."""
    return TokenVerifier(jwks_url, issuer, authorized_parties, leeway_seconds)


def api_wildcard_arn(method_arn: str) -> str:
    """arn:aws:execute-api:region:acct:api/stage/METHOD/path -> arn:...:api/stage/* (any route)."""
    prefix, sep, path = method_arn.rpartition(":")
    parts = path.split("/")
    if not prefix.startswith("arn:") or not sep or len(parts) < 2 or not parts[0] or not parts[1]:
        raise Unauthorized(f"methodArn is not an execute-api ARN: {method_arn[:200]!r}")
    return f"{prefix}:{parts[0]}/{parts[1]}/*"


def allow_policy(identity: Identity, method_arn: str) -> dict:
    """The authorizer's answer. The Resource covers the whole API stage, so API Gateway's authorizer
    cache (keyed on the token) can answer for any route, not only the first one called."""
    return {
        "principalId": identity.user_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": api_wildcard_arn(method_arn)}
            ],
        },
        "context": {"user_id": identity.user_id, "email": identity.email},
    }
