"""Email links that last as long as they say: `{api}/links/{token}`, a signed, expiring token.

A presigned S3 URL dies with the credentials that signed it (an ECS task role's last hours), so the
email does not carry one. It carries a token naming (job, user, format, expiry), signed with
HMAC-SHA256 under a key held in Secrets Manager (`{stack}/link-signing-key`). Following the link,
the API checks the token and answers 302 to a presigned GET minted right then, valid a few minutes.
Nothing in the link depends on any AWS credential's lifetime.

    token = base64url(payload) "." base64url(HMAC-SHA256(key, "hark-link.v1." + base64url(payload)))
    payload = {"v": 1, "j": job_id, "u": user_id, "f": format, "e": expiry (unix seconds)}

The signature covers the payload's text exactly as sent, and is compared as text in constant time
(hmac.compare_digest), so neither an edited payload nor a re-encoded signature verifies (`seal` and
`unseal`, which the list cursors share with a domain of their own, hark.api.cursors). The expiry
is checked only after the signature: an expired link is known to be one we issued (410), anything
else is refused alike (403). Stdlib hmac/base64 rather than itsdangerous: 40 lines, no dependency in
the Lambda bundle or the worker image, and the expiry is signed into the token instead of checked
against a max_age at verification (a later change of the TTL setting cannot stretch old links).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from urllib.parse import quote

from hark.domain.keys import TRANSCRIPT_FORMATS, check_id

VERSION = 1
_DOMAIN = b"hark-link.v1."  # what is signed is bound to this use and version
_TOKEN = re.compile(r"^([A-Za-z0-9_-]{1,1024})\.([A-Za-z0-9_-]{43})$")  # 32-byte MAC: 43 base64url chars
MIN_KEY_BYTES = 32


class LinkInvalid(Exception):
    """Not a link we issued: garbage, or edited (other job, other expiry, flipped signature)."""


class LinkExpired(Exception):
    """A link we issued whose time is up."""

    def __init__(self, claims: LinkClaims):
        super().__init__(f"link expired at {claims.expires_at}")
        self.claims = claims


@dataclass(frozen=True)
class LinkClaims:
    job_id: str
    user_id: str
    fmt: str
    expires_at: int  # unix seconds; the link works up to and including this second


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def seal(payload: dict, key: bytes, domain: bytes) -> str:
    """base64url(JSON payload) "." base64url(HMAC-SHA256(key, domain + base64url(payload))): the token form
    of links and of list cursors (hark.api.cursors). `domain` names the use and version, so a token made
    for one use never verifies as another's."""
    text = _b64(json.dumps(payload, separators=(",", ":")).encode())
    return f"{text}.{_mac(key, domain, text)}"


def unseal(token: str, key: bytes, domain: bytes) -> dict | None:
    """The payload of a token `seal` made with this key and domain; None for anything else (garbage,
    cut short, edited, another domain's), so a caller cannot tell one forgery from another."""
    match = _TOKEN.match(token) if isinstance(token, str) else None
    if match is None:
        return None
    text, signature = match.groups()
    if not hmac.compare_digest(_mac(key, domain, text), signature):  # as text: a re-encoding fails too
        return None
    try:
        payload = json.loads(_unb64(text))
    except (binascii.Error, ValueError):
        return None
    return payload if isinstance(payload, dict) else None


def _mac(key: bytes, domain: bytes, text: str) -> str:
    return _b64(hmac.new(_check_key(key), domain + text.encode("ascii"), hashlib.sha256).digest())


def _check_key(key: bytes) -> bytes:
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the link signing key must be at least {MIN_KEY_BYTES} bytes")
    return key


def sign(claims: LinkClaims, key: bytes) -> str:
    """The token for these claims."""
    if claims.fmt not in TRANSCRIPT_FORMATS:
        raise ValueError(f"unknown transcript format {claims.fmt!r}")
    payload = {
        "v": VERSION,
        "j": check_id(claims.job_id),
        "u": check_id(claims.user_id),
        "f": claims.fmt,
        "e": int(claims.expires_at),
    }
    return seal(payload, key, _DOMAIN)


def issue(job_id: str, user_id: str, fmt: str, ttl_seconds: int, key: bytes, now: float | None = None) -> str:
    """A token valid for ttl_seconds from `now` (default: the current time)."""
    issued = time.time() if now is None else now
    return sign(LinkClaims(job_id, user_id, fmt, int(issued) + int(ttl_seconds)), key)


def verify(token: str, key: bytes, now: float | None = None) -> LinkClaims:
    """The claims of a token we signed; LinkInvalid for anything else, LinkExpired when its time is up."""
    payload = unseal(token, key, _DOMAIN)
    if payload is None:
        raise LinkInvalid("not a link token we signed")
    # Signed by us from here on; the checks below guard against our own bugs, not forgers.
    try:
        claims = LinkClaims(
            job_id=check_id(payload["j"]), user_id=check_id(payload["u"]), fmt=payload["f"], expires_at=payload["e"]
        )
    except (ValueError, KeyError, TypeError) as err:
        raise LinkInvalid(f"unreadable payload: {err}") from None
    if payload.get("v") != VERSION or claims.fmt not in TRANSCRIPT_FORMATS or not isinstance(claims.expires_at, int):
        raise LinkInvalid("unknown payload")
    if (time.time() if now is None else now) > claims.expires_at:
        raise LinkExpired(claims)
    return claims


def link_url(api_url: str, token: str) -> str:
    return f"{api_url.rstrip('/')}/links/{token}"


# -- the download's name ------------------------------------------------------------------------------
_UNSAFE = re.compile(r'[\x00-\x1f\x7f"\\/;]+')


def download_filename(recording: str, fmt: str) -> str:
    """'meeting notes.m4a' + srt -> 'meeting notes.srt': the recording's name with the format's extension."""
    name = _UNSAFE.sub(" ", recording.replace("\\", "/").rsplit("/", 1)[-1]).strip()
    stem = name.rsplit(".", 1)[0].strip() if "." in name.strip(".") else name
    stem = (stem or "transcript")[:120]
    return f"{stem}.{fmt}"


def content_disposition(filename: str) -> str:
    """attachment with an ASCII fallback and the exact UTF-8 name (RFC 6266 / RFC 5987)."""
    import unicodedata

    fallback = _UNSAFE.sub(" ", unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()).strip()
    stem, dot, ext = fallback.rpartition(".")
    if not (stem.strip(". ") if dot else fallback):  # "会議.srt" has no ASCII left but ".srt"
        fallback = f"transcript.{ext}" if dot and ext else "transcript"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


# -- the key ------------------------------------------------------------------------------------------
def signing_key() -> bytes:
    """This deployment's signing key (email links, list cursors: hark.api.cursors), from Secrets Manager (cached per
    process; hark.domain.aws.secret)."""
    from hark.domain import aws

    return aws.secret(aws.stack_resources().link_signing_secret).encode("utf-8")
