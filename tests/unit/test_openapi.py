"""docs/openapi.json is generated from the API's code; this fails when someone forgets to regenerate it."""

from __future__ import annotations

import json

from hark.api.http_api import HTTP_API
from hark.domain.api_schemas import PROMPT_MAX_CHARS
from lambdas.api.openapi import DOC, render


def test_openapi_document_is_current():
    assert DOC.exists(), "docs/openapi.json is missing: run `python -m lambdas.api.openapi`"
    assert json.loads(DOC.read_text()) == json.loads(render()), (
        "docs/openapi.json is stale: run `python -m lambdas.api.openapi` and commit it"
    )


def test_openapi_document_describes_the_contract():
    doc = json.loads(render())
    paths = doc["paths"]
    # Every route of the one HTTP surface definition (hark.api.http_api), as the document names its parameters.
    assert set(paths) == {r.path.replace("{id}", "{job_id}") for r in HTTP_API.routes}
    assert {"/jobs", "/jobs/{job_id}", "/jobs/{job_id}/transcript", "/jobs/{job_id}/audio"} <= set(paths)
    # Steering (issue 11): the prompt's bound and Whisper's two tasks are in the contract.
    body = doc["components"]["schemas"]["CreateJobRequest"]["properties"]
    prompt = next(b for b in body["prompt"]["anyOf"] if b.get("type") == "string")
    assert prompt["maxLength"] == PROMPT_MAX_CHARS
    assert set(body["task"]["enum"]) == {"transcribe", "translate"} and body["task"]["default"] == "transcribe"
    assert {"/links/{token}", "/webhook-secret", "/webhook-settings"} <= set(paths)
    assert set(paths["/webhook-secret"]) == {"get", "post"} and set(paths["/webhook-settings"]) == {"get", "put"}
    statuses = paths["/jobs"]["get"]["parameters"]
    assert any(p["name"] == "status" and p["in"] == "query" for p in statuses)
    # The email links carry their own credential: no bearer token, and their refusals are the API's own shape.
    link = paths["/links/{token}"]["get"]
    assert link["security"] == [] and {"302", "403", "404", "410"} <= set(link["responses"])
    assert "content" not in link["responses"]["302"] and "Location" in link["responses"]["302"]["headers"]
    for status in ("403", "404", "410"):
        assert link["responses"][status]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorResponse"
        }
    assert set(paths["/jobs"]) == {"get", "post"} and set(paths["/jobs/{job_id}"]) == {"get", "delete"}
    post = paths["/jobs"]["post"]
    assert {"201", "400", "413", "415", "429"} <= set(post["responses"])
    assert {"Retry-After", "RateLimit-Limit", "RateLimit-Remaining"} <= set(post["responses"]["429"]["headers"])
    assert any(p["name"].lower() == "idempotency-key" and p["in"] == "header" for p in post["parameters"])
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert doc["security"] == [{"bearerAuth": []}]
    # One error shape everywhere; no leftover framework 422 body.
    text = json.dumps(paths)
    assert "HTTPValidationError" not in text
    for path in paths.values():
        for operation in path.values():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")) and status not in ("401", "403"):
                    assert response["content"]["application/json"]["schema"] == {
                        "$ref": "#/components/schemas/ErrorResponse"
                    }
    assert "json" in doc["components"]["schemas"]["TranscriptLinks"]["properties"]
