"""Who gets a job's email: the address in the session token when there was one, else Clerk's record.

Clerk's default session token carries no email claim, so a job usually has no address of its own.
The notifier then asks Clerk's Backend API, `GET {clerk_api_url}/v1/users/{user_id}` with the secret
key (Secrets Manager, `{stack}/clerk-secret-key`), and writes to the user's primary address. Locally
the dev issuer answers the same call (hark.local.issuer).

Two kinds of failure, handled differently by the notifier:
- LookupFailed: Clerk unreachable, slow, throttling, 5xx, an unreadable answer, or our key refused or
  not set yet: transient, the message backs off and is retried (and ends in the DLQ, replayable);
- NoRecipient: Clerk answered, and the user has no email address (or no longer exists): permanent.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from urllib.parse import quote

from hark.domain import aws
from hark.domain.resources import CLERK_SECRET_PLACEHOLDER
from hark.domain.settings import get_settings

MAX_BODY_BYTES = 1024 * 1024


class LookupFailed(Exception):
    """Clerk could not tell us now: retry later."""


class NoRecipient(Exception):
    """Clerk says there is no address to write to: do not retry."""


def primary_email(user: dict) -> str | None:
    """The user's primary address from a Backend API user object; else the first verified one."""
    addresses = [a for a in user.get("email_addresses") or [] if isinstance(a, dict) and a.get("email_address")]
    primary_id = user.get("primary_email_address_id")
    for a in addresses:
        if primary_id and a.get("id") == primary_id:
            return str(a["email_address"])
    for a in addresses:
        if (a.get("verification") or {}).get("status") == "verified":
            return str(a["email_address"])
    return None


def clerk_email(user_id: str) -> str:
    """The user's address according to Clerk's Backend API."""
    settings = get_settings()
    try:
        key = aws.secret(aws.stack_resources().clerk_secret)
    except Exception as err:  # Powertools' GetParameterError: Secrets Manager down or not allowed
        raise LookupFailed(f"could not read the Clerk secret key: {err}") from err
    if not key or key == CLERK_SECRET_PLACEHOLDER:
        raise LookupFailed(
            f"the Clerk secret key is not set: put it in Secrets Manager as "
            f"{aws.stack_resources().clerk_secret} (docs/deploy.md)"
        )
    url = f"{settings.clerk_api_url.rstrip('/')}/v1/users/{quote(user_id, safe='')}"
    request = urllib.request.Request(
        url, headers={"Authorization": f"Bearer {key}", "Accept": "application/json", "User-Agent": "hark-notification"}
    )
    try:
        with urllib.request.urlopen(request, timeout=settings.clerk_timeout_seconds) as response:
            body = response.read(MAX_BODY_BYTES)
    except urllib.error.HTTPError as err:
        if err.code == 404 and _clerk_error_code(err) == "resource_not_found":
            raise NoRecipient(f"Clerk has no user {user_id}") from None
        # A 404 without Clerk's error body is a wrong HARK_CLERK_API_URL, not a missing user: retried.
        # 401/403: our key (a config error someone must fix; the retries give them time); 429/5xx: Clerk.
        raise LookupFailed(f"Clerk answered {err.code} for the user") from None
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        raise LookupFailed(f"Clerk unreachable: {getattr(err, 'reason', err)}") from None
    try:
        user = json.loads(body)
    except ValueError:
        raise LookupFailed("Clerk's answer is not JSON") from None
    if not isinstance(user, dict):
        raise LookupFailed("Clerk's answer is not a user object")
    email = primary_email(user)
    if not email:
        raise NoRecipient(f"Clerk's user {user_id} has no email address")
    return email


def _clerk_error_code(err: urllib.error.HTTPError) -> str | None:
    """The code of Clerk's error body {"errors": [{"code": ...}]}, if that is what came back."""
    try:
        errors = json.loads(err.read(MAX_BODY_BYTES)).get("errors")
        return str(errors[0]["code"])
    except Exception:
        return None
