"""List cursors (`GET /jobs?cursor=`): signed, and bound to the user and the query they continue.

A cursor carries the by-user index's LastEvaluatedKey (job_id, user_id, created_at) with the query it
continues (the status filter and the limit), sealed with the deployment's signing key, the one the email
links use (hark.domain.links.seal and signing_key; its own domain, so a link never opens as a cursor nor the
other way round). Only a cursor the API issued, to this user, for this very query, opens: a hand-made,
edited or cut-short cursor, another user's, or one passed with another status or limit is CursorInvalid
(400 invalid_cursor). So DynamoDB is only ever given a start key the API wrote itself (it refuses empty
key values with a ValidationException, which would be a 500).
"""

from __future__ import annotations

from typing import Any

from hark.domain import links

DOMAIN = b"hark-cursor.v1."
VERSION = 1
KEY_FIELDS = ("job_id", "user_id", "created_at")  # the jobs table's key and the by-user index's


class CursorInvalid(ValueError):
    """Not a cursor the API issued to this user for this query."""


def issue(start_key: dict[str, Any], user_id: str, status: str | None, limit: int, key: bytes) -> str:
    """The cursor that continues this user's query (status filter, limit) after `start_key`."""
    payload = {
        "v": VERSION,
        "k": {field: str(start_key[field]) for field in KEY_FIELDS},
        "u": user_id,
        "s": status,
        "l": limit,
    }
    return links.seal(payload, key, DOMAIN)


def open_(cursor: str, user_id: str, status: str | None, limit: int, key: bytes) -> dict[str, str]:
    """The start key inside a cursor issued to `user_id` for this query; CursorInvalid otherwise."""
    payload = links.unseal(cursor, key, DOMAIN)
    if payload is None:
        raise CursorInvalid("not a cursor the API issued")
    if payload.get("u") != user_id:
        raise CursorInvalid("another user's cursor")
    if payload.get("s") != status or payload.get("l") != limit:
        raise CursorInvalid("a cursor of another query (status or limit)")
    start = payload.get("k")
    # Signed by us from here on: these checks guard against our own bugs, not forgers.
    if (
        payload.get("v") != VERSION
        or not isinstance(start, dict)
        or set(start) != set(KEY_FIELDS)
        or not all(isinstance(v, str) and v for v in start.values())
        or start["user_id"] != user_id
    ):
        raise CursorInvalid("an unknown cursor payload")
    return start
