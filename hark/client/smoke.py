"""`hark smoke --server URL --token T`: one real recording through a stack, every answer checked.

The same path a user takes: create a job, upload by the presigned POST, wait for COMPLETED, fetch
every format through GET /jobs/{id}/transcript and check each is well-formed and says what the
recording says, check the download link works on its own (no bearer token) and that the API refuses
a request without one, then delete the job. One line per check; exit 0 when every check passed.

The recording is bundled (hark/data/smoke.flac, LibriSpeech, CC BY 4.0: hark/data/README.md) with its
reference text; the transcript must be within `--max-wer` of it (hark.evaluation.wer: jiwer after Whisper's
normaliser, the same scoring as the tests and benchmarks).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources as pkg
from pathlib import Path
from typing import TextIO

FORMATS = ("txt", "json", "srt", "vtt")
# Every check, in the order they run (the e2e test and the docs read this).
CHECKS = ("api", "auth", "create", "upload", "status", *FORMATS, "link", "delete")
DEFAULT_MAX_WER = 0.3  # Whisper base scores ~5% on clean read English; 30% still means "it heard the words"


class SmokeError(Exception):
    """Stops the run: the stack cannot be reached, or it refuses the token."""


def bundled_recording() -> tuple[Path, str]:
    """The bundled clip and its reference text."""
    data = pkg.files("hark") / "data"
    return Path(str(data / "smoke.flac")), (data / "smoke.txt").read_text(encoding="utf-8").strip()


# -- format checks: each returns a short description, or raises ValueError saying what is wrong ------
_SRT_TIME = r"\d{2}:\d{2}:\d{2},\d{3}"
_VTT_TIME = r"\d{2}:\d{2}:\d{2}\.\d{3}"


def _seconds(clock: str) -> float:
    h, m, s = clock.replace(",", ".").split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def _cues(blocks: list[str], time_pattern: str, numbered: bool, fmt: str) -> list[str]:
    texts, last_start = [], -1.0
    timing = re.compile(rf"^({time_pattern}) --> ({time_pattern})$")
    for n, block in enumerate(blocks, start=1):
        lines = block.split("\n")
        if numbered:
            if lines[0].strip() != str(n):
                raise ValueError(f"{fmt} cue {n} is numbered {lines[0]!r}")
            lines = lines[1:]
        match = timing.match(lines[0].strip()) if lines else None
        if not match:
            raise ValueError(f"{fmt} cue {n} has no 'start --> end' line: {block[:60]!r}")
        start, end = _seconds(match[1]), _seconds(match[2])
        if end < start or start < last_start:
            raise ValueError(f"{fmt} cue {n} runs backwards ({match[1]} --> {match[2]})")
        last_start = start
        text = " ".join(line.strip() for line in lines[1:] if line.strip())
        if not text:
            raise ValueError(f"{fmt} cue {n} has no text")
        texts.append(text)
    if not texts:
        raise ValueError(f"{fmt} has no cues")
    return texts


def check_srt(body: str) -> list[str]:
    blocks = [b for b in re.split(r"\n\s*\n", body.replace("\r\n", "\n").strip()) if b.strip()]
    return _cues(blocks, _SRT_TIME, numbered=True, fmt="srt")


def check_vtt(body: str) -> list[str]:
    body = body.replace("\r\n", "\n").lstrip("\ufeff")
    if not body.startswith("WEBVTT"):
        raise ValueError("vtt does not start with WEBVTT")
    blocks = [b for b in re.split(r"\n\s*\n", body.strip())[1:] if b.strip()]
    return _cues(blocks, _VTT_TIME, numbered=False, fmt="vtt")


def check_json(body: str) -> list[str]:
    from pydantic import ValidationError

    from hark.domain.transcript import Transcript

    try:
        transcript = Transcript.model_validate_json(body)
    except ValidationError as err:
        raise ValueError(f"json is not a transcript: {str(err).splitlines()[0]}") from None
    texts = [s.text.strip() for s in transcript.segments if s.text.strip()]
    if not texts:
        raise ValueError("json has no segments with text")
    if any(s.end < s.start for s in transcript.segments):
        raise ValueError("json has a segment that ends before it starts")
    return texts


# -- the run ------------------------------------------------------------------------------------
@dataclass
class Report:
    out: TextIO = field(default_factory=lambda: sys.stdout)
    results: list[tuple[str, bool, str]] = field(default_factory=list)

    def line(self, check: str, ok: bool, detail: str) -> bool:
        self.results.append((check, ok, detail))
        print(f"{'ok  ' if ok else 'FAIL'}  {check:<7} {detail}", file=self.out, flush=True)
        return ok

    @property
    def failed(self) -> list[str]:
        return [c for c, ok, _ in self.results if not ok]


@dataclass
class Smoke:
    server: str
    token: str
    file: Path
    reference: str | None
    language: str = "auto"
    timeout: float = 900
    max_wer: float = DEFAULT_MAX_WER
    report: Report = field(default_factory=Report)

    def __post_init__(self) -> None:
        import requests

        self.server = self.server.rstrip("/")
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {self.token}"

    def call(self, method: str, path: str, auth: bool = True, **kw):
        import requests

        try:
            if auth:
                return self.http.request(method, f"{self.server}{path}", timeout=30, **kw)
            return requests.request(method, f"{self.server}{path}", timeout=30, **kw)
        except requests.ConnectionError:
            raise SmokeError(f"cannot reach {self.server}: check --server (the ApiUrl output, or `make up`)") from None
        except requests.Timeout:
            raise SmokeError(f"{self.server} did not answer {method} {path} within 30 s") from None

    def run(self) -> int:
        from hark.client.cli_base import error_message
        from hark.domain.uploads import content_type_for

        r = self.call("GET", "/jobs?limit=1")
        if r.status_code in (401, 403):
            raise SmokeError(
                f"{self.server} refused the token (HTTP {r.status_code}): get a fresh one "
                "(Clerk session tokens last about a minute) and check its issuer and azp"
            )
        if not self.report.line("api", r.status_code == 200, f"GET /jobs answers {r.status_code} with the token"):
            return 1
        r = self.call("GET", "/jobs?limit=1", auth=False)
        self.report.line("auth", r.status_code == 401, f"GET /jobs without a token answers {r.status_code} (want 401)")

        content_type = content_type_for(self.file.name)
        body = {
            "filename": self.file.name,
            "content_type": content_type,
            "size": self.file.stat().st_size,
            "language": self.language,
        }
        r = self.call("POST", "/jobs", json=body)
        if r.status_code != 201:
            self.report.line("create", False, f"POST /jobs answered {r.status_code}: {error_message(r)}")
            return 1
        created = r.json()
        job_id = created["job"]["job_id"]
        self.report.line("create", True, f"job {job_id} ({created['job']['status']})")
        try:
            if self.upload(created["upload"], content_type) and self.wait(job_id):
                texts = self.formats(job_id)
                self.link(job_id, texts)
        finally:
            self.delete(job_id)
        failed = self.report.failed
        print(
            f"smoke: {len(self.report.results) - len(failed)} of {len(self.report.results)} checks passed"
            + (f"; failed: {', '.join(failed)}" if failed else ""),
            file=self.report.out,
            flush=True,
        )
        return 1 if failed else 0

    def upload(self, form: dict, content_type: str) -> bool:
        import requests

        try:
            with open(self.file, "rb") as f:
                up = requests.post(
                    form["url"], data=form["fields"], files={"file": (self.file.name, f, content_type)}, timeout=300
                )
        except requests.RequestException as err:
            return self.report.line("upload", False, f"presigned POST to {form['url']} failed: {type(err).__name__}")
        return self.report.line(
            "upload",
            up.status_code < 300,
            f"presigned POST of {self.file.name} ({self.file.stat().st_size} bytes) answered {up.status_code}",
        )

    def wait(self, job_id: str) -> bool:
        started, seen = time.monotonic(), list[str]()
        while True:
            r = self.call("GET", f"/jobs/{job_id}")
            if r.status_code != 200:
                return self.report.line("status", False, f"GET /jobs/{job_id} answered {r.status_code}")
            job = r.json()
            if not seen or seen[-1] != job["status"]:
                seen.append(job["status"])
            elapsed = time.monotonic() - started
            if job["status"] == "COMPLETED":
                return self.report.line(
                    "status",
                    True,
                    f"{' -> '.join(seen)} in {elapsed:.0f} s "
                    f"(language {job.get('detected_language')}, {job.get('duration_seconds')} s)",
                )
            if job["status"] == "FAILED":
                return self.report.line("status", False, f"FAILED: {job.get('error') or 'no reason given'}")
            if elapsed > self.timeout:
                return self.report.line(
                    "status",
                    False,
                    f"still {job['status']} after {self.timeout:.0f} s "
                    f"({' -> '.join(seen)}); a first job wakes the GPU fleet from zero "
                    "(~5 min): raise --timeout, or see docs/runbook.md",
                )
            time.sleep(1.0)

    def formats(self, job_id: str) -> dict[str, list[str]]:
        """Each format through the API's link; returns each format's text lines (for the link check)."""
        import requests

        from hark.evaluation.wer import word_error_rate, words  # jiwer: only when a smoke run scores

        texts: dict[str, list[str]] = {}
        for fmt in FORMATS:
            r = self.call("GET", f"/jobs/{job_id}/transcript?format={fmt}")
            if r.status_code != 200:
                self.report.line(fmt, False, f"GET /jobs/{job_id}/transcript?format={fmt} answered {r.status_code}")
                continue
            link = r.json()
            got = requests.get(link["url"], timeout=60)
            if got.status_code != 200:
                self.report.line(fmt, False, f"the {fmt} link answered {got.status_code}")
                continue
            try:
                body = got.content.decode("utf-8")
                lines = self.check_format(fmt, body)
            except (UnicodeDecodeError, ValueError) as err:
                self.report.line(fmt, False, str(err))
                continue
            texts[fmt] = lines
            detail = f"{len(got.content)} bytes, {len(lines)} {'lines' if fmt == 'txt' else 'segments'}"
            if fmt == "txt" and self.reference is not None:
                wer = word_error_rate(self.reference, body, None if self.language == "auto" else self.language)
                ok = wer <= self.max_wer
                self.report.line(
                    fmt,
                    ok,
                    f"{detail}, word error rate {wer:.1%} against the reference "
                    f"(at most {self.max_wer:.0%}): {body.strip()[:80]!r}",
                )
            else:
                self.report.line(fmt, True, detail)
        # The four renderings come from one transcript: the same words in each.
        if len(texts) == len(FORMATS):
            reference = words(" ".join(texts["txt"]))
            for fmt in FORMATS[1:]:
                if words(" ".join(texts[fmt])) != reference:
                    self.report.line(fmt, False, f"{fmt} does not hold the same words as txt")
        return texts

    def check_format(self, fmt: str, body: str) -> list[str]:
        if fmt == "txt":
            lines = [line.strip() for line in body.splitlines() if line.strip()]
            if not lines:
                raise ValueError("txt is empty")
            return lines
        return {"json": check_json, "srt": check_srt, "vtt": check_vtt}[fmt](body)

    def link(self, job_id: str, texts: dict[str, list[str]]) -> bool:
        """The job's own transcript link works without the bearer token and has not expired."""
        import requests

        job = self.call("GET", f"/jobs/{job_id}").json()
        url = (job.get("transcript") or {}).get("txt")
        if not url:
            return self.report.line("link", False, "the COMPLETED job carries no transcript links")
        r = self.call("GET", f"/jobs/{job_id}/transcript?format=txt")
        expires = r.json().get("expires_at", "") if r.status_code == 200 else ""
        try:
            remaining = (datetime.fromisoformat(expires.replace("Z", "+00:00")) - datetime.now(UTC)).total_seconds()
        except ValueError:
            return self.report.line("link", False, f"expires_at {expires!r} is not an ISO 8601 time")
        got = requests.get(url, timeout=60)  # no Authorization header: the link is the credential
        same = "txt" not in texts or [ln.strip() for ln in got.text.splitlines() if ln.strip()] == texts["txt"]
        ok = got.status_code == 200 and same and remaining > 0
        return self.report.line(
            "link",
            ok,
            f"the job's txt link answers {got.status_code} without a token"
            f"{'' if same else ' but with other text'}; expires in {remaining / 60:.0f} min",
        )

    def delete(self, job_id: str) -> bool:
        r = self.call("DELETE", f"/jobs/{job_id}")
        if r.status_code != 204:
            return self.report.line("delete", False, f"DELETE /jobs/{job_id} answered {r.status_code}")
        after = self.call("GET", f"/jobs/{job_id}")
        return self.report.line(
            "delete", after.status_code == 404, f"DELETE answered 204; GET then answers {after.status_code} (want 404)"
        )


# -- the command --------------------------------------------------------------------------------
def cmd_smoke(args) -> int:
    from hark.client.cli_base import CliError, fetch_dev_token

    try:
        if args.file:
            path = Path(args.file)
            if not path.is_file():
                raise SmokeError(f"{args.file}: no such file")
            reference = Path(args.reference).read_text(encoding="utf-8") if args.reference else None
        else:
            path, reference = bundled_recording()
        token = args.token or os.environ.get("HARK_TOKEN")
        if not token:
            try:
                token = fetch_dev_token(args.server, "smoke@example.com")
            except CliError as err:
                raise SmokeError(str(err)) from None
        smoke = Smoke(
            server=args.server,
            token=token,
            file=path,
            reference=reference,
            language=args.language,
            timeout=args.timeout,
            max_wer=args.max_wer,
        )
        return smoke.run()
    except (SmokeError, OSError) as err:
        print(f"hark smoke: {err}", file=sys.stderr)
        return 1
    except (ValueError, KeyError) as err:  # an answer not in the API's shape (json, keys)
        print(
            f"hark smoke: {args.server} answered something that is not Hark's API ({type(err).__name__}: {err})",
            file=sys.stderr,
        )
        return 1


def register(sub: argparse._SubParsersAction) -> None:
    from hark.client.cli_base import default_server

    p = sub.add_parser(
        "smoke",
        help="run a real recording through a stack and check every answer",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--server", default=default_server(), help="API base URL: the ApiUrl output (default $HARK_SERVER or local)"
    )
    p.add_argument("--token", help="a bearer token (default $HARK_TOKEN, else a local dev token)")
    p.add_argument("--file", help="another recording instead of the bundled one")
    p.add_argument("--reference", help="with --file: its reference text, to score the transcript against")
    p.add_argument("--language", default="auto", help="auto (default), en, ...")
    p.add_argument("--timeout", type=float, default=900, help="seconds to wait for COMPLETED (default 900)")
    p.add_argument(
        "--max-wer",
        type=float,
        default=DEFAULT_MAX_WER,
        help=f"largest word error rate accepted against the reference (default {DEFAULT_MAX_WER})",
    )
    p.set_defaults(func=cmd_smoke)
