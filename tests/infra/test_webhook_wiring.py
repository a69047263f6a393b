"""The webhook path as the synthesised templates wire it: its queue and DLQ, the worker's service, role and
network, and the Retry-After on API Gateway's own 429. Expected values come from hark.domain.resources, the
settings' defaults and hark.api.http_api, never from the infra code."""

from __future__ import annotations

from hark.api.http_api import THROTTLE_RETRY_AFTER_SECONDS
from hark.domain.settings import Settings

from .conftest import grants, resources_of, role_statements, template_resources
from .test_contracts import gateway_responses

DELAYS = Settings.model_fields["webhook_retry_delays_seconds"].default_factory()  # type: ignore[misc]


def queue_by_name(template: dict, name: str) -> tuple[str, dict]:
    [(rid, queue)] = [
        (rid, q["Properties"])
        for rid, q in resources_of(template, "AWS::SQS::Queue").items()
        if q["Properties"].get("QueueName") == name
    ]
    return rid, queue


def test_webhook_queue_has_a_dlq_after_the_last_retry_and_keeps_messages_past_a_day_of_retries(synth):
    deployed = template_resources().webhook_queue
    template = synth.template("Queues")
    dlq_id, dlq = queue_by_name(template, deployed.dlq_name)
    _, queue = queue_by_name(template, deployed.name)
    # One attempt, then one per retry delay: the message reaches the DLQ after the last one.
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
        "maxReceiveCount": len(DELAYS) + 1,
    }
    # Every retry's wait fits in one visibility change (SQS: 12 h), and all of them in the retention.
    assert max(DELAYS) <= 12 * 3600
    assert queue["MessageRetentionPeriod"] > sum(DELAYS) + len(DELAYS) * queue["VisibilityTimeout"]
    assert 20 * 3600 <= sum(DELAYS) <= 24 * 3600  # "retries with backoff for up to a day"
    assert queue["SqsManagedSseEnabled"] is True and dlq["SqsManagedSseEnabled"] is True


def test_webhook_worker_service_role_and_network(synth):
    template = synth.template("Workers")
    deployed = template_resources()
    [task] = [
        t["Properties"]
        for t in resources_of(template, "AWS::ECS::TaskDefinition").values()
        if t["Properties"]["ContainerDefinitions"][0]["Command"] == ["python", "-m", "worker.webhooks"]
    ]
    assert task["RequiresCompatibilities"] == ["FARGATE"]
    assert task["ContainerDefinitions"][0]["ReadonlyRootFilesystem"] is True
    queue_arn = "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:" + deployed.webhook_queue.name
    granted = grants(role_statements(template, "WebhookTaskRole"))
    for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"):
        assert (action, queue_arn) in granted
    # Least privilege: its own queue, the jobs table's items, presigning transcripts; nothing else.
    assert {a.split(":")[0] for a, _ in granted} == {"sqs", "dynamodb", "s3"}
    assert {r for a, r in granted if a.startswith("sqs:")} == {queue_arn}
    assert {a for a, _ in granted if a.startswith("dynamodb:")} == {"dynamodb:GetItem", "dynamodb:UpdateItem"}
    assert {a for a, _ in granted if a.startswith("s3:")} == {"s3:GetObject"}
    # The transcription worker queues the deliveries.
    transcription = grants(role_statements(template, "TranscriptionTaskRole"))
    assert ("sqs:SendMessage", queue_arn) in transcription
    # Out on https only: receivers are https in deployments, and the AWS APIs answer on 443.
    [service] = [
        s["Properties"]
        for s in resources_of(template, "AWS::ECS::Service").values()
        if s["Properties"].get("ServiceName") == f"{deployed.stack}-webhooks"
    ]
    [group_ref] = service["NetworkConfiguration"]["AwsvpcConfiguration"]["SecurityGroups"]
    group = template["Resources"][group_ref["Fn::GetAtt"][0]]["Properties"]
    assert [(e["IpProtocol"], e["FromPort"], e["ToPort"]) for e in group["SecurityGroupEgress"]] == [("tcp", 443, 443)]


def test_api_gateways_own_429_says_when_to_retry(synth):
    throttled = gateway_responses(synth)["THROTTLED"]
    assert throttled["status"] == 429
    assert throttled["headers"]["Retry-After"] == str(THROTTLE_RETRY_AFTER_SECONDS)
