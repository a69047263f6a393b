"""What the web app's responses carry and how its Clerk key is read: one definition for the
CloudFront response headers policy (infra/hark_infra/web.py), the local gateway and the deploy checks.
"""

from __future__ import annotations

import base64
import binascii
import re

# A Clerk publishable key is one of these prefixes + base64 of "<Frontend API host>$"; the page loads
# clerk-js from that host (frontend/api.js clerkFrontendApi decodes it the same way; so does `hark deploy check`).
CLERK_KEY_PREFIXES = ("pk_test_", "pk_live_")
_HOST = re.compile(r"(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+", re.I)
# What Clerk's components need besides the Frontend API host (Clerk's CSP guide,
# https://clerk.com/docs/guides/secure/best-practices/csp-headers): user images, the Cloudflare
# bot-protection challenge on sign-up, web workers, and runtime CSS-in-JS.
CLERK_IMAGES = "https://img.clerk.com"
CLERK_BOT_PROTECTION = "https://challenges.cloudflare.com"


def clerk_frontend_api_host(publishable_key: str) -> str:
    """The Frontend API host a Clerk publishable key encodes; ValueError (saying why) for anything else."""
    prefix = next((p for p in CLERK_KEY_PREFIXES if publishable_key.startswith(p)), None)
    if prefix is None:
        raise ValueError(
            f"hark:clerkPublishableKey must start with {' or '.join(CLERK_KEY_PREFIXES)} "
            "(the publishable key from the Clerk dashboard, not the secret key)"
        )
    encoded = publishable_key[len(prefix) :]
    try:
        decoded = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        decoded = ""
    host = decoded[:-1] if decoded.endswith("$") else ""
    if not _HOST.fullmatch(host):
        raise ValueError(
            "hark:clerkPublishableKey does not decode to a Clerk Frontend API host "
            "(base64 of '<host>$' after the pk_ prefix): copy it again from the Clerk dashboard"
        )
    return host.lower()


def content_security_policy(
    connect_sources: list[str],
    clerk_host: str | None,
    media_sources: list[str] | None = None,
    live_host: str | None = None,
) -> str:
    """The web app's Content-Security-Policy: its own files, the hosts it talks to (the API and the
    buckets in AWS; the emulator locally), where the viewer's player reads recordings from (the audio
    bucket's host: presigned GETs), and (with a publishable key) Clerk's Frontend API host from the key
    and what Clerk's components need. A live service on a host of its own (AWS) is reached over HTTPS (the
    ticket) and WSS (the stream); locally it shares the page's origin, which 'self' covers."""
    clerk = f"https://{clerk_host}" if clerk_host else None
    live = [f"https://{live_host}", f"wss://{live_host}"] if live_host else []
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'"] + ([clerk, CLERK_BOT_PROTECTION] if clerk else []),
        "style-src": ["'self'"] + (["'unsafe-inline'"] if clerk else []),
        "img-src": ["'self'", "data:"] + ([CLERK_IMAGES] if clerk else []),
        "media-src": ["'self'", *(media_sources or [])],
        "connect-src": ["'self'", *connect_sources, *live] + ([clerk] if clerk else []),
        "worker-src": ["'self'", "blob:"] if clerk else ["'none'"],
        "frame-src": [CLERK_BOT_PROTECTION] if clerk else ["'none'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


# On every answer, whatever it holds (pages, JSON, errors, redirects, preflights), from the web app's
# server and the API alike: never sniffed as another type than it says, never framed, and no more of
# the URL in a Referer than the origin when leaving it. The API (lambdas/api/handler.py) and its
# gateway responses (hark.api.http_api) carry them, the local gateway adds them to each of its own answers,
# and CloudFront's response headers policy (infra/hark_infra/web.py) sets the same values.
HARDENING_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}


def security_headers(csp: str) -> dict[str, str]:
    """The headers of the web app's files: its Content-Security-Policy (frame-ancestors 'none') and the
    hardening headers, as CloudFront's response headers policy adds them (infra/hark_infra/web.py)."""
    return {"Content-Security-Policy": csp, **HARDENING_HEADERS}
