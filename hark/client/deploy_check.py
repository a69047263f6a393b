"""`hark deploy check`: everything a deployment needs, checked at once, before `cdk deploy`.

Reads the deployment config exactly as the CDK app does (infra/cdk.json's `hark:*` context plus
`-c key=value` overrides, parsed by infra's own `HarkConfig`), then asks the account: credentials,
region, CDK bootstrap, SES identity and sandbox, the ECS service-linked role, the G-instance vCPU
quotas, the Clerk secret; and looks at the machine: the model folder, Docker, the Clerk settings.
Every finding is collected first and printed together, each problem with the command or setting
that fixes it. Exit 0 when nothing blocks the deploy (warnings allowed), 1 otherwise.

Why the check lives in `hark/` but reads the config through `infra/`: the CLI is where operators
look (`hark deploy check`, `make deploy`), and one parser (`HarkConfig.from_context`) means the check
cannot disagree with what CDK deploys. `infra/` is imported only when the check runs (`load_target`),
never when `hark` is imported, so the Lambdas and workers never load CDK.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from hark.api.webapp import clerk_frontend_api_host

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"

# The SSM parameter `cdk bootstrap` writes, under the default qualifier (cdk.json may set another),
# and the lowest version that CDK's DefaultStackSynthesizer accepts (each template's
# CheckBootstrapVersion rule refuses 1-5; tests/unit/test_deploy_check.py compares with a synth).
DEFAULT_BOOTSTRAP_QUALIFIER = "hnb659fds"
MIN_BOOTSTRAP_VERSION = 6
# Service Quotas codes (EC2): running On-Demand G and VT instances, and All G and VT Spot requests; vCPUs.
QUOTA_ON_DEMAND_G = "L-DB2E81BA"
QUOTA_SPOT_G = "L-3819A6DF"
ECS_SERVICE_LINKED_ROLE = "AWSServiceRoleForECS"
# The Clerk Backend API secret key, created by the CDK app with a placeholder the operator replaces.
CLERK_SECRET_NAME = "{stack}/clerk-secret-key"
CLERK_SECRET_PREFIXES = ("sk_live_", "sk_test_")
MODEL_FILES = ("config.json", "model.bin", "tokenizer.json")  # and vocabulary.* (txt or json)

Level = Literal["ok", "warning", "problem"]


@dataclass(frozen=True)
class Finding:
    check: str
    level: Level
    message: str  # what is (or is not) the case
    fix: str = ""  # the command or setting that fixes it


@dataclass(frozen=True)
class Target:
    """What the check needs from the deployment config (built from infra's HarkConfig)."""

    stack: str
    issuer: str
    authorized_parties: tuple[str, ...]
    web_origin: str
    email_sender: str
    email_domain: str
    clerk_publishable_key: str
    max_workers: int
    model_src: str  # relative to the repository: the image's build context
    instance_types: tuple[str, ...]
    bootstrap_qualifier: str = DEFAULT_BOOTSTRAP_QUALIFIER

    @property
    def email_identity(self) -> str:
        return self.email_domain or self.email_sender

    @property
    def clerk_secret_name(self) -> str:
        return CLERK_SECRET_NAME.format(stack=self.stack)


def parse_context_args(pairs: list[str]) -> dict[str, str]:
    """`-c key=value` pairs, as the CDK CLI takes them."""
    context = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key:
            raise ValueError(f"-c {pair!r}: expected key=value, e.g. -c hark:stack=hark-acme")
        context[key] = value
    return context


def load_target(overrides: dict[str, str] | None = None) -> Target:
    """The deployment config from infra/cdk.json plus overrides, through infra's own HarkConfig."""
    for path in (str(INFRA), str(REPO)):
        if path not in sys.path:
            sys.path.insert(0, path)
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    try:
        from hark_infra.config import HarkConfig, cdk_json_context
        from hark_infra.workers import GPU_INSTANCE_TYPE
    except ImportError as err:
        raise RuntimeError(
            f"the CDK app cannot be loaded ({err}): run from a Hark checkout after "
            "`make install-test` (the infra extra: aws-cdk-lib, cdk-nag)"
        ) from None

    context = {**cdk_json_context(), **(overrides or {})}
    config = HarkConfig.from_lookup(context.get)
    return Target(
        stack=config.stack,
        issuer=config.issuer,
        authorized_parties=config.authorized_parties,
        web_origin=config.origin,  # hark:webOrigin, else https://{hark:webDomain}
        email_sender=config.email_sender,
        email_domain=config.email_domain,
        clerk_publishable_key=config.clerk_publishable_key,
        max_workers=config.scaling.max_workers,
        model_src=config.model_src,
        instance_types=(GPU_INSTANCE_TYPE,),
        bootstrap_qualifier=str(context.get("@aws-cdk/core:bootstrapQualifier") or DEFAULT_BOOTSTRAP_QUALIFIER),
    )


def publishable_key_host(key: str) -> str | None:
    """The Frontend API host a Clerk publishable key encodes, or None (hark.api.webapp reads the key)."""
    try:
        return clerk_frontend_api_host(key)
    except ValueError:
        return None


def default_client_factory(region: str | None) -> Callable[[str], Any]:
    import boto3
    from botocore.config import Config

    from hark.domain.settings import get_settings

    endpoint = get_settings().aws_endpoint_url  # the local emulator in tests; None: AWS itself
    config = Config(connect_timeout=10, read_timeout=30, retries={"mode": "standard", "max_attempts": 3})
    cache: dict[str, object] = {}

    def client(service: str):
        if service not in cache:
            name: Any = service  # boto3-stubs types boto3.client per literal service name
            cache[service] = boto3.client(name, region_name=region, endpoint_url=endpoint, config=config)
        return cache[service]

    return client


def default_region() -> str | None:
    import boto3

    return boto3.session.Session().region_name


@dataclass
class DeployCheck:
    target: Target
    region: str | None
    client: Callable[[str], Any]
    repo: Path = REPO
    which: Callable[[str], str | None] = shutil.which
    findings: list[Finding] = field(default_factory=list)
    account: str | None = None

    def add(self, check: str, level: Level, message: str, fix: str = "") -> None:
        self.findings.append(Finding(check, level, message, fix))

    def run(self) -> list[Finding]:
        self.check_region()
        if self.region and self.check_credentials():
            for name, aws_check in (
                ("cdk bootstrap", self.check_bootstrap),
                ("ses identity", self.check_ses_identity),
                ("ses sandbox", self.check_ses_sandbox),
                ("ecs role", self.check_ecs_role),
                ("gpu quota", self.check_quotas),
                ("clerk secret", self.check_clerk_secret),
            ):
                try:
                    aws_check()
                except Exception as err:  # an AWS answer we did not expect: report it, check the rest
                    self.add(
                        name,
                        "problem",
                        f"could not be checked: {_aws_error(err)}",
                        "make sure these credentials may read it (an administrator for the first deploy)",
                    )
        else:
            self.add(
                "aws",
                "warning",
                "account checks skipped (bootstrap, SES, ECS role, quotas, Clerk secret): "
                "they need a region and working credentials",
            )
        self.check_model()
        self.check_clerk_config()
        self.check_tools()
        return self.findings

    # -- account ----------------------------------------------------------------------------------
    def check_region(self) -> None:
        if self.region:
            self.add("region", "ok", self.region)
        else:
            self.add(
                "region",
                "problem",
                "no AWS region is set",
                "export AWS_REGION=eu-west-1 (or `region` in your AWS profile)",
            )

    def check_credentials(self) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            identity = self.client("sts").get_caller_identity()
        except (BotoCoreError, ClientError) as err:
            self.add(
                "credentials",
                "problem",
                f"no working AWS credentials: {_aws_error(err)}",
                "`aws configure` or `aws sso login --profile P` then export AWS_PROFILE=P",
            )
            return False
        self.account = identity["Account"]
        self.add("credentials", "ok", f"{identity['Arn']} (account {self.account})")
        return True

    def check_bootstrap(self) -> None:
        from botocore.exceptions import ClientError

        name = f"/cdk-bootstrap/{self.target.bootstrap_qualifier}/version"
        fix = f"make bootstrap   (cdk bootstrap aws://{self.account}/{self.region})"
        try:
            value = self.client("ssm").get_parameter(Name=name)["Parameter"]["Value"]
        except ClientError as err:
            if _code(err) != "ParameterNotFound":
                raise
            self.add(
                "cdk bootstrap", "problem", f"{self.region} is not bootstrapped for CDK (no SSM parameter {name})", fix
            )
            return
        if not value.isdigit() or int(value) < MIN_BOOTSTRAP_VERSION:
            self.add(
                "cdk bootstrap",
                "problem",
                f"bootstrap version {value} is older than the {MIN_BOOTSTRAP_VERSION} CDK needs",
                fix,
            )
        else:
            self.add("cdk bootstrap", "ok", f"version {value} (needs {MIN_BOOTSTRAP_VERSION}+)")

    def _stack_exists(self, suffix: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            stacks = self.client("cloudformation").describe_stacks(StackName=f"{self.target.stack}-{suffix}")["Stacks"]
        except ClientError as err:
            if "does not exist" in str(err):
                return False
            raise
        return any(s["StackStatus"] != "DELETE_COMPLETE" for s in stacks)

    def check_ses_identity(self) -> None:
        from botocore.exceptions import ClientError

        identity = self.target.email_identity
        kind = "domain" if self.target.email_domain else "address"
        try:
            found = self.client("sesv2").get_email_identity(EmailIdentity=identity)
        except ClientError as err:
            if _code(err) != "NotFoundException":
                raise
            self.add(
                "ses identity",
                "warning",
                f"SES {kind} {identity} does not exist yet: the {self.target.stack}-email stack creates it",
                "after the deploy, " + _verify_hint(kind, identity),
            )
            return
        if not self._stack_exists("email"):
            self.add(
                "ses identity",
                "problem",
                f"SES {kind} {identity} exists but not in the {self.target.stack}-email stack, which would "
                "fail to create it again",
                f"aws sesv2 delete-email-identity --email-identity {identity}   (the deploy recreates it; "
                "verify it again afterwards)",
            )
        elif found.get("VerifiedForSendingStatus"):
            self.add("ses identity", "ok", f"{kind} {identity} is verified for sending")
        else:
            self.add(
                "ses identity",
                "problem",
                f"SES {kind} {identity} is not verified: no email can be sent",
                _verify_hint(kind, identity),
            )

    def check_ses_sandbox(self) -> None:
        account = self.client("sesv2").get_account()
        if account.get("ProductionAccessEnabled"):
            self.add("ses sandbox", "ok", "production access: mail goes to any recipient")
        else:
            self.add(
                "ses sandbox",
                "warning",
                f"SES in {self.region} is in the sandbox: mail reaches only verified addresses, 200 a day",
                "request production access (SES console > Account dashboard, or `aws sesv2 "
                "put-account-details --production-access-enabled --mail-type TRANSACTIONAL "
                "--website-url https://... --use-case-description ...`); until then verify each "
                "recipient: aws sesv2 create-email-identity --email-identity user@example.com",
            )

    def check_ecs_role(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client("iam").get_role(RoleName=ECS_SERVICE_LINKED_ROLE)
        except ClientError as err:
            if _code(err) != "NoSuchEntity":
                raise
            self.add(
                "ecs role",
                "problem",
                f"the ECS service-linked role {ECS_SERVICE_LINKED_ROLE} does not exist (new accounts lack it; "
                "the cluster's capacity provider fails without it)",
                "aws iam create-service-linked-role --aws-service-name ecs.amazonaws.com",
            )
            return
        self.add("ecs role", "ok", f"{ECS_SERVICE_LINKED_ROLE} exists")

    def vcpus_per_instance(self) -> int:
        """The most vCPUs of any instance type in the GPU pool (DescribeInstanceTypes)."""
        answer = self.client("ec2").describe_instance_types(InstanceTypes=list(self.target.instance_types))
        return max(t["VCpuInfo"]["DefaultVCpus"] for t in answer["InstanceTypes"])

    def _quota(self, code: str) -> float:
        from botocore.exceptions import ClientError

        quotas = self.client("service-quotas")
        try:
            return quotas.get_service_quota(ServiceCode="ec2", QuotaCode=code)["Quota"]["Value"]
        except ClientError as err:
            if _code(err) != "NoSuchResourceException":
                raise
            return quotas.get_aws_default_service_quota(ServiceCode="ec2", QuotaCode=code)["Quota"]["Value"]

    def check_quotas(self) -> None:
        vcpus = self.vcpus_per_instance()
        need = self.target.max_workers * vcpus
        for code, what in (
            (QUOTA_ON_DEMAND_G, "Running On-Demand G and VT instances"),
            (QUOTA_SPOT_G, "All G and VT Spot Instance Requests"),
        ):
            have = self._quota(code)
            if have >= need:
                self.add("gpu quota", "ok", f"{what} ({code}): {have:g} vCPUs, {need} needed")
            else:
                self.add(
                    "gpu quota",
                    "problem",
                    f"{what} ({code}) is {have:g} vCPUs; {self.target.max_workers} workers x {vcpus} vCPUs "
                    f"({', '.join(self.target.instance_types)}) need {need}",
                    f"aws service-quotas request-service-quota-increase --service-code ec2 --quota-code {code} "
                    f"--desired-value {need}   (or lower -c hark:maxWorkers)",
                )

    def check_clerk_secret(self) -> None:
        from botocore.exceptions import ClientError

        name = self.target.clerk_secret_name
        fix = (
            f"aws secretsmanager put-secret-value --secret-id {name} --secret-string sk_live_...   "
            "(Clerk dashboard > API keys > Secret keys)"
        )
        try:
            value = self.client("secretsmanager").get_secret_value(SecretId=name).get("SecretString") or ""
        except ClientError as err:
            if _code(err) not in ("ResourceNotFoundException",):
                raise
            self.add(
                "clerk secret",
                "warning",
                f"secret {name} does not exist yet: the deploy creates it "
                "with a placeholder, and emails find no recipient until it holds the Clerk secret key",
                "after the deploy, " + fix,
            )
            return
        if not value.strip().startswith(CLERK_SECRET_PREFIXES):
            self.add(
                "clerk secret",
                "problem",
                f"secret {name} does not hold a Clerk secret key (sk_live_... or sk_test_...)",
                fix,
            )
            return
        live = value.strip().startswith("sk_live_")
        if self.target.clerk_publishable_key and self.target.clerk_publishable_key.startswith("pk_live_") != live:
            self.add(
                "clerk secret",
                "problem",
                f"secret {name} and hark:clerkPublishableKey belong to different Clerk instances (one live, one test)",
                fix,
            )
            return
        self.add("clerk secret", "ok", f"{name} holds a {'live' if live else 'test'} secret key")

    # -- this machine and the config --------------------------------------------------------------
    def check_model(self) -> None:
        src = self.target.model_src
        folder = (self.repo / src).resolve()
        convert = (
            f'convert a model into {src} (docs/deploy.md, "The model"), or -c hark:modelSrc=<folder inside '
            "the repository>"
        )
        if Path(src).is_absolute() or not folder.is_relative_to(self.repo.resolve()):
            self.add(
                "model",
                "problem",
                f"hark:modelSrc {src!r} must be a folder inside the repository (the image's build context)",
                convert,
            )
            return
        if not folder.is_dir():
            self.add("model", "problem", f"no model folder at {src}", convert)
            return
        missing = [f for f in MODEL_FILES if not (folder / f).is_file() or (folder / f).stat().st_size == 0]
        if not any(folder.glob("vocabulary.*")):
            missing.append("vocabulary.*")
        if missing:
            self.add("model", "problem", f"{src} lacks {', '.join(missing)}", convert)
            return
        try:
            json.loads((folder / "config.json").read_text())
        except ValueError:
            self.add("model", "problem", f"{src}/config.json is not JSON", convert)
            return
        size = (folder / "model.bin").stat().st_size
        self.add("model", "ok", f"{src} (model.bin {size / 1024**2:.0f} MiB)")

    def check_clerk_config(self) -> None:
        t = self.target
        issuer = urlparse(t.issuer)
        if issuer.scheme != "https" or not issuer.hostname:
            self.add(
                "clerk issuer",
                "problem",
                f"hark:issuer {t.issuer!r} is not an https URL",
                "-c hark:issuer=https://clerk.<your-domain> (Clerk dashboard > Domains > Frontend API URL)",
            )
        elif issuer.hostname.endswith(".example.com") or issuer.hostname == "example.com":
            self.add(
                "clerk issuer",
                "problem",
                f"hark:issuer is still the placeholder {t.issuer}",
                "-c hark:issuer=https://clerk.<your-domain> (Clerk dashboard > Domains > Frontend API URL)",
            )
        else:
            self.add("clerk issuer", "ok", t.issuer)

        key_fix = "-c hark:clerkPublishableKey=pk_live_... (Clerk dashboard > API keys > Publishable key)"
        if not t.clerk_publishable_key:
            self.add(
                "clerk key",
                "problem",
                "hark:clerkPublishableKey is not set: the web app cannot sign anyone in",
                key_fix,
            )
        else:
            host = publishable_key_host(t.clerk_publishable_key)
            if host is None:
                self.add(
                    "clerk key",
                    "problem",
                    "hark:clerkPublishableKey is not a Clerk publishable key "
                    "(pk_live_ or pk_test_ and base64 of the Frontend API host)",
                    key_fix,
                )
            elif issuer.hostname and host != issuer.hostname:
                self.add(
                    "clerk key",
                    "problem",
                    f"hark:clerkPublishableKey is for {host}, but hark:issuer is "
                    f"{t.issuer}: the key and the issuer come from different Clerk instances",
                    f"-c hark:issuer=https://{host} (or the publishable key of {issuer.hostname}'s instance)",
                )
            else:
                self.add("clerk key", "ok", f"publishable key for {host}")

        parties_fix = "-c hark:authorizedParties='[\"https://<web origin>\"]' (or leave it empty: the web origin)"
        if not t.authorized_parties:
            self.add(
                "clerk parties", "ok", f"authorized parties: the web origin ({t.web_origin or 'the CloudFront domain'})"
            )
        elif bad := [
            p for p in t.authorized_parties if urlparse(p).scheme != "https" or urlparse(p).path not in ("", "/")
        ]:
            self.add(
                "clerk parties", "problem", f"authorized parties must be https origins: {', '.join(bad)}", parties_fix
            )
        elif t.web_origin and t.web_origin not in t.authorized_parties:
            self.add(
                "clerk parties",
                "problem",
                f"hark:authorizedParties leaves out the web origin {t.web_origin}: "
                "tokens from the web app would be refused",
                parties_fix,
            )
        elif not t.web_origin:
            self.add(
                "clerk parties",
                "warning",
                "hark:authorizedParties is set but hark:webOrigin is not: the "
                "CloudFront domain (known after the first deploy, hark-web.WebUrl) must be in the list",
                "-c hark:webOrigin=https://... or leave hark:authorizedParties empty",
            )
        else:
            self.add("clerk parties", "ok", f"authorized parties include the web origin {t.web_origin}")

    def check_tools(self) -> None:
        if not self.which("npx"):
            self.add(
                "node",
                "problem",
                "npx is not on PATH: the CDK CLI comes from npm",
                "install Node.js 20+ (https://nodejs.org or your package manager)",
            )
        else:
            self.add("node", "ok", "npx found (make deploy runs the CDK CLI with it)")
        docker = self.which("docker")
        if not docker:
            self.add(
                "docker",
                "problem",
                "docker is not on PATH: the deploy builds the worker images",
                "install Docker (with BuildKit) and start it",
            )
            return
        try:
            info = subprocess.run(
                [docker, "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            info = subprocess.CompletedProcess([docker], returncode=1, stdout="", stderr=str(err))
        if info.returncode != 0:
            reason = (info.stderr or info.stdout).strip().splitlines()
            self.add(
                "docker",
                "problem",
                f"Docker does not answer: {reason[-1] if reason else 'docker info failed'}",
                "start the Docker daemon (or Docker Desktop)",
            )
        else:
            self.add("docker", "ok", f"Docker {info.stdout.strip()}")


def _code(err) -> str:
    return err.response.get("Error", {}).get("Code", "") if hasattr(err, "response") else ""


def _aws_error(err: Exception) -> str:
    """One short line: the AWS error code and message (never a whole HTML error page)."""
    if hasattr(err, "response"):
        e = err.response.get("Error", {})
        code, message = e.get("Code") or type(err).__name__, " ".join(str(e.get("Message") or "").split())
        if message.startswith("<"):
            message = ""
        text = f"{code}: {message}" if message else code
    else:
        text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _verify_hint(kind: str, identity: str) -> str:
    if kind == "domain":
        return (
            f"add the DKIM CNAME records of {identity} to its DNS (aws sesv2 get-email-identity "
            f"--email-identity {identity} lists the tokens)"
        )
    return (
        f"click the link SES emailed to {identity} (resend: aws ses verify-email-identity --email-address {identity})"
    )


def render(findings: list[Finding], target: Target, region: str | None, out=sys.stdout) -> int:
    problems = [f for f in findings if f.level == "problem"]
    warnings = [f for f in findings if f.level == "warning"]
    print(f"hark deploy check: stack {target.stack}, region {region or '(none)'}", file=out)
    label = {"ok": "ok     ", "warning": "warning", "problem": "PROBLEM"}
    for f in sorted(findings, key=lambda f: {"problem": 0, "warning": 1, "ok": 2}[f.level]):
        print(f"  {label[f.level]}  {f.check}: {f.message}", file=out)
        if f.fix and f.level != "ok":
            print(f"           fix: {f.fix}", file=out)
    if problems:
        print(
            f"{len(problems)} problem(s), {len(warnings)} warning(s): fix the problems above, then run the "
            "check again (make deploy runs it first).",
            file=out,
        )
    else:
        print(f"ready to deploy ({len(warnings)} warning(s)).", file=out)
    out.flush()
    return 1 if problems else 0


def cmd_deploy_check(args) -> int:
    try:
        target = load_target(parse_context_args(args.context or []))
    except (ValueError, RuntimeError) as err:
        print(f"hark deploy check: {err}", file=sys.stderr)
        return 1
    region = default_region()
    findings = DeployCheck(target, region, default_client_factory(region)).run()
    return render(findings, target, region)


def register(sub: argparse._SubParsersAction) -> None:
    deploy = sub.add_parser("deploy", help="deployment to AWS (docs/deploy.md)")
    actions = deploy.add_subparsers(dest="action", required=True)
    check = actions.add_parser(
        "check",
        help="check every prerequisite of `cdk deploy` at once",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument(
        "-c",
        "--context",
        action="append",
        metavar="KEY=VALUE",
        help="CDK context, as for `cdk deploy` (e.g. -c hark:stack=hark-acme); overrides infra/cdk.json",
    )
    check.set_defaults(func=cmd_deploy_check)
