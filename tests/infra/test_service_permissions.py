"""Every place in the templates where one AWS service acts on another, and the target's resource policy
(or the acting role) that allows exactly that source, with its conditions.

A resource policy replaces the service's default (an SNS topic policy holding only a TLS deny leaves no
one allowed to publish), so each use is checked against what the template grants, and each grant to a
service principal must be explained by a use found here: no use without a grant, no grant without a use.
"""

from __future__ import annotations

from .conftest import as_list, render, resources_of

# CloudWatch alarms publish to SNS as cloudwatch.amazonaws.com; AWS documents the conditions that keep
# another account's alarms out: aws:SourceArn (the alarm ARNs) and aws:SourceAccount.
ALARM_SOURCE_ARN = "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:*"
# Types whose presence would be a service acting on another that this file does not check yet.
UNCHECKED_SERVICE_SOURCES = (
    "AWS::Events::Rule",
    "AWS::Scheduler::Schedule",
    "AWS::Pipes::Pipe",
    "AWS::Logs::SubscriptionFilter",
    "AWS::Lambda::Url",
)


def all_resources(synth):
    for stack, template in synth.templates.items():
        for rid, resource in template["Resources"].items():
            yield stack, rid, resource


def service_statements(document: dict, service: str) -> list[dict]:
    """Allow statements of a policy document whose principal is the AWS service `service`."""
    return [
        st
        for st in as_list(document["Statement"])
        if st["Effect"] == "Allow" and service in as_list((st.get("Principal") or {}).get("Service", []))
    ]


def only_tls_denies(document: dict) -> bool:
    """The only Deny statements refuse plain HTTP; AWS services call each other over TLS."""
    denies = [st for st in as_list(document["Statement"]) if st["Effect"] == "Deny"]
    return all(st.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}} for st in denies)


def topic_policy(template: dict, topic_ref: dict) -> dict:
    policies = [
        p["Properties"]["PolicyDocument"]
        for p in resources_of(template, "AWS::SNS::TopicPolicy").values()
        if topic_ref in p["Properties"]["Topics"]
    ]
    assert len(policies) == 1, f"expected one policy for topic {topic_ref}, found {len(policies)}"
    return policies[0]


def allows(statements: list[dict], action: str, resource) -> list[dict]:
    return [st for st in statements if action in as_list(st["Action"]) and resource in as_list(st["Resource"])]


# ---- CloudWatch alarm -> SNS topic ----------------------------------------------------------------


def alarm_topics(synth) -> list[tuple[str, str, dict]]:
    """(stack, alarm, topic Ref) for every alarm action that is an SNS topic."""
    found = []
    for stack, rid, resource in all_resources(synth):
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        props = resource["Properties"]
        template = synth.template(stack)
        for key in ("AlarmActions", "OKActions", "InsufficientDataActions"):
            for action in props.get(key, []):
                target = template["Resources"].get(action.get("Ref", ""), {}).get("Type")
                # Step scaling: Application Auto Scaling acts through its service-linked role.
                assert target in ("AWS::SNS::Topic", "AWS::ApplicationAutoScaling::ScalingPolicy"), (
                    f"{stack}/{rid}: alarm action {action} is neither a topic nor a scaling policy"
                )
                if target == "AWS::SNS::Topic":
                    found.append((stack, rid, action))
    return found


def test_every_alarm_topic_lets_cloudwatch_publish_from_this_accounts_alarms_only(synth):
    uses = alarm_topics(synth)
    assert uses, "no alarm notifies a topic"
    for stack, topic in sorted({(s, t["Ref"]) for s, _, t in uses}):
        template = synth.template(stack)
        document = topic_policy(template, {"Ref": topic})
        granted = allows(service_statements(document, "cloudwatch.amazonaws.com"), "sns:Publish", {"Ref": topic})
        assert granted, (
            f"{stack}: nothing allows cloudwatch.amazonaws.com to publish to {topic}: alarms fire into nothing"
        )
        for st in granted:
            conditions = st.get("Condition", {})
            assert render(conditions["ArnLike"]["aws:SourceArn"]) == ALARM_SOURCE_ARN, st
            assert conditions["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}, st
        assert only_tls_denies(document)


def test_encrypted_alarm_topics_let_cloudwatch_use_their_key(synth):
    for stack, _, topic in alarm_topics(synth):
        template = synth.template(stack)
        key = template["Resources"][topic["Ref"]]["Properties"].get("KmsMasterKeyId")
        if key is None:
            continue
        key_id = key["Fn::GetAtt"][0]
        document = template["Resources"][key_id]["Properties"]["KeyPolicy"]
        statements = service_statements(document, "cloudwatch.amazonaws.com")
        actions = {a for st in statements for a in as_list(st["Action"])}
        assert {"kms:Decrypt", "kms:GenerateDataKey*"} <= actions, f"{stack}: {key_id} refuses CloudWatch"
        for st in statements:
            assert st["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}, st


# ---- S3 bucket notifications -> SNS / SQS / Lambda --------------------------------------------------


def bucket_notifications(synth) -> list[tuple[str, dict, str]]:
    """(bucket ARN, bucket properties, topic ARN) for each S3 event notification."""
    found = []
    for stack, rid, resource in all_resources(synth):
        if resource["Type"] != "AWS::S3::Bucket":
            continue
        config = resource["Properties"].get("NotificationConfiguration")
        if not config:
            continue
        assert set(config) <= {"TopicConfigurations"}, f"{stack}/{rid}: unchecked notification kind {set(config)}"
        name = render(resource["Properties"]["BucketName"])
        for topic in config["TopicConfigurations"]:
            found.append((f"arn:${{AWS::Partition}}:s3:::{name}", resource["Properties"], render(topic["Topic"])))
    return found


def topic_by_arn(synth, arn: str) -> tuple[str, str]:
    """The (stack, logical id) of the topic whose name ends the ARN."""
    name = arn.rsplit(":", 1)[1]
    found = [
        (stack, rid)
        for stack, rid, resource in all_resources(synth)
        if resource["Type"] == "AWS::SNS::Topic" and resource["Properties"].get("TopicName") == name
    ]
    assert len(found) == 1, f"topic {arn}: {found}"
    return found[0]


def test_bucket_notifications_reach_topics_that_allow_that_bucket_of_this_account(synth):
    notifications = bucket_notifications(synth)
    assert notifications, "no bucket notification found"
    for bucket, _, topic_arn in notifications:
        assert topic_arn == "arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:" + topic_arn.rsplit(":", 1)[1]
        stack, topic = topic_by_arn(synth, topic_arn)
        document = topic_policy(synth.template(stack), {"Ref": topic})
        granted = allows(service_statements(document, "s3.amazonaws.com"), "sns:Publish", {"Ref": topic})
        assert len(granted) == 1, f"{topic}: S3 may not publish"
        conditions = granted[0]["Condition"]
        assert render(conditions["ArnEquals"]["aws:SourceArn"]) == bucket
        assert conditions["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
        assert only_tls_denies(document)
        # S3 cannot publish to a topic under the AWS-managed SNS key (it may not use that key).
        assert "KmsMasterKeyId" not in synth.template(stack)["Resources"][topic]["Properties"]


# ---- SNS topic -> SQS queue -------------------------------------------------------------------------


def test_every_queue_subscription_lets_exactly_its_topic_send(synth):
    subscriptions = [
        (stack, r["Properties"])
        for stack, _, r in all_resources(synth)
        if r["Type"] == "AWS::SNS::Subscription" and r["Properties"]["Protocol"] == "sqs"
    ]
    assert subscriptions
    targets = [(stack, sub["Endpoint"], sub) for stack, sub in subscriptions]
    # where SNS puts what it cannot deliver (the subscription's redrive policy): a queue it sends to too
    targets += [
        (stack, sub["RedrivePolicy"]["deadLetterTargetArn"], sub)
        for stack, sub in subscriptions
        if "RedrivePolicy" in sub
    ]
    for stack, endpoint, sub in targets:
        template = synth.template(stack)
        queue = endpoint["Fn::GetAtt"][0]
        policies = [
            p["Properties"]["PolicyDocument"]
            for p in resources_of(template, "AWS::SQS::QueuePolicy").values()
            if {"Ref": queue} in p["Properties"]["Queues"]
        ]
        assert len(policies) == 1, queue
        granted = allows(
            service_statements(policies[0], "sns.amazonaws.com"), "sqs:SendMessage", {"Fn::GetAtt": [queue, "Arn"]}
        )
        assert [st["Condition"] for st in granted] == [{"ArnEquals": {"aws:SourceArn": sub["TopicArn"]}}], queue
        assert only_tls_denies(policies[0])
        # SNS may not use the AWS-managed SQS KMS key: the queue is encrypted with SSE-SQS instead.
        props = template["Resources"][queue]["Properties"]
        assert props.get("SqsManagedSseEnabled") is True and "KmsMasterKeyId" not in props, queue


# ---- API Gateway -> Lambda (integrations and the authorizer) ----------------------------------------


def lambda_permissions(template: dict, principal: str) -> list[dict]:
    return [
        p["Properties"]
        for p in resources_of(template, "AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == principal
    ]


def function_of_uri(uri) -> str:
    """The function logical id an integration or authorizer URI invokes."""
    parts = uri["Fn::Join"][1]
    (function,) = {p["Fn::GetAtt"][0] for p in parts if isinstance(p, dict) and "Fn::GetAtt" in p}
    return function


def method_paths(template: dict) -> dict[str, str]:
    """Method logical id -> its path with path parameters as API Gateway's permission ARNs write them ('*')."""
    from .conftest import api_routes

    by_props = {id(props): path for (_, path), props in api_routes(template).items()}
    out = {}
    for rid, method in resources_of(template, "AWS::ApiGateway::Method").items():
        path = by_props[id(method["Properties"])]
        out[rid] = "/".join("*" if part.startswith("{") else part for part in path.split("/"))
    return out


def test_every_lambda_integration_has_a_permission_for_exactly_its_method(synth):
    template = synth.template("Api")
    (api,) = resources_of(template, "AWS::ApiGateway::RestApi")
    (stage,) = resources_of(template, "AWS::ApiGateway::Stage")
    permissions = lambda_permissions(template, "apigateway.amazonaws.com")
    paths = method_paths(template)
    expected = set()
    for rid, method in resources_of(template, "AWS::ApiGateway::Method").items():
        integration = method["Properties"]["Integration"]
        if integration["Type"] == "MOCK":  # CORS preflight: answered by API Gateway itself
            continue
        assert integration["Type"] == "AWS_PROXY", rid
        function = function_of_uri(integration["Uri"])
        verb = method["Properties"]["HttpMethod"]
        prefix = "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${" + api + "}/"
        # the stage's requests, and the console's test invocations
        expected.add((function, f"{prefix}${{{stage}}}/{verb}{paths[rid]}"))
        expected.add((function, f"{prefix}test-invoke-stage/{verb}{paths[rid]}"))
    granted = {
        (p["FunctionName"]["Fn::GetAtt"][0], render(p["SourceArn"]))
        for p in permissions
        if p["Action"] == "lambda:InvokeFunction" and "/authorizers/" not in render(p["SourceArn"])
    }
    assert expected, "no Lambda integration found"
    assert granted == expected


def test_the_authorizer_function_may_be_invoked_by_its_authorizer_only(synth):
    template = synth.template("Api")
    (api,) = resources_of(template, "AWS::ApiGateway::RestApi")
    authorizers = resources_of(template, "AWS::ApiGateway::Authorizer")
    assert authorizers
    permissions = lambda_permissions(template, "apigateway.amazonaws.com")
    for rid, authorizer in authorizers.items():
        function = function_of_uri(authorizer["Properties"]["AuthorizerUri"])
        granted = [p for p in permissions if p["FunctionName"] == {"Fn::GetAtt": [function, "Arn"]}]
        assert [render(p["SourceArn"]) for p in granted] == [
            f"arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{{api}}}/authorizers/${{{rid}}}"
        ]


# ---- Lambda event source -> SQS (the function's role) ------------------------------------------------


def test_every_sqs_event_source_is_readable_by_its_functions_role(synth):
    from .conftest import grants

    mappings = [
        (stack, r["Properties"])
        for stack, _, r in all_resources(synth)
        if r["Type"] == "AWS::Lambda::EventSourceMapping"
    ]
    assert mappings
    for stack, mapping in mappings:
        template = synth.template(stack)
        function = template["Resources"][mapping["FunctionName"]["Ref"]]
        role = function["Properties"]["Role"]["Fn::GetAtt"][0]
        statements = [
            st
            for p in resources_of(template, "AWS::IAM::Policy").values()
            if {"Ref": role} in p["Properties"]["Roles"]
            for st in p["Properties"]["PolicyDocument"]["Statement"]
        ]
        queue = render(mapping["EventSourceArn"])
        assert queue.startswith("arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:")
        granted = {a for a, r in grants(statements) if r == queue}
        # Lambda's poller, as the function's role (AWS Lambda developer guide, "Using Lambda with Amazon SQS")
        assert {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"} <= granted, (queue, granted)
        trust = template["Resources"][role]["Properties"]["AssumeRolePolicyDocument"]
        assert service_statements(trust, "lambda.amazonaws.com")


# ---- CloudFront -> S3 (origin access control) ---------------------------------------------------------


def test_cloudfront_reads_the_site_bucket_through_its_own_distribution_only(synth):
    template = synth.template("Web")
    distributions = resources_of(template, "AWS::CloudFront::Distribution")
    assert distributions
    for did, distribution in distributions.items():
        for origin in distribution["Properties"]["DistributionConfig"]["Origins"]:
            assert "S3OriginConfig" in origin and "OriginAccessControlId" in origin, origin
            bucket = origin["DomainName"]["Fn::GetAtt"][0]
            oac = template["Resources"][origin["OriginAccessControlId"]["Fn::GetAtt"][0]]["Properties"]
            assert oac["OriginAccessControlConfig"]["SigningBehavior"] == "always"
            (policy,) = [
                p["Properties"]["PolicyDocument"]
                for p in resources_of(template, "AWS::S3::BucketPolicy").values()
                if p["Properties"]["Bucket"] == {"Ref": bucket}
            ]
            granted = service_statements(policy, "cloudfront.amazonaws.com")
            assert [st["Resource"] for st in granted] == [{"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/*"]]}]
            assert [st["Action"] for st in granted] == ["s3:GetObject"]
            assert [render(st["Condition"]["StringEquals"]["AWS:SourceArn"]) for st in granted] == [
                "arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/${" + did + "}"
            ]
            assert only_tls_denies(policy)


# ---- S3 server access logs -> the logs bucket ----------------------------------------------------------


def test_every_access_logging_bucket_lets_s3_write_for_exactly_its_sources(synth):
    found = 0
    for stack, template in synth.templates.items():
        buckets = resources_of(template, "AWS::S3::Bucket")
        for rid, bucket in buckets.items():
            logging = bucket["Properties"].get("LoggingConfiguration")
            if not logging:
                continue
            found += 1
            target = logging["DestinationBucketName"]["Ref"]
            (policy,) = [
                p["Properties"]["PolicyDocument"]
                for p in resources_of(template, "AWS::S3::BucketPolicy").values()
                if p["Properties"]["Bucket"] == {"Ref": target}
            ]
            granted = [
                st
                for st in service_statements(policy, "logging.s3.amazonaws.com")
                if st["Condition"]["ArnLike"]["aws:SourceArn"] == {"Fn::GetAtt": [rid, "Arn"]}
            ]
            assert len(granted) == 1, f"{stack}/{rid}: its access logs cannot be written to {target}"
            assert granted[0]["Action"] == "s3:PutObject"
            assert granted[0]["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
            assert render(granted[0]["Resource"]).endswith("/" + render(logging["LogFilePrefix"]) + "*")
    assert found


# ---- roles that services assume -------------------------------------------------------------------------


def test_each_role_is_assumable_by_the_service_that_uses_it(synth):
    uses = []  # (stack, role, service that assumes it)
    for stack, template in synth.templates.items():
        for fn in resources_of(template, "AWS::Lambda::Function").values():
            uses.append((stack, fn["Properties"]["Role"]["Fn::GetAtt"][0], "lambda.amazonaws.com"))
        for task in resources_of(template, "AWS::ECS::TaskDefinition").values():
            for key in ("TaskRoleArn", "ExecutionRoleArn"):
                uses.append((stack, task["Properties"][key]["Fn::GetAtt"][0], "ecs-tasks.amazonaws.com"))
        for flow in resources_of(template, "AWS::EC2::FlowLog").values():
            uses.append(
                (stack, flow["Properties"]["DeliverLogsPermissionArn"]["Fn::GetAtt"][0], "vpc-flow-logs.amazonaws.com")
            )
        for profile in resources_of(template, "AWS::IAM::InstanceProfile").values():
            for role in profile["Properties"]["Roles"]:
                uses.append((stack, role["Ref"], "ec2.amazonaws.com"))
        for rid, role in resources_of(template, "AWS::IAM::Role").items():
            trusted = {
                s
                for st in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
                for s in as_list((st.get("Principal") or {}).get("Service", []))
            }
            assert len(trusted) == 1, f"{stack}/{rid} trusts {trusted}"
    assert uses
    for stack, role, service in uses:
        document = synth.template(stack)["Resources"][role]["Properties"]["AssumeRolePolicyDocument"]
        assert [st["Action"] for st in service_statements(document, service)] == ["sts:AssumeRole"], (stack, role)


# ---- nothing else -----------------------------------------------------------------------------------------


def test_no_service_source_this_file_does_not_check(synth):
    unchecked = [(s, rid, r["Type"]) for s, rid, r in all_resources(synth) if r["Type"] in UNCHECKED_SERVICE_SOURCES]
    assert not unchecked, f"check these sources' targets here first: {unchecked}"


def test_every_grant_to_a_service_is_explained_by_a_use_above(synth):
    """No resource policy lets a service in that no use found above needs."""
    explained = {
        "AWS::SNS::TopicPolicy": {"cloudwatch.amazonaws.com", "s3.amazonaws.com"},
        "AWS::SQS::QueuePolicy": {"sns.amazonaws.com"},
        "AWS::S3::BucketPolicy": {"cloudfront.amazonaws.com", "logging.s3.amazonaws.com"},
        "AWS::KMS::Key": {"cloudwatch.amazonaws.com"},
    }
    for stack, rid, resource in all_resources(synth):
        rtype = resource["Type"]
        if rtype == "AWS::Lambda::Permission":
            assert resource["Properties"]["Principal"] == "apigateway.amazonaws.com", (stack, rid)
            continue
        if rtype not in explained:
            continue
        document = resource["Properties"]["KeyPolicy" if rtype == "AWS::KMS::Key" else "PolicyDocument"]
        services = {
            s
            for st in as_list(document["Statement"])
            if st["Effect"] == "Allow"
            for s in as_list((st.get("Principal") or {}).get("Service", []))
        }
        assert services <= explained[rtype], f"{stack}/{rid}: {services - explained[rtype]} allowed, no use found"
