"""Live tickets: a browser's credential for one live stream (docs/api.md, "Live transcription").

A browser cannot set headers on a WebSocket, so it first asks the live service for a ticket with its bearer
token (`POST /v1/live/tickets`), then opens the stream with `?ticket=`: 256 random bits, good for one stream
within TICKET_SECONDS. The live service runs as several tasks behind a load balancer that routes that request
and the WebSocket's handshake independently, so the tickets are in a table every task shares
(`{stack}-live-tickets`, hark.domain.resources), not in the memory of the task that issued one.

The table keeps SHA-256 of the ticket, never the ticket (as API keys are kept: hark.domain.api_keys says why a
fast hash), the user's id and email, and the expiry in epoch seconds, which is also the table's TTL attribute.
TTL removes an expired ticket within days, not at once, so redeeming checks the expiry itself: one conditional
DeleteItem (the item exists and has not expired; ReturnValues ALL_OLD hands back whose it was), which DynamoDB
applies atomically, so of two tasks racing with the same ticket exactly one opens a stream.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from botocore.exceptions import ClientError

from hark.domain.api_keys import key_hash

TICKET_SECONDS = 30


@dataclass(frozen=True)
class TicketHolder:
    """Whom a ticket was issued to."""

    user_id: str
    email: str = ""


class LiveTickets:
    """The only code that touches the live tickets table. `clock`: epoch seconds, the same on every task (the
    expiry is written by one task and checked by another)."""

    def __init__(self, table, seconds: int = TICKET_SECONDS, clock: Callable[[], float] = time.time):
        self.table, self.seconds, self.clock = table, seconds, clock

    def issue(self, holder: TicketHolder) -> str:
        """A new ticket for `holder` (only its hash is stored)."""
        ticket = secrets.token_urlsafe(32)
        # Whole seconds, as TTL reads them; rounded down, so a ticket is never good for longer than `seconds`.
        item = {
            "ticket_sha256": key_hash(ticket),
            "user_id": holder.user_id,
            "expires_at": int(self.clock()) + self.seconds,
        }
        if holder.email:
            item["email"] = holder.email
        self.table.put_item(Item=item)
        return ticket

    def redeem(self, ticket: str) -> TicketHolder | None:
        """Whom `ticket` was issued to, and the ticket is used up; None when it is unknown, used or expired."""
        try:
            answer = self.table.delete_item(
                Key={"ticket_sha256": key_hash(ticket)},
                # expires_at is whole seconds: "> now's whole seconds" is "> now"
                ConditionExpression="attribute_exists(ticket_sha256) AND expires_at > :now",
                ExpressionAttributeValues={":now": int(self.clock())},
                ReturnValues="ALL_OLD",
            )
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return None
            raise
        item = answer["Attributes"]
        return TicketHolder(user_id=str(item["user_id"]), email=str(item.get("email") or ""))
