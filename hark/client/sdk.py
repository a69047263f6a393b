"""The Python client of the Hark API: `hark.client.Hark` (this module; the package re-exports its public names).

    from hark.client import Hark

    with Hark("https://api.example.com", token) as hark:
        job = hark.submit("meeting.mp3")                  # POST /jobs, then the presigned upload
        job = hark.wait(job.job_id, on_progress=print)    # polls GET /jobs/{id} until it finishes
        print(hark.transcript(job.job_id, "srt", chars_per_line=32))
        hark.delete(job.job_id)

Its typed layer, hark/client/api_client (the models: JobView, JobList, CreateJobResponse, ...; one function
per operation), is generated from docs/openapi.json by openapi-python-client (`make client`). This
module adds what the document cannot say: the presigned-POST upload, waiting with progress, reading
the transcript behind a link, and one exception per kind of failure, carrying the API's own message.

Every request goes through one httpx transport, which a caller may give (the locust scenarios give
one that times each request for locust's statistics). The bearer token goes to the API only, never
to the storage URLs of uploads and downloads.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import IO, Any, TypeVar

import httpx

from hark.client.api_client import AuthenticatedClient
from hark.client.api_client.api.jobs import (
    create_job_jobs_post,
    delete_job_jobs_job_id_delete,
    get_job_jobs_job_id_get,
    get_transcript_jobs_job_id_transcript_get,
    list_jobs_jobs_get,
)
from hark.client.api_client.models import (
    CreateJobRequest,
    CreateJobRequestNotifyType0Item,
    CreateJobRequestTask,
    CreateJobResponse,
    GetTranscriptJobsJobIdTranscriptGetFormat,
    JobList,
    JobStatus,
    JobView,
    TranscriptLink,
    UploadForm,
)
from hark.client.api_client.types import UNSET, Response
from hark.domain import languages
from hark.domain.uploads import content_type_for

__all__ = [
    "FORMATS",
    "ApiError",
    "AuthError",
    "ConnectionFailed",
    "DownloadFailed",
    "Hark",
    "HarkError",
    "InvalidArgument",
    "JobFailed",
    "JobList",
    "JobStatus",
    "JobView",
    "NotFound",
    "NotReady",
    "QuotaExceeded",
    "ServerTimeout",
    "TranscriptLink",
    "UploadFailed",
    "WaitTimeout",
]

FORMATS = tuple(f.value for f in GetTranscriptJobsJobIdTranscriptGetFormat)  # txt, json, srt, vtt


# -- what can go wrong, one class each; str(error) is one sentence for people ---------------------
class HarkError(Exception):
    """Every failure of the client."""


class InvalidArgument(HarkError, ValueError):
    """An argument the API would refuse, caught before any request (a format, language or status it lacks)."""


class ApiError(HarkError):
    """The API (or API Gateway) answered with an error: its status, stable `code` and `message`."""

    def __init__(self, status: int, code: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.retry_after = retry_after  # seconds, from a Retry-After header (429, 503), when it had one


class AuthError(ApiError):
    """401/403: the token is missing, expired or not valid here."""


class NotFound(ApiError):
    """404: no such job (another user's job is answered alike)."""


class NotReady(ApiError):
    """409: e.g. a transcript asked for before the job is COMPLETED."""


class QuotaExceeded(ApiError):
    """429: too many unfinished jobs, or throttled."""


class ConnectionFailed(HarkError):
    """Nothing answered at `url` (refused, reset, DNS)."""

    def __init__(self, url: str) -> None:
        super().__init__(f"cannot reach {url}: is the server running?")
        self.url = url


class ServerTimeout(HarkError):
    """`url` did not answer within the client's timeout."""

    def __init__(self, url: str) -> None:
        super().__init__(f"{url} did not answer in time; try again")
        self.url = url


class UploadFailed(HarkError):
    """The storage refused the presigned upload (expired form, wrong size or type)."""


class DownloadFailed(HarkError):
    """The storage refused a transcript link (expired, or the job was deleted meanwhile)."""


class JobFailed(HarkError):
    """The job ended FAILED; `job.error` says why."""

    def __init__(self, job: JobView) -> None:
        super().__init__(f"transcription failed: {job.error or 'unknown reason'}")
        self.job = job


class WaitTimeout(HarkError):
    """The job was not finished when the wait's time was up; `job` is how it was last seen."""

    def __init__(self, job: JobView, seconds: float) -> None:
        super().__init__(f"still {job.status.value} after {seconds:g}s (job {job.job_id})")
        self.job = job


_BY_STATUS: dict[int, type[ApiError]] = {401: AuthError, 403: AuthError, 404: NotFound, 409: NotReady}


def api_error(response: httpx.Response | Response[Any]) -> ApiError:
    """The exception for an error answer: every error body is {"error": {"code", "message"}}
    (hark.api.http_api.GATEWAY_RESPONSES); anything else keeps its status."""
    status = int(response.status_code)
    code, message = "http_error", f"HTTP {status}"
    try:
        body = json.loads(response.content)
        err = body.get("error") if isinstance(body, dict) else None
        if isinstance(err, dict) and isinstance(err.get("message"), str) and err["message"]:
            code, message = str(err.get("code") or code), err["message"]
        elif isinstance(body, dict) and isinstance(body.get("message"), str):  # API Gateway's bare shape
            message = body["message"]
    except ValueError:
        pass
    kind = QuotaExceeded if status == 429 else _BY_STATUS.get(status, ApiError)
    return kind(status, code, message, _retry_after(response.headers.get("Retry-After")))


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (RFC 9110: delay-seconds; an HTTP date is read as "soon": None)."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _storage_message(response: httpx.Response) -> str:
    """S3's <Message> from its XML error body, else the status."""
    found = re.search(r"<Message>(.*?)</Message>", response.text or "", re.S)
    return found.group(1).strip() if found else f"HTTP {response.status_code}"


ProgressCallback = Callable[[JobView, float], None]


class Hark:
    """A session with one Hark API as one user; a context manager (closed on leaving).

    Every method raises ConnectionFailed or ServerTimeout when nothing answers in time, and an ApiError
    (AuthError, NotFound, NotReady, QuotaExceeded or ApiError itself) for an error answer.

    Parameters
    ----------
    server : str
        The API's base URL: http(s)://host[:port][/stage].
    token : str
        A bearer token: a Clerk session token; locally `hark token`.
    transport : httpx.BaseTransport, optional
        The transport of every request (default: httpx's own).
    timeout : float
        Seconds for each API request.
    upload_timeout : float
        Seconds for each upload and download (the storage's presigned URLs).
    """

    def __init__(
        self,
        server: str,
        token: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        upload_timeout: float = 3600.0,
    ) -> None:
        self.server = server.rstrip("/")
        self._http = httpx.Client(
            base_url=self.server,
            transport=transport,
            timeout=timeout,
            headers={"Authorization": f"Bearer {token}"},
        )
        # The storage's presigned URLs carry their own credentials: a client without the token.
        self._storage = httpx.Client(transport=transport, timeout=upload_timeout)
        self.api = AuthenticatedClient(base_url=self.server, token=token).set_httpx_client(self._http)

    def close(self) -> None:
        """Close the session's connections (leaving a `with` block does)."""
        self._http.close()
        self._storage.close()

    def __enter__(self) -> Hark:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the API's operations, typed ------------------------------------------------------------
    def create(
        self,
        filename: str,
        size: int,
        *,
        content_type: str | None = None,
        language: str = "auto",
        prompt: str | None = None,
        task: str = "transcribe",
        speaker_labels: bool = False,
        speakers_expected: int | None = None,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
        webhook_url: str | None = None,
        notify: Sequence[str] | None = None,
        idempotency_key: str | None = None,
    ) -> CreateJobResponse:
        """POST /jobs: a job in UPLOADING and the form to upload its recording with.

        Parameters
        ----------
        filename : str
            The recording's file name (its extension gives the content type when none is given).
        size : int
            The recording's size in bytes: the upload must be exactly this size.
        content_type : str, optional
            The recording's media type (default: from the extension).
        language : str
            "auto" (detected), a code ("es") or a name ("Spanish").
        prompt : str, optional
            Names and terms the recording uses (at most 500 characters).
        task : str
            "transcribe", or "translate" (into English).
        speaker_labels : bool
            Label who speaks when.
        speakers_expected : int, optional
            How many speakers, when known (with speaker_labels).
        webhook_url : str, optional
            Where to POST the finished job: https, a public address (default: your default webhook URL,
            if any).
        notify : sequence of str, optional
            How to hear that the job finished: any of "email", "webhook"; [] for neither (default: email,
            plus webhook when a webhook URL applies).
        idempotency_key : str, optional
            The same key with the same body within a day answers the same job (no second job).

        Returns
        -------
        CreateJobResponse
            `.job` (UPLOADING) and `.upload` (the presigned form for `upload`).

        Raises
        ------
        InvalidArgument
            An unknown language, task or notify channel (nothing is sent).
        QuotaExceeded
            Too many unfinished jobs (429; `retry_after` says when to try again).
        """
        try:
            lang = languages.resolve(language)
        except languages.UnknownLanguage as err:
            raise InvalidArgument(f"language: {err}") from None
        body = CreateJobRequest(
            filename=filename,
            content_type=content_type or content_type_for(filename),
            size=size,
            language=lang,
            prompt=prompt if prompt else UNSET,
            task=_member(CreateJobRequestTask, task, "task"),
            speaker_labels=speaker_labels,
            speakers_expected=speakers_expected if speakers_expected is not None else UNSET,
            min_speakers=min_speakers if min_speakers is not None else UNSET,
            max_speakers=max_speakers if max_speakers is not None else UNSET,
            webhook_url=webhook_url if webhook_url is not None else UNSET,
            notify=[_member(CreateJobRequestNotifyType0Item, c, "notify") for c in notify]
            if notify is not None
            else UNSET,
        )
        key = idempotency_key if idempotency_key is not None else UNSET
        with self._calling("/jobs"):
            r = create_job_jobs_post.sync_detailed(client=self.api, body=body, idempotency_key=key)
        return self._expect(r, 201, CreateJobResponse)

    def get(self, job_id: str) -> JobView:
        """GET /jobs/{id}: the job as it is now.

        Parameters
        ----------
        job_id : str
            The job's id.

        Raises
        ------
        NotFound
            No such job of yours.
        """
        with self._calling(f"/jobs/{job_id}"):
            r = get_job_jobs_job_id_get.sync_detailed(job_id, client=self.api)
        return self._expect(r, 200, JobView)

    def list(self, *, status: JobStatus | str | None = None, limit: int = 20, cursor: str | None = None) -> JobList:
        """GET /jobs: one page of your jobs, newest first.

        Parameters
        ----------
        status : JobStatus or str, optional
            Only jobs in this state (sent as ?status=).
        limit : int
            Jobs per page.
        cursor : str, optional
            The previous page's `next_cursor` (default: the first page).

        Returns
        -------
        JobList
            `.items` and `.next_cursor` (None on the last page).

        Raises
        ------
        InvalidArgument
            A status the API does not know (nothing is sent).
        """
        kwargs = list_jobs_jobs_get._get_kwargs(limit=limit, cursor=cursor if cursor is not None else UNSET)
        if status is not None:
            # Sent whether or not the generated layer knows the parameter yet (it follows openapi.json).
            kwargs["params"]["status"] = _member(JobStatus, status, "status").value
        with self._calling("/jobs"):
            raw = self._http.request(**kwargs)
        return self._expect(list_jobs_jobs_get._build_response(client=self.api, response=raw), 200, JobList)

    def jobs(self, *, status: JobStatus | str | None = None, page_size: int = 100) -> Iterator[JobView]:
        """Every job of yours, newest first, fetched page after page as the iteration goes.

        Parameters
        ----------
        status : JobStatus or str, optional
            Only jobs in this state.
        page_size : int
            Jobs per request.
        """
        cursor: str | None = None
        while True:
            page = self.list(status=status, limit=page_size, cursor=cursor)
            yield from page.items
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def delete(self, job_id: str) -> None:
        """DELETE /jobs/{id}: the job, its recording and its transcripts.

        Parameters
        ----------
        job_id : str
            The job's id.

        Raises
        ------
        NotFound
            No such job of yours.
        """
        with self._calling(f"/jobs/{job_id}"):
            r = delete_job_jobs_job_id_delete.sync_detailed(job_id, client=self.api)
        if r.status_code != 204:
            raise api_error(r)

    def transcript_link(
        self,
        job_id: str,
        format: str = "txt",
        *,
        chars_per_line: int | None = None,
        lines_per_cue: int | None = None,
    ) -> TranscriptLink:
        """GET /jobs/{id}/transcript: a short-lived link to the transcript.

        Parameters
        ----------
        job_id : str
            The job's id.
        format : str
            "txt", "json", "srt" or "vtt".
        chars_per_line, lines_per_cue : int, optional
            Caption settings: srt and vtt re-rendered with them.

        Returns
        -------
        TranscriptLink
            `.url`, a presigned link for `download`.

        Raises
        ------
        InvalidArgument
            A format the API does not know (nothing is sent).
        NotReady
            The job is not COMPLETED yet.
        """
        fmt = _member(GetTranscriptJobsJobIdTranscriptGetFormat, format, "format")
        with self._calling(f"/jobs/{job_id}/transcript"):
            r = get_transcript_jobs_job_id_transcript_get.sync_detailed(
                job_id,
                client=self.api,
                format_=fmt,
                chars_per_line=chars_per_line if chars_per_line is not None else UNSET,
                lines_per_cue=lines_per_cue if lines_per_cue is not None else UNSET,
            )
        return self._expect(r, 200, TranscriptLink)

    # -- the flows around them -------------------------------------------------------------------
    def upload(
        self, form: UploadForm, file: str | os.PathLike[str] | IO[bytes], *, filename: str | None = None
    ) -> None:
        """The presigned POST: every field as given, then the file last, as S3's POST policy requires.

        Parameters
        ----------
        form : UploadForm
            `create`'s `.upload`.
        file : str, os.PathLike or binary file
            The recording: a path, or a file object read from where it stands.
        filename : str, optional
            The name sent with it (default: the path's or the file object's name).

        Raises
        ------
        UploadFailed
            The storage refused it (an expired form, another size or type).
        """
        fields = {k: str(v) for k, v in form.fields.to_dict().items()}
        content_type = fields.get("Content-Type", "application/octet-stream")
        with _opened(file, filename) as (f, name):
            files = {"file": (name, f, content_type)}
            with self._calling(form.url, storage=True):
                r = self._storage.post(form.url, data=fields, files=files)
        if r.status_code >= 300:
            raise UploadFailed(f"upload failed: {_storage_message(r)} (HTTP {r.status_code})")

    def submit(
        self,
        file: str | os.PathLike[str] | IO[bytes],
        *,
        filename: str | None = None,
        content_type: str | None = None,
        language: str = "auto",
        prompt: str | None = None,
        task: str = "transcribe",
        speaker_labels: bool = False,
        speakers_expected: int | None = None,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
        webhook_url: str | None = None,
        notify: Sequence[str] | None = None,
        idempotency_key: str | None = None,
    ) -> JobView:
        """create + upload: the job, now on its way (QUEUED once the upload lands).

        Parameters
        ----------
        file : str, os.PathLike or binary file
            The recording: a path, or a file object; its size is what is left to read.
        filename : str, optional
            Needed for a file object without a .name.
        content_type, language, prompt, task, speaker_labels, speakers_expected, webhook_url, notify, idempotency_key
            As for `create`.

        Returns
        -------
        JobView
            The job as created (UPLOADING).

        Raises
        ------
        InvalidArgument, QuotaExceeded, UploadFailed
            As for `create` and `upload`.
        """
        with _opened(file, filename) as (f, name):
            start = f.tell()
            size = f.seek(0, os.SEEK_END) - start
            f.seek(start)
            created = self.create(
                name,
                size,
                content_type=content_type,
                language=language,
                prompt=prompt,
                task=task,
                speaker_labels=speaker_labels,
                speakers_expected=speakers_expected,
                min_speakers=min_speakers,
                max_speakers=max_speakers,
                webhook_url=webhook_url,
                notify=notify,
                idempotency_key=idempotency_key,
            )
            self.upload(created.upload, f, filename=name)
        return created.job

    def wait(
        self,
        job_id: str,
        *,
        timeout: float = 3600.0,
        poll_interval: float = 1.0,
        on_progress: ProgressCallback | None = None,
    ) -> JobView:
        """Polls the job until it is COMPLETED. A 429 on a poll (throttling) waits its Retry-After (else
        poll_interval) and polls again.

        Parameters
        ----------
        job_id : str
            The job's id.
        timeout : float
            Seconds to wait in all.
        poll_interval : float
            Seconds between polls.
        on_progress : callable, optional
            Called as on_progress(job, elapsed_seconds) after every poll.

        Returns
        -------
        JobView
            The job, COMPLETED.

        Raises
        ------
        JobFailed
            The job ended FAILED (`.job.error` says why).
        WaitTimeout
            Not finished after `timeout` seconds (`.job` is how it was last seen).
        """
        started = time.monotonic()
        job: JobView | None = None
        while True:
            try:
                job = self.get(job_id)
            except QuotaExceeded as throttled:  # throttled polling: wait as told, then go on
                elapsed = time.monotonic() - started
                if job is None or elapsed >= timeout:
                    raise
                time.sleep(min(throttled.retry_after or poll_interval, max(0.0, timeout - elapsed)))
                continue
            elapsed = time.monotonic() - started
            if on_progress is not None:
                on_progress(job, elapsed)
            if job.status == JobStatus.COMPLETED:
                return job
            if job.status == JobStatus.FAILED:
                raise JobFailed(job)
            if elapsed >= timeout:
                raise WaitTimeout(job, timeout)
            time.sleep(min(poll_interval, max(0.0, timeout - elapsed)))

    def download(self, url: str) -> bytes:
        """The bytes behind a presigned link (a transcript).

        Parameters
        ----------
        url : str
            A presigned link (`transcript_link`'s `.url`).

        Raises
        ------
        DownloadFailed
            The storage refused it (expired, or the job was deleted meanwhile).
        """
        with self._calling(url, storage=True):
            r = self._storage.get(url)
        if r.status_code != 200:
            raise DownloadFailed(f"download failed: {_storage_message(r)} (HTTP {r.status_code})")
        return r.content

    def transcript(
        self,
        job_id: str,
        format: str = "txt",
        *,
        chars_per_line: int | None = None,
        lines_per_cue: int | None = None,
    ) -> str:
        """The transcript's text: `transcript_link`, then `download`.

        Parameters
        ----------
        job_id : str
            The job's id.
        format : str
            "txt", "json" (the JSON document as text: json.loads it), "srt" or "vtt".
        chars_per_line, lines_per_cue : int, optional
            Caption settings for srt and vtt.

        Raises
        ------
        InvalidArgument, NotReady, DownloadFailed
            As for `transcript_link` and `download`.
        """
        link = self.transcript_link(job_id, format, chars_per_line=chars_per_line, lines_per_cue=lines_per_cue)
        return self.download(link.url).decode("utf-8")

    # -- plumbing --------------------------------------------------------------------------------
    @contextmanager
    def _calling(self, target: str, storage: bool = False) -> Iterator[None]:
        """httpx's transport errors as ours, naming the URL that did not answer."""
        url = target if storage else f"{self.server}{target}"
        try:
            yield
        except httpx.TimeoutException:
            raise ServerTimeout(url) from None
        except httpx.TransportError:  # refused, reset, DNS, protocol
            raise ConnectionFailed(url) from None

    @staticmethod
    def _expect(r: Response[Any], status: int, kind: type) -> Any:
        if r.status_code != status:
            raise api_error(r)
        if not isinstance(r.parsed, kind):
            raise HarkError(f"unexpected answer to a request (HTTP {status}): {r.content[:200]!r}")
        return r.parsed


@contextmanager
def _opened(file: str | os.PathLike[str] | IO[bytes], filename: str | None) -> Iterator[tuple[IO[bytes], str]]:
    """(binary file, its name) for a path (opened and closed here) or a file object (left open);
    `filename` names it when given."""
    if isinstance(file, str | os.PathLike):
        path = Path(file)
        with open(path, "rb") as f:
            yield f, filename or path.name
    else:
        name = filename or getattr(file, "name", None)
        if not isinstance(name, str):
            raise InvalidArgument("a file object without a name needs filename= (its extension says what it is)")
        yield file, Path(name).name


E = TypeVar("E", bound=Enum)


def _member(kind: type[E], value: object, what: str) -> E:
    """The enum member for `value`, or InvalidArgument listing the accepted values."""
    try:
        return kind(value)
    except ValueError:
        accepted = ", ".join(str(m.value) for m in kind)
        raise InvalidArgument(f"{what}: {value!r} is not one of {accepted}") from None
