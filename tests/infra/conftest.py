"""Synthesises the CDK app once per test session (offline, environment-agnostic) into a temp folder.

Every infra test asserts on these templates; cdk-nag runs during this one synth, and cfn-lint lints the
same templates, so the whole infra suite costs one synth (~10-20 s on 2 cores).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.parallel import session_dir

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
# The CDK app's package (hark_infra) is imported from infra/, by the synth and by tests that build an app of
# their own: on the path for every test here, whichever xdist worker runs it.
for _path in (str(INFRA), str(REPO)):
    if _path not in sys.path:
        sys.path.insert(0, _path)
STACKS = ("Web", "Queues", "Tables", "Email", "Storage", "Api", "WebContent", "Workers", "Monitoring")
TEST_CONTEXT = {
    "hark:stack": "hark-ci",
    "hark:issuer": "https://clerk.hark.example",
    "hark:authorizedParties": ["https://app.hark.example"],
    "hark:webOrigin": "https://app.hark.example",
    "hark:emailSender": "transcripts@hark.example",
    "hark:alarmEmail": "ops@hark.example",
    # the live service's load balancer (HTTPS), deployed only with its certificate and the name in it
    # (infra/hark_infra/live.py): the web page's config.json and CSP name that host
    "hark:liveCertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/9f8e7d6c-5b4a-4321-8765-0fedcba98765",
    "hark:liveDomain": "live.hark.example",
}


def template_resources():
    """hark.domain.resources as the templates name them: bucket names carry the account and region, here as
    render() writes the pseudo parameters (${AWS::AccountId}, ${AWS::Region})."""
    from hark.domain.resources import resources

    return resources(
        TEST_CONTEXT["hark:stack"],
        TEST_CONTEXT["hark:emailSender"],
        account="${AWS::AccountId}",
        region="${AWS::Region}",
    )


@dataclass
class Synth:
    outdir: Path
    templates: dict[str, dict]
    error: str | None  # the synth's exception (a cdk-nag failure), if any
    report: dict | None  # cdk.out/validation-report.json
    manifest: dict

    def template(self, stack: str) -> dict:
        return self.templates[stack]

    def assertions(self, stack: str):
        from aws_cdk.assertions import Template

        return Template.from_json(self.templates[stack])

    @classmethod
    def read(cls, outdir: Path, error: str | None = None) -> Synth:
        """What a synth wrote into `outdir` (a failed one too: the templates it got to)."""
        report_file = outdir / "validation-report.json"
        return cls(
            outdir=outdir,
            templates={
                s: json.loads((outdir / f"{s}.template.json").read_text())
                for s in STACKS
                if (outdir / f"{s}.template.json").exists()
            },
            error=error,
            report=json.loads(report_file.read_text()) if report_file.exists() else None,
            manifest=json.loads((outdir / "manifest.json").read_text()) if (outdir / "manifest.json").exists() else {},
        )


# The session's one synth, also read by the AWS-calls check at the end of the session (tests/conftest.py).
SESSION_SYNTH: Synth | None = None


# A second deployment's settings: two authorized parties and a custom web domain with its certificate
# and hosted zone (the session's second and last synth, for the settings the first leaves out).
PARTIES = ["https://app.hark.example", "https://studio.partner.example"]
CUSTOM_DOMAIN_CONTEXT = {
    **TEST_CONTEXT,
    "hark:stack": "hark-cd",
    "hark:authorizedParties": PARTIES,
    "hark:webOrigin": "",
    "hark:webDomain": "app.hark.example",
    "hark:certificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-4e5f-6789-abcd-ef0123456789",
    "hark:hostedZoneId": "Z0123456789ABCDEFGHIJ",
}


def synthesise(outdir: Path) -> Synth:
    """Synthesise the whole app (with cdk-nag) into `outdir`, once per session."""
    global SESSION_SYNTH
    if SESSION_SYNTH is None:
        SESSION_SYNTH = synthesise_with(outdir, TEST_CONTEXT)
    return SESSION_SYNTH


def synthesise_with(outdir: Path, context: dict) -> Synth:
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from hark_infra import build_app

    error = None
    try:
        build_app(context=context, outdir=str(outdir)).synth()
    except Exception as exc:  # a validation (cdk-nag) failure still writes the templates and the report
        error = str(exc)
    return Synth.read(outdir, error)


def written_synth() -> Synth | None:
    """The session's synth: this process's, or the one an xdist worker wrote into the session's folder
    (tests/conftest.py names it for every worker), so the AWS-calls check at the end need not synthesise
    again."""
    if SESSION_SYNTH is not None:
        return SESSION_SYNTH
    folder = session_dir()
    written = sorted(folder.glob("cdk.out-*/manifest.json")) if folder else []
    return Synth.read(written[0].parent) if written else None


@pytest.fixture(scope="session")
def synth(tmp_path_factory) -> Synth:
    pytest.importorskip("aws_cdk", reason="the infra extra (aws-cdk-lib, cdk-nag, cfn-lint) is not installed")
    folder, worker = session_dir(), os.environ.get("PYTEST_XDIST_WORKER", "main")
    return synthesise(folder / f"cdk.out-{worker}" if folder else tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="session")
def custom_domain_synth(tmp_path_factory) -> Synth:
    """The app with CUSTOM_DOMAIN_CONTEXT: two authorized parties, a custom domain."""
    pytest.importorskip("aws_cdk", reason="the infra extra (aws-cdk-lib, cdk-nag, cfn-lint) is not installed")
    return synthesise_with(tmp_path_factory.mktemp("cdk.out.custom"), CUSTOM_DOMAIN_CONTEXT)


def resources_of(template: dict, rtype: str) -> dict[str, dict]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == rtype}


def one(template: dict, rtype: str) -> dict:
    found = resources_of(template, rtype)
    assert len(found) == 1, f"expected one {rtype}, found {sorted(found)}"
    return next(iter(found.values()))


def role_statements(template: dict, role_prefix: str) -> list[dict]:
    """Every statement of the inline policies attached to the role whose logical id starts with role_prefix."""
    roles = [k for k, v in resources_of(template, "AWS::IAM::Role").items() if k.startswith(role_prefix)]
    assert len(roles) == 1, f"role {role_prefix}: {roles}"
    statements = []
    for policy in resources_of(template, "AWS::IAM::Policy").values():
        if {"Ref": roles[0]} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    for inline in template["Resources"][roles[0]]["Properties"].get("Policies", []):
        statements += inline["PolicyDocument"]["Statement"]
    assert not template["Resources"][roles[0]]["Properties"].get("ManagedPolicyArns"), "task roles: inline only"
    return statements


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def render(value) -> str:
    """A resource ARN as text: Fn::Join parts joined, pseudo parameters as ${AWS::...}."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        sep, parts = value["Fn::Join"]
        return sep.join(render(p) for p in parts)
    if isinstance(value, dict) and "Ref" in value:
        return "${" + value["Ref"] + "}"
    return json.dumps(value, sort_keys=True)


def evaluate(value, pseudo: dict[str, str]):
    """A template value as CloudFormation would resolve it in one account and region: Fn::Join joined,
    pseudo parameters (AWS::AccountId, AWS::Region, AWS::Partition) from `pseudo`. Other intrinsics
    are returned as they are."""
    if isinstance(value, dict) and "Fn::Join" in value:
        sep, parts = value["Fn::Join"]
        return sep.join(str(evaluate(p, pseudo)) for p in parts)
    if isinstance(value, dict) and "Ref" in value and value["Ref"] in pseudo:
        return pseudo[value["Ref"]]
    return value


def grants(statements: list[dict]) -> set[tuple[str, str]]:
    """(action, resource) pairs the Allow statements grant."""
    pairs = set()
    for st in statements:
        if st.get("Effect") != "Allow":
            continue
        for action in as_list(st["Action"]):
            for resource in as_list(st["Resource"]):
                pairs.add((action, render(resource)))
    return pairs


def api_routes(template: dict) -> dict[tuple[str, str], dict]:
    """(method, path) -> the Method's properties, paths rebuilt from the Resource tree."""
    resources = resources_of(template, "AWS::ApiGateway::Resource")
    paths: dict[str, str] = {}

    def path_of(rid: str) -> str:
        if rid not in paths:
            parent = resources[rid]["Properties"]["ParentId"]
            prefix = "" if "Fn::GetAtt" in parent else path_of(parent["Ref"])
            paths[rid] = f"{prefix}/{resources[rid]['Properties']['PathPart']}"
        return paths[rid]

    routes = {}
    for method in resources_of(template, "AWS::ApiGateway::Method").values():
        props = method["Properties"]
        resource = props["ResourceId"]
        path = path_of(resource["Ref"]) if "Ref" in resource else "/"
        routes[(props["HttpMethod"], path)] = props
    return routes
