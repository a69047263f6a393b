"""hark.domain.webhooks: Standard Webhooks signatures (the specification's published test vector) and the URL
check, with a resolver the test controls: nothing here sends traffic to any of the refused addresses."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from hark.domain import webhooks
from hark.domain.webhooks import UnresolvableHost, UrlRefused, check_url

# The Standard Webhooks specification's test vector (standard-webhooks/standard-webhooks, its libraries' tests).
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = '{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signature_reproduces_the_specifications_test_vector():
    assert webhooks.signature_header([VECTOR_SECRET], VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE


def _spec_signature(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    """The spec's algorithm written out: base64 HMAC-SHA256 of id.timestamp.body with the decoded secret."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def test_during_a_rotation_both_secrets_sign_and_either_verifies():
    old, new = webhooks.new_secret(), webhooks.new_secret()
    now = int(time.time())
    body = '{"type": "job.completed"}'
    headers = webhooks.headers([new, old], "msg_1", now, body)
    assert headers["webhook-signature"] == f"{_spec_signature(new, 'msg_1', now, body)} " + _spec_signature(
        old, "msg_1", now, body
    )
    for secret in (new, old):  # a receiver still on the old secret, and one already on the new
        assert Webhook(secret).verify(body, headers) == {"type": "job.completed"}
    with pytest.raises(WebhookVerificationError):
        Webhook(webhooks.new_secret()).verify(body, headers)


def test_new_secrets_are_whsec_with_32_random_bytes():
    a, b = webhooks.new_secret(), webhooks.new_secret()
    assert a.startswith("whsec_") and a != b
    assert len(base64.b64decode(a.removeprefix("whsec_"))) == webhooks.SECRET_BYTES


def resolving_to(*addresses: str):
    asked: list[tuple[str, int]] = []

    def resolve(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return list(addresses)

    resolve.asked = asked  # type: ignore[attr-defined]
    return resolve


# Each refused address, and the words its refusal must use (what the user reads in the 400).
REFUSED = [
    ("169.254.169.254", "metadata"),
    ("::ffff:169.254.169.254", "metadata"),
    ("::ffff:a9fe:a9fe", "metadata"),  # the same, written in hex
    ("64:ff9b::a9fe:a9fe", "metadata"),  # NAT64
    ("2002:a9fe:a9fe::1", "metadata"),  # 6to4
    ("fd00:ec2::254", "metadata"),
    ("169.254.170.2", "metadata"),
    ("127.0.0.1", "loopback"),
    ("::1", "loopback"),
    ("::ffff:127.0.0.1", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.9", "private"),
    ("192.168.1.1", "private"),
    ("fd12:3456::1", "private"),
    ("169.254.1.1", "link-local"),
    ("fe80::1", "link-local"),
    ("224.0.0.1", "multicast"),
    ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("240.0.0.1", "reserved"),
    ("100.64.0.1", "not a public"),  # carrier-grade NAT
]


@pytest.mark.parametrize(("address", "words"), REFUSED)
def test_hosts_resolving_to_non_public_addresses_are_refused(address, words):
    with pytest.raises(UrlRefused, match=words):
        check_url("https://hooks.example.com/x", resolver=resolving_to(address))


@pytest.mark.parametrize(("address", "words"), REFUSED)
def test_literal_non_public_addresses_are_refused_without_resolving(address, words):
    host = f"[{address}]" if ":" in address else address
    resolver = resolving_to("93.184.216.34")
    with pytest.raises(UrlRefused, match=words):
        check_url(f"https://{host}/x", resolver=resolver)
    assert resolver.asked == []  # type: ignore[attr-defined]


def test_one_bad_address_among_good_ones_refuses_the_url():
    with pytest.raises(UrlRefused, match="metadata"):
        check_url("https://hooks.example.com/", resolver=resolving_to("93.184.216.34", "169.254.169.254"))


def test_a_public_host_gives_its_checked_addresses_and_request_parts():
    resolver = resolving_to("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "93.184.216.34")
    target = check_url("https://Hooks.Example.com:8443/in/hark?x=1#frag", resolver=resolver)
    assert (target.scheme, target.host, target.port, target.path) == (
        "https",
        "hooks.example.com",
        8443,
        "/in/hark?x=1",
    )
    assert target.addresses == ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946")
    assert resolver.asked == [("hooks.example.com", 8443)]  # type: ignore[attr-defined]


def test_an_internationalised_host_and_path_are_sent_in_their_ascii_forms():
    """The host in IDNA (punycode) for DNS, Host and SNI; a non-ASCII path percent-encoded as UTF-8 (RFC 3987's
    mapping), escapes already there kept. Expected forms from the IDNA and UTF-8 definitions, by hand."""
    resolver = resolving_to("93.184.216.34")
    target = check_url("https://bücher.example/entrée?q=café&x=%20", resolver=resolver)
    assert target.host == "xn--bcher-kva.example"
    assert target.path == "/entr%C3%A9e?q=caf%C3%A9&x=%20"
    assert resolver.asked == [("xn--bcher-kva.example", 443)]  # type: ignore[attr-defined]
    with pytest.raises(UrlRefused, match="not a valid domain name"):
        check_url("https://" + "ü" * 70 + ".example/", resolver=resolver)  # a label over 63 characters


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://hooks.example.com/", "must start with https://"),
        ("ftp://hooks.example.com/", "must start with https://"),
        ("file:///etc/passwd", "must start with https://"),
        ("gopher://hooks.example.com/", "must start with https://"),
        ("hooks.example.com/x", "not no scheme"),
        ("https://user:pw@hooks.example.com/", "user name or password"),
        ("https://user@hooks.example.com/", "user name or password"),
        ("https:///nohost", "no host"),
        ("https://hooks.example.com:99999/", "not valid"),
        ("https://hooks.example.com/a b", "spaces or control"),
        ("", "empty"),
        ("https://hooks.example.com/" + "a" * 2048, "longer than"),
    ],
)
def test_malformed_or_disallowed_urls_are_refused(url, words):
    resolver = resolving_to("93.184.216.34")
    with pytest.raises(UrlRefused, match=words):
        check_url(url, resolver=resolver)


def test_http_is_allowed_only_when_https_is_not_required():
    resolver = resolving_to("93.184.216.34")
    assert check_url("http://hooks.example.com/", require_https=False, resolver=resolver).port == 80
    with pytest.raises(UrlRefused, match="https"):
        check_url("http://hooks.example.com/", resolver=resolver)


def test_loopback_may_be_allowed_but_never_link_local_or_metadata():
    assert check_url("http://127.0.0.1:9/", require_https=False, allow_loopback=True).addresses == ("127.0.0.1",)
    assert check_url("http://[::ffff:127.0.0.1]:9/", require_https=False, allow_loopback=True)
    for address in ("169.254.169.254", "::ffff:169.254.169.254", "fe80::1", "10.0.0.1"):
        with pytest.raises(UrlRefused):
            check_url("http://h.example/", require_https=False, allow_loopback=True, resolver=resolving_to(address))


def test_a_host_that_does_not_resolve_is_refused_as_unresolvable():
    def fails(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    with pytest.raises(UnresolvableHost, match="does not resolve"):
        check_url("https://nowhere.invalid/", resolver=fails)
    with pytest.raises(UnresolvableHost):
        check_url("https://nowhere.invalid/", resolver=resolving_to())


@pytest.mark.parametrize("host", ["2130706433", "0x7f.1", "127.1", "localhost", "LOCALHOST.", "[::1]", "0"])
def test_other_spellings_of_this_machine_are_refused_by_the_system_resolver(host):
    # Resolved by this machine's own resolver (numeric forms and /etc/hosts: no query leaves it); nothing is sent.
    with pytest.raises(UrlRefused, match=r"loopback|unspecified"):
        check_url(f"https://{host}/")
