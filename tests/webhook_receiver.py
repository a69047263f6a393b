"""A real webhook receiver for the tests: an HTTP server on loopback that verifies every delivery's
signature with the Standard Webhooks algorithm, records each request, and answers a scripted series of
statuses (e.g. 500 then 200, to show a retry)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def spec_signatures(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    """v1,<base64 HMAC-SHA256 of id.timestamp.body>, keyed with the secret's base64 after whsec_."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int

    @property
    def json(self) -> dict:
        return json.loads(self.body)

    def signed_by(self, secret: str) -> bool:
        expected = spec_signatures(secret, self.headers["webhook-id"], self.headers["webhook-timestamp"], self.body)
        return any(hmac.compare_digest(expected, s) for s in self.headers["webhook-signature"].split(" "))


class Receiver:
    def __init__(self, statuses: list[int] | None = None, default: int = 200):
        self.statuses = list(statuses or [])
        self.default = default
        self.received: list[Received] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else receiver.default
                    receiver.received.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, status)
                    )
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/hark?source=test"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


class DrippingReceiver:
    """A receiver that answers as slowly as it may: it reads each request whole, sends `at_once` at once,
    then `drip` one byte every `interval` seconds (by default a whole 200 answer, whose status line alone
    takes 17 of them) until the sender hangs up. It counts the requests, how many it drips to at once (at most), and the connections cut mid-drip;
    `changed` is notified at each of these, for tests to wait on."""

    def __init__(self, interval: float = 2.0, drip: bytes = ANSWER, at_once: bytes = b""):
        self.interval, self.drip, self.at_once = interval, drip, at_once
        self.requests = 0
        self.dripping = 0
        self.most_at_once = 0
        self.cut = 0
        self.changed = threading.Condition()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/hooks/slow"
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        with conn:
            file = conn.makefile("rb")
            length = 0
            while (line := file.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            file.read(length)
            self._note(requests=1, dripping=1)
            try:
                conn.sendall(self.at_once)
                for byte in self.drip:
                    conn.sendall(bytes([byte]))
                    conn.settimeout(self.interval)
                    try:
                        if conn.recv(1) == b"":  # the sender hung up
                            self._note(cut=1, dripping=-1)
                            return
                    except TimeoutError:  # the sender is still there: the next byte
                        pass
            except OSError:  # reset by the sender
                self._note(cut=1, dripping=-1)
                return
            self._note(dripping=-1)

    def _note(self, requests: int = 0, dripping: int = 0, cut: int = 0) -> None:
        with self.changed:
            self.requests += requests
            self.dripping += dripping
            self.most_at_once = max(self.most_at_once, self.dripping)
            self.cut += cut
            self.changed.notify_all()

    def wait_for(self, predicate, what: str, limit: float = 120) -> None:
        """Until predicate(self) holds (a safety net of `limit` seconds, for a hung test, not a timing)."""
        with self.changed:
            if not self.changed.wait_for(lambda: predicate(self), limit):
                raise AssertionError(f"the dripping receiver never saw {what}")

    def close(self) -> None:
        self.closed.set()
        self.listener.close()
