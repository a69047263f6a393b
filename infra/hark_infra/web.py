"""The static web app: a private S3 bucket behind CloudFront with origin access control (WebStack), and
its content, frontend/ plus a generated config.json, copied in on every `cdk deploy` (WebContentStack).

The content is a stack of its own because config.json needs the API's URL, and the Api stack already
needs the web origin (the CloudFront domain, for CORS and authorized parties) from WebStack: a
deployment inside WebStack would make Web -> Api -> Web a cycle. WebContentStack depends on both.
"""

from __future__ import annotations

import json

from aws_cdk import Aws, CfnOutput, Duration, Fn, RemovalPolicy, Stack
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from hark.api.webapp import HARDENING_HEADERS, clerk_frontend_api_host, content_security_policy
from hark_infra.common import acknowledge
from hark_infra.config import REPO_ROOT, HarkConfig
from hark_infra.storage import private_bucket_props

FRONTEND_DIR = REPO_ROOT / "frontend"
CONFIG_FILE = "config.json"
# No file name is content-hashed, so every file revalidates (ETag, a cheap 304) on each load: a deploy
# is seen at once and index.html, the modules and config.json never mix releases.
CONTENT_CACHE_CONTROL = "no-cache"
# After each deploy: everything CloudFront may hold, including "/" and the index.html served for SPA
# routes on 403/404. One wildcard path is billed as one invalidation path.
INVALIDATION_PATHS = ["/*"]
# The hosted zone every CloudFront distribution's alias target lives in (Route 53's AliasTarget reference).
CLOUDFRONT_HOSTED_ZONE_ID = "Z2FDTNDATAQYW2"
# WebStack's outputs that WebContentStack reads (Fn::GetStackOutput): fixed names, so the deployment's
# IAM resources render the same on every synth and its cdk-nag acknowledgment can name them exactly.
SITE_BUCKET_OUTPUT = "SiteBucketName"
DISTRIBUTION_ID_OUTPUT = "DistributionId"
DISTRIBUTION_DOMAIN_OUTPUT = "DistributionDomainName"


def custom_domain(scope: Construct, config: HarkConfig) -> dict:
    """The distribution's alias and certificate when hark:webDomain is set (the certificate in us-east-1,
    checked by HarkConfig), with TLS 1.2 or later for viewers; nothing otherwise."""
    if not config.web_domain:
        return {}
    return dict(
        domain_names=[config.web_domain],
        certificate=acm.Certificate.from_certificate_arn(scope, "WebCertificate", config.certificate_arn),
        minimum_protocol_version=cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021,
    )


def web_config(api_url: str, clerk_publishable_key: str, live_url: str = "") -> dict:
    """The /config.json the web app reads (frontend/api.js loadConfig): apiBase, devAuth, clerkPublishableKey,
    and liveBase when the live service is deployed.

    Without hark:clerkPublishableKey the key is left out (jsii cannot carry a JSON null), and api.js's
    default, null, applies: the same as writing null. Without the live service liveBase is left out too, and
    *Record live* says it is not set up.
    """
    config: dict = {"apiBase": api_url, "devAuth": False}
    if clerk_publishable_key:
        config["clerkPublishableKey"] = clerk_publishable_key
    if live_url:
        config["liveBase"] = live_url
    return config


class WebStack(Stack):
    def __init__(self, scope: Construct, cid: str, *, config: HarkConfig, **kwargs) -> None:
        super().__init__(scope, cid, **kwargs)
        # CloudFront standard logs are delivered with ACLs, so this one bucket keeps object writer ownership.
        self.logs = s3.Bucket(
            self,
            "CdnLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.OBJECT_WRITER,
            lifecycle_rules=[s3.LifecycleRule(id="expire-logs", expiration=Duration.days(90))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(
            self.logs,
            "This bucket receives CloudFront and site-bucket access logs; logging it to itself would loop.",
            "AwsSolutions-S1",
        )
        self.site_bucket = s3.Bucket(
            self,
            "SiteBucket",
            **private_bucket_props(),
            server_access_logs_bucket=self.logs,
            server_access_logs_prefix="site/",
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment=f"{config.stack} web app",
            default_root_object="index.html",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.site_bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                response_headers_policy=self.headers_policy(config),
            ),
            # The single-page app routes on the client: unknown paths serve index.html.
            error_responses=[
                cloudfront.ErrorResponse(
                    http_status=code,
                    response_http_status=200,
                    response_page_path="/index.html",
                    ttl=Duration.seconds(10),
                )
                for code in (403, 404)
            ],
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
            **custom_domain(self, config),
            enable_logging=True,
            log_bucket=self.logs,
            log_file_prefix="cloudfront/",
        )
        acknowledge(
            self.distribution, "The app is offered worldwide; no geographic restriction is wanted.", "AwsSolutions-CFR1"
        )
        acknowledge(
            self.distribution,
            "Static, public assets only; the API behind it has its own "
            "authorizer and throttling. Add a WAF web ACL if abuse appears.",
            "AwsSolutions-CFR2",
        )
        if config.web_domain:
            self.alias_records(config)
        else:
            acknowledge(
                self.distribution,
                "Without a custom domain CloudFront's default certificate is used, which fixes the viewer "
                "TLS policy; set hark:webDomain and hark:certificateArn (docs/deploy.md) for TLS 1.2 or later.",
                "AwsSolutions-CFR4",
            )
        self.origin = config.origin or f"https://{self.distribution.distribution_domain_name}"
        CfnOutput(self, "WebUrl", value=self.origin)
        CfnOutput(self, SITE_BUCKET_OUTPUT, value=self.site_bucket.bucket_name)
        CfnOutput(self, DISTRIBUTION_ID_OUTPUT, value=self.distribution.distribution_id)
        CfnOutput(self, DISTRIBUTION_DOMAIN_OUTPUT, value=self.distribution.distribution_domain_name)

    def alias_records(self, config: HarkConfig) -> None:
        """With hark:hostedZoneId: A and AAAA alias records for the domain, pointing at the distribution."""
        if not config.hosted_zone_id:
            return
        for record_type in ("A", "AAAA"):
            route53.CfnRecordSet(
                self,
                f"WebDomain{record_type}",
                hosted_zone_id=config.hosted_zone_id,
                name=config.web_domain,
                type=record_type,
                alias_target=route53.CfnRecordSet.AliasTargetProperty(
                    dns_name=self.distribution.distribution_domain_name,
                    hosted_zone_id=CLOUDFRONT_HOSTED_ZONE_ID,
                ),
            )

    def headers_policy(self, config: HarkConfig) -> cloudfront.ResponseHeadersPolicy:
        """The managed SecurityHeadersPolicy's headers plus this app's Content-Security-Policy."""
        clerk_host = clerk_frontend_api_host(config.clerk_publishable_key) if config.clerk_publishable_key else None
        # The API's URL cannot be named here (the Api stack depends on this one), so connect-src allows
        # the region's execute-api hosts; the buckets (audio: the presigned upload; transcripts: the
        # viewer's fetch) on the regional virtual-hosted endpoint every presigned URL uses (hark.domain.aws).
        connect = [f"https://*.execute-api.{Aws.REGION}.amazonaws.com"]
        connect += [f"https://{b.name}.s3.{Aws.REGION}.amazonaws.com" for b in config.resources.buckets]
        # The viewer's player: presigned GETs of the audio bucket (GET /jobs/{id}/audio), same endpoint.
        media = [f"https://{config.resources.audio_bucket.name}.s3.{Aws.REGION}.amazonaws.com"]
        # The live service's own host (hark:liveDomain), when it is deployed: its ticket (HTTPS) and stream (WSS).
        csp = content_security_policy(connect, clerk_host, media, live_host=config.live_domain or None)
        return cloudfront.ResponseHeadersPolicy(
            self,
            "SecurityHeaders",
            comment=f"{config.stack} web app: security headers and CSP",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=csp, override=True
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                # The values of hark.api.webapp.HARDENING_HEADERS (nosniff is ContentTypeOptions' only one). The
                # policy applies to error answers too: the 403/404 pages are /index.html, the default behavior's.
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption[HARDENING_HEADERS["X-Frame-Options"]], override=True
                ),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy[
                        HARDENING_HEADERS["Referrer-Policy"].upper().replace("-", "_")
                    ],
                    override=True,
                ),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=Duration.days(365), include_subdomains=True, override=True
                ),
                xss_protection=cloudfront.ResponseHeadersXSSProtection(protection=True, mode_block=True, override=True),
            ),
        )


class WebContentStack(Stack):
    """frontend/ and a config.json with the API URL into the site bucket, then a CloudFront invalidation."""

    def __init__(
        self, scope: Construct, cid: str, *, config: HarkConfig, web: WebStack, api_url: str, **kwargs
    ) -> None:
        super().__init__(scope, cid, **kwargs)
        self.add_stack_dependency(web, "reads the site bucket and distribution from its outputs")

        def web_output(name: str) -> str:
            return Fn.get_stack_output(web.stack_name, name)

        bucket_name = web_output(SITE_BUCKET_OUTPUT)
        site_bucket = s3.Bucket.from_bucket_name(self, "SiteBucket", bucket_name)
        distribution = cloudfront.Distribution.from_distribution_attributes(
            self,
            "Distribution",
            distribution_id=web_output(DISTRIBUTION_ID_OUTPUT),
            domain_name=web_output(DISTRIBUTION_DOMAIN_OUTPUT),
        )
        self.config_data = web_config(api_url, config.clerk_publishable_key, config.live_url)
        self.deployment = s3deploy.BucketDeployment(
            self,
            "Content",
            sources=[
                # config.json is generated below; a local one (a leftover of a manual deploy) never ships.
                s3deploy.Source.asset(str(FRONTEND_DIR), exclude=[CONFIG_FILE, ".*"]),
                # Tokens (the API URL) resolve when the custom resource runs, at deploy time.
                s3deploy.Source.json_data(CONFIG_FILE, self.config_data),
            ],
            destination_bucket=site_bucket,
            prune=True,  # files dropped from frontend/ leave the bucket too
            retain_on_delete=False,  # the bucket itself is retained; its copy of the app need not be
            cache_control=[s3deploy.CacheControl.from_string(CONTENT_CACHE_CONTROL)],
            distribution=distribution,
            distribution_paths=INVALIDATION_PATHS,
            memory_limit=256,
        )
        # The deployment's Lambda is a singleton at stack level (Custom::CDKBucketDeployment...), not a
        # child of the deployment, so its findings are acknowledged on it (and so on its role).
        # cdk-nag renders the intrinsic in the bucket ARN as JSON (it has no <Ref> form for it).
        site_objects = (
            "arn:<AWS::Partition>:s3:::" + json.dumps(self.resolve(bucket_name), separators=(",", ":")) + "/*"
        )
        handlers = [c for c in self.node.children if c.node.id.startswith("Custom::CDKBucketDeployment")]
        assert handlers, "BucketDeployment's singleton handler not found"
        for handler in handlers:
            acknowledge(
                handler,
                "CDK's BucketDeployment handler: aws-cdk-lib pins its runtime with the "
                "bundled AWS CLI layer; it moves when aws-cdk-lib is upgraded.",
                "AwsSolutions-L1",
            )
            acknowledge(
                handler,
                "CDK's BucketDeployment handler role uses AWSLambdaBasicExecutionRole for "
                "its own log writes; the construct offers no way to narrow it.",
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AWSLambdaBasicExecutionRole]",
            )
            acknowledge(
                handler,
                "BucketDeployment reads every object of its CDK asset and writes and prunes "
                "the site bucket's objects (object wildcards on those two buckets only, as the "
                "construct grants them); CloudFront invalidation actions take no resource "
                "narrower than '*'.",
                "AwsSolutions-IAM5[Action::s3:GetBucket*]",
                "AwsSolutions-IAM5[Action::s3:GetObject*]",
                "AwsSolutions-IAM5[Action::s3:List*]",
                "AwsSolutions-IAM5[Action::s3:DeleteObject*]",
                "AwsSolutions-IAM5[Action::s3:Abort*]",
                "AwsSolutions-IAM5[Resource::*]",
                "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-"
                "<AWS::AccountId>-<AWS::Region>/*]",
                f"AwsSolutions-IAM5[Resource::{site_objects}]",
            )
        CfnOutput(self, "ConfigApiBase", value=api_url)
