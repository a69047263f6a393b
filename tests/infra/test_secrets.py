"""The two secrets of the emails (link signing key, Clerk secret key) and who may read them."""

from __future__ import annotations

import json

from hark.domain.resources import CLERK_SECRET_PLACEHOLDER, resources

from .conftest import TEST_CONTEXT, grants, resources_of, role_statements

RES = resources(TEST_CONTEXT["hark:stack"])
STACK = TEST_CONTEXT["hark:stack"]


def _secrets(synth) -> dict[str, dict]:
    return {
        s["Properties"]["Name"]: s["Properties"]
        for s in resources_of(synth.template("Email"), "AWS::SecretsManager::Secret").values()
    }


def _secret_reads(pairs: set[tuple[str, str]]) -> set[str]:
    return {r for a, r in pairs if a.startswith("secretsmanager:")}


def _arn(name: str) -> str:
    # As IAM sees it: the name, then '-' and the six random characters Secrets Manager appends.
    return f"arn:${{AWS::Partition}}:secretsmanager:${{AWS::Region}}:${{AWS::AccountId}}:secret:{name}-??????"


def test_both_secrets_are_named_from_hark_resources(synth):
    assert set(_secrets(synth)) == {RES.link_signing_secret, RES.clerk_secret}
    assert RES.link_signing_secret == f"{STACK}/link-signing-key" and RES.clerk_secret == f"{STACK}/clerk-secret-key"


def test_the_link_key_is_generated_by_secrets_manager_never_in_the_template(synth):
    link = _secrets(synth)[RES.link_signing_secret]
    assert "SecretString" not in link
    generated = link["GenerateSecretString"]
    # at least 256 bits of [A-Za-z0-9] (5.95 bits a character), so HMAC-SHA256 gets a full-strength key
    assert generated["PasswordLength"] * 5.95 >= 256 and generated["ExcludePunctuation"] is True


def test_the_clerk_key_starts_as_the_placeholder_the_operator_replaces(synth):
    assert _secrets(synth)[RES.clerk_secret]["SecretString"] == CLERK_SECRET_PLACEHOLDER
    outputs = synth.template("Email")["Outputs"]
    assert any(o.get("Value") == RES.clerk_secret for o in outputs.values())


def test_notification_worker_reads_both_secrets_and_only_them(synth):
    pairs = grants(role_statements(synth.template("Workers"), "NotificationTaskRole"))
    assert {(a, r) for a, r in pairs if a.startswith("secretsmanager:")} == {
        ("secretsmanager:GetSecretValue", _arn(RES.link_signing_secret)),
        ("secretsmanager:GetSecretValue", _arn(RES.clerk_secret)),
    }


def test_transcription_worker_and_authorizer_read_no_secret(synth):
    assert not _secret_reads(grants(role_statements(synth.template("Workers"), "TranscriptionTaskRole")))
    assert not _secret_reads(grants(role_statements(synth.template("Api"), "AuthorizerFunctionRole")))


def test_api_reads_the_link_key_only(synth):
    """The API verifies links (GET /links/{token}): the link key, never Clerk's."""
    pairs = grants(role_statements(synth.template("Api"), "ApiFunctionRole"))
    assert {(a, r) for a, r in pairs if a.startswith("secretsmanager:")} == {
        ("secretsmanager:GetSecretValue", _arn(RES.link_signing_secret))
    }


def test_notification_worker_gets_the_api_url_for_its_links(synth):
    (task,) = [
        r["Properties"]
        for r in resources_of(synth.template("Workers"), "AWS::ECS::TaskDefinition").values()
        if r["Properties"]["Family"] == f"{STACK}-notification"
    ]
    (container,) = task["ContainerDefinitions"]
    env = {e["Name"]: e["Value"] for e in container["Environment"]}
    # The Api stack's RestApi URL, read from that stack (the API's id is only known once deployed).
    url = json.dumps(env["HARK_API_URL"])
    assert url.startswith('{"Fn::Join": ["", ["https://", {"Fn::GetStackOutput": {"StackName": "' + f"{STACK}-api")
    assert ".execute-api." in url and "DeploymentStage" in url
    assert not [k for k in env if "SECRET" in k or "KEY" in k]  # names come from hark.domain.resources; never values
