"""Deployment settings, read from CDK context (cdk.json, or `-c key=value` on the CLI).

Nothing here looks anything up in an AWS account: the app synthesises offline, environment-agnostic.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from aws_cdk import Aws
from constructs import Construct

from hark.api.http_api import HTTP_API
from hark.domain import languages
from hark.domain.resources import Resources, resources
from hark.ops.lambda_runtime import LAMBDA_PYTHON, POWERTOOLS_LAYER_VERSION
from hark.ops.scaling import DEFAULT_POLICY, ScalingPolicy

REPO_ROOT = Path(__file__).resolve().parents[2]
INFRA_DIR = REPO_ROOT / "infra"
CDK_JSON = INFRA_DIR / "cdk.json"

# The zones the workers' VPC spans; each has its own NAT gateway.
WORKER_ZONES = 2

# The Lambda runtime (LAMBDA_PYTHON) and the public Powertools for AWS Lambda (Python) v3 layer's version, with
# the release each layer version carries, are in hark.ops.lambda_runtime (the local stack runs the same).
__all__ = ["LAMBDA_PYTHON", "HarkConfig", "powertools_layer_arn"]
POWERTOOLS_ACCOUNT = "017000801446"


def powertools_layer_arn(region: str, partition: str, version: int) -> str:
    tag = "python" + LAMBDA_PYTHON.replace(".", "")
    return (
        f"arn:{partition}:lambda:{region}:{POWERTOOLS_ACCOUNT}:layer:AWSLambdaPowertoolsPythonV3-{tag}-x86_64:{version}"
    )


@dataclass(frozen=True)
class HarkConfig:
    stack: str = "hark"
    issuer: str = "https://clerk.example.com"
    jwks_url: str = ""  # default: {issuer}/.well-known/jwks.json
    authorized_parties: tuple[str, ...] = ()  # default: the web origin
    web_origin: str = ""  # e.g. https://hark.example.com; default: https://{web_domain}, else the CloudFront domain
    # A custom domain for the web app: CloudFront serves it with this ACM certificate (in us-east-1, as
    # CloudFront requires); with a Route 53 hosted zone id the alias records are made too.
    web_domain: str = ""
    certificate_arn: str = ""
    hosted_zone_id: str = ""
    email_sender: str = "transcripts@example.com"
    email_domain: str = ""  # verify the whole domain (DKIM) instead of the one sender address
    alarm_email: str = ""
    clerk_publishable_key: str = ""  # pk_live_...: written into the web app's config.json (null if unset)
    max_upload_bytes: int = 2 * 1024**3
    on_demand_base_workers: int = 1
    on_demand_percent_above_base: int = 25
    nat_gateways: int = 2  # one per zone the workers use (docs/scaling.md, "No single zone to lose")
    powertools_layer_version: int = POWERTOOLS_LAYER_VERSION
    api_rate_limit: int = HTTP_API.throttle.rate_limit
    api_burst_limit: int = HTTP_API.throttle.burst_limit
    model_src: str = "models/whisper-large-v3-turbo"  # CTranslate2 model folder, relative to the repo
    scaling: ScalingPolicy = field(default_factory=lambda: DEFAULT_POLICY)
    # A GPU worker-hour in dollars, for the dashboard's cost per audio hour: g4dn.xlarge on-demand (us-east-1
    # list price, an upper bound); set your blended spot/on-demand rate (docs/scaling.md).
    worker_usd_per_hour: float = 0.526
    # The live service (docs/architecture.md, "The live service"): deployed when its load balancer has a
    # regional ACM certificate for HTTPS, and the name of that certificate the operator points at the balancer
    # (the web page's config.json and CSP name it: the Web stack cannot read the balancer's own DNS name, and TLS
    # would not match it); tasks kept warm (0: none, the first request wakes one) and at most.
    live_certificate_arn: str = ""
    live_domain: str = ""
    live_warm_tasks: int = 0
    live_max_tasks: int = 4
    # Open streams per task that the scaling holds (hark:liveStreamsPerTask). Not measured on a GPU yet: set it
    # from bench/live.py --max-streams on the deployed instance type, below the streams at which the lag passes 3 s.
    live_streams_per_task: int = 8
    # The languages whose confidence has an alarm of its own (issue 26; monitoring.py): those the deployment
    # transcribes enough of for an hourly mean to mean something. The dashboard graphs every language.
    accuracy_languages: tuple[str, ...] = ("en", "es")

    @property
    def resources(self) -> Resources:
        """hark.domain.resources for this deployment: bucket names carry the account and region as
        CloudFormation tokens; consumers rebuild the same names from HARK_ACCOUNT and HARK_REGION
        (hark_infra.common.resource_env)."""
        return resources(self.stack, self.email_sender, account=Aws.ACCOUNT_ID, region=Aws.REGION)

    @property
    def resolved_jwks_url(self) -> str:
        return self.jwks_url or f"{self.issuer.rstrip('/')}/.well-known/jwks.json"

    @classmethod
    def from_context(cls, scope: Construct) -> HarkConfig:
        return cls.from_lookup(scope.node.try_get_context)

    @classmethod
    def from_lookup(cls, lookup: Callable[[str], Any]) -> HarkConfig:
        """The settings from `lookup`, which gives a context key's value ("hark:stack") or None: a construct
        node's try_get_context, or a dict's get (hark deploy check reads cdk.json without an app)."""

        def get(key: str, default):
            value = lookup(f"hark:{key}")
            return default if value is None or value == "" else value

        base = cls()
        parties = get("authorizedParties", [])
        if isinstance(parties, str):  # -c hark:authorizedParties='["https://a", "https://b"]'
            parties = json.loads(parties) if parties.startswith("[") else [p for p in parties.split(",") if p]
        max_workers = int(get("maxWorkers", base.scaling.max_workers))
        accuracy_languages = get("accuracyLanguages", list(base.accuracy_languages))
        if isinstance(accuracy_languages, str):  # -c hark:accuracyLanguages=en,es
            accuracy_languages = [code for code in accuracy_languages.split(",") if code]
        return cls(
            stack=str(get("stack", base.stack)),
            issuer=str(get("issuer", base.issuer)),
            jwks_url=str(get("jwksUrl", "")),
            authorized_parties=tuple(parties),
            web_origin=str(get("webOrigin", "")).rstrip("/"),
            web_domain=str(get("webDomain", "")).lower().rstrip("."),
            certificate_arn=str(get("certificateArn", "")),
            hosted_zone_id=str(get("hostedZoneId", "")),
            email_sender=str(get("emailSender", base.email_sender)),
            email_domain=str(get("emailDomain", "")),
            alarm_email=str(get("alarmEmail", "")),
            clerk_publishable_key=str(get("clerkPublishableKey", "")),
            max_upload_bytes=int(get("maxUploadBytes", base.max_upload_bytes)),
            on_demand_base_workers=int(get("onDemandBaseWorkers", base.on_demand_base_workers)),
            on_demand_percent_above_base=int(get("onDemandPercentAboveBase", base.on_demand_percent_above_base)),
            nat_gateways=int(get("natGateways", base.nat_gateways)),
            powertools_layer_version=int(get("powertoolsLayerVersion", base.powertools_layer_version)),
            api_rate_limit=int(get("apiRateLimit", base.api_rate_limit)),
            api_burst_limit=int(get("apiBurstLimit", base.api_burst_limit)),
            model_src=str(get("modelSrc", base.model_src)),
            scaling=replace(base.scaling, max_workers=max_workers),
            worker_usd_per_hour=float(get("workerUsdPerHour", base.worker_usd_per_hour)),
            live_certificate_arn=str(get("liveCertificateArn", "")),
            live_domain=str(get("liveDomain", "")).lower().rstrip("."),
            live_warm_tasks=int(get("liveWarmTasks", base.live_warm_tasks)),
            live_max_tasks=int(get("liveMaxTasks", base.live_max_tasks)),
            live_streams_per_task=int(get("liveStreamsPerTask", base.live_streams_per_task)),
            accuracy_languages=tuple(str(code) for code in accuracy_languages),
        ).checked()

    def checked(self) -> HarkConfig:
        """Settings that cannot deploy are refused here, each with what to change."""
        if bool(self.web_domain) != bool(self.certificate_arn):
            raise ValueError(
                "hark:webDomain and hark:certificateArn go together: CloudFront serves a custom domain only "
                'with an ACM certificate for it (docs/deploy.md, "A custom domain")'
            )
        if self.certificate_arn and not re.fullmatch(
            r"arn:aws[\w-]*:acm:us-east-1:\d{12}:certificate/[\w-]+", self.certificate_arn
        ):
            raise ValueError(
                f"hark:certificateArn {self.certificate_arn!r}: CloudFront takes an ACM certificate ARN in us-east-1 "
                "(arn:aws:acm:us-east-1:<account>:certificate/<id>)"
            )
        if self.live_certificate_arn and not re.fullmatch(
            r"arn:aws[\w-]*:acm:[a-z0-9-]+:\d{12}:certificate/[\w-]+", self.live_certificate_arn
        ):
            raise ValueError(
                f"hark:liveCertificateArn {self.live_certificate_arn!r}: the live service's load balancer takes an ACM "
                "certificate ARN in the stack's own region (arn:aws:acm:<region>:<account>:certificate/<id>)"
            )
        if bool(self.live_domain) != bool(self.live_certificate_arn):
            raise ValueError(
                "hark:liveDomain and hark:liveCertificateArn go together: the live service's balancer serves HTTPS "
                "with the certificate, for the name in it that points at the balancer (docs/deploy.md)"
            )
        if self.live_domain and not re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", self.live_domain):
            raise ValueError(f"hark:liveDomain {self.live_domain!r}: a host name alone, such as live.example.com")
        if not 0 <= self.live_warm_tasks <= self.live_max_tasks:
            raise ValueError(
                f"hark:liveWarmTasks {self.live_warm_tasks} must be from 0 to hark:liveMaxTasks ({self.live_max_tasks})"
            )
        if self.live_streams_per_task < 1:
            raise ValueError(f"hark:liveStreamsPerTask {self.live_streams_per_task}: a task holds at least 1 stream")
        if self.hosted_zone_id and not self.web_domain:
            raise ValueError("hark:hostedZoneId needs hark:webDomain: the alias records are for that name")
        if self.nat_gateways < WORKER_ZONES:
            raise ValueError(
                f"hark:natGateways {self.nat_gateways}: the workers run in {WORKER_ZONES} zones and need a NAT gateway "
                'in each, or losing one zone stops them all (docs/scaling.md, "No single zone to lose")'
            )
        for code in self.accuracy_languages:
            if code not in languages.NAMES:
                raise ValueError(
                    f"hark:accuracyLanguages {code!r}: each is a Whisper language code (en, es, ...), as jobs' "
                    "detected_language has it"
                )
        return self

    @property
    def live_url(self) -> str:
        """The live service's base URL (its `LiveUrl` output, config.json's `liveBase`); "" when not deployed."""
        return f"https://{self.live_domain}/v1" if self.live_domain else ""

    @property
    def origin(self) -> str:
        """The web app's origin when it is known before deployment (else the CloudFront domain, a token)."""
        return self.web_origin or (f"https://{self.web_domain}" if self.web_domain else "")


def cdk_json_context() -> dict:
    """cdk.json's context, for runs without the CDK CLI (`make synth`, the tests)."""
    return json.loads(CDK_JSON.read_text())["context"]
