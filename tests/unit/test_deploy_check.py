"""`hark deploy check` in parts: the config it reads, the Clerk and model checks, and the account checks
moto cannot answer (Service Quotas for EC2, SES's account and verified identities), with botocore's
Stubber. tests/integration/test_deploy_check.py runs the whole check against the emulator."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from hark.client import deploy_check
from hark.client.deploy_check import DeployCheck, Target, load_target, parse_context_args, publishable_key_host

REPO = Path(__file__).resolve().parents[2]
CDK_JSON = REPO / "infra" / "cdk.json"


def pk(host: str, prefix: str = "pk_test_") -> str:
    """A publishable key as Clerk makes them: prefix + base64 of `<host>$`."""
    return prefix + base64.b64encode(f"{host}$".encode()).decode().rstrip("=")


def target(**changes) -> Target:
    base = dict(
        stack="hark-unit",
        issuer="https://clerk.acme.dev",
        authorized_parties=("https://hark.acme.dev",),
        web_origin="https://hark.acme.dev",
        email_sender="transcripts@acme.dev",
        email_domain="",
        clerk_publishable_key=pk("clerk.acme.dev"),
        max_workers=20,
        model_src="models/m",
        instance_types=("g4dn.xlarge",),
    )
    return Target(**{**base, **changes})


def stubbed(service: str) -> tuple[object, Stubber]:
    client = boto3.client(service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    return client, Stubber(client)


def link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)  # the bundled model.bin is large: a hard link where the filesystem allows
    except OSError:
        shutil.copyfile(src, dst)


def levels(findings, check: str) -> list[str]:
    return [f.level for f in findings if f.check == check]


# -- the config --------------------------------------------------------------------------------
def test_load_target_reads_cdk_json_through_infra_config():
    context = json.loads(CDK_JSON.read_text())["context"]
    t = load_target()
    assert t.stack == context["hark:stack"]
    assert t.issuer == context["hark:issuer"]
    assert t.email_sender == context["hark:emailSender"]
    assert t.max_workers == context["hark:maxWorkers"]
    assert t.model_src == context["hark:modelSrc"]
    assert t.clerk_secret_name == f"{context['hark:stack']}/clerk-secret-key"


def test_context_overrides_are_parsed_like_the_cdk_app():
    t = load_target(
        parse_context_args(
            [
                "hark:stack=hark-acme",
                "hark:maxWorkers=7",
                'hark:authorizedParties=["https://a.acme.dev", "https://b.acme.dev"]',
                "hark:emailDomain=acme.dev",
            ]
        )
    )
    assert (t.stack, t.max_workers) == ("hark-acme", 7)
    assert t.authorized_parties == ("https://a.acme.dev", "https://b.acme.dev")
    assert t.email_identity == "acme.dev"  # the domain is verified instead of the address


@pytest.mark.parametrize("pair", ["hark:stack", "=x", ""])
def test_a_context_pair_without_key_or_value_is_refused(pair):
    with pytest.raises(ValueError, match="expected key=value"):
        parse_context_args([pair])


def test_min_bootstrap_version_is_what_the_cdk_library_asks_for(tmp_path):
    cdk = pytest.importorskip("aws_cdk")
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    app = cdk.App(outdir=str(tmp_path))
    cdk.CfnResource(cdk.Stack(app, "Probe"), "Handle", type="AWS::CloudFormation::WaitConditionHandle")
    app.synth()
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    asked = {
        a["properties"].get("requiresBootstrapStackVersion")
        for a in manifest["artifacts"].values()
        if a.get("type") == "aws:cloudformation:stack"
    }
    assert asked == {deploy_check.MIN_BOOTSTRAP_VERSION}


# -- Clerk settings ------------------------------------------------------------------------------
def test_publishable_key_decodes_to_its_frontend_api_host():
    assert publishable_key_host(pk("clerk.acme.dev", "pk_live_")) == "clerk.acme.dev"
    assert publishable_key_host(pk("happy-cat-12.clerk.accounts.dev")) == "happy-cat-12.clerk.accounts.dev"
    assert publishable_key_host("sk_live_" + pk("clerk.acme.dev")[8:]) is None  # a secret key, not publishable
    assert publishable_key_host("pk_live_!!!") is None
    assert publishable_key_host("pk_live_" + base64.b64encode(b"clerk.acme.dev").decode()) is None  # no `$`


@pytest.mark.parametrize(
    "changes, check, says",
    [
        (dict(issuer="http://clerk.acme.dev"), "clerk issuer", "not an https URL"),
        (dict(issuer="https://clerk.example.com"), "clerk issuer", "placeholder"),
        (dict(clerk_publishable_key=""), "clerk key", "not set"),
        (dict(clerk_publishable_key="pk_live_nonsense!"), "clerk key", "not a Clerk publishable key"),
        (dict(clerk_publishable_key=pk("clerk.other.dev")), "clerk key", "different Clerk instances"),
        (dict(authorized_parties=("https://elsewhere.acme.dev",)), "clerk parties", "leaves out the web origin"),
        (dict(authorized_parties=("http://hark.acme.dev",)), "clerk parties", "must be https origins"),
    ],
    ids=[
        "http-issuer",
        "placeholder-issuer",
        "no-key",
        "bad-key",
        "key-for-other-host",
        "parties-miss-origin",
        "http-party",
    ],
)
def test_each_bad_clerk_setting_is_a_problem_with_a_fix(changes, check, says):
    c = DeployCheck(target(**changes), "us-east-1", client=None)
    c.check_clerk_config()
    [finding] = [f for f in c.findings if f.check == check]
    assert finding.level == "problem" and says in finding.message
    assert finding.fix.startswith("-c hark:")


def test_good_clerk_settings_pass():
    c = DeployCheck(target(), "us-east-1", client=None)
    c.check_clerk_config()
    assert {f.level for f in c.findings} == {"ok"}


# -- the model folder ----------------------------------------------------------------------------
def test_model_folder_must_be_inside_the_repository_and_complete(tmp_path, model_dir):
    def model_finding(src):
        c = DeployCheck(target(model_src=src), "us-east-1", client=None, repo=tmp_path)
        c.check_model()
        return c.findings[0]

    assert "no model folder" in model_finding("models/m").message
    assert "inside the repository" in model_finding("../outside").message
    assert "inside the repository" in model_finding(str(model_dir)).message
    folder = tmp_path / "models" / "m"
    folder.mkdir(parents=True)
    shutil.copyfile(model_dir / "config.json", folder / "config.json")
    missing = model_finding("models/m")
    assert missing.level == "problem" and "model.bin, tokenizer.json, vocabulary.*" in missing.message
    for name in ("tokenizer.json", "vocabulary.txt"):
        shutil.copyfile(model_dir / name, folder / name)
    link_or_copy(model_dir / "model.bin", folder / "model.bin")
    assert model_finding("models/m").level == "ok"


# -- account checks moto cannot answer: Stubber ----------------------------------------------------
def test_gpu_quotas_below_max_workers_are_problems_with_the_request_command():
    quotas, stub = stubbed("service-quotas")
    ec2, ec2_stub = stubbed("ec2")
    ec2_stub.add_response(
        "describe_instance_types",
        {"InstanceTypes": [{"InstanceType": "g4dn.xlarge", "VCpuInfo": {"DefaultVCpus": 4}}]},
        {"InstanceTypes": ["g4dn.xlarge"]},
    )
    stub.add_response(
        "get_service_quota",
        {"Quota": {"Value": 80.0}},
        {"ServiceCode": "ec2", "QuotaCode": deploy_check.QUOTA_ON_DEMAND_G},
    )
    # An account where the quota was never applied answers NoSuchResource: the AWS default is read instead.
    stub.add_client_error(
        "get_service_quota",
        "NoSuchResourceException",
        expected_params={"ServiceCode": "ec2", "QuotaCode": deploy_check.QUOTA_SPOT_G},
    )
    stub.add_response(
        "get_aws_default_service_quota",
        {"Quota": {"Value": 0.0}},
        {"ServiceCode": "ec2", "QuotaCode": deploy_check.QUOTA_SPOT_G},
    )
    c = DeployCheck(target(max_workers=20), "us-east-1", client={"service-quotas": quotas, "ec2": ec2}.get)
    with stub, ec2_stub:
        c.check_quotas()
    stub.assert_no_pending_responses()
    on_demand, spot = c.findings
    assert on_demand.level == "ok" and "80 vCPUs, 80 needed" in on_demand.message
    assert spot.level == "problem" and "need 80" in spot.message
    assert spot.fix.startswith(
        f"aws service-quotas request-service-quota-increase --service-code ec2 "
        f"--quota-code {deploy_check.QUOTA_SPOT_G} --desired-value 80"
    )


@pytest.mark.parametrize("production, level", [(True, "ok"), (False, "warning")])
def test_ses_sandbox_is_a_warning(production, level):
    sesv2, stub = stubbed("sesv2")
    stub.add_response("get_account", {"ProductionAccessEnabled": production, "SendingEnabled": True})
    c = DeployCheck(target(), "us-east-1", client={"sesv2": sesv2}.get)
    with stub:
        c.check_ses_sandbox()
    assert levels(c.findings, "ses sandbox") == [level]
    if not production:
        assert "put-account-details --production-access-enabled" in c.findings[0].fix


@pytest.mark.parametrize("verified, level", [(True, "ok"), (False, "problem")])
def test_ses_identity_must_be_verified_once_it_exists(verified, level):
    sesv2, stub = stubbed("sesv2")
    cfn, cfn_stub = stubbed("cloudformation")
    stub.add_response(
        "get_email_identity",
        {"IdentityType": "EMAIL_ADDRESS", "VerifiedForSendingStatus": verified},
        {"EmailIdentity": "transcripts@acme.dev"},
    )
    cfn_stub.add_response(
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": "hark-unit-email",
                    "CreationTime": "2026-01-01T00:00:00Z",
                    "StackStatus": "CREATE_COMPLETE",
                }
            ]
        },
        {"StackName": "hark-unit-email"},
    )
    c = DeployCheck(target(), "us-east-1", client={"sesv2": sesv2, "cloudformation": cfn}.get)
    with stub, cfn_stub:
        c.check_ses_identity()
    [finding] = c.findings
    assert finding.level == level
    if not verified:
        assert "transcripts@acme.dev" in finding.fix and "verify-email-identity" in finding.fix


def test_without_credentials_the_account_checks_are_skipped_and_the_rest_still_run(tmp_path, monkeypatch):
    for name in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("HARK_AWS_ENDPOINT_URL", raising=False)
    from hark.domain.settings import get_settings

    get_settings.cache_clear()
    try:
        c = DeployCheck(
            target(),
            "eu-west-1",
            deploy_check.default_client_factory("eu-west-1"),
            repo=tmp_path,
            which=lambda name: None,
        )
        findings = c.run()
    finally:
        get_settings.cache_clear()
    assert levels(findings, "credentials") == ["problem"]
    assert levels(findings, "aws") == ["warning"]
    assert levels(findings, "model") == ["problem"] and levels(findings, "docker") == ["problem"]
    assert not levels(findings, "cdk bootstrap")


def test_the_cli_prints_every_problem_then_exits_1_without_a_region(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "HARK_"))}
    env.update(
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    run = subprocess.run(
        [sys.executable, "-m", "hark.client.cli", "deploy", "check", "-c", "hark:issuer=http://clerk.acme.dev"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    out = run.stdout
    assert "PROBLEM  region: no AWS region is set" in out and "fix: export AWS_REGION=" in out
    assert "PROBLEM  clerk issuer:" in out and "PROBLEM  clerk key:" in out
    # Problems first, each followed by its fix, and a summary at the end.
    lines = out.splitlines()
    for i, line in enumerate(lines):
        if "PROBLEM" in line:
            assert lines[i + 1].strip().startswith("fix: ")
    assert lines[-1].startswith(f"{out.count('PROBLEM')} problem(s)")


def test_a_malformed_context_pair_is_one_line_and_exit_1():
    run = subprocess.run(
        [sys.executable, "-m", "hark.client.cli", "deploy", "check", "-c", "hark:stack"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1
    assert run.stderr.strip() == "hark deploy check: -c 'hark:stack': expected key=value, e.g. -c hark:stack=hark-acme"
