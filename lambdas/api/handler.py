"""The API Lambda: API Gateway REST proxy events in, JSON out. Thin: hark.api.control does the work.

The caller is read only from requestContext.authorizer (the Lambda authorizer's context); nothing
in the request itself can name a user. The one exception is GET /links/{token}, the links in emails:
no bearer token, the signed token is the credential and names the job (hark.domain.links). Every error has one shape:
    {"error": {"code": "<snake_case>", "message": "<a sentence a person can act on>"}}
Bad input is always 4xx: 400 validation, 404, 409, 413, 415, 422 (Idempotency-Key reuse), 429.
"""

from __future__ import annotations

import binascii
import json
from functools import lru_cache
from http import HTTPStatus
from typing import Annotated, Any, cast

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
    ResponseValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from hark.api import control
from hark.api.control import ApiError, Caller
from hark.api.http_api import HTTP_API, MISSING_AUTHENTICATION_TOKEN, UNAUTHORIZED
from hark.api.json_body import BodyRefused, parse_object
from hark.api.webapp import HARDENING_HEADERS
from hark.domain import accuracy
from hark.domain.api_schemas import (
    ApiKeyCreated,
    ApiKeyList,
    AudioLink,
    CorrectTranscriptRequest,
    CreateApiKeyRequest,
    CreateJobRequest,
    CreateJobResponse,
    ErrorResponse,
    GatewayError,
    JobList,
    JobView,
    MultipartUpload,
    PartUrls,
    PartUrlsRequest,
    TranscriptFormat,
    TranscriptLink,
    TranscriptRevision,
    WebhookSecret,
    WebhookSettings,
)
from hark.domain.jobs import JobStatus
from hark.domain.settings import get_settings
from hark.domain.transcript import MAX_CHARS_PER_LINE, MAX_LINES_PER_CUE, MIN_CHARS_PER_LINE, MIN_LINES_PER_CUE

logger = Logger(service="hark-api")
metrics = Metrics(namespace="Hark", service="hark-api")
# The routes live on a Router; the resolver around them is built from the settings read at call time
# (its CORS origins are the deployment's authorized parties), once per distinct configuration.
router = Router()


@lru_cache(maxsize=4)
def resolver(origins: tuple[str, ...]) -> APIGatewayRestResolver:
    cors = CORSConfig(
        allow_origin=origins[0] if origins else "*",
        extra_origins=list(origins[1:]),
        allow_headers=list(HTTP_API.cors.allow_headers),
        max_age=HTTP_API.cors.max_age_seconds,
    )
    app = APIGatewayRestResolver(
        enable_validation=True,
        cors=cors,
        response_validation_error_http_code=HTTPStatus.INTERNAL_SERVER_ERROR,
        # Bounded before parsing, objects only, no duplicate keys (hark.api.json_body): never a 500.
        json_body_deserializer=_read_body,
    )
    app.include_router(router)
    app.not_found(_not_found)
    return app


def _read_body(text: str) -> dict:
    settings = get_settings()
    return parse_object(text, settings.max_body_bytes, settings.max_body_depth)


def _is_json(event: APIGatewayProxyEvent) -> bool:
    content_type = (event.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    return content_type == "application/json"


def _error(status: int, code: str, message: str) -> Response:
    return Response(
        status_code=status,
        content_type="application/json",
        body=json.dumps({"error": {"code": code, "message": message}}),
    )


def _responses(status: int, model, description: str, *errors: int) -> dict:
    ok = {"description": description, **({"content": {"application/json": {"model": model}}} if model else {})}
    return {status: ok, **_errors(*errors)}


def _errors(*statuses: int) -> dict:
    descriptions = {
        400: "Invalid input: the message names the field",
        401: "Missing or invalid bearer token (API Gateway)",
        403: "Refused by API Gateway (authorizer policy does not cover the request)",
        413: "File larger than the maximum, or a request body larger than the API reads",
        404: "No such job (or API key) in your account",
        409: "Conflict with the job's state",
        415: "File type or extension not accepted",
        422: "Idempotency-Key reused with a different request",
        429: "Too many requests: the API key's requests of this minute, or (POST /jobs) too many unfinished "
        "jobs; Retry-After says when to try again",
    }
    if 401 in statuses and 429 not in statuses:  # every authorized route: an API key's rate limit
        statuses = (*statuses, 429)
    return {
        s: {
            "description": descriptions[s],
            "content": {"application/json": {"model": GatewayError if s in (401, 403) else ErrorResponse}},
        }
        for s in statuses
    }


def caller() -> Caller:
    event = cast(APIGatewayProxyEvent, router.current_event)  # the resolver is APIGatewayRestResolver
    authorizer = event.request_context.authorizer.raw_event or {}
    user_id = authorizer.get("user_id")
    if not isinstance(user_id, str) or not user_id:
        # Behind API Gateway this cannot happen; refuse rather than guess.
        raise ApiError(UNAUTHORIZED.status or 401, UNAUTHORIZED.code, UNAUTHORIZED.message or "")
    email = authorizer.get("email")
    key_id = authorizer.get("key_id")
    return control.admit(
        Caller(
            user_id=user_id,
            email=email if isinstance(email, str) else "",
            key_id=key_id if isinstance(key_id, str) and key_id else None,
        )
    )


IdPath = Annotated[str, Path(min_length=1, max_length=128, description="The job's id")]


@router.post(
    "/jobs",
    status_code=201,
    summary="Create a job and get a presigned upload form",
    responses=_responses(
        201, CreateJobResponse, "Created: upload the file with the form", 400, 401, 403, 409, 413, 415, 422, 429
    ),
    tags=["jobs"],
)
def create_job(
    request: CreateJobRequest,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            description="Same key (per user), same job: retries never create a second job.",
        ),
    ] = None,
) -> CreateJobResponse:
    if not _is_json(cast(APIGatewayProxyEvent, router.current_event)):  # a form would be read as strings
        raise _unsupported_body_error()
    result = control.create_job(caller(), request, idempotency_key, router.lambda_context)
    metrics.add_metric(name="JobsCreated", unit=MetricUnit.Count, value=1)
    logger.info("job created", job_id=result.job.job_id, size=result.job.size)
    return result


@router.get(
    "/jobs",
    summary="List your jobs, newest first",
    responses=_responses(200, JobList, "A page of jobs", 400, 401, 403),
    tags=["jobs"],
)
def list_jobs(
    limit: Annotated[int, Query(ge=1, le=100, description="Page size")] = 20,
    cursor: Annotated[str | None, Query(max_length=2048, description="next_cursor of the previous page")] = None,
    status: Annotated[
        JobStatus | None,
        Query(
            description="Only jobs in this state. A page may then hold fewer than `limit` jobs: page on while "
            "next_cursor is not null."
        ),
    ] = None,
) -> JobList:
    return control.list_jobs(caller(), limit, cursor, status)


@router.get(
    "/jobs/<job_id>",
    summary="One job",
    responses=_responses(200, JobView, "The job", 400, 401, 403, 404),
    tags=["jobs"],
)
def get_job(job_id: IdPath) -> JobView:
    return control.get_job(caller(), job_id)


@router.get(
    "/jobs/<job_id>/transcript",
    summary="A short-lived link to the transcript",
    responses=_responses(200, TranscriptLink, "A presigned GET link", 400, 401, 403, 404, 409),
    tags=["jobs"],
)
def get_transcript(
    job_id: IdPath,
    format: Annotated[TranscriptFormat, Query(description="txt, json, srt or vtt")] = "txt",
    chars_per_line: Annotated[
        int | None,
        Query(
            ge=MIN_CHARS_PER_LINE,
            le=MAX_CHARS_PER_LINE,
            description="srt/vtt only: characters per caption line (default 42)",
        ),
    ] = None,
    lines_per_cue: Annotated[
        int | None,
        Query(ge=MIN_LINES_PER_CUE, le=MAX_LINES_PER_CUE, description="srt/vtt only: lines per caption (default 2)"),
    ] = None,
    revision: Annotated[
        int | None,
        Query(ge=0, description="Which revision: 0 is the model's own; default the latest (transcript_revision)"),
    ] = None,
) -> TranscriptLink:
    return control.transcript_link(caller(), job_id, format, chars_per_line, lines_per_cue, revision)


@router.put(
    "/jobs/<job_id>/transcript",
    summary="Save corrections to the transcript as its next revision",
    description="Segments' new text by index and names for the speaker labels, made on `revision` (the job's "
    "transcript_revision when read). Every format then serves the new revision; ?revision=0 the model's own.",
    responses=_responses(200, TranscriptRevision, "Saved", 400, 401, 403, 404, 409, 413, 415),
    tags=["jobs"],
)
def put_transcript(job_id: IdPath, request: CorrectTranscriptRequest) -> TranscriptRevision:
    if not _is_json(cast(APIGatewayProxyEvent, router.current_event)):
        raise _unsupported_body_error()
    job, saved = control.correct_transcript(caller(), job_id, request)
    if job.corrections and job.corrections.word_error_rate is not None and job.detected_language:
        # By language (hark.domain.accuracy): the flush at the end of this invocation clears the dimension.
        metrics.add_dimension(name=accuracy.LANGUAGE_DIMENSION, value=job.detected_language)
        metrics.add_metric(
            name=accuracy.CORRECTION_WORD_ERROR_RATE, unit=MetricUnit.NoUnit, value=job.corrections.word_error_rate
        )
    logger.info("transcript corrected", job_id=job_id, revision=saved.revision, segments=len(request.segments))
    return saved


@router.get(
    "/jobs/<job_id>/audio",
    summary="A short-lived link to the recording (a video's audio rendition), for playback",
    responses=_responses(200, AudioLink, "A presigned GET link", 400, 401, 403, 404, 409),
    tags=["jobs"],
)
def get_audio(job_id: IdPath) -> AudioLink:
    return control.audio_link(caller(), job_id)


@router.delete(
    "/jobs/<job_id>",
    status_code=204,
    summary="Delete a job, its audio and its transcripts",
    responses=_responses(204, None, "Deleted", 400, 401, 403, 404),
    tags=["jobs"],
)
def delete_job(job_id: IdPath):  # a Response (204, no body): an annotation would become a response schema
    deleted = control.delete_job(caller(), job_id)
    logger.info("job deleted", job_id=job_id, objects=deleted)
    return Response(status_code=204)


# -- big uploads in parts (issue 25; docs/api.md, "Big uploads") ------------------------------------------
@router.post(
    "/jobs/<job_id>/multipart",
    summary="Start or resume the upload in parts: the parts S3 already has",
    responses=_responses(200, MultipartUpload, "The upload in parts", 400, 401, 403, 404, 409),
    tags=["uploads"],
)
def start_multipart(job_id: IdPath) -> MultipartUpload:
    return control.multipart_upload(caller(), job_id)


@router.post(
    "/jobs/<job_id>/multipart/parts",
    summary="Presigned PUT URLs for some parts",
    responses=_responses(200, PartUrls, "A URL per part", 400, 401, 403, 404, 409),
    tags=["uploads"],
)
def multipart_part_urls(job_id: IdPath, request: PartUrlsRequest) -> PartUrls:
    if not _is_json(cast(APIGatewayProxyEvent, router.current_event)):
        raise _unsupported_body_error()
    return control.multipart_part_urls(caller(), job_id, request)


@router.post(
    "/jobs/<job_id>/multipart/complete",
    summary="Join the uploaded parts into the recording (QUEUED when it lands)",
    responses=_responses(200, JobView, "Completed: the job (QUEUED once S3's event arrives)", 400, 401, 403, 404, 409),
    tags=["uploads"],
)
def complete_multipart(job_id: IdPath) -> JobView:
    job = control.complete_multipart(caller(), job_id)
    logger.info("multipart upload completed", job_id=job_id, size=job.size)
    return job


@router.delete(
    "/jobs/<job_id>/multipart",
    status_code=204,
    summary="Abort the upload in parts (its parts are dropped)",
    responses=_responses(204, None, "Aborted", 400, 401, 403, 404, 409),
    tags=["uploads"],
)
def abort_multipart(job_id: IdPath):  # a Response (204, no body), as delete_job
    control.abort_multipart(caller(), job_id)
    return Response(status_code=204)


# -- webhooks: the signing secret and the default URL (docs/api.md, "Webhooks") ---------------------------
@router.get(
    "/webhook-secret",
    summary="Your webhook signing secret (created on the first read)",
    responses=_responses(200, WebhookSecret, "The secret", 401, 403),
    tags=["webhooks"],
)
def get_webhook_secret() -> WebhookSecret:
    return control.webhook_secret(caller())


@router.post(
    "/webhook-secret",
    summary="Rotate your webhook signing secret (the old one also signs for 24 hours)",
    responses=_responses(200, WebhookSecret, "The new secret", 401, 403),
    tags=["webhooks"],
)
def rotate_webhook_secret() -> WebhookSecret:
    result = control.rotate_webhook_secret(caller())
    logger.info("webhook secret rotated")
    return result


@router.get(
    "/webhook-settings",
    summary="Your default webhook URL",
    responses=_responses(200, WebhookSettings, "The settings", 401, 403),
    tags=["webhooks"],
)
def get_webhook_settings() -> WebhookSettings:
    return control.webhook_settings(caller())


@router.put(
    "/webhook-settings",
    summary="Set (or clear, with null) the webhook URL of jobs created without one",
    responses=_responses(200, WebhookSettings, "The settings", 400, 401, 403, 415),
    tags=["webhooks"],
)
def put_webhook_settings(request: WebhookSettings) -> WebhookSettings:
    if not _is_json(cast(APIGatewayProxyEvent, router.current_event)):
        raise _unsupported_body_error()
    return control.set_webhook_settings(caller(), request)


# -- API keys: credentials for programs (docs/api.md, "API keys") --------------------------------------------
KeyIdPath = Annotated[str, Path(min_length=1, max_length=128, description="The key's id")]


@router.post(
    "/api-keys",
    status_code=201,
    summary="Create an API key (the key is in this answer only)",
    responses=_responses(201, ApiKeyCreated, "Created: keep the key now, it is never shown again", 400, 401, 403, 415),
    tags=["api-keys"],
)
def create_api_key(request: CreateApiKeyRequest) -> ApiKeyCreated:
    if not _is_json(cast(APIGatewayProxyEvent, router.current_event)):
        raise _unsupported_body_error()
    created = control.create_api_key(caller(), request)
    logger.info("api key created", key_id=created.id)
    return created


@router.get(
    "/api-keys",
    summary="List your API keys (no secrets)",
    responses=_responses(200, ApiKeyList, "Your keys, newest first", 401, 403),
    tags=["api-keys"],
)
def list_api_keys() -> ApiKeyList:
    return control.list_api_keys(caller())


@router.delete(
    "/api-keys/<key_id>",
    status_code=204,
    summary="Revoke an API key (refused within the authorizer's cache time)",
    responses=_responses(204, None, "Revoked", 400, 401, 403, 404),
    tags=["api-keys"],
)
def revoke_api_key(key_id: KeyIdPath):  # a Response (204, no body)
    control.revoke_api_key(caller(), key_id)
    logger.info("api key revoked", key_id=key_id)
    return Response(status_code=204)


# -- email links: no bearer token, the signed link is the credential (hark.domain.links) ------------------------
def _own_error(description: str) -> Any:  # an OpenAPIResponse, as Powertools' routes take them
    return {"description": description, "content": {"application/json": {"model": ErrorResponse}}}


@router.get(
    "/links/<token>",
    status_code=302,
    summary="Follow a transcript link from an email",
    description="Needs no bearer token: the signed, expiring token in the path is the credential. "
    "Answers 302 to a presigned S3 GET minted at that moment, valid a few minutes.",
    responses={
        302: {
            "description": "Redirect to the transcript (Location: a presigned S3 GET)",
            "headers": {"Location": {"description": "The presigned S3 GET", "schema": {"type": "string"}}},
        },
        400: _own_error("A path far longer than any link (validation_error)"),
        403: _own_error("Not a valid link (garbage, or edited)"),
        404: _own_error("The link's job has been deleted"),
        410: _own_error("The link has expired: open the web app for a new one"),
    },
    tags=["links"],
)
def follow_link(
    token: Annotated[str, Path(max_length=4096, description="The signed token from the email's link")],
):  # a Response: the redirect
    url = control.follow_link(token)
    logger.info("link followed")
    # no-store: a cached redirect would outlive the presigned URL; no-referrer keeps the token out of
    # the next site's logs.
    return Response(
        status_code=302, headers={"Location": url, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    )


# -- errors: one shape ---------------------------------------------------------------------------------
@router.exception_handler(ApiError)
def _api_error(err: ApiError) -> Response:
    logger.info("refused", status=err.status, code=err.code)
    response = _error(err.status, err.code, err.message)
    response.headers.update(err.headers)  # e.g. Retry-After on the quota's 429
    return response


@router.exception_handler(BodyRefused)
def _body_refused(err: BodyRefused) -> Response:
    return _error(err.status, err.code, err.message)


@router.exception_handler(RequestValidationError)
def _validation_error(err: RequestValidationError) -> Response:
    event = cast(APIGatewayProxyEvent, router.current_event)
    if event.body and not _is_json(event) and any((e.get("loc") or ("",))[0] == "body" for e in err.errors()):
        return _unsupported_body(err)  # a form or text body: say it must be JSON, not which field is off
    return _error(400, "validation_error", describe_validation(err.errors()))


@router.exception_handler([UnicodeDecodeError, binascii.Error])
def _undecodable_body(err: Exception) -> Response:
    return _error(
        400, "validation_error", "The body is not UTF-8 JSON; send a JSON object with Content-Type: application/json."
    )


def _unsupported_body_error() -> ApiError:
    return ApiError(415, "unsupported_body_type", "Send the body as a JSON object with Content-Type: application/json.")


@router.exception_handler(RequestUnsupportedContentType)
def _unsupported_body(err: Exception) -> Response:
    refusal = _unsupported_body_error()
    return _error(refusal.status, refusal.code, refusal.message)


@router.exception_handler(ResponseValidationError)
def _response_error(err: ResponseValidationError) -> Response:
    logger.error("response failed its own schema", errors=str(err.errors())[:2000])
    return _error(500, "internal_error", "Something went wrong on our side; try again later.")


def _not_found(err: NotFoundError) -> Response:
    # The same answer API Gateway gives a route it lacks (its MISSING_AUTHENTICATION_TOKEN response).
    route = MISSING_AUTHENTICATION_TOKEN
    return _error(route.status or 404, route.code, route.message or "")


@router.exception_handler(Exception)
def _unexpected(err: Exception) -> Response:
    logger.exception("unhandled error")
    return _error(500, "internal_error", "Something went wrong on our side; try again later.")


def describe_validation(errors) -> str:
    """One sentence naming each bad field, e.g. 'body.size: Input should be greater than or equal to 1.'"""
    parts = []
    for e in list(errors)[:5]:
        loc = [str(p) for p in e.get("loc", ()) if p not in ("body",) or len(e.get("loc", ())) == 1]
        where = ".".join(loc) or "request"
        if e.get("type") == "json_invalid":
            parts.append("The body is not valid JSON; send a JSON object")
            continue
        if e.get("type") in ("missing",):
            parts.append(f"{where} is required")
            continue
        msg = str(e.get("msg") or e.get("type") or "is not valid")
        if e.get("type") == "value_error" and (e.get("ctx") or {}).get("error"):
            msg = str(e["ctx"]["error"])  # our own sentence (e.g. an unknown language), without "Value error, "
        parts.append(f"{where}: {msg}")
    return "; ".join(parts) + "."


# -- the Lambda entry point --------------------------------------------------------------------------------
def handler(event: dict, context) -> dict:
    request_context = event.get("requestContext") if isinstance(event, dict) else None
    request_context = request_context if isinstance(request_context, dict) else {}
    authorizer = request_context.get("authorizer")
    authorizer = authorizer if isinstance(authorizer, dict) else {}
    logger.set_correlation_id(request_context.get("requestId"))
    logger.append_keys(user_id=authorizer.get("user_id"))
    try:
        return _harden(resolver(tuple(get_settings().authorized_parties)).resolve(event, context))
    finally:
        if metrics.metric_set:
            metrics.flush_metrics()


# Every answer of the API: hardened as every answer is (hark.api.webapp), and never cached (job views and
# transcript links carry presigned URLs; a shared cache must not hand one user's answer to another).
RESPONSE_HEADERS = {**HARDENING_HEADERS, "Cache-Control": "no-store"}


def _harden(result: dict) -> dict:
    multi = result.get("multiValueHeaders")
    single = result.get("headers")
    present = {k.lower() for k in [*(multi or {}), *(single or {})]}
    for name, value in RESPONSE_HEADERS.items():
        if name.lower() in present:
            continue
        if isinstance(multi, dict):
            multi[name] = [value]
        else:
            result["headers"] = {**(single or {}), name: value}
            single = result["headers"]
    return result


def openapi_document() -> dict:
    """The OpenAPI document of this API, generated from the routes and models above."""
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    raw = resolver(tuple(get_settings().authorized_parties)).get_openapi_json_schema(
        title="Hark API",
        version="1.0.0",
        description="Audio transcription jobs. Every route but /links/{token} needs `Authorization: Bearer <token>`. "
        "See docs/api.md.",
        security_schemes={"bearerAuth": HTTPBearer(bearerFormat="JWT")},
        security=[{"bearerAuth": []}],
    )
    doc = json.loads(raw)
    # We answer validation errors with 400 and the one error shape, not Powertools' default 422 body.
    for path in doc.get("paths", {}).values():
        for operation in path.values():
            responses = operation.get("responses", {})
            if "HTTPValidationError" in json.dumps(responses.get("422", {})):
                responses.pop("422")
            if (
                "429" in responses
            ):  # the quota's and a key's rate limit's refusals say when to try again (hark.api.control)
                responses["429"]["headers"] = {
                    "Retry-After": {
                        "description": "Seconds to wait before trying again",
                        "schema": {"type": "integer"},
                    },
                    "RateLimit-Limit": {
                        "description": "The limit reached: your unfinished jobs, or the key's requests a minute",
                        "schema": {"type": "integer"},
                    },
                    "RateLimit-Remaining": {"description": "Places left (0)", "schema": {"type": "integer"}},
                }
            for bodiless in ("204", "302"):
                if bodiless in responses:
                    responses[bodiless].pop("content", None)
            if "500" in responses:
                responses["500"] = {
                    "description": "Internal error (never for bad input)",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
                }
    # The email link route carries its own credential in the path: no bearer token.
    for operation in doc.get("paths", {}).get("/links/{token}", {}).values():
        operation["security"] = []
    schemas = doc.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        if name not in json.dumps(doc["paths"]):
            schemas.pop(name, None)
    return doc
