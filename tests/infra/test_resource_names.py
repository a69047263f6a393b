"""Bucket names are global across AWS: the templates name the buckets after the account and region,
and every consumer (API Lambda, workers) rebuilds exactly those names at run time from its environment
through the same hark.domain.resources definition."""

from __future__ import annotations

import json
import os
import re

import pytest

from hark.domain import aws

from .conftest import TEST_CONTEXT, as_list, evaluate, resources_of, role_statements

STACK = TEST_CONTEXT["hark:stack"]
# Two deployments of the same stack name: each must get its own bucket names.
ACCOUNTS = [
    {"AWS::AccountId": "111122223333", "AWS::Region": "eu-central-1", "AWS::Partition": "aws"},
    {"AWS::AccountId": "444455556666", "AWS::Region": "us-east-1", "AWS::Partition": "aws"},
]


def _buckets(synth, pseudo) -> dict[str, str]:
    """Logical id -> physical name of the named buckets in the storage stack, in one account/region."""
    return {
        k: evaluate(v["Properties"]["BucketName"], pseudo)
        for k, v in resources_of(synth.template("Storage"), "AWS::S3::Bucket").items()
        if "BucketName" in v["Properties"]
    }


def test_no_template_holds_a_literal_bucket_name(synth):
    for name, template in synth.templates.items():
        text = json.dumps(template)
        for purpose in ("audio", "transcripts"):
            # the name is always followed by the account token ("-" then a Ref, or cdk-nag's <AWS::AccountId>)
            literal = re.findall(rf"{STACK}-{purpose}(?!-(?:\"|<AWS::AccountId>))", text)
            assert not literal, f"{name}: a literal {STACK}-{purpose} bucket name"
    for bucket in resources_of(synth.template("Storage"), "AWS::S3::Bucket").values():
        bucket_name = bucket["Properties"].get("BucketName")
        if bucket_name is not None:
            assert {"Ref": "AWS::AccountId"} in bucket_name["Fn::Join"][1]
            assert {"Ref": "AWS::Region"} in bucket_name["Fn::Join"][1]


def test_two_accounts_get_different_bucket_names(synth):
    first, second = (set(_buckets(synth, pseudo).values()) for pseudo in ACCOUNTS)
    assert len(first) == 2 and not first & second
    for name in first | second:
        assert 3 <= len(name) <= 63 and re.fullmatch(r"[a-z0-9][a-z0-9.-]*[a-z0-9]", name)


def _consumers(synth) -> dict[str, tuple[dict, list[dict]]]:
    """Consumer -> (its environment, its role's statements)."""
    api = synth.template("Api")
    (fn,) = [
        v["Properties"]
        for v in resources_of(api, "AWS::Lambda::Function").values()
        if v["Properties"].get("FunctionName") == f"{STACK}-api"
    ]
    out = {"api": (fn["Environment"]["Variables"], role_statements(api, "ApiFunctionRole"))}
    workers = synth.template("Workers")
    for family, role in (("transcription", "TranscriptionTaskRole"), ("notification", "NotificationTaskRole")):
        (task,) = [
            v["Properties"]
            for v in resources_of(workers, "AWS::ECS::TaskDefinition").values()
            if v["Properties"]["Family"] == f"{STACK}-{family}"
        ]
        (container,) = task["ContainerDefinitions"]
        env = {e["Name"]: e["Value"] for e in container["Environment"]}
        out[family] = (env, role_statements(workers, role))
    return out


@pytest.mark.parametrize("pseudo", ACCOUNTS, ids=lambda p: p["AWS::Region"])
def test_every_consumer_names_the_buckets_the_storage_stack_creates(synth, monkeypatch, pseudo):
    """Each consumer's environment, resolved in one account and region, fed to the runtime's own
    hark.domain.aws.stack_resources(), names exactly the buckets the storage stack creates there; and every S3
    grant of its role points into one of them."""
    created = set(_buckets(synth, pseudo).values())
    for consumer, (env, statements) in _consumers(synth).items():
        resolved = {k: evaluate(v, pseudo) for k, v in env.items() if k.startswith("HARK_")}
        assert not [k for k, v in resolved.items() if not isinstance(v, str)], (consumer, resolved)
        assert "HARK_AWS_ENDPOINT_URL" not in resolved
        # Without these the runtime would ask STS (the operator's path), which a task must not need.
        assert resolved.get("HARK_ACCOUNT") == pseudo["AWS::AccountId"], consumer
        assert resolved.get("HARK_REGION") == pseudo["AWS::Region"], consumer
        for name in [n for n in os.environ if n.startswith("HARK_")]:
            monkeypatch.delenv(name)
        for k, v in resolved.items():
            monkeypatch.setenv(k, v)
        aws.reset()
        try:
            res = aws.stack_resources()
        finally:
            aws.reset()
        assert {res.audio_bucket.name, res.transcripts_bucket.name} == created, consumer
        s3_resources = [
            evaluate(r, pseudo)
            for st in statements
            if st["Effect"] == "Allow"
            for a in as_list(st["Action"])
            if a.startswith("s3:")
            for r in as_list(st["Resource"])
        ]
        assert s3_resources, consumer
        for arn in s3_resources:
            assert isinstance(arn, str) and arn.split(":::", 1)[1].split("/", 1)[0] in created, (consumer, arn)
