"""The transcribe and notify queues, each with its dead-letter queue, as hark.resources defines them."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from hark.resources import QueueDef
from hark_infra.common import bucket_arn
from hark_infra.config import HarkConfig


def _queue_pair(scope: Construct, cid: str, qdef: QueueDef) -> tuple[sqs.Queue, sqs.Queue]:
    dlq = sqs.Queue(
        scope,
        f"{cid}Dlq",
        queue_name=qdef.dlq_name,
        retention_period=Duration.seconds(qdef.dlq_retention_seconds),
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
    )
    queue = sqs.Queue(
        scope,
        cid,
        queue_name=qdef.name,
        visibility_timeout=Duration.seconds(qdef.visibility_timeout_seconds),
        retention_period=Duration.seconds(qdef.retention_seconds),
        receive_message_wait_time=Duration.seconds(qdef.receive_wait_seconds),
        dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=qdef.max_receive_count),
        # SSE-SQS: S3 event notifications can deliver to it without a customer-managed key policy.
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
    )
    return queue, dlq


class QueuesStack(Stack):
    def __init__(self, scope: Construct, cid: str, *, config: HarkConfig, **kwargs) -> None:
        super().__init__(scope, cid, **kwargs)
        res = config.resources
        self.transcribe_queue, self.transcribe_dlq = _queue_pair(self, "TranscribeQueue", res.transcribe_queue)
        self.notify_queue, self.notify_dlq = _queue_pair(self, "NotifyQueue", res.notify_queue)

        # The audio bucket's ObjectCreated events (uploads/ only, configured on the bucket) land here.
        # The bucket ARN is built from its fixed name, so this stack deploys first without a cycle.
        self.transcribe_queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowAudioBucketNotifications",
                principals=[iam.ServicePrincipal("s3.amazonaws.com")],
                actions=["sqs:SendMessage"],
                resources=[self.transcribe_queue.queue_arn],
                conditions={
                    "ArnEquals": {"aws:SourceArn": bucket_arn(self, res.audio_bucket.name)},
                    "StringEquals": {"aws:SourceAccount": self.account},
                },
            )
        )
