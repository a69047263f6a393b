"""The audio and transcripts buckets (named by hark.domain.resources) and the upload notification (S3 -> SNS)."""

from __future__ import annotations

from typing import cast

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_s3 as s3
from constructs import Construct

from hark.domain.resources import BucketDef
from hark_infra.common import acknowledge
from hark_infra.config import HarkConfig


def private_bucket_props() -> dict:
    """What every Hark bucket has: SSE-S3 encryption, TLS only, all public access blocked, owner-enforced."""
    return dict(
        encryption=s3.BucketEncryption.S3_MANAGED,
        enforce_ssl=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    )


class StorageStack(Stack):
    def __init__(self, scope: Construct, cid: str, *, config: HarkConfig, web_origins: list[str], **kwargs) -> None:
        super().__init__(scope, cid, **kwargs)
        res = config.resources

        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            **private_bucket_props(),
            lifecycle_rules=[s3.LifecycleRule(id="expire-logs", expiration=Duration.days(90))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(
            self.access_logs,
            "This bucket receives the other buckets' server access logs; logging it to itself would loop.",
            "AwsSolutions-S1",
        )

        self.audio_bucket = self._bucket(
            "AudioBucket",
            res.audio_bucket,
            cors=[
                s3.CorsRule(
                    # Browsers upload straight to S3 with the presigned PUT/POST the API hands out.
                    allowed_origins=web_origins,
                    allowed_methods=[s3.HttpMethods.PUT, s3.HttpMethods.POST],
                    allowed_headers=["*"],
                    exposed_headers=["ETag"],
                    max_age=3000,
                )
            ]
            if res.audio_bucket.cors_upload
            else None,
        )
        self.transcripts_bucket = self._bucket(
            "TranscriptsBucket",
            res.transcripts_bucket,
            cors=[
                s3.CorsRule(
                    # The transcript viewer fetches the presigned transcript links.
                    allowed_origins=web_origins,
                    allowed_methods=[s3.HttpMethods.GET, s3.HttpMethods.HEAD],
                    allowed_headers=["*"],
                    max_age=3000,
                )
            ],
        )

        # ObjectCreated under uploads/ -> the uploads topic (queues stack), which fans it out to the
        # transcribe and upload-status queues; a native bucket property (no custom resource). The topic's
        # policy (queues stack, deployed first) already lets this bucket publish.
        prefix = res.audio_bucket.notify_prefix
        if prefix:
            cfn_audio = cast(s3.CfnBucket, self.audio_bucket.node.default_child)  # an L2 bucket's own CfnBucket
            cfn_audio.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
                topic_configurations=[
                    s3.CfnBucket.TopicConfigurationProperty(
                        event="s3:ObjectCreated:*",
                        topic=self.format_arn(
                            service="sns", resource=res.uploads_topic.name, arn_format=ArnFormat.NO_RESOURCE_NAME
                        ),
                        filter=s3.CfnBucket.NotificationFilterProperty(
                            s3_key=s3.CfnBucket.S3KeyFilterProperty(
                                rules=[s3.CfnBucket.FilterRuleProperty(name="prefix", value=prefix)]
                            )
                        ),
                    )
                ]
            )

    def _bucket(self, cid: str, bdef: BucketDef, cors: list[s3.CorsRule] | None) -> s3.Bucket:
        rules = [
            s3.LifecycleRule(
                id=f"expire-{rule.prefix.strip('/')}", prefix=rule.prefix, expiration=Duration.days(rule.expire_days)
            )
            for rule in bdef.lifecycle
        ]
        # Abandoned multipart uploads (browser closed mid-upload) cost storage until aborted.
        rules.append(
            s3.LifecycleRule(id="abort-incomplete-multipart", abort_incomplete_multipart_upload_after=Duration.days(1))
        )
        return s3.Bucket(
            self,
            cid,
            bucket_name=bdef.name,
            **private_bucket_props(),
            lifecycle_rules=rules,
            cors=cors,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix=f"{bdef.name}/",
            removal_policy=RemovalPolicy.RETAIN,
        )
