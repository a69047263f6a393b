"""hark/client/api_client is generated from docs/openapi.json; this fails when someone forgets to regenerate it
(like tests/unit/test_openapi.py for the document itself)."""

from __future__ import annotations

from hark.client import codegen as client_codegen


def test_generated_client_is_current(tmp_path):
    fresh = tmp_path / "api_client"
    client_codegen.generate(fresh)
    committed = client_codegen.files(client_codegen.PACKAGE)
    regenerated = client_codegen.files(fresh)
    stale = sorted(
        name for name in committed.keys() | regenerated.keys() if committed.get(name) != regenerated.get(name)
    )
    assert not stale, f"hark/client/api_client is stale ({', '.join(stale)}): run `make client` and commit it"
