"""What the CLI's commands share with the smoke test (hark.client.cli, hark.client.smoke): the exit codes, CliError, the
sentence of an error answer, the server's address and the local stack's dev token. A module of its own so
that hark.client.smoke need not import hark.client.cli, which imports hark.client.smoke for `hark smoke`."""

from __future__ import annotations

import os

# Exit codes of every command (the --help epilog and README's "CLI" section show this table).
EXIT_OK = 0
EXIT_FAILED = 1  # something failed: a file refused, an upload, a transcription, a wait that ran out
EXIT_USAGE = 2  # bad arguments or --server (argparse's own code for them too); nothing was sent
EXIT_UNREACHABLE = 3  # the server could not be reached or did not answer in time
EXIT_AUTH = 4  # the token was refused (missing, expired, not valid for this server)
EXIT_BUG = 70  # an unexpected error: a bug in hark (EX_SOFTWARE); one line, never a traceback
EXIT_INTERRUPTED = 130  # Ctrl-C


def default_server() -> str:
    return os.environ.get("HARK_SERVER") or f"http://127.0.0.1:{os.environ.get('HARK_PORT', '8000')}"


class CliError(Exception):
    """A failure the CLI explains in one line and ends with `code`."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def error_message(response) -> str:
    """The sentence of an error answer: the API, API Gateway and the local gateway all answer
    {"error": {"code", "message"}} (hark.api.http_api.GATEWAY_RESPONSES)."""
    try:
        body = response.json()
        err = body.get("error") if isinstance(body, dict) else None
        if isinstance(err, dict) and isinstance(err.get("message"), str) and err["message"]:
            return err["message"]
    except ValueError:
        pass
    return f"HTTP {response.status_code}"


def fetch_dev_token(server: str, email: str) -> str:
    import requests

    try:
        r = requests.post(f"{server}/dev/token", json={"email": email}, timeout=10)
    except requests.ConnectionError:
        raise CliError(
            f"cannot reach {server}: is `make up` running? (--server changes the address)", EXIT_UNREACHABLE
        ) from None
    if r.status_code == 404:
        raise CliError(f"{server} has no dev sign-in (a deployed stack): pass --token or set HARK_TOKEN", EXIT_AUTH)
    if r.status_code != 200:
        raise CliError(f"dev sign-in failed: {error_message(r)}", EXIT_AUTH)
    return r.json()["token"]
