"""hark.domain.webhooks.post against real servers on loopback: the connection goes to the address that was
checked, never to a fresh DNS answer, while the name travels as the Host header and the TLS SNI, and the
certificate is verified against the name. The names used here do not resolve at all on this machine, so
a delivery that looked them up again would fail."""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hark.domain.webhooks import RESPONSE_READ_LIMIT, DeliveryFailed, check_url, post
from tests.webhook_receiver import DrippingReceiver

NAME = "hooks.hark.test"  # .test is reserved (RFC 2606): it never resolves


def _cert(subject: str, issuer_key, issuer_name, key, ca: bool):
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA and a certificate for NAME signed by it (files), and a client context trusting only that CA."""
    folder = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Hark test CA")])
    ca = _cert("Hark test CA", ca_key, ca_name, ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = _cert(NAME, ca_key, ca_name, key, ca=False)
    (folder / "leaf.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    client = ssl.create_default_context(cadata=ca.public_bytes(serialization.Encoding.PEM).decode())
    return folder, client


class Server:
    """An HTTP(S) server on 127.0.0.1 recording each request's Host header, body and TLS SNI."""

    def __init__(self, status: int = 200, tls_files=None):
        self.requests: list[dict] = []
        self.sni: list[str | None] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.requests.append({"host": self.headers["Host"], "path": self.path, "body": body})
                self.send_response(status)
                if status in (301, 302, 307, 308):
                    self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        if tls_files:
            folder = tls_files
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(folder / "leaf.pem", folder / "key.pem")
            context.sni_callback = lambda sock, name, ctx: outer.sni.append(name)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def loopback(host: str, port: int) -> list[str]:
    return ["127.0.0.1"]


def test_https_goes_to_the_checked_address_with_the_name_as_sni_and_host(pki):
    folder, client = pki
    server = Server(tls_files=folder)
    try:
        with pytest.raises(socket.gaierror):
            socket.getaddrinfo(NAME, server.port)  # the name alone leads nowhere
        target = check_url(f"https://{NAME}:{server.port}/in?x=1", allow_loopback=True, resolver=loopback)
        status = post(target, b'{"a":1}', {"content-type": "application/json"}, timeout=5, tls=client)
        assert status == 200
        assert server.sni == [NAME]
        assert server.requests == [{"host": f"{NAME}:{server.port}", "path": "/in?x=1", "body": b'{"a":1}'}]
    finally:
        server.close()


def test_https_certificate_for_another_name_is_refused(pki):
    folder, client = pki
    server = Server(tls_files=folder)
    try:
        target = check_url(f"https://other.hark.test:{server.port}/", allow_loopback=True, resolver=loopback)
        with pytest.raises(DeliveryFailed, match=r"(?i)certificate"):
            post(target, b"{}", {}, timeout=5, tls=client)
        assert server.requests == []
    finally:
        server.close()


def test_http_is_pinned_too_and_redirects_are_not_followed():
    server = Server(status=302)
    try:
        target = check_url(
            f"http://rebind.hark.test:{server.port}/hook", require_https=False, allow_loopback=True, resolver=loopback
        )
        assert post(target, b"{}", {}, timeout=5) == 302  # answered as it is: a failed attempt, not followed
        assert [r["host"] for r in server.requests] == [f"rebind.hark.test:{server.port}"]
    finally:
        server.close()


def test_no_answer_is_a_delivery_failure():
    silent = socket.create_server(("127.0.0.1", 0))  # accepts, never answers
    try:
        port = silent.getsockname()[1]
        target = check_url(f"http://{NAME}:{port}/", require_https=False, allow_loopback=True, resolver=loopback)
        with pytest.raises(DeliveryFailed, match=r"no answer within the attempt's 0\.5 s"):
            post(target, b"{}", {}, timeout=0.5)
    finally:
        silent.close()
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    target = check_url(f"http://{NAME}:{port}/", require_https=False, allow_loopback=True, resolver=loopback)
    with pytest.raises(DeliveryFailed, match=r"127\.0\.0\.1: ConnectionRefusedError"):
        post(target, b"{}", {}, timeout=5)


def test_a_receiver_that_drips_its_answer_is_cut_off_at_the_attempts_deadline():
    """One byte every 0.2 s: each read is well within any per-read timeout, but the status line alone
    would take 3.4 s. The attempt ends at its 1 s deadline for everything, and the receiver sees the
    connection closed while it still drips."""
    drip = DrippingReceiver(interval=0.2)
    try:
        target = check_url(drip.url, require_https=False, allow_loopback=True)
        with pytest.raises(DeliveryFailed, match=r"no answer within the attempt's 1 s"):
            post(target, b"{}", {}, timeout=1)
        drip.wait_for(lambda r: r.cut == 1, "the connection cut mid-drip")
        assert drip.requests == 1
    finally:
        drip.close()


def test_an_answer_with_an_endless_body_counts_by_its_status():
    """The status line and headers come at once, then a body of 10 MB one byte at a time: the status is
    the answer; at most RESPONSE_READ_LIMIT of the body is waited for, within the deadline."""
    size = 10 * 1024 * 1024
    drip = DrippingReceiver(
        interval=0.05, at_once=f"HTTP/1.1 202 Accepted\r\nContent-Length: {size}\r\n\r\n".encode(), drip=b"x" * size
    )
    try:
        assert RESPONSE_READ_LIMIT <= 8 * 1024
        target = check_url(drip.url, require_https=False, allow_loopback=True)
        assert post(target, b"{}", {}, timeout=1) == 202
        drip.wait_for(lambda r: r.cut == 1, "the connection closed mid-body")
    finally:
        drip.close()
