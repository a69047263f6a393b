"""OpenAI's audio API on the live service: `POST /v1/audio/transcriptions`, `POST /v1/audio/translations` and
`GET /v1/models`, as OpenAI's SDK calls them (multipart form; docs/api.md, "OpenAI-compatible endpoint").

Answered while the caller waits: the upload is decoded by the hardened decoder (a child process with a
memory limit: worker/transcription/audio.py), transcribed on the engine's priority lane (interactive: packed
before batch work) and rendered by the transcript's own renderers (hark/domain/transcript.py). Every refusal is
OpenAI's error shape, `{"error": {"message", "type", "param", "code"}}`, so the SDK raises its own errors.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from hark.api.auth import Unauthorized
from hark.api.control import rate_limited
from hark.domain import languages
from hark.domain.api_keys import RateLimited
from hark.domain.transcript import Transcript, render_srt, render_vtt
from worker.transcription import audio
from worker.transcription.engine import DecodeOptions

from .service import Live

MAX_FILE_BYTES = 25 * 1024 * 1024  # OpenAI's limit for one file
FORM_OVERHEAD_BYTES = 64 * 1024  # the other fields and the multipart boundaries around the file
FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
GRANULARITIES = ("word", "segment")
# Every name is the one loaded model; "whisper-1" (OpenAI's) lets tools that hard-code it work unchanged.
OPENAI_MODEL = "whisper-1"
MAX_PROMPT_CHARS = 500  # as a job's prompt (hark.domain.uploads)


class OpenAIError(Exception):
    """A refusal in OpenAI's error shape."""

    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.headers = {"WWW-Authenticate": "Bearer"} if status == 401 else (headers or {})

    def response(self) -> JSONResponse:
        kind = "invalid_request_error" if self.status < 500 else "server_error"
        body = {"error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


def model_ids(live: Live) -> list[str]:
    return [OPENAI_MODEL, live.settings.model_name]


def routes(live: Live) -> list[Route]:
    async def transcriptions(request: Request) -> Response:
        return await answer(request, live, "transcribe")

    async def translations(request: Request) -> Response:
        return await answer(request, live, "translate")

    async def models(request: Request) -> Response:
        try:
            await run_in_threadpool(check_credential, live, request)
        except OpenAIError as err:
            return err.response()
        data = [{"id": name, "object": "model", "created": 0, "owned_by": "hark"} for name in model_ids(live)]
        return JSONResponse({"object": "list", "data": data})

    return [
        Route("/v1/audio/transcriptions", transcriptions, methods=["POST"]),
        Route("/v1/audio/translations", translations, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
    ]


def check_credential(live: Live, request: Request) -> None:
    try:
        live.authenticate(request.headers)
    except Unauthorized:  # the reason is for the log only, as in the API's authorizer
        raise OpenAIError(
            401, "A valid API key or session token is required (Authorization: Bearer ...).", code="invalid_api_key"
        ) from None
    except RateLimited as limited:  # the API's own 429, Retry-After included (the OpenAI SDK waits that long)
        error = rate_limited(limited)
        raise OpenAIError(429, error.message, code="rate_limit_exceeded", headers=error.headers) from None


async def answer(request: Request, live: Live, task: str) -> Response:
    live.in_flight += 1  # in the event loop's one thread: no lock
    try:
        return await _answer(request, live, task)
    finally:
        live.in_flight -= 1


async def _answer(request: Request, live: Live, task: str) -> Response:
    try:
        await run_in_threadpool(check_credential, live, request)
        check_length(request)
        try:
            form = await request.form(max_files=1, max_fields=16)
        except HTTPException as err:  # the multipart parser's own refusal (not a form, too many parts)
            raise OpenAIError(
                400, f"The request is not a multipart form OpenAI's audio API accepts: {err.detail}"
            ) from None
        try:
            wanted = Wanted.of(form, live, task)
            async with live.slots():
                transcript = await run_in_threadpool(transcribe, live, wanted)
        finally:
            await form.close()
        return render(transcript, wanted)
    except OpenAIError as err:
        return err.response()


def check_length(request: Request) -> None:
    """The body's size, refused before a byte of it is read: a file over OpenAI's limit gets 413."""
    given = request.headers.get("content-length")
    if given is None or not given.isdigit():
        raise OpenAIError(411, "Send the form with a Content-Length.")
    if int(given) > MAX_FILE_BYTES + FORM_OVERHEAD_BYTES:
        raise OpenAIError(
            413,
            f"The file is larger than the maximum of {MAX_FILE_BYTES} bytes (25 MB).",
            param="file",
            code="file_too_large",
        )


class Wanted:
    """The form's fields, each checked: a bad one is a 400 that names it."""

    def __init__(
        self,
        file: UploadFile,
        task: str,
        language: str | None,
        prompt: str | None,
        response_format: str,
        words: bool,
        segments: bool,
    ):
        self.file, self.task, self.language, self.prompt = file, task, language, prompt
        self.response_format, self.words, self.segments = response_format, words, segments

    @classmethod
    def of(cls, form: FormData, live: Live, task: str) -> Wanted:
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise OpenAIError(400, "The form has no file (a multipart part named 'file').", param="file")
        model = text_field(form, "model")
        if model is None:
            raise OpenAIError(400, "The form has no model (use whisper-1).", param="model")
        if model not in model_ids(live):
            raise OpenAIError(
                400,
                f"The model {model[:60]!r} does not exist here: use one of {model_ids(live)}.",
                param="model",
                code="model_not_found",
            )
        language = text_field(form, "language")
        if language is not None:  # OpenAI's translations take none; here it names the spoken language
            try:
                language = languages.resolve(language)
            except languages.UnknownLanguage as err:
                raise OpenAIError(400, str(err), param="language") from None
        prompt = text_field(form, "prompt")
        if prompt is not None and len(prompt) > MAX_PROMPT_CHARS:
            raise OpenAIError(400, f"The prompt is longer than {MAX_PROMPT_CHARS} characters.", param="prompt")
        response_format = text_field(form, "response_format") or "json"
        if response_format not in FORMATS:
            raise OpenAIError(400, f"response_format must be one of {', '.join(FORMATS)}.", param="response_format")
        temperature = text_field(form, "temperature")
        if temperature is not None:
            check_temperature(temperature)
        granularities = [g for g in form.getlist("timestamp_granularities[]") if isinstance(g, str)]
        if any(g not in GRANULARITIES for g in granularities):
            raise OpenAIError(400, "timestamp_granularities[] takes word and segment.", param="timestamp_granularities")
        if granularities and response_format != "verbose_json":
            raise OpenAIError(
                400, "timestamp_granularities[] needs response_format verbose_json.", param="timestamp_granularities"
            )
        return cls(
            file,
            task,
            language,
            prompt,
            response_format,
            "word" in granularities,
            not granularities or "segment" in granularities,
        )


def text_field(form: FormData, name: str) -> str | None:
    value = form.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise OpenAIError(400, f"{name} must be a form field, not a file.", param=name)
    return value.strip()


def check_temperature(given: str) -> None:
    """OpenAI's range, 0 to 1. The engine decodes at 0 and re-decodes a doubtful segment at Whisper's
    fallback temperatures itself (worker/transcription/quality.py), so the value is checked, not applied."""
    try:
        value = float(given)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise OpenAIError(400, "temperature must be a number from 0 to 1.", param="temperature")


def transcribe(live: Live, wanted: Wanted) -> Transcript:
    """The upload saved, decoded by the hardened decoder (its child process and limits) and transcribed on the
    engine's priority lane. Blocking: runs in a worker thread."""
    with tempfile.TemporaryDirectory(prefix="hark-live-") as tmp:
        path = Path(tmp) / "upload"
        wanted.file.file.seek(0)
        with open(path, "wb") as out:
            shutil.copyfileobj(wanted.file.file, out)
        if path.stat().st_size > MAX_FILE_BYTES:
            raise OpenAIError(
                413,
                f"The file is larger than the maximum of {MAX_FILE_BYTES} bytes (25 MB).",
                param="file",
                code="file_too_large",
            )
        try:
            samples = audio.decode(path, Path(tmp) / "pcm", live.settings.live_max_audio_seconds).read()
        except audio.PermanentError as err:
            raise OpenAIError(
                400, f"The file could not be transcribed: {err.reason}.", param="file", code="invalid_file"
            ) from None
    options = DecodeOptions(language=wanted.language or "auto", task=wanted.task, prompt=wanted.prompt)
    return live.engine().run(samples, options, interactive=True).transcript


def render(transcript: Transcript, wanted: Wanted) -> Response:
    if wanted.response_format == "text":
        return PlainTextResponse(transcript.text + "\n")
    if wanted.response_format == "srt":
        return PlainTextResponse(render_srt(transcript))
    if wanted.response_format == "vtt":
        return PlainTextResponse(render_vtt(transcript), media_type="text/vtt")
    if wanted.response_format == "json":
        return JSONResponse({"text": transcript.text})
    return JSONResponse(verbose(transcript, wanted))


def verbose(transcript: Transcript, wanted: Wanted) -> dict[str, Any]:
    """OpenAI's verbose_json: the language by its English name (as OpenAI names it), the duration, and the
    segments and words asked for (timestamp_granularities[]; segments alone by default)."""
    body: dict[str, Any] = {
        "task": wanted.task,
        "language": languages.NAMES.get(transcript.language or "", transcript.language or ""),
        "duration": transcript.duration,
        "text": transcript.text,
    }
    if wanted.segments:
        body["segments"] = [
            {
                "id": i,
                "start": s.start,
                "end": s.end,
                "text": s.text,
                "tokens": s.tokens,
                "temperature": s.temperature,
                "avg_logprob": s.avg_logprob,
                "compression_ratio": s.compression_ratio,
                "no_speech_prob": s.no_speech_prob,
            }
            for i, s in enumerate(transcript.segments)
        ]
    if wanted.words:
        body["words"] = [
            {"word": w.word.strip(), "start": w.start, "end": w.end} for s in transcript.segments for w in s.words
        ]
    return body
