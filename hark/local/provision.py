"""Creates every resource of hark.domain.resources in the emulator, as the CDK app does in AWS."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable

from hark.domain.resources import Resources

ACCOUNT = "123456789012"  # moto's default account


def queue_arn(region: str, name: str) -> str:
    return f"arn:aws:sqs:{region}:{ACCOUNT}:{name}"


def topic_arn(region: str, name: str) -> str:
    return f"arn:aws:sns:{region}:{ACCOUNT}:{name}"


def provision(client: Callable, res: Resources, *, web_origins: list[str], region: str) -> dict[str, str]:
    """Create buckets, queues (each with its DLQ), the uploads topic and its raw-delivery subscriptions,
    tables, the SES identity and the secrets. Returns queue URLs.

    `client(service)` gives a boto3 client bound to the emulator (hark.domain.aws.client does).
    """
    sqs, s3, ddb, ses = (client(s) for s in ("sqs", "s3", "dynamodb", "ses"))
    urls: dict[str, str] = {}
    for q in res.queues:
        dlq_url = sqs.create_queue(
            QueueName=q.dlq_name, Attributes={"MessageRetentionPeriod": str(q.dlq_retention_seconds)}
        )["QueueUrl"]
        urls[q.dlq_name] = dlq_url
        urls[q.name] = sqs.create_queue(
            QueueName=q.name,
            Attributes={
                "VisibilityTimeout": str(q.visibility_timeout_seconds),
                "MessageRetentionPeriod": str(q.retention_seconds),
                "ReceiveMessageWaitTimeSeconds": str(q.receive_wait_seconds),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": queue_arn(region, q.dlq_name), "maxReceiveCount": q.max_receive_count}
                ),
            },
        )["QueueUrl"]

    # The upload fan-out, as infra/hark_infra/queues.py wires it: S3 -> topic -> each queue, raw delivery
    # (every queue receives the S3 event itself, as S3 would send it).
    sns = client("sns")
    topic = sns.create_topic(Name=res.uploads_topic.name)["TopicArn"]
    # Where SNS puts what it cannot deliver (in AWS; moto delivers or raises): here for `hark dlq`.
    urls[res.uploads_topic.undelivered_queue] = sqs.create_queue(
        QueueName=res.uploads_topic.undelivered_queue,
        Attributes={"MessageRetentionPeriod": str(res.uploads_topic.undelivered_retention_seconds)},
    )["QueueUrl"]
    for name in res.uploads_topic.raw_subscribers:
        sns.subscribe(
            TopicArn=topic,
            Protocol="sqs",
            Endpoint=queue_arn(region, name),
            Attributes={"RawMessageDelivery": "true"},
        )

    for b in res.buckets:
        s3.create_bucket(Bucket=b.name)
        s3.put_bucket_lifecycle_configuration(
            Bucket=b.name,
            LifecycleConfiguration={
                "Rules": [
                    *(
                        {
                            "ID": f"expire-{r.prefix.strip('/')}",
                            "Filter": {"Prefix": r.prefix},
                            "Status": "Enabled",
                            "Expiration": {"Days": r.expire_days},
                        }
                        for r in b.lifecycle
                    ),
                    {
                        "ID": "abort-incomplete-multipart",
                        "Filter": {"Prefix": ""},
                        "Status": "Enabled",
                        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": b.abort_incomplete_multipart_days},
                    },
                ]
            },
        )
        if b.cors_upload:
            s3.put_bucket_cors(
                Bucket=b.name,
                CORSConfiguration={
                    "CORSRules": [
                        {
                            "AllowedOrigins": web_origins,
                            "AllowedMethods": ["POST", "PUT"],
                            "AllowedHeaders": ["*"],
                            "ExposeHeaders": ["ETag"],
                            "MaxAgeSeconds": 3000,
                        }
                    ]
                },
            )
        if b.notify_prefix:
            s3.put_bucket_notification_configuration(
                Bucket=b.name,
                NotificationConfiguration={
                    "TopicConfigurations": [
                        {
                            "TopicArn": topic_arn(region, res.uploads_topic.name),
                            "Events": ["s3:ObjectCreated:*"],
                            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": b.notify_prefix}]}},
                        }
                    ]
                },
            )

    for t in res.tables:
        attributes = {t.partition_key}
        indexes = []
        for index in t.indexes:
            attributes |= {index.partition_key, index.sort_key}
            indexes.append(
                {
                    "IndexName": index.name,
                    "KeySchema": [
                        {"AttributeName": index.partition_key, "KeyType": "HASH"},
                        {"AttributeName": index.sort_key, "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            )
        kwargs = {
            "TableName": t.name,
            "KeySchema": [{"AttributeName": t.partition_key, "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in sorted(attributes)],
            "BillingMode": "PAY_PER_REQUEST",
        }
        if indexes:
            kwargs["GlobalSecondaryIndexes"] = indexes
        ddb.create_table(**kwargs)
        ddb.update_time_to_live(
            TableName=t.name, TimeToLiveSpecification={"Enabled": True, "AttributeName": t.ttl_attribute}
        )

    ses.verify_email_identity(EmailAddress=res.email_identity)

    # As CDK generates them: a random link key; the Clerk key is the local stand-in's (hark.local.issuer),
    # random too, so the worker's lookup really has to present it.
    sm = client("secretsmanager")
    for name, description in (
        (res.link_signing_secret, "HMAC key of the transcript links in emails"),
        (res.clerk_secret, "Clerk Backend API secret key (local stand-in)"),
    ):
        sm.create_secret(Name=name, Description=description, SecretString=secrets.token_urlsafe(48))
    return urls
