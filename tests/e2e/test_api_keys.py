"""API keys through the whole local stack (`hark up`): real HTTP through the local gateway, its authorizer
cache (the same TTL as API Gateway's, hark.api.http_api), the Lambda functions from the built asset."""

from __future__ import annotations

import subprocess
import sys
import time

import openai
import pytest
import requests
from openai import OpenAI

from hark.api.http_api import HTTP_API, UNAUTHORIZED
from hark.client import Hark
from hark.client.cli import EXIT_AUTH, EXIT_OK
from hark.domain.wer import word_error_rate
from tests.conftest import SHARED_SPEECH

pytestmark = pytest.mark.e2e

CLIP = SHARED_SPEECH / "en_jfk.flac"  # 11 s


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def hark_cli(live_stack, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hark.client.cli", *args],
        env={**live_stack.env(), **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_a_key_is_its_user_everywhere_foreign_to_others_and_refused_once_revoked(live_stack):
    url = live_stack.url
    alice = live_stack.token("keys-alice@example.com")
    alice_key = live_stack.api_key(alice, "alice's script")
    bob_key = live_stack.api_key(live_stack.token("keys-bob@example.com"), "bob's script")

    # The key's first use: the gateway caches the authorizer's Allow for it from here.
    assert requests.get(f"{url}/jobs", headers=bearer(alice_key), timeout=10).status_code == 200
    # A job made with the key is Alice's: her session sees it, Bob's key gets the same 404 as no job.
    created = requests.post(
        f"{url}/jobs",
        json={"filename": "memo.flac", "content_type": "audio/flac", "size": CLIP.stat().st_size},
        headers=bearer(alice_key),
        timeout=10,
    )
    assert created.status_code == 201, created.text
    job_id = created.json()["job"]["job_id"]
    assert requests.get(f"{url}/jobs/{job_id}", headers=bearer(alice), timeout=10).status_code == 200
    foreign = requests.get(f"{url}/jobs/{job_id}", headers=bearer(bob_key), timeout=10)
    assert foreign.status_code == 404 and foreign.json()["error"]["code"] == "job_not_found", foreign.text
    with Hark(url, api_key=alice_key) as hark:
        assert job_id in [j.job_id for j in hark.list().items]
    # The live service (the OpenAI-compatible endpoint) takes the same key, checked in-process.
    sdk = OpenAI(base_url=f"{url}/v1", api_key=alice_key, max_retries=0)
    assert "whisper-1" in {m.id for m in sdk.models.list()}

    # The CLI with HARK_API_KEY: a real recording transcribed as Alice.
    run = hark_cli(live_stack, "transcribe", str(CLIP), "--language", "en", HARK_API_KEY=alice_key)
    assert run.returncode == EXIT_OK, run.stderr
    assert word_error_rate((CLIP.with_suffix(".txt")).read_text(), run.stdout, "en") <= 0.2, run.stdout
    (listed,) = requests.get(f"{url}/api-keys", headers=bearer(alice), timeout=10).json()["items"]
    assert listed["name"] == "alice's script" and listed["last_used_at"] is not None

    # Revoked: gone from the list at once, and refused once the gateway's cached Allow runs out.
    key_id = listed["id"]
    revoked_at = time.monotonic()
    assert requests.delete(f"{url}/api-keys/{key_id}", headers=bearer(alice), timeout=10).status_code == 204
    assert requests.get(f"{url}/api-keys", headers=bearer(alice), timeout=10).json()["items"] == []
    refused_within = HTTP_API.authorizer.result_cache_seconds + 5  # docs/api.md promises the TTL
    while True:
        answer = requests.get(f"{url}/jobs", headers=bearer(alice_key), timeout=10)
        if answer.status_code == 401:
            break
        assert answer.status_code == 200, answer.text
        assert time.monotonic() - revoked_at < refused_within, "a revoked key still let in past the cache TTL"
        time.sleep(1)
    assert answer.json() == UNAUTHORIZED.body
    with pytest.raises(openai.AuthenticationError):  # no cache in front of the live service: refused at once
        sdk.models.list()
    refused = hark_cli(live_stack, "transcribe", str(CLIP), "--api-key", alice_key)
    assert refused.returncode == EXIT_AUTH and "refused" in refused.stderr, refused.stderr
