"""Webhooks as the Standard Webhooks specification (standardwebhooks.com) defines them: signing, the
check of a receiver's URL (no SSRF), and one delivery pinned to the address that was checked.

Signing: `webhook-signature: v1,<base64 HMAC-SHA256(secret, "{webhook-id}.{webhook-timestamp}.{body}")>`
with the user's `whsec_...` secret, computed by the reference library (`standardwebhooks`). During a
rotation's grace period a delivery carries both signatures, space-separated, as the spec allows.

URL check (at creation and again before every delivery, since DNS can change): http(s) only (https only
unless HARK_WEBHOOK_REQUIRE_HTTPS is off, as on the local stack), no userinfo, and every address the host
resolves to must be a public one: loopback (unless HARK_WEBHOOK_ALLOW_LOOPBACK, local only), private,
link-local, multicast, reserved, unspecified and cloud metadata addresses are refused, also when embedded
in an IPv6 address (::ffff:169.254.169.254, 6to4, Teredo, NAT64). Delivery then connects to one of the
checked addresses itself and sends the name only as the Host header and TLS SNI (the certificate is
verified against the name), so a DNS answer that changes between the check and the connect cannot win.

Each attempt has one deadline for all of it: connect, TLS, send, the status line and headers, and at most
RESPONSE_READ_LIMIT of the body (http.client's timeout bounds each read, so a receiver sending a byte
every few seconds would hold an attempt as long as it liked): at the deadline the socket is shut down.
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import SplitResult, quote, urlsplit

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32  # 256 bits, the HMAC-SHA256 block-size-safe length the spec suggests (24-64 bytes)
MAX_URL_LENGTH = 2048
RESPONSE_READ_LIMIT = 4 * 1024  # what is read of a receiver's answer body (only its status matters)
USER_AGENT = "Hark-Webhooks/1.0"

# Addresses of cloud instance metadata services: never a receiver, named in the refusal.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, ...
        "fd00:ec2::254",  # AWS's IPv6 endpoint
        "169.254.170.2",  # ECS task metadata and credentials
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
    )
)
NAT64 = ipaddress.ip_network("64:ff9b::/96")

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# host, port -> the addresses it resolves to (strings). Injected in tests; socket.getaddrinfo by default.
Resolver = Callable[[str, int], Sequence[str]]


class UrlRefused(ValueError):
    """A webhook URL Hark will not call; the message says why, for the user."""


class UnresolvableHost(UrlRefused):
    """The host did not resolve (now): refused at creation, retried at delivery."""


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signature_header(secrets_: Sequence[str], msg_id: str, timestamp: int, body: str) -> str:
    """The webhook-signature value: one `v1,<sig>` per secret (current first), space-separated."""
    when = datetime.fromtimestamp(timestamp, UTC)
    return " ".join(Webhook(s).sign(msg_id=msg_id, timestamp=when, data=body) for s in secrets_)


def headers(secrets_: Sequence[str], msg_id: str, timestamp: int, body: str) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets_, msg_id, timestamp, body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


# -- the URL check --------------------------------------------------------------------------------------
def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for, if any (mapped, 6to4, Teredo client, NAT64, compatible)."""
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip.sixtofour:
        return ip.sixtofour
    if ip.teredo:
        return ip.teredo[1]
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if int(ip) >> 32 == 0 and int(ip) > 1:  # deprecated IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(int(ip))
    return None


def address_refusal(ip: IpAddress, allow_loopback: bool = False) -> str | None:
    """Why Hark will not send to `ip` (a phrase), or None for a public address."""
    if isinstance(ip, ipaddress.IPv6Address):
        scope_free = ipaddress.IPv6Address(int(ip))  # fe80::1%eth0 -> fe80::1
        embedded = _embedded_ipv4(scope_free)
        if embedded is not None:
            reason = address_refusal(embedded, allow_loopback)
            return f"{reason} (inside {ip})" if reason else None
        ip = scope_free
    if ip in METADATA_ADDRESSES:
        return f"{ip} is a cloud metadata address"
    if ip.is_unspecified:
        return f"{ip} is the unspecified address"
    if ip.is_loopback:
        return None if allow_loopback else f"{ip} is a loopback address"
    if ip.is_link_local:
        return f"{ip} is a link-local address"
    if ip.is_multicast:
        return f"{ip} is a multicast address"
    if ip.is_reserved:  # before private: Python counts 240.0.0.0/4 as both
        return f"{ip} is a reserved address"
    if ip.is_private:
        return f"{ip} is a private address"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return None


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (the checked addresses) and what to ask for there."""

    url: str
    scheme: str
    host: str  # the name, for the Host header, SNI and the certificate
    port: int
    path: str  # path and query
    addresses: tuple[str, ...]

    @property
    def receiver(self) -> str:
        """The receiver's origin (scheme, host, port): what the webhook worker shares out fairly."""
        return f"{self.scheme}://{self.host}:{self.port}"


# What may stay as it is in a request path and query: RFC 3986's reserved and unreserved characters and "%"
# (an escape already made).
URL_SAFE = "/?#[]@!$&'()*+,;=:%-._~"


def check_url(
    url: str,
    *,
    require_https: bool = True,
    allow_loopback: bool = False,
    resolver: Resolver | None = None,
) -> Target:
    """The URL's target if Hark may call it; UrlRefused (with the reason) if not."""
    parts, scheme, port = _split_url(url, require_https)
    host = _ascii_host(parts)
    port = port or (443 if scheme == "https" else 80)
    found = _allowed_addresses(host, port, allow_loopback, resolver)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    path = quote(path, safe=URL_SAFE)  # non-ASCII percent-encoded (UTF-8), as browsers send it; escapes kept
    return Target(url=url, scheme=scheme, host=host, port=port, path=path, addresses=tuple(dict.fromkeys(found)))


def _split_url(url: str, require_https: bool) -> tuple[SplitResult, str, int | None]:
    """The URL's parts, lower-case scheme and port (if it names one), once its text, scheme and (absent) credentials are allowed."""
    if not isinstance(url, str) or not url:
        raise UrlRefused("the webhook URL is empty")
    if len(url) > MAX_URL_LENGTH:
        raise UrlRefused(f"the webhook URL is longer than {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise UrlRefused("the webhook URL contains spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        raise UrlRefused(f"the webhook URL is not valid ({err})") from None
    scheme = parts.scheme.lower()
    allowed = ("https",) if require_https else ("https", "http")
    if scheme not in allowed:
        raise UrlRefused(
            f"the webhook URL must start with {' or '.join(s + '://' for s in allowed)}, not {scheme or 'no scheme'}"
        )
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UrlRefused("the webhook URL may not carry a user name or password (user@host)")
    return parts, scheme, port


def _ascii_host(parts: SplitResult) -> str:
    """The host as DNS, Host and SNI use it: an internationalised name in its ASCII (punycode) form."""
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UrlRefused("the webhook URL has no host")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise UrlRefused(f"the webhook host {host!r} is not a valid domain name") from None
    return host


def _allowed_addresses(host: str, port: int, allow_loopback: bool, resolver: Resolver | None) -> list[str]:
    """Every address the host is or resolves to, once each one is an address Hark may call."""
    try:
        literal: IpAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        found = [str(literal)]
    else:
        try:
            found = list((resolver or system_resolver)(host, port))
        except (OSError, UnicodeError) as err:
            raise UnresolvableHost(f"the webhook host {host!r} does not resolve ({err})") from None
        if not found:
            raise UnresolvableHost(f"the webhook host {host!r} does not resolve")
    for text in found:
        try:
            ip = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            raise UrlRefused(f"the webhook host {host!r} resolves to {text!r}, which is not an address") from None
        reason = address_refusal(ip, allow_loopback)
        if reason:
            if literal is not None:
                raise UrlRefused(f"the webhook URL's address is not allowed: {reason}")
            raise UrlRefused(f"the webhook host {host!r} is not allowed: {reason}")
    return found


# -- one delivery, pinned to the checked addresses, within one deadline --------------------------------
class Deadline:
    """One attempt's deadline: every socket it watches is shut down when the time is up, which ends
    whatever read or write is blocked on it, however slowly the peer drips."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.expires = time.monotonic() + seconds
        self.passed = False
        self._watched: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def left(self) -> float:
        return max(0.0, self.expires - time.monotonic())

    def expired(self) -> bool:  # by the clock: the timer's thread may not have run yet
        return self.left() == 0.0

    def watch(self, sock: socket.socket) -> socket.socket:
        """Shut `sock` down at the deadline (through a duplicate: TLS wrapping detaches the original)."""
        with self._lock:
            self._watched.append(sock.dup())
            if self.passed:
                self._shut(self._watched[-1])
        return sock

    def _expire(self) -> None:
        with self._lock:
            self.passed = True
            for sock in self._watched:
                self._shut(sock)

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:  # already closed by the peer
            pass

    def close(self) -> None:
        self._timer.cancel()
        with self._lock:
            for sock in self._watched:
                sock.close()
            self._watched.clear()


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, target: Target, address: str, deadline: Deadline):
        super().__init__(target.host, target.port, timeout=deadline.left())
        self._address = address
        self._deadline = deadline

    def connect(self) -> None:  # the checked address, never a new DNS answer
        self.sock = self._deadline.watch(socket.create_connection((self._address, self.port), self._deadline.left()))


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, target: Target, address: str, deadline: Deadline, context: ssl.SSLContext):
        super().__init__(target.host, target.port, timeout=deadline.left(), context=context)
        self._address = address
        self._deadline = deadline
        self._tls = context

    def connect(self) -> None:
        raw = self._deadline.watch(socket.create_connection((self._address, self.port), self._deadline.left()))
        # SNI and the certificate check use the name; the socket goes to the checked address.
        self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)


class DeliveryFailed(Exception):
    """No HTTP answer (connection refused, timeout, TLS): the message names what happened."""


def post(
    target: Target, body: bytes, headers_: dict[str, str], timeout: float, tls: ssl.SSLContext | None = None
) -> int:
    """POST `body` to the target at one of its checked addresses, all within `timeout` seconds; the HTTP
    status. Redirects are not followed. `tls`: the system's trust store by default (tests pass one that
    trusts their own CA)."""
    deadline = Deadline(timeout)
    try:
        return _post(target, body, headers_, deadline, tls)
    except DeliveryFailed:
        if deadline.expired():
            raise DeliveryFailed(f"no answer within the attempt's {timeout:g} s (status line and headers)") from None
        raise
    finally:
        deadline.close()


def _post(target: Target, body: bytes, headers_: dict[str, str], deadline: Deadline, tls: ssl.SSLContext | None) -> int:
    errors = []
    for address in target.addresses:
        if deadline.expired():
            break
        conn: http.client.HTTPConnection
        if target.scheme == "https":
            conn = _PinnedHTTPS(target, address, deadline, tls or ssl.create_default_context())
        else:
            conn = _PinnedHTTP(target, address, deadline)
        try:
            try:
                conn.connect()
            except OSError as err:  # unreachable at this address: try the next checked one
                errors.append(f"{address}: {type(err).__name__}: {err}")
                continue
            try:
                conn.request("POST", target.path, body=body, headers=headers_)
                response = conn.getresponse()
            except (OSError, http.client.HTTPException) as err:
                raise DeliveryFailed(f"{type(err).__name__}: {err}"[:300]) from None
            try:
                response.read(RESPONSE_READ_LIMIT)
            except (OSError, http.client.HTTPException):  # the status is the answer; the body is a courtesy
                pass
            return response.status
        finally:
            conn.close()
    raise DeliveryFailed(("; ".join(errors) or "no address to connect to")[:300])
