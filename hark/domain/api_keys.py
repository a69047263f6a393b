"""API keys: credentials that programs keep, as the same user who made them (issue 23).

A key reads `hark_sk_{id}_{secret}`: the prefix lets secret scanners find a leaked one, `id` (16 hex) is
the key's public name (GET /api-keys lists it, the table's partition key), `secret` is 256 random bits
(43 base64url characters). The table keeps SHA-256 of the whole key, never the key: a password hash
(bcrypt, scrypt, argon2) is slow on purpose so that a guessable password costs an attacker years, but a
256-bit random secret cannot be guessed at any speed, and the authorizer checks it on every cache miss,
so a fast hash it is. The key is shown once, when it is made.

Verifying a key is one consistent GetItem by its id and a constant-time comparison of the hashes; a
revoked key's item is deleted, so the next check refuses it. `last_used_at` moves at most once a
minute per key: written only when the stored one is older than that (one conditional update, which
also refuses to bring a revoked key back), never once per request.

The rate limit per key is a fixed one-minute window per key in the same table: one conditional
`ADD requests :1` on the item `rate#{id}#{minute}` (refused once it reaches the limit), which DynamoDB
applies atomically, so every API Lambda and the live service share one count; DynamoDB's TTL removes
old windows (docs/api.md, "API keys").
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from hark.domain.jobs import now_iso
from hark.domain.resources import API_KEYS_BY_USER_INDEX

KEY_PREFIX = "hark_sk_"
_KEY = re.compile(r"^hark_sk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
MAX_KEY_NAME = 100
MAX_KEYS_LISTED = 100
# last_used_at is at most this stale: the precision GET /api-keys promises, and at most one write per key in it.
LAST_USED_PRECISION_SECONDS = 60
RATE_WINDOW_SECONDS = 60
_RATE_PREFIX = "rate#"


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_id_of(key: str) -> str | None:
    """The id inside a well-formed key; None for anything else."""
    match = _KEY.match(key)
    return match.group(1) if match else None


def looks_like_key(bearer: str) -> bool:
    """True when the bearer claims to be an API key (then only the key check may accept it)."""
    return bearer.startswith(KEY_PREFIX)


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    user_id: str
    name: str
    created_at: str
    email: str = ""  # the creator's address when their session token carried one (the job's recipient)
    last_used_at: str | None = None

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> ApiKey:
        return cls(
            key_id=item["key_id"],
            user_id=item["user_id"],
            name=item["name"],
            created_at=item["created_at"],
            email=item.get("email") or "",
            last_used_at=item.get("last_used_at"),
        )


class RateLimited(Exception):
    """The key used its requests of this window; the next window starts in `retry_after` seconds."""

    def __init__(self, limit: int, retry_after: int):
        super().__init__(f"{limit} requests a minute used; retry after {retry_after} s")
        self.limit, self.retry_after = limit, retry_after


class ApiKeyStore:
    """The only code that touches the API keys table."""

    def __init__(self, table):
        self.table = table

    def create(self, user_id: str, name: str, email: str = "", now: float | None = None) -> tuple[ApiKey, str]:
        """A new key for `user_id`: its record and the key itself (shown once, never stored)."""
        key_id = secrets.token_hex(8)
        key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        record = ApiKey(key_id=key_id, user_id=user_id, name=name, created_at=now_iso(now), email=email)
        item = {
            "key_id": key_id,
            "user_id": user_id,
            "name": name,
            "created_at": record.created_at,
            "secret_sha256": key_hash(key),
        }
        if email:
            item["email"] = email
        # 64 random bits: a clash is all but impossible, and the condition makes it an error, not a takeover.
        self.table.put_item(Item=item, ConditionExpression="attribute_not_exists(key_id)")
        return record, key

    def list_for_user(self, user_id: str) -> list[ApiKey]:
        """The user's keys, newest first."""
        answer = self.table.query(
            IndexName=API_KEYS_BY_USER_INDEX,
            KeyConditionExpression=Key("user_id").eq(user_id),
            ScanIndexForward=False,
            Limit=MAX_KEYS_LISTED,
        )
        return [ApiKey.from_item(item) for item in answer.get("Items", [])]

    def revoke(self, user_id: str, key_id: str) -> bool:
        """Delete the user's key; False when there is no such key of theirs (another user's included)."""
        try:
            self.table.delete_item(
                Key={"key_id": key_id},
                ConditionExpression="user_id = :user",
                ExpressionAttributeValues={":user": user_id},
            )
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def verify(self, key: str, now: float | None = None) -> ApiKey | None:
        """The key's record when `key` is a key that exists (not revoked); None otherwise. Marks it used."""
        key_id = key_id_of(key)
        if key_id is None:
            return None
        item = self.table.get_item(Key={"key_id": key_id}, ConsistentRead=True).get("Item")
        if not item or not hmac.compare_digest(str(item.get("secret_sha256", "")), key_hash(key)):
            return None
        self._mark_used(item, time.time() if now is None else now)
        return ApiKey.from_item(item)

    def _mark_used(self, item: dict[str, Any], now: float) -> None:
        stale = now_iso(now - LAST_USED_PRECISION_SECONDS)
        if str(item.get("last_used_at") or "") >= stale:
            return  # recent enough: no write (a failed conditional write is billed as a write)
        try:
            self.table.update_item(
                Key={"key_id": item["key_id"]},
                UpdateExpression="SET last_used_at = :now",
                ConditionExpression="attribute_exists(key_id) AND "
                "(attribute_not_exists(last_used_at) OR last_used_at < :stale)",
                ExpressionAttributeValues={":now": now_iso(now), ":stale": stale},
            )
        except ClientError as err:  # revoked meanwhile, or another check wrote it first: nothing to do
            if err.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    def take_request(self, key_id: str, limit: int, now: float | None = None) -> int:
        """Count one request against the key's window; the requests left in it. RateLimited once it is full."""
        now = time.time() if now is None else now
        window = int(now // RATE_WINDOW_SECONDS)
        window_end = (window + 1) * RATE_WINDOW_SECONDS
        try:
            answer = self.table.update_item(
                Key={"key_id": f"{_RATE_PREFIX}{key_id}#{window}"},
                UpdateExpression="ADD requests :one SET expires_at = if_not_exists(expires_at, :expires)",
                ConditionExpression="attribute_not_exists(requests) OR requests < :limit",
                ExpressionAttributeValues={":one": 1, ":limit": limit, ":expires": window_end + RATE_WINDOW_SECONDS},
                ReturnValues="UPDATED_NEW",
            )
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise RateLimited(limit=limit, retry_after=max(1, int(window_end - now + 0.999))) from None
            raise
        return max(0, limit - int(answer["Attributes"]["requests"]))
