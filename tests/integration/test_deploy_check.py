"""`hark deploy check` against the AWS emulator: an empty account lists every problem at once (exit 1);
a prepared one passes (exit 0).

moto answers STS, SSM, IAM, CloudFormation, Secrets Manager, EC2's DescribeInstanceTypes and SES v2's
identities. It lacks Service Quotas for EC2 (it knows only VPC quotas), SES v2 GetAccount, and never
marks an identity verified, so those three come from botocore's Stubber on their own clients
(tests/unit/test_deploy_check.py covers each branch of them); everything else is the emulator's answer.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
import requests
from botocore.stub import Stubber

from hark.client import deploy_check
from hark.client.deploy_check import DeployCheck, load_target, parse_context_args, render
from hark.domain import aws

REGION = "us-east-1"
STACK = "hark-deploytest"
CLERK_HOST = "clerk.acme.dev"
WEB = "https://hark.acme.dev"
PREPARED_CONTEXT = [
    f"hark:stack={STACK}",
    f"hark:issuer=https://{CLERK_HOST}",
    "hark:clerkPublishableKey=pk_live_" + base64.b64encode(f"{CLERK_HOST}$".encode()).decode().rstrip("="),
    f"hark:webOrigin={WEB}",
    f'hark:authorizedParties=["{WEB}"]',
    "hark:emailSender=transcripts@acme.dev",
    "hark:modelSrc=models/smoke-model",
]
EMPTY_TEMPLATE = '{"Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}}'


@pytest.fixture
def account(emulator):
    """A freshly reset emulator account; returns a client factory bound to it."""
    requests.post(f"{emulator.endpoint}/moto-api/reset", timeout=10).raise_for_status()
    aws.reset()
    return deploy_check.default_client_factory(REGION)


def stub_client(service: str) -> tuple[object, Stubber]:
    client = boto3.client(service, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y")
    return client, Stubber(client)


def tools(tmp_path: Path, present: bool):
    """`which` over a folder of its own: empty, or holding npx and a docker that answers `docker info`
    (no Docker daemon runs on the test machine; the check only asks it for its version)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    if present:
        for name, script in (("docker", "echo 27.3.1"), ("npx", "exit 0")):
            (folder / name).write_text(f"#!/bin/sh\n{script}\n")
            (folder / name).chmod(stat.S_IRWXU)
    return lambda name: shutil.which(name, path=str(folder))


def run(check: DeployCheck) -> tuple[int, str]:
    out = io.StringIO()
    code = render(check.run(), check.target, check.region, out=out)
    return code, out.getvalue()


def problems(check: DeployCheck) -> set[str]:
    return {f.check for f in check.findings if f.level == "problem"}


def test_empty_account_lists_every_problem_at_once(account, tmp_path):
    target = load_target()  # infra/cdk.json as shipped: placeholders
    quotas, quota_stub = stub_client("service-quotas")
    for code in (deploy_check.QUOTA_ON_DEMAND_G, deploy_check.QUOTA_SPOT_G):
        quota_stub.add_response(
            "get_service_quota", {"Quota": {"Value": 0.0}}, {"ServiceCode": "ec2", "QuotaCode": code}
        )
    sesv2, ses_stub = stub_client("sesv2")
    ses_stub.add_client_error(
        "get_email_identity",
        "NotFoundException",
        http_status_code=404,
        expected_params={"EmailIdentity": target.email_sender},
    )
    ses_stub.add_response("get_account", {"ProductionAccessEnabled": False, "SendingEnabled": True})
    clients = {"service-quotas": quotas, "sesv2": sesv2}
    check = DeployCheck(
        target, REGION, lambda s: clients.get(s) or account(s), repo=tmp_path, which=tools(tmp_path, present=False)
    )
    with quota_stub, ses_stub:
        code, out = run(check)

    assert code == 1, out
    assert problems(check) == {
        "cdk bootstrap",
        "ecs role",
        "gpu quota",
        "model",
        "clerk issuer",
        "clerk key",
        "docker",
        "node",
    }
    assert [f.level for f in check.findings if f.check == "gpu quota"] == ["problem", "problem"]
    # Not blocking before the first deploy: the stack creates them. Said as warnings with the next step.
    assert {f.check for f in check.findings if f.level == "warning"} == {"ses identity", "ses sandbox", "clerk secret"}
    assert "aws iam create-service-linked-role --aws-service-name ecs.amazonaws.com" in out
    assert f"make bootstrap   (cdk bootstrap aws://{check.account}/{REGION})" in out
    lines = out.splitlines()
    for i, line in enumerate(lines):
        if "PROBLEM" in line:
            assert lines[i + 1].strip().startswith("fix: "), line
    assert lines[-1].startswith("9 problem(s), 3 warning(s)")  # the 8 checks above, the quota check twice


def prepare(account, target, tmp_path, model_dir) -> None:
    """What an operator does before the first deploy, plus what the first deploy creates."""
    account("ssm").put_parameter(
        Name=f"/cdk-bootstrap/{target.bootstrap_qualifier}/version",
        Value=str(deploy_check.MIN_BOOTSTRAP_VERSION),
        Type="String",
    )
    # As `aws iam create-service-linked-role --aws-service-name ecs.amazonaws.com` names it in AWS
    # (moto's create_service_linked_role would spell it AWSServiceRoleForecs).
    account("iam").create_role(
        RoleName=deploy_check.ECS_SERVICE_LINKED_ROLE,
        Path="/aws-service-role/ecs.amazonaws.com/",
        AssumeRolePolicyDocument='{"Version": "2012-10-17", "Statement": []}',
    )
    account("cloudformation").create_stack(StackName=f"{STACK}-email", TemplateBody=EMPTY_TEMPLATE)
    account("secretsmanager").create_secret(Name=target.clerk_secret_name, SecretString="sk_live_" + "x" * 40)
    folder = tmp_path / target.model_src
    folder.mkdir(parents=True)
    for name in ("config.json", "model.bin", "tokenizer.json", "vocabulary.txt"):
        try:
            os.link(model_dir / name, folder / name)
        except OSError:
            shutil.copyfile(model_dir / name, folder / name)


def test_prepared_account_passes(account, tmp_path, model_dir):
    target = load_target(parse_context_args(PREPARED_CONTEXT))
    prepare(account, target, tmp_path, model_dir)
    vcpus = max(
        t["VCpuInfo"]["DefaultVCpus"]
        for t in account("ec2").describe_instance_types(InstanceTypes=list(target.instance_types))["InstanceTypes"]
    )
    quotas, quota_stub = stub_client("service-quotas")
    for code in (deploy_check.QUOTA_ON_DEMAND_G, deploy_check.QUOTA_SPOT_G):
        quota_stub.add_response(
            "get_service_quota",
            {"Quota": {"Value": float(target.max_workers * vcpus)}},
            {"ServiceCode": "ec2", "QuotaCode": code},
        )
    sesv2, ses_stub = stub_client("sesv2")
    ses_stub.add_response(
        "get_email_identity",
        {"IdentityType": "EMAIL_ADDRESS", "VerifiedForSendingStatus": True},
        {"EmailIdentity": target.email_sender},
    )
    ses_stub.add_response("get_account", {"ProductionAccessEnabled": True, "SendingEnabled": True})
    clients = {"service-quotas": quotas, "sesv2": sesv2}
    check = DeployCheck(
        target, REGION, lambda s: clients.get(s) or account(s), repo=tmp_path, which=tools(tmp_path, present=True)
    )
    with quota_stub, ses_stub:
        code, out = run(check)

    assert code == 0, out
    assert {f.level for f in check.findings} == {"ok"}, out
    assert out.splitlines()[-1] == "ready to deploy (0 warning(s))."
    quota_stub.assert_no_pending_responses()
    ses_stub.assert_no_pending_responses()


def test_an_old_bootstrap_and_a_placeholder_clerk_secret_are_problems(account, tmp_path, model_dir):
    target = load_target(parse_context_args(PREPARED_CONTEXT))
    account("ssm").put_parameter(
        Name=f"/cdk-bootstrap/{target.bootstrap_qualifier}/version",
        Value=str(deploy_check.MIN_BOOTSTRAP_VERSION - 1),
        Type="String",
    )
    account("secretsmanager").create_secret(Name=target.clerk_secret_name, SecretString="REPLACE_ME")
    check = DeployCheck(target, REGION, account)
    assert check.check_credentials()
    check.check_bootstrap()
    check.check_clerk_secret()
    bootstrap, secret = check.findings[1:]
    assert bootstrap.level == "problem" and "older than" in bootstrap.message
    assert secret.level == "problem"
    assert secret.fix.startswith(f"aws secretsmanager put-secret-value --secret-id {target.clerk_secret_name} ")


def test_ses_identity_on_the_emulator(account):
    """Absent: the stack will create it. Made by hand outside the stack: CloudFormation could not create
    it, a problem. In the stack but unverified (moto never verifies): a problem with the verify step."""
    target = load_target(parse_context_args(PREPARED_CONTEXT))
    check = DeployCheck(target, REGION, account)
    check.check_ses_identity()
    account("sesv2").create_email_identity(EmailIdentity=target.email_sender)
    check.check_ses_identity()
    account("cloudformation").create_stack(StackName=f"{STACK}-email", TemplateBody=EMPTY_TEMPLATE)
    check.check_ses_identity()
    absent, outside, unverified = check.findings
    assert absent.level == "warning" and "does not exist yet" in absent.message
    assert outside.level == "problem" and outside.fix.startswith("aws sesv2 delete-email-identity")
    assert unverified.level == "problem" and "not verified" in unverified.message


def test_the_cli_against_the_emulator_reports_what_it_cannot_read_and_goes_on(emulator, account, tmp_path):
    """`hark deploy check` as a user runs it: moto cannot answer EC2 quotas (or SES GetAccount), so those checks
    say they could not be read; every other check still runs and is listed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARK_")}
    env.update(HARK_AWS_ENDPOINT_URL=emulator.endpoint, AWS_DEFAULT_REGION=REGION)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "hark.client.cli",
            "deploy",
            "check",
            *[arg for c in PREPARED_CONTEXT for arg in ("-c", c)],
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    for check in (
        "credentials",
        "cdk bootstrap",
        "ses identity",
        "ecs role",
        "gpu quota",
        "clerk secret",
        "model",
        "clerk issuer",
        "clerk key",
        "clerk parties",
        "docker",
        "node",
    ):
        assert f"  {check}: " in result.stdout, check
    assert "PROBLEM  gpu quota: could not be checked: " in result.stdout
    assert "<html" not in result.stdout  # the emulator's error page is cut to its code
