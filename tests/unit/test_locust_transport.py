"""The locust transport lets a user die when locust stops it.

Locust stops a user by raising GreenletExit in its greenlet; if that lands while a response body is
being read, the transport must let it through. It once turned it into httpx.ResponseNotRead (reading
`.content` of the unread body in a `finally`), which locust logged as a task error and the user kept
running: locust then waited for it forever. Run in a subprocess: importing locust patches the standard
library through gevent, which must not reach the rest of the session.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import httpx
from gevent import GreenletExit
from locust.env import Environment

from loadtests.locustfile import ApiUser, LocustTransport


class CutMidBody(httpx.SyncByteStream):
    def __init__(self, error):
        self.error = error

    def __iter__(self):
        yield b'{"partial": '
        raise self.error


class Inner(httpx.BaseTransport):
    def __init__(self, status, error):
        self.status, self.error = status, error

    def handle_request(self, request):
        return httpx.Response(self.status, stream=CutMidBody(self.error), request=request)


ApiUser.host = "http://127.0.0.1:1"
fired = []
environment = Environment(user_classes=[ApiUser])
environment.events.request.add_listener(lambda **kw: fired.append(kw))
cases = [(200, GreenletExit()), (500, GreenletExit()), (200, httpx.ReadError("connection reset"))]
for status, error in cases:  # GreenletExit: locust's kill, arriving while the body streams in
    transport = LocustTransport(ApiUser(environment))
    transport.inner = Inner(status, error)
    try:
        transport.handle_request(httpx.Request("GET", "http://127.0.0.1:1/jobs"))
    except GreenletExit:
        print(f"{status}: GreenletExit")
    except BaseException as err:
        print(f"{status}: {type(err).__name__}: {err}")
print("events:", [(e["name"], type(e["exception"]).__name__) for e in fired])
"""


def test_a_kill_while_a_body_is_read_stops_the_user():
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "200: GreenletExit" in lines, done.stdout
    assert "500: GreenletExit" in lines, done.stdout
    assert "200: ReadError: connection reset" in lines, done.stdout
    # a request cut off by the kill is neither a success nor a failure; a dropped connection is a failure
    assert "events: [('GET /jobs', 'ReadError')]" in lines, done.stdout
