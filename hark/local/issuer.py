"""A local token issuer shaped like Clerk: RS256 session tokens and a JWKS endpoint.

The authorizer verifies these exactly as it verifies Clerk's (iss, azp, exp, nbf, kid), so the
local stack runs the production authorizer code unchanged. The key persists in the state folder,
so tokens printed by `hark token` survive a restart.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

DEV_TOKEN_TTL_SECONDS = 8 * 3600  # Clerk's are short-lived and refreshed; dev tokens last a work day


def user_id_for(email: str) -> str:
    """A stable Clerk-style user id for an email."""
    return "user_" + hashlib.sha256(email.strip().lower().encode()).hexdigest()[:24]


class DevIssuer:
    def __init__(self, issuer: str, key_file: Path):
        self.issuer = issuer
        if key_file.exists():
            self._key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
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

    def token(self, email: str, azp: str, ttl: int = DEV_TOKEN_TTL_SECONDS) -> dict:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": user_id_for(email),
            "azp": azp,
            "iat": now,
            "nbf": now - 5,
            "exp": now + ttl,
            "sid": "sess_" + uuid.uuid4().hex[:24],
            "email": email.strip(),
        }
        token = jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})
        expires = datetime.fromtimestamp(claims["exp"], timezone.utc).isoformat().replace("+00:00", "Z")
        return {"token": token, "user_id": claims["sub"], "email": claims["email"], "expires_at": expires}
