"""The static web app: a private S3 bucket behind CloudFront with origin access control."""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_s3 as s3
from constructs import Construct

from hark_infra.common import acknowledge
from hark_infra.config import HarkConfig
from hark_infra.storage import private_bucket_props


class WebStack(Stack):
    def __init__(self, scope: Construct, cid: str, *, config: HarkConfig, **kwargs) -> None:
        super().__init__(scope, cid, **kwargs)
        # CloudFront standard logs are delivered with ACLs, so this one bucket keeps object writer ownership.
        self.logs = s3.Bucket(
            self, "CdnLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.OBJECT_WRITER,
            lifecycle_rules=[s3.LifecycleRule(id="expire-logs", expiration=Duration.days(90))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(self.logs, "This bucket receives CloudFront and site-bucket access logs; logging it "
                    "to itself would loop.", "AwsSolutions-S1")
        self.site_bucket = s3.Bucket(
            self, "SiteBucket",
            **private_bucket_props(),
            server_access_logs_bucket=self.logs,
            server_access_logs_prefix="site/",
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.distribution = cloudfront.Distribution(
            self, "Distribution",
            comment=f"{config.stack} web app",
            default_root_object="index.html",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.site_bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                response_headers_policy=cloudfront.ResponseHeadersPolicy.SECURITY_HEADERS,
            ),
            # The single-page app routes on the client: unknown paths serve index.html.
            error_responses=[
                cloudfront.ErrorResponse(http_status=code, response_http_status=200,
                                         response_page_path="/index.html", ttl=Duration.seconds(10))
                for code in (403, 404)
            ],
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
            enable_logging=True,
            log_bucket=self.logs,
            log_file_prefix="cloudfront/",
        )
        acknowledge(self.distribution, "The app is offered worldwide; no geographic restriction is wanted.",
                    "AwsSolutions-CFR1")
        acknowledge(self.distribution, "Static, public assets only; the API behind it has its own "
                    "authorizer and throttling. Add a WAF web ACL if abuse appears.", "AwsSolutions-CFR2")
        acknowledge(self.distribution, "Without a custom domain CloudFront's default certificate is used, "
                    "which fixes the viewer TLS policy; with hark:webOrigin set, attach a certificate.",
                    "AwsSolutions-CFR4")
        self.origin = config.web_origin or f"https://{self.distribution.distribution_domain_name}"
        CfnOutput(self, "WebUrl", value=self.origin)
        CfnOutput(self, "SiteBucketName", value=self.site_bucket.bucket_name)
        CfnOutput(self, "DistributionId", value=self.distribution.distribution_id)
