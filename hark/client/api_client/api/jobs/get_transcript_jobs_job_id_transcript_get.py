from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error_response import ErrorResponse
from ...models.gateway_error import GatewayError
from ...models.get_transcript_jobs_job_id_transcript_get_format import GetTranscriptJobsJobIdTranscriptGetFormat
from ...models.transcript_link import TranscriptLink
from ...types import UNSET, Response, Unset


def _get_kwargs(
    job_id: str,
    *,
    format_: GetTranscriptJobsJobIdTranscriptGetFormat | Unset = GetTranscriptJobsJobIdTranscriptGetFormat.TXT,
    chars_per_line: int | Unset | None = UNSET,
    lines_per_cue: int | Unset | None = UNSET,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    json_format_: str | Unset = UNSET
    if not isinstance(format_, Unset):
        json_format_ = format_.value

    params["format"] = json_format_

    json_chars_per_line: int | Unset | None
    if isinstance(chars_per_line, Unset):
        json_chars_per_line = UNSET
    else:
        json_chars_per_line = chars_per_line
    params["chars_per_line"] = json_chars_per_line

    json_lines_per_cue: int | Unset | None
    if isinstance(lines_per_cue, Unset):
        json_lines_per_cue = UNSET
    else:
        json_lines_per_cue = lines_per_cue
    params["lines_per_cue"] = json_lines_per_cue

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/jobs/{job_id}/transcript".format(
            job_id=quote(str(job_id), safe=""),
        ),
        "params": params,
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> ErrorResponse | GatewayError | TranscriptLink | None:
    if response.status_code == 200:
        response_200 = TranscriptLink.from_dict(response.json())

        return response_200

    if response.status_code == 400:
        response_400 = ErrorResponse.from_dict(response.json())

        return response_400

    if response.status_code == 401:
        response_401 = GatewayError.from_dict(response.json())

        return response_401

    if response.status_code == 403:
        response_403 = GatewayError.from_dict(response.json())

        return response_403

    if response.status_code == 404:
        response_404 = ErrorResponse.from_dict(response.json())

        return response_404

    if response.status_code == 409:
        response_409 = ErrorResponse.from_dict(response.json())

        return response_409

    if response.status_code == 500:
        response_500 = ErrorResponse.from_dict(response.json())

        return response_500

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[ErrorResponse | GatewayError | TranscriptLink]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    job_id: str,
    *,
    client: AuthenticatedClient | Client,
    format_: GetTranscriptJobsJobIdTranscriptGetFormat | Unset = GetTranscriptJobsJobIdTranscriptGetFormat.TXT,
    chars_per_line: int | Unset | None = UNSET,
    lines_per_cue: int | Unset | None = UNSET,
) -> Response[ErrorResponse | GatewayError | TranscriptLink]:
    """A short-lived link to the transcript

    Args:
        job_id (str): The job's id
        format_ (GetTranscriptJobsJobIdTranscriptGetFormat | Unset): txt, json, srt or vtt
            Default: GetTranscriptJobsJobIdTranscriptGetFormat.TXT.
        chars_per_line (int | None | Unset): srt/vtt only: characters per caption line (default
            42)
        lines_per_cue (int | None | Unset): srt/vtt only: lines per caption (default 2)

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorResponse | GatewayError | TranscriptLink]
    """

    kwargs = _get_kwargs(
        job_id=job_id,
        format_=format_,
        chars_per_line=chars_per_line,
        lines_per_cue=lines_per_cue,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    job_id: str,
    *,
    client: AuthenticatedClient | Client,
    format_: GetTranscriptJobsJobIdTranscriptGetFormat | Unset = GetTranscriptJobsJobIdTranscriptGetFormat.TXT,
    chars_per_line: int | Unset | None = UNSET,
    lines_per_cue: int | Unset | None = UNSET,
) -> ErrorResponse | GatewayError | TranscriptLink | None:
    """A short-lived link to the transcript

    Args:
        job_id (str): The job's id
        format_ (GetTranscriptJobsJobIdTranscriptGetFormat | Unset): txt, json, srt or vtt
            Default: GetTranscriptJobsJobIdTranscriptGetFormat.TXT.
        chars_per_line (int | None | Unset): srt/vtt only: characters per caption line (default
            42)
        lines_per_cue (int | None | Unset): srt/vtt only: lines per caption (default 2)

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorResponse | GatewayError | TranscriptLink
    """

    return sync_detailed(
        job_id=job_id,
        client=client,
        format_=format_,
        chars_per_line=chars_per_line,
        lines_per_cue=lines_per_cue,
    ).parsed


async def asyncio_detailed(
    job_id: str,
    *,
    client: AuthenticatedClient | Client,
    format_: GetTranscriptJobsJobIdTranscriptGetFormat | Unset = GetTranscriptJobsJobIdTranscriptGetFormat.TXT,
    chars_per_line: int | Unset | None = UNSET,
    lines_per_cue: int | Unset | None = UNSET,
) -> Response[ErrorResponse | GatewayError | TranscriptLink]:
    """A short-lived link to the transcript

    Args:
        job_id (str): The job's id
        format_ (GetTranscriptJobsJobIdTranscriptGetFormat | Unset): txt, json, srt or vtt
            Default: GetTranscriptJobsJobIdTranscriptGetFormat.TXT.
        chars_per_line (int | None | Unset): srt/vtt only: characters per caption line (default
            42)
        lines_per_cue (int | None | Unset): srt/vtt only: lines per caption (default 2)

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorResponse | GatewayError | TranscriptLink]
    """

    kwargs = _get_kwargs(
        job_id=job_id,
        format_=format_,
        chars_per_line=chars_per_line,
        lines_per_cue=lines_per_cue,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    job_id: str,
    *,
    client: AuthenticatedClient | Client,
    format_: GetTranscriptJobsJobIdTranscriptGetFormat | Unset = GetTranscriptJobsJobIdTranscriptGetFormat.TXT,
    chars_per_line: int | Unset | None = UNSET,
    lines_per_cue: int | Unset | None = UNSET,
) -> ErrorResponse | GatewayError | TranscriptLink | None:
    """A short-lived link to the transcript

    Args:
        job_id (str): The job's id
        format_ (GetTranscriptJobsJobIdTranscriptGetFormat | Unset): txt, json, srt or vtt
            Default: GetTranscriptJobsJobIdTranscriptGetFormat.TXT.
        chars_per_line (int | None | Unset): srt/vtt only: characters per caption line (default
            42)
        lines_per_cue (int | None | Unset): srt/vtt only: lines per caption (default 2)

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorResponse | GatewayError | TranscriptLink
    """

    return (
        await asyncio_detailed(
            job_id=job_id,
            client=client,
            format_=format_,
            chars_per_line=chars_per_line,
            lines_per_cue=lines_per_cue,
        )
    ).parsed
