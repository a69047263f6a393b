"""The local API gateway: HTTP in, the events API Gateway sends out, to the real Lambda handlers.

It behaves as API Gateway does for the one definition in hark.api.http_api (the CDK API stack builds the
real one from the same definition):
- CORS preflight (OPTIONS) is answered from the CORS settings, without the authorizer;
- a route that needs authorization and lacks the identity header gets 401 without the authorizer;
- the Lambda authorizer gets the event of the configured kind (TOKEN or REQUEST), and its answer is
  cached per identity value for the configured TTL; a cached policy is evaluated against each new
  route's method ARN, as API Gateway does;
- the API Lambda gets the REST proxy (v1) event, with `requestContext.authorizer` carrying the
  authorizer's context and principalId;
- API Gateway's own answers (401, 403, an unknown resource or method) are the gateway responses of
  hark.api.http_api: the API's error shape, the same status, body and headers as the deployed stage.
`hark up` hands it the two functions run from the built Lambda asset, each in its own interpreter
(hark.local.lambda_process); without them (the tests that drive handlers with their own environment and
patches) it loads each handler in this process by its module path, as Lambda loads it. A function error
is API Gateway's 502. Beside the API it serves the web app, the dev issuer's JWKS and a dev sign-in
endpoint. Every answer, its own and the API's, carries hark.api.webapp.HARDENING_HEADERS; its files
answer GET and HEAD only (405 with Allow otherwise).
"""

from __future__ import annotations

import base64
import importlib
import json
import mimetypes
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from hark.api.http_api import (
    ACCESS_DENIED,
    GATEWAY_RESPONSE_HEADERS,
    HTTP_API,
    MISSING_AUTHENTICATION_TOKEN,
    UNAUTHORIZED,
    GatewayResponse,
    HttpApi,
    Route,
    gateway_response_cors,
)
from hark.api.webapp import HARDENING_HEADERS, clerk_frontend_api_host, content_security_policy, security_headers
from hark.local.issuer import DevIssuer

API_ID, ACCOUNT = "local", "123456789012"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
# The dev issuer's stand-in for Clerk's Backend API (HARK_CLERK_API_URL = {gateway}/clerk locally).
CLERK_USERS = re.compile(r"^/clerk/v1/users/([^/]+)$")
FILE_METHODS = ("GET", "HEAD")  # what the web app's files (and config.json, jwks, healthz) answer


class LambdaContext:
    """The attributes of Lambda's context object that Powertools reads."""

    def __init__(self, name: str, timeout_seconds: float = 29):
        self.function_name = name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}"
        self.memory_limit_in_mb = 512
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "local"
        self._deadline = time.time() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


class LambdaFunction:
    """A handler loaded in this process by its module path ("package.module.function"), as Lambda loads
    it, at the first invocation; one invocation at a time, like one execution environment."""

    def __init__(self, handler: str):
        self.handler, self.name = handler, handler.split(".")[-3] if handler.count(".") >= 2 else handler
        self._function: Callable | None = None
        self._lock = threading.Lock()

    def __call__(self, event: dict):
        with self._lock:
            if self._function is None:
                module, _, function = self.handler.rpartition(".")
                self._function = getattr(importlib.import_module(module), function)
            return self._function(event, LambdaContext(f"hark-{self.name}"))


@dataclass
class CachedPolicy:
    principal_id: str
    policy: dict
    context: dict
    expires: float


def _json(status: int, body: dict, headers: dict | None = None) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json", headers=headers)


class Gateway:
    def __init__(
        self,
        issuer: DevIssuer,
        web_root: Path,
        config: dict,
        region: str = "us-east-1",
        api: HttpApi = HTTP_API,
        cors_origins: list[str] | None = None,
        connect_sources: tuple[str, ...] = (),
        api_function: Callable[[dict], dict] | None = None,
        authorizer_function: Callable[[dict], dict] | None = None,
    ):
        """`connect_sources`: hosts the page talks to besides its own origin (the emulator's S3).
        `api_function`, `authorizer_function`: what runs the handlers (default: in this process)."""
        self.issuer, self.web_root, self.config, self.region, self.api = issuer, web_root.resolve(), config, region, api
        key = config.get("clerkPublishableKey")
        self.web_headers = security_headers(
            # The emulator serves both buckets: the player's presigned GETs come from the same host.
            content_security_policy(
                list(connect_sources), clerk_frontend_api_host(key) if key else None, list(connect_sources)
            )
        )
        self.cors_origins = list(cors_origins or config.get("authorizedParties") or [config["webOrigin"]])
        self.api_function = api_function or LambdaFunction(api.api_handler)
        self.authorizer_function = authorizer_function or LambdaFunction(api.authorizer.handler)
        self.authorizer_invocations = 0
        self._cache: dict[str, CachedPolicy] = {}
        self._cache_lock = threading.Lock()
        rules = [Rule(re.sub(r"{(\w+)}", r"<\1>", r.path), endpoint=r, methods=[r.method]) for r in api.routes]
        self.url_map = Map(rules, strict_slashes=False)
        resources = {re.sub(r"{(\w+)}", r"<\1>", p) for p in api.resource_paths}
        self.resource_map = Map([Rule(p, endpoint=p) for p in resources], strict_slashes=False)

    # -- WSGI ----------------------------------------------------------------------------------
    def __call__(self, environ, start_response):
        request = Request(environ)
        try:
            response = self.dispatch(request)
        except HTTPException as err:
            code = err.code or 500
            response = _json(code, {"error": {"code": f"http_{code}", "message": err.description or err.name}})
        for name, value in HARDENING_HEADERS.items():  # every answer: preflights, errors, JSON, files
            response.headers.setdefault(name, value)
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        path = request.path
        if path == "/dev/token" and request.method == "POST":
            return self.dev_token(request)
        if (clerk := CLERK_USERS.match(path)) and request.method == "GET":
            return _json(*self.issuer.backend_user(clerk.group(1), request.headers.get("Authorization")))
        if not self.is_api_path(path):
            if request.method not in FILE_METHODS:
                message = f"{request.method} is not allowed here; only {' and '.join(FILE_METHODS)}."
                return _json(
                    405,
                    {"error": {"code": "method_not_allowed", "message": message}},
                    {"Allow": ", ".join(FILE_METHODS)},
                )
            if path == "/.well-known/jwks.json":
                return _json(200, self.issuer.jwks())
            if path == "/config.json":
                return _json(200, self.config)
            if path == "/healthz":
                return _json(200, {"ok": True})
            return self.static(path)
        if request.method == "OPTIONS":
            return self.preflight(request)
        try:
            route, params = self.url_map.bind("").match(path, method=request.method)
        except (NotFound, MethodNotAllowed):
            return self.gateway_response(MISSING_AUTHENTICATION_TOKEN, request)
        return self.invoke_api(request, route, dict(params))

    def is_api_path(self, path: str) -> bool:
        try:
            self.resource_map.bind("").match(path, method="GET")
        except NotFound:
            return any(path.startswith(p + "/") for p in self.api.resource_paths if "{" not in p)
        return True

    def dev_token(self, request: Request) -> Response:
        # Dev sign-in mints a token for any email: only for a browser on this machine.
        if request.host.rsplit(":", 1)[0].strip("[]") not in LOOPBACK_HOSTS:
            return _json(
                403,
                {
                    "error": {
                        "code": "dev_sign_in_loopback_only",
                        "message": "Dev sign-in answers only on 127.0.0.1 or localhost.",
                    }
                },
            )
        data = request.get_json(silent=True) or {}
        email = data.get("email") if isinstance(data, dict) else None
        if not isinstance(email, str) or not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
            return _json(400, {"error": {"code": "invalid_email", "message": "Give an email address to sign in as."}})
        azp = request.headers.get("Origin") or self.config["webOrigin"]
        if azp not in self.config["authorizedParties"]:
            azp = self.config["webOrigin"]
        # Like Clerk's default session token, no email claim: the notifier reads the address from the
        # (stand-in) Backend API, as in a deployment. "email_claim": true adds one (a custom claim).
        return _json(200, self.issuer.token(email, azp=azp, email_claim=data.get("email_claim") is True))

    def static(self, path: str) -> Response:
        file = (self.web_root / (path.lstrip("/") or "index.html")).resolve()
        if file.is_dir():
            file = file / "index.html"
        if not file.is_relative_to(self.web_root) or not file.is_file():
            # The path is not echoed: an answer never repeats what the request made up.
            return _json(404, {"error": {"code": "not_found", "message": "There is no such page."}})
        mime = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        return Response(file.read_bytes(), mimetype=mime, headers={"Cache-Control": "no-cache", **self.web_headers})

    # -- API Gateway behaviour -------------------------------------------------------------------
    def preflight(self, request: Request) -> Response:
        """What API Gateway's CORS preflight (a mock integration, no authorizer) answers."""
        cors = self.api.cors
        origin = request.headers.get("Origin") or ""
        return Response(
            status=204,
            headers={
                "Access-Control-Allow-Origin": origin if origin in self.cors_origins else self.cors_origins[0],
                "Access-Control-Allow-Methods": ",".join(cors.allow_methods),
                "Access-Control-Allow-Headers": ",".join(cors.allow_headers),
                "Access-Control-Max-Age": str(cors.max_age_seconds),
                "Vary": "Origin",
            },
        )

    def gateway_response(self, response: GatewayResponse, request: Request) -> Response:
        """API Gateway's own answer of this type, as the stage's gateway response defines it; its CORS
        headers are the stage's mapping expressions (gateway_response_cors) evaluated for this request."""
        assert response.status is not None
        cors = {}
        for name, expression in gateway_response_cors(self.cors_origins).items():
            if expression.startswith("method.request.header."):
                value = request.headers.get(expression.removeprefix("method.request.header."))
                if value is not None:  # API Gateway leaves out a header whose source is missing
                    cors[name] = value
            else:
                cors[name] = expression.strip("'")
        headers = {**GATEWAY_RESPONSE_HEADERS, **dict(response.headers), **cors}
        return _json(response.status, response.body, headers)

    def method_arn(self, method: str, path: str) -> str:
        return f"arn:aws:execute-api:{self.region}:{ACCOUNT}:{API_ID}/{self.api.stage}/{method}{path}"

    def proxy_event(self, request: Request, route: Route, params: dict) -> dict:
        """The REST API proxy integration event (payload format 1.0), as AWS documents it."""
        body = request.get_data()
        try:
            text, is_b64 = body.decode("utf-8"), False
        except UnicodeDecodeError:
            text, is_b64 = base64.b64encode(body).decode(), True
        now = time.time()
        return {
            "resource": route.path,
            "path": request.path,
            "httpMethod": request.method,
            "headers": dict(request.headers.items()) or None,
            # werkzeug's Headers iterate as (name, value) pairs: keys() gives the names
            "multiValueHeaders": {k: request.headers.getlist(k) for k in request.headers.keys()} or None,  # noqa: SIM118
            "queryStringParameters": dict(request.args.items()) or None,
            "multiValueQueryStringParameters": {k: request.args.getlist(k) for k in request.args} or None,
            "pathParameters": params or None,
            "stageVariables": None,
            "requestContext": {
                "resourceId": uuid.uuid4().hex[:6],
                "resourcePath": route.path,
                "httpMethod": request.method,
                "extendedRequestId": uuid.uuid4().hex[:16],
                "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
                "path": f"/{self.api.stage}{request.path}",
                "accountId": ACCOUNT,
                "protocol": "HTTP/1.1",
                "stage": self.api.stage,
                "domainPrefix": request.host.split(":")[0].split(".")[0],
                "requestTimeEpoch": int(now * 1000),
                "requestId": str(uuid.uuid4()),
                "identity": {
                    "sourceIp": request.remote_addr or "127.0.0.1",
                    "userAgent": request.user_agent.string,
                    "accessKey": None,
                    "accountId": None,
                    "caller": None,
                    "user": None,
                    "userArn": None,
                    "cognitoIdentityId": None,
                    "cognitoIdentityPoolId": None,
                    "cognitoAuthenticationType": None,
                    "cognitoAuthenticationProvider": None,
                },
                "domainName": request.host,
                "apiId": API_ID,
            },
            "body": text or None,
            "isBase64Encoded": is_b64,
        }

    def authorizer_event(self, event: dict, identity: str, method_arn: str) -> dict:
        if self.api.authorizer.kind == "TOKEN":
            return {"type": "TOKEN", "authorizationToken": identity, "methodArn": method_arn}
        return {
            "type": "REQUEST",
            "methodArn": method_arn,
            **{
                k: event[k]
                for k in (
                    "resource",
                    "path",
                    "httpMethod",
                    "headers",
                    "multiValueHeaders",
                    "queryStringParameters",
                    "multiValueQueryStringParameters",
                    "pathParameters",
                    "stageVariables",
                    "requestContext",
                )
            },
        }

    def authorize(self, request: Request, event: dict) -> Response | dict:
        """The authorizer's context for the API event, or API Gateway's 401/403 answer."""
        identity = request.headers.get(self.api.authorizer.identity_header)
        if not identity:
            return self.gateway_response(UNAUTHORIZED, request)
        method_arn = self.method_arn(event["httpMethod"], event["path"])
        cached = self.cached_policy(identity)
        if cached is None:
            started = time.monotonic()
            self.authorizer_invocations += 1
            try:
                result = self.authorizer_function(self.authorizer_event(event, identity, method_arn))
            except Exception:  # the authorizer raised "Unauthorized" (or failed): API Gateway's 401
                return self.gateway_response(UNAUTHORIZED, request)
            cached = CachedPolicy(
                str(result.get("principalId")),
                result.get("policyDocument") or {},
                dict(result.get("context") or {}),
                time.monotonic() + self.api.authorizer.result_cache_seconds,
            )
            cached.context["integrationLatency"] = int((time.monotonic() - started) * 1000)
            if self.api.authorizer.result_cache_seconds > 0:
                with self._cache_lock:
                    self._cache[identity] = cached
        if not policy_allows(cached.policy, method_arn):
            return self.gateway_response(ACCESS_DENIED, request)
        # API Gateway hands the context's values on as strings, with principalId beside them.
        return {"principalId": cached.principal_id, **{k: _as_string(v) for k, v in cached.context.items()}}

    def cached_policy(self, identity: str) -> CachedPolicy | None:
        with self._cache_lock:
            entry = self._cache.get(identity)
            if entry and entry.expires <= time.monotonic():
                del self._cache[identity]
                entry = None
            return entry

    def invoke_api(self, request: Request, route: Route, params: dict) -> Response:
        event = self.proxy_event(request, route, params)
        if route.authorized:
            authorizer = self.authorize(request, event)
            if isinstance(authorizer, Response):
                return authorizer
            event["requestContext"]["authorizer"] = authorizer
        try:
            result = self.api_function(event)
        except Exception:  # a function error: API Gateway answers 502 (the error is in the function's log)
            return _json(502, {"message": "Internal server error"})
        body = result.get("body") or ""
        data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
        response = Response(data, status=int(result.get("statusCode", 502)))
        response.headers.clear()
        for k, v in (result.get("headers") or {}).items():
            response.headers[k] = str(v)
        for k, values in (result.get("multiValueHeaders") or {}).items():
            response.headers.remove(k)
            for v in values:
                response.headers.add(k, str(v))
        return response


def _as_string(value) -> str:
    return json.dumps(value) if isinstance(value, bool) else str(value)


def policy_allows(policy: dict, arn: str) -> bool:
    """IAM evaluation of an authorizer's policy for execute-api:Invoke on `arn`: an explicit Deny
    wins, then an Allow is needed."""
    statements = policy.get("Statement") or []
    if isinstance(statements, dict):
        statements = [statements]
    matching = [
        s
        for s in statements
        if isinstance(s, dict)
        and _covers(s.get("Action"), "execute-api:Invoke", re.IGNORECASE)  # actions ignore case
        and _covers(s.get("Resource"), arn)
    ]
    if any(s.get("Effect") == "Deny" for s in matching):
        return False
    return any(s.get("Effect") == "Allow" for s in matching)


def _covers(patterns, value: str, flags: int = 0) -> bool:
    """IAM-style wildcard match of a policy's Action or Resource (string or list)."""
    for pattern in patterns if isinstance(patterns, list) else [patterns]:
        if isinstance(pattern, str) and re.fullmatch(
            re.escape(pattern).replace(r"\*", ".*").replace(r"\?", "."), value, re.DOTALL | flags
        ):
            return True
    return False
