"""The local API gateway: HTTP in, API Gateway REST proxy events out, to the real Lambda handlers.

It does what API Gateway does for Hark: calls the Lambda authorizer with a REQUEST event, answers
401/403 itself when the authorizer denies, hands the authorizer's context to the API handler in
`requestContext.authorizer`, and turns the handler's proxy response back into HTTP. Beside the API
it serves the web app, the dev issuer's JWKS and a dev sign-in endpoint.
"""

from __future__ import annotations

import base64
import json
import mimetypes
import re
import threading
import time
import uuid
from pathlib import Path

from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from hark.local.issuer import DevIssuer

API_ID, STAGE, ACCOUNT = "local", "local", "123456789012"
# API Gateway resources, in its own {param} syntax, mapped to werkzeug rules.
API_RESOURCES = ("/jobs", "/jobs/{id}", "/jobs/{id}/transcript", "/links/{token}")
# Routes without the authorizer (authorization NONE in API Gateway): an email link is its own credential.
PUBLIC_RESOURCES = ("/links/{token}",)
# The dev issuer's stand-in for Clerk's Backend API (HARK_CLERK_API_URL = {gateway}/clerk locally).
CLERK_USERS = re.compile(r"^/clerk/v1/users/([^/]+)$")


class LambdaContext:
    """The attributes of Lambda's context object that Powertools reads."""

    def __init__(self, name: str):
        self.function_name = name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}"
        self.memory_limit_in_mb = 512
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "local"
        self._deadline = time.time() + 29

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


def _json(status: int, body: dict) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


class Gateway:
    def __init__(self, issuer: DevIssuer, web_root: Path, config: dict, region: str = "us-east-1"):
        # Imported here: handlers read settings at import, after the stack has set the environment.
        from lambdas.api.handler import handler as api_handler
        from lambdas.authorizer.handler import handler as authorizer_handler

        self.api_handler, self.authorizer_handler = api_handler, authorizer_handler
        self.issuer, self.web_root, self.config, self.region = issuer, web_root.resolve(), config, region
        # One invocation at a time, like one Lambda execution environment (Powertools' resolver
        # keeps the current event on the app object).
        self._lock = threading.Lock()
        rules = [Rule(re.sub(r"{(\w+)}", r"<\1>", r), endpoint=r) for r in API_RESOURCES]
        self.url_map = Map(rules, strict_slashes=False)

    # -- WSGI ----------------------------------------------------------------------------------
    def __call__(self, environ, start_response):
        request = Request(environ)
        try:
            response = self.dispatch(request)
        except HTTPException as err:
            response = _json(err.code or 500, {"message": err.description})
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        path = request.path
        if path == "/.well-known/jwks.json":
            return _json(200, self.issuer.jwks())
        if path == "/config.json":
            return _json(200, self.config)
        if path == "/healthz":
            return _json(200, {"ok": True})
        if path == "/dev/token" and request.method == "POST":
            return self.dev_token(request)
        if (clerk := CLERK_USERS.match(path)) and request.method == "GET":
            return _json(*self.issuer.backend_user(clerk.group(1), request.headers.get("Authorization")))
        try:
            resource, params = self.url_map.bind("").match(path, method=request.method)
        except NotFound:
            return self.static(path)
        except HTTPException:
            return _json(404, {"message": "Not Found"})
        return self.invoke_api(request, resource, params)

    def dev_token(self, request: Request) -> Response:
        data = request.get_json(silent=True) or {}
        email = data.get("email") if isinstance(data, dict) else None
        if not isinstance(email, str) or not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
            return _json(400, {"error": {"code": "invalid_email", "message": "Give an email address to sign in as."}})
        azp = request.headers.get("Origin") or self.config["webOrigin"]
        if azp not in self.config["authorizedParties"]:
            azp = self.config["webOrigin"]
        # "email_claim": false mints a token like Clerk's default one, without the email claim.
        return _json(200, self.issuer.token(email, azp=azp, email_claim=data.get("email_claim") is not False))

    def static(self, path: str) -> Response:
        if request_is_api_like(path):
            return _json(404, {"message": "Not Found"})
        file = (self.web_root / (path.lstrip("/") or "index.html")).resolve()
        if file.is_dir():
            file = file / "index.html"
        if not file.is_relative_to(self.web_root) or not file.is_file():
            return _json(404, {"message": "Not Found"})
        mime = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        return Response(file.read_bytes(), mimetype=mime, headers={"Cache-Control": "no-cache"})

    # -- API Gateway behaviour -------------------------------------------------------------------
    def event(self, request: Request, resource: str, params: dict) -> dict:
        body = request.get_data()
        try:
            text, is_b64 = body.decode("utf-8"), False
        except UnicodeDecodeError:
            text, is_b64 = base64.b64encode(body).decode(), True
        headers = {k: v for k, v in request.headers.items()}
        multi_headers = {k: request.headers.getlist(k) for k in request.headers.keys()}
        query = {k: v for k, v in request.args.items()} or None
        multi_query = {k: request.args.getlist(k) for k in request.args.keys()} or None
        return {
            "resource": resource,
            "path": request.path,
            "httpMethod": request.method,
            "headers": headers,
            "multiValueHeaders": multi_headers,
            "queryStringParameters": query,
            "multiValueQueryStringParameters": multi_query,
            "pathParameters": params or None,
            "stageVariables": None,
            "requestContext": {
                "resourcePath": resource,
                "httpMethod": request.method,
                "path": f"/{STAGE}{request.path}",
                "stage": STAGE,
                "requestId": str(uuid.uuid4()),
                "accountId": ACCOUNT,
                "apiId": API_ID,
                "protocol": "HTTP/1.1",
                "requestTimeEpoch": int(time.time() * 1000),
                "identity": {"sourceIp": request.remote_addr or "127.0.0.1", "userAgent": request.user_agent.string},
            },
            "body": text or None,
            "isBase64Encoded": is_b64,
        }

    def authorize(self, event: dict) -> dict | None:
        method_arn = f"arn:aws:execute-api:{self.region}:{ACCOUNT}:{API_ID}/{STAGE}/{event['httpMethod']}{event['path']}"
        authorizer_event = {
            "type": "REQUEST",
            "methodArn": method_arn,
            "resource": event["resource"],
            "path": event["path"],
            "httpMethod": event["httpMethod"],
            "headers": event["headers"],
            "multiValueHeaders": event["multiValueHeaders"],
            "queryStringParameters": event["queryStringParameters"],
            "pathParameters": event["pathParameters"],
            "requestContext": event["requestContext"],
        }
        try:
            result = self.authorizer_handler(authorizer_event, LambdaContext("hark-authorizer"))
        except Exception:
            return None  # API Gateway: the authorizer raised "Unauthorized" -> 401
        statements = result.get("policyDocument", {}).get("Statement", [])
        allowed = any(s.get("Effect") == "Allow" and _covers(s.get("Resource"), method_arn) for s in statements)
        if not allowed:
            return {}
        return {"principalId": result.get("principalId"), **(result.get("context") or {})}

    def invoke_api(self, request: Request, resource: str, params: dict) -> Response:
        event = self.event(request, resource, params)
        with self._lock:
            if resource not in PUBLIC_RESOURCES:
                authorizer = self.authorize(event)
                if authorizer is None:
                    return _json(401, {"message": "Unauthorized"})
                if not authorizer:
                    return _json(403, {"message": "User is not authorized to access this resource"})
                event["requestContext"]["authorizer"] = authorizer
            result = self.api_handler(event, LambdaContext("hark-api"))
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


def request_is_api_like(path: str) -> bool:
    return path.startswith("/jobs")


def _covers(resource, arn: str) -> bool:
    """IAM-style wildcard match of a policy Resource (string or list) against a method ARN."""
    patterns = resource if isinstance(resource, list) else [resource]
    for pattern in patterns:
        if isinstance(pattern, str) and re.fullmatch(re.escape(pattern).replace(r"\*", ".*").replace(r"\?", "."), arn, re.DOTALL):
            return True
    return False
