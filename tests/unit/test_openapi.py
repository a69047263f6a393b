"""docs/openapi.json is generated from the API's code; this fails when someone forgets to regenerate it."""

from __future__ import annotations

import json

from lambdas.api.openapi import DOC, render


def test_openapi_document_is_current():
    assert DOC.exists(), "docs/openapi.json is missing: run `python -m lambdas.api.openapi`"
    assert json.loads(DOC.read_text()) == json.loads(render()), (
        "docs/openapi.json is stale: run `python -m lambdas.api.openapi` and commit it"
    )


def test_openapi_document_describes_the_contract():
    doc = json.loads(render())
    paths = doc["paths"]
    assert set(paths) == {
        "/jobs",
        "/jobs/{job_id}",
        "/jobs/{job_id}/transcript",
        "/links/{token}",
        "/webhook-secret",
        "/webhook-settings",
    }
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
