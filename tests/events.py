"""API Gateway REST proxy (v1) events for driving the API Lambda in process: one builder for the tests.

(The local gateway builds the same event from a real HTTP request, hark.local.gateway.Gateway.proxy_event;
tests/infra/test_contracts.py writes out AWS's documented example on purpose, to check both against it.)
"""

from __future__ import annotations

import uuid


def rest_proxy_event(
    method: str,
    resource: str,
    path: str,
    *,
    path_params: dict | None = None,
    headers: dict | None = None,
    query: dict | None = None,
    body: str | None = None,
    is_base64: bool = False,
    authorizer: dict | None = None,
    stage: str = "local",
) -> dict:
    """`authorizer`: the authorizer's context with principalId, as API Gateway hands it on (None: a route
    without authorization)."""
    headers = headers or {}
    context: dict = {
        "resourcePath": resource,
        "httpMethod": method,
        "path": f"/{stage}{path}",
        "stage": stage,
        "requestId": str(uuid.uuid4()),
        "accountId": "123456789012",
        "apiId": "local",
        "identity": {"sourceIp": "127.0.0.1"},
    }
    if authorizer is not None:
        context["authorizer"] = authorizer
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers or None,
        "multiValueHeaders": {k: [v] for k, v in headers.items()} or None,
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": path_params or None,
        "stageVariables": None,
        "requestContext": context,
        "body": body,
        "isBase64Encoded": is_base64,
    }


def authorizer_context(user: str) -> dict:
    """What the Lambda authorizer's Allow hands the API for `user` (hark.api.auth.allow_policy's context)."""
    return {"principalId": user, "user_id": user, "email": f"{user}@example.com"}
