"""A local token issuer shaped like Clerk: RS256 session tokens, a JWKS endpoint, and the one Backend
API call Hark makes (`GET /v1/users/{user_id}`).

The authorizer verifies these exactly as it verifies Clerk's (iss, azp, exp, nbf, kid), so the
local stack runs the production authorizer code unchanged. The key persists in the state folder,
so tokens printed by `hark token` survive a restart. The issuer remembers the email of every user it
minted a token for (beside the key), and answers the Backend API's user lookup from that, in Clerk's
shape, to callers presenting the secret key: the notification worker finds a recipient the same way
in both places, even for a token without an email claim (Clerk's default session token has none).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

DEV_TOKEN_TTL_SECONDS = 8 * 3600  # Clerk's are short-lived and refreshed; dev tokens last a work day


def user_id_for(email: str) -> str:
    """A stable Clerk-style user id for an email."""
    return "user_" + hashlib.sha256(email.strip().lower().encode()).hexdigest()[:24]


def email_address_id(user_id: str, email: str) -> str:
    return "idn_" + hashlib.sha256(f"{user_id}|{email.lower()}".encode()).hexdigest()[:24]


def clerk_user(user_id: str, email: str | None, created_ms: int = 0) -> dict:
    """A user as Clerk's Backend API answers GET /v1/users/{user_id} (the fields Hark reads, and a few more)."""
    addresses = []
    if email:
        addresses.append(
            {
                "id": email_address_id(user_id, email),
                "object": "email_address",
                "email_address": email,
                "verification": {"status": "verified", "strategy": "email_code"},
                "linked_to": [],
            }
        )
    return {
        "id": user_id,
        "object": "user",
        "username": None,
        "first_name": None,
        "last_name": None,
        "primary_email_address_id": addresses[0]["id"] if addresses else None,
        "email_addresses": addresses,
        "phone_numbers": [],
        "external_accounts": [],
        "created_at": created_ms,
        "updated_at": created_ms,
    }


def clerk_error(status: int, code: str, message: str) -> tuple[int, dict]:
    return status, {"errors": [{"code": code, "message": message, "long_message": message}]}


class DevIssuer:
    def __init__(self, issuer: str, key_file: Path, backend_secret_key: Callable[[], str] | None = None):
        """`backend_secret_key()`: the secret key Backend API callers must present (default: the stack's
        Clerk secret in Secrets Manager, i.e. the emulator's)."""
        self.issuer = issuer
        self._backend_secret_key = backend_secret_key or _stack_clerk_secret
        self._users_file = key_file.with_name(key_file.stem + "-users.json")
        self._users_lock = threading.Lock()
        self._users: dict[str, dict] = {}
        if self._users_file.exists():
            try:
                self._users = json.loads(self._users_file.read_text())
            except (OSError, ValueError):
                self._users = {}
        if key_file.exists():
            key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
            if not isinstance(key, rsa.RSAPrivateKey):
                raise ValueError(f"{key_file} does not hold an RSA key")
            self._key = key
        else:
            key_file.parent.mkdir(parents=True, exist_ok=True)
            self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            key_file.write_bytes(
                self._key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
            )
            key_file.chmod(0o600)
        public_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key()))
        self.kid = "hark-dev-" + hashlib.sha256(public_jwk["n"].encode()).hexdigest()[:16]
        self._jwks = {"keys": [{**public_jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def jwks(self) -> dict:
        return self._jwks

    def token(self, email: str, azp: str, ttl: int = DEV_TOKEN_TTL_SECONDS, email_claim: bool = True) -> dict:
        """A session token for `email`. email_claim=False mints what Clerk's default session token is:
        no email claim, so the notifier must look the address up (backend_user)."""
        now = int(time.time())
        address = email.strip()
        user_id, expires_at = user_id_for(address), now + ttl
        claims: dict[str, str | int] = {
            "iss": self.issuer,
            "sub": user_id,
            "azp": azp,
            "iat": now,
            "nbf": now - 5,
            "exp": expires_at,
            "sid": "sess_" + uuid.uuid4().hex[:24],
        }
        if email_claim:
            claims["email"] = address
        self._remember(user_id, address, now)
        token = jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})
        expires = datetime.fromtimestamp(expires_at, UTC).isoformat().replace("+00:00", "Z")
        return {"token": token, "user_id": user_id, "email": address, "expires_at": expires}

    # -- the Backend API stand-in ------------------------------------------------------------------
    def _remember(self, user_id: str, email: str, now: int) -> None:
        with self._users_lock:
            known = self._users.get(user_id)
            if known and known.get("email") == email:
                return
            self._users[user_id] = {"email": email, "created_ms": (known or {}).get("created_ms", now * 1000)}
            self._save()

    def _save(self) -> None:
        """Atomically, under _users_lock: a restarted stack still knows who it minted tokens for."""
        self._users_file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self._users_file.parent, prefix=".users.", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(self._users, f)
        os.replace(tmp, self._users_file)

    def backend_user(self, user_id: str, authorization: str | None) -> tuple[int, dict]:
        """GET /v1/users/{user_id} of Clerk's Backend API: (status, body) in Clerk's shapes."""
        scheme, _, presented = (authorization or "").partition(" ")
        expected = self._backend_secret_key()
        if (
            scheme.lower() != "bearer"
            or not presented
            or not hmac.compare_digest(presented.encode(), expected.encode())
        ):
            return clerk_error(401, "authentication_invalid", "The secret key is missing or not valid.")
        with self._users_lock:
            known = self._users.get(user_id)
        if known is None:
            return clerk_error(404, "resource_not_found", f"No user was found with id {user_id[:64]}.")
        return 200, clerk_user(user_id, known.get("email") or None, known.get("created_ms", 0))

    def forget_email(self, user_id: str) -> None:
        """The user removed every email address (a user Clerk knows, with no address to write to)."""
        with self._users_lock:
            if user_id in self._users:
                self._users[user_id]["email"] = ""
                self._save()


def _stack_clerk_secret() -> str:
    from hark.domain import aws

    return aws.secret(aws.stack_resources().clerk_secret)
