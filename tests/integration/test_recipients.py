"""worker.notification.recipients over real HTTP: Clerk's Backend API user lookup, answered by the dev issuer's
stand-in behind the local gateway, with the secret key read from the emulator's Secrets Manager."""

from __future__ import annotations

import pytest
import requests

from hark.domain import aws
from hark.domain.resources import CLERK_SECRET_PLACEHOLDER
from hark.local.emulator import free_port
from hark.local.issuer import user_id_for
from tests.gateway import running_gateway
from worker.notification import recipients


@pytest.fixture
def gateway(stack, tmp_path, monkeypatch):
    with running_gateway(tmp_path) as gw:
        monkeypatch.setenv("HARK_CLERK_API_URL", gw.clerk_api_url)
        aws.reset()
        yield gw


def _clerk_key() -> str:
    return aws.client("secretsmanager").get_secret_value(SecretId=aws.stack_resources().clerk_secret)["SecretString"]


def _set_clerk_key(value: str) -> None:
    aws.client("secretsmanager").put_secret_value(SecretId=aws.stack_resources().clerk_secret, SecretString=value)
    aws.reset()  # drop the process's cached copy


def test_the_stand_in_answers_in_clerks_shape_and_wants_the_secret_key(gateway):
    minted = gateway.token("Ana@Example.com", email_claim=False)
    url = f"{gateway.clerk_api_url}/v1/users/{minted['user_id']}"
    assert requests.get(url, timeout=10).status_code == 401
    assert requests.get(url, headers={"Authorization": "Bearer sk_test_wrong"}, timeout=10).status_code == 401
    user = requests.get(url, headers={"Authorization": f"Bearer {_clerk_key()}"}, timeout=10).json()
    assert user["id"] == minted["user_id"] and user["object"] == "user"
    (address,) = user["email_addresses"]
    assert address["email_address"] == "Ana@Example.com" and user["primary_email_address_id"] == address["id"]


def test_primary_address_of_a_user_whose_token_had_no_email(gateway):
    minted = gateway.token("ana@example.com", email_claim=False)
    assert recipients.clerk_email(minted["user_id"]) == "ana@example.com"


def test_primary_email_picks_the_primary_then_a_verified_one():
    user = {
        "primary_email_address_id": "idn_2",
        "email_addresses": [
            {"id": "idn_1", "email_address": "old@example.com", "verification": {"status": "verified"}},
            {"id": "idn_2", "email_address": "new@example.com", "verification": {"status": "verified"}},
        ],
    }
    assert recipients.primary_email(user) == "new@example.com"
    user["primary_email_address_id"] = None
    assert recipients.primary_email(user) == "old@example.com"
    assert recipients.primary_email({"primary_email_address_id": None, "email_addresses": []}) is None
    assert (
        recipients.primary_email(
            {
                "email_addresses": [
                    {"id": "idn_1", "email_address": "x@example.com", "verification": {"status": "unverified"}}
                ]
            }
        )
        is None
    )


def test_a_user_without_an_address_or_unknown_to_clerk_is_no_recipient(gateway):
    minted = gateway.token("gone@example.com", email_claim=False)
    gateway.issuer.forget_email(minted["user_id"])
    with pytest.raises(recipients.NoRecipient, match="no email address"):
        recipients.clerk_email(minted["user_id"])
    with pytest.raises(recipients.NoRecipient, match="no user"):
        recipients.clerk_email(user_id_for("never-signed-in@example.com"))


@pytest.mark.parametrize("trouble", ["wrong-key", "placeholder-key", "unreachable", "not-clerk"])
def test_trouble_with_clerk_is_transient(gateway, monkeypatch, trouble):
    minted = gateway.token("ana@example.com", email_claim=False)
    if trouble == "wrong-key":  # Clerk answers 401: our key was rotated or mistyped
        _set_clerk_key("sk_live_not_the_right_one")
    elif trouble == "placeholder-key":  # deployed, but the operator has not put the key in yet
        _set_clerk_key(CLERK_SECRET_PLACEHOLDER)
    elif trouble == "unreachable":
        monkeypatch.setenv("HARK_CLERK_API_URL", f"http://127.0.0.1:{free_port()}")
        aws.reset()
    else:  # a 404 that is not Clerk's "resource_not_found": a wrong HARK_CLERK_API_URL, not a missing user
        monkeypatch.setenv("HARK_CLERK_API_URL", gateway.url)
        aws.reset()
    with pytest.raises(recipients.LookupFailed) as err:
        recipients.clerk_email(minted["user_id"])
    if trouble == "placeholder-key":
        assert aws.stack_resources().clerk_secret in str(err.value)
