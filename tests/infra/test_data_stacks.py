"""Queues, tables, buckets and the upload notification (S3 -> SNS -> SQS) follow hark.domain.resources exactly."""

from __future__ import annotations

from aws_cdk.assertions import Match

from .conftest import TEST_CONTEXT, render, resources_of, template_resources

RES = template_resources()
WEB = TEST_CONTEXT["hark:webOrigin"]


def test_every_stack_synthesised(synth):
    assert set(synth.templates) == {
        "Web",
        "Queues",
        "Tables",
        "Email",
        "Storage",
        "Api",
        "WebContent",
        "Workers",
        "Monitoring",
    }
    for name, template in synth.templates.items():
        assert template["Resources"], name
        assert "Parameters" not in template or set(template["Parameters"]) <= {"BootstrapVersion"} | {
            p for p in template["Parameters"] if p.startswith("SsmParameterValue")
        }, name


def test_queues_and_dead_letter_queues_from_hark_resources(synth):
    t = synth.assertions("Queues")
    t.resource_count_is("AWS::SQS::Queue", 2 * len(RES.queues) + 1)  # each with its DLQ; the uploads topic's DLQ
    template = synth.template("Queues")
    by_name = {
        q["Properties"]["QueueName"]: (k, q["Properties"]) for k, q in resources_of(template, "AWS::SQS::Queue").items()
    }
    for qdef in RES.queues:
        dlq_id, dlq = by_name[qdef.dlq_name]
        _, queue = by_name[qdef.name]
        assert queue["VisibilityTimeout"] == qdef.visibility_timeout_seconds
        assert queue["MessageRetentionPeriod"] == qdef.retention_seconds
        assert queue["ReceiveMessageWaitTimeSeconds"] == qdef.receive_wait_seconds
        assert queue["RedrivePolicy"] == {
            "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
            "maxReceiveCount": qdef.max_receive_count,
        }
        assert dlq["MessageRetentionPeriod"] == qdef.dlq_retention_seconds
        assert queue["SqsManagedSseEnabled"] is True and dlq["SqsManagedSseEnabled"] is True
    assert RES.transcribe_queue.max_receive_count == 4  # the design's "(4 receives) -> DLQ"
    # what the uploads topic cannot deliver to either queue is kept, not dropped
    undelivered_id, undelivered = by_name[RES.uploads_topic.undelivered_queue]
    assert undelivered["MessageRetentionPeriod"] == RES.uploads_topic.undelivered_retention_seconds
    assert undelivered["SqsManagedSseEnabled"] is True
    subscriptions = resources_of(template, "AWS::SNS::Subscription").values()
    assert [s["Properties"]["RedrivePolicy"] for s in subscriptions] == [
        {"deadLetterTargetArn": {"Fn::GetAtt": [undelivered_id, "Arn"]}}
    ] * len(RES.uploads_topic.raw_subscribers)


def test_queues_deny_plain_http_and_accept_only_the_uploads_topic(synth):
    template = synth.template("Queues")
    policies = list(resources_of(template, "AWS::SQS::QueuePolicy").values())
    statements = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
    assert (
        sum(
            1
            for s in statements
            if s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        )
        == 2 * len(RES.queues) + 1
    )
    (topic_id,) = resources_of(template, "AWS::SNS::Topic")
    sends = [s for s in statements if s.get("Principal") == {"Service": "sns.amazonaws.com"}]
    # One per subscribed queue and one for its dead-letter queue, each only from the uploads topic;
    # nothing may send straight from S3.
    assert len(sends) == len(RES.uploads_topic.raw_subscribers) + 1
    for send in sends:
        assert send["Action"] == "sqs:SendMessage"
        assert send["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Ref": topic_id}}}
    assert not [s for s in statements if s.get("Principal") == {"Service": "s3.amazonaws.com"}]


def test_uploads_topic_accepts_only_the_audio_bucket_over_tls(synth):
    template = synth.template("Queues")
    ((topic_id, topic),) = resources_of(template, "AWS::SNS::Topic").items()
    assert topic["Properties"]["TopicName"] == RES.uploads_topic.name
    (policy,) = resources_of(template, "AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    (publish,) = [s for s in statements if s.get("Principal") == {"Service": "s3.amazonaws.com"}]
    assert publish["Action"] == "sns:Publish" and publish["Resource"] == {"Ref": topic_id}
    assert (
        render(publish["Condition"]["ArnEquals"]["aws:SourceArn"])
        == f"arn:${{AWS::Partition}}:s3:::{RES.audio_bucket.name}"
    )
    assert publish["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert [s for s in statements if s["Effect"] == "Deny" and "aws:SecureTransport" in str(s.get("Condition"))]


def test_tables_on_demand_pitr_ttl_and_indexes(synth):
    t = synth.assertions("Tables")
    t.resource_count_is("AWS::DynamoDB::GlobalTable", 2)
    for tdef in RES.tables:
        t.has_resource(
            "AWS::DynamoDB::GlobalTable",
            {
                "DeletionPolicy": "Retain",
                "Properties": Match.object_like(
                    {
                        "TableName": tdef.name,
                        "BillingMode": "PAY_PER_REQUEST",
                        "KeySchema": [{"AttributeName": tdef.partition_key, "KeyType": "HASH"}],
                        "TimeToLiveSpecification": {"AttributeName": tdef.ttl_attribute, "Enabled": True},
                        "Replicas": [
                            Match.object_like(
                                {
                                    "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                                    "DeletionProtectionEnabled": True,
                                }
                            )
                        ],
                    }
                ),
            },
        )
    (jobs,) = [
        r["Properties"]
        for r in resources_of(synth.template("Tables"), "AWS::DynamoDB::GlobalTable").values()
        if r["Properties"]["TableName"] == RES.jobs_table.name
    ]
    indexes = {i["IndexName"]: i for i in jobs["GlobalSecondaryIndexes"]}
    for index in RES.jobs_table.indexes:
        assert indexes[index.name]["KeySchema"] == [
            {"AttributeName": index.partition_key, "KeyType": "HASH"},
            {"AttributeName": index.sort_key, "KeyType": "RANGE"},
        ]
        assert indexes[index.name]["Projection"] == {"ProjectionType": "ALL"}
    assert "by-user" in indexes


def _bucket(synth, name: str) -> dict:
    (bucket,) = [
        b
        for b in resources_of(synth.template("Storage"), "AWS::S3::Bucket").values()
        if render(b["Properties"].get("BucketName")) == name
    ]
    return bucket


def test_buckets_encrypted_private_tls_only(synth):
    template = synth.template("Storage")
    buckets = resources_of(template, "AWS::S3::Bucket")
    assert len(buckets) == 3  # audio, transcripts, access logs
    for bucket in buckets.values():
        props = bucket["Properties"]
        assert (
            props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"][
                "SSEAlgorithm"
            ]
            == "AES256"
        )
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert bucket["DeletionPolicy"] == "Retain"
    policies = resources_of(template, "AWS::S3::BucketPolicy").values()
    tls_denies = [
        p
        for p in policies
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    ]
    assert len(tls_denies) == 3
    for name in (RES.audio_bucket.name, RES.transcripts_bucket.name):
        assert "LoggingConfiguration" in _bucket(synth, name)["Properties"]


def test_bucket_lifecycle_rules_from_hark_resources(synth):
    for bdef in RES.buckets:
        rules = _bucket(synth, bdef.name)["Properties"]["LifecycleConfiguration"]["Rules"]
        expiring = {r["Prefix"]: r["ExpirationInDays"] for r in rules if "Prefix" in r}
        assert expiring == {rule.prefix: rule.expire_days for rule in bdef.lifecycle}
        assert any(r.get("AbortIncompleteMultipartUpload") == {"DaysAfterInitiation": 1} for r in rules)


def test_audio_bucket_cors_allows_browser_uploads_from_the_web_origin(synth):
    (rule,) = _bucket(synth, RES.audio_bucket.name)["Properties"]["CorsConfiguration"]["CorsRules"]
    assert rule["AllowedOrigins"] == [WEB]
    assert sorted(rule["AllowedMethods"]) == ["POST", "PUT"]
    assert rule["ExposedHeaders"] == ["ETag"]


def test_upload_notification_goes_to_the_uploads_topic_for_uploads_only(synth):
    config = _bucket(synth, RES.audio_bucket.name)["Properties"]["NotificationConfiguration"]
    assert set(config) == {"TopicConfigurations"}  # nothing straight to a queue: the topic fans out
    (topic_config,) = config["TopicConfigurations"]
    assert topic_config["Event"] == "s3:ObjectCreated:*"
    assert topic_config["Filter"] == {"S3Key": {"Rules": [{"Name": "prefix", "Value": RES.audio_bucket.notify_prefix}]}}
    assert render(topic_config["Topic"]).endswith(f":{RES.uploads_topic.name}")
    assert "NotificationConfiguration" not in _bucket(synth, RES.transcripts_bucket.name)["Properties"]
    # A native bucket property: no BucketNotifications custom resource and its Lambda.
    assert not resources_of(synth.template("Storage"), "Custom::S3BucketNotifications")


def test_ses_identity_for_the_sender(synth):
    synth.assertions("Email").has_resource_properties(
        "AWS::SES::EmailIdentity", {"EmailIdentity": TEST_CONTEXT["hark:emailSender"]}
    )


def test_web_app_behind_cloudfront_with_origin_access_control(synth):
    t = synth.assertions("Web")
    t.resource_count_is("AWS::CloudFront::OriginAccessControl", 1)
    t.has_resource_properties(
        "AWS::CloudFront::OriginAccessControl",
        {
            "OriginAccessControlConfig": Match.object_like(
                {"OriginAccessControlOriginType": "s3", "SigningBehavior": "always"}
            )
        },
    )
    t.resource_count_is("AWS::CloudFront::CloudFrontOriginAccessIdentity", 0)
    t.has_resource_properties(
        "AWS::CloudFront::Distribution",
        {
            "DistributionConfig": Match.object_like(
                {
                    "DefaultRootObject": "index.html",
                    "DefaultCacheBehavior": Match.object_like({"ViewerProtocolPolicy": "redirect-to-https"}),
                    "Logging": Match.any_value(),
                }
            )
        },
    )
    statements = [
        s
        for p in resources_of(synth.template("Web"), "AWS::S3::BucketPolicy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    (oac_read,) = [s for s in statements if s.get("Principal") == {"Service": "cloudfront.amazonaws.com"}]
    assert oac_read["Action"] == "s3:GetObject"
    assert "AWS:SourceArn" in oac_read["Condition"]["StringEquals"]
