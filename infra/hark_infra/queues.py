"""The transcribe, notify, webhook and upload-status queues, each with its dead-letter queue, and the uploads topic
that fans an upload's S3 event out to the transcribe and upload-status queues, as hark.domain.resources defines
them (docs/architecture.md, "QUEUED when the upload lands")."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from hark.domain.resources import QueueDef
from hark_infra.common import acknowledge, bucket_arn
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
        self.webhook_queue, self.webhook_dlq = _queue_pair(self, "WebhookQueue", res.webhook_queue)

        self.upload_status_queue, self.upload_status_dlq = _queue_pair(
            self, "UploadStatusQueue", res.upload_status_queue
        )

        # The audio bucket's ObjectCreated events (uploads/ only, configured on the bucket) are published
        # here and fanned out, raw, to the transcribe queue (the workers) and the upload-status queue (the
        # function that marks the job QUEUED at once). The bucket ARN is built from its fixed name, so
        # this stack deploys first without a cycle.
        self.uploads_topic = sns.Topic(self, "UploadsTopic", topic_name=res.uploads_topic.name, enforce_ssl=True)
        self.uploads_topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowAudioBucketNotifications",
                principals=[iam.ServicePrincipal("s3.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.uploads_topic.topic_arn],
                conditions={
                    "ArnEquals": {"aws:SourceArn": bucket_arn(self, res.audio_bucket.name)},
                    "StringEquals": {"aws:SourceAccount": self.account},
                },
            )
        )
        acknowledge(
            self.uploads_topic,
            "S3 event notifications cannot publish to a topic encrypted with the AWS-managed SNS key; the "
            "events carry only keys and sizes, and both subscribed queues are encrypted (SSE-SQS).",
            "AwsSolutions-SNS2",
        )
        # SNS retries a delivery to SQS for days, but drops at once what a client error refuses (a queue
        # policy gone wrong): such an upload event is kept here, with an alarm (monitoring.py), not lost.
        self.uploads_undelivered = sqs.Queue(
            self,
            "UploadsUndelivered",
            queue_name=res.uploads_topic.undelivered_queue,
            retention_period=Duration.seconds(res.uploads_topic.undelivered_retention_seconds),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        acknowledge(
            self.uploads_undelivered,
            "This is itself a dead-letter queue: the uploads topic's subscriptions send what they cannot deliver "
            "here (their redrive policy, which the rule does not read); an alarm fires on any message in it.",
            "AwsSolutions-SQS3",
        )
        by_name = {
            res.transcribe_queue.name: self.transcribe_queue,
            res.upload_status_queue.name: self.upload_status_queue,
        }
        for name in res.uploads_topic.raw_subscribers:
            # Raw delivery: each queue receives the S3 event body itself, as S3 would send it to a queue.
            # The subscription also gives the queue a policy letting this topic (only) send to it.
            # The subscription also gives the dead-letter queue a policy letting this topic send to it.
            self.uploads_topic.add_subscription(
                subscriptions.SqsSubscription(
                    by_name[name], raw_message_delivery=True, dead_letter_queue=self.uploads_undelivered
                )
            )
