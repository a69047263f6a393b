"""The live service in the synthesised Workers template (infra/hark_infra/live.py): an HTTPS load balancer in
front of `python -m worker.live` on the GPU capacity provider, scaled on requests per task and woken from
zero; and the contract between them, the balancer's health check and forwarded requests driven into the real
app (worker/live/app.py) as the balancer sends them."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient
from uvicorn import Config

from hark.domain.settings import Settings
from worker.live.__main__ import DrainingServer
from worker.live.app import create_app
from worker.live.load import report

from .conftest import (
    CUSTOM_DOMAIN_CONTEXT,
    TEST_CONTEXT,
    one,
    render,
    resources_of,
    role_statements,
    template_resources,
)

CERTIFICATE = TEST_CONTEXT["hark:liveCertificateArn"]


def live_container(template: dict) -> dict:
    (task,) = [t for k, t in resources_of(template, "AWS::ECS::TaskDefinition").items() if k.startswith("LiveTask")]
    (container,) = task["Properties"]["ContainerDefinitions"]
    return container


def test_https_only_with_the_certificate_and_an_idle_timeout_for_long_requests(synth):
    template = synth.template("Workers")
    (listener,) = resources_of(template, "AWS::ElasticLoadBalancingV2::Listener").values()
    props = listener["Properties"]
    assert props["Protocol"] == "HTTPS" and props["Port"] == 443
    assert props["Certificates"] == [{"CertificateArn": CERTIFICATE}]
    assert props["SslPolicy"].startswith("ELBSecurityPolicy-TLS13")
    (action,) = props["DefaultActions"]
    assert action["Type"] == "forward"  # every path (/v1/audio/..., /v1/models, later /v1/live) to the service
    balancer = one(template, "AWS::ElasticLoadBalancingV2::LoadBalancer")["Properties"]
    assert balancer["Scheme"] == "internet-facing"
    attributes = {a["Key"]: a["Value"] for a in balancer["LoadBalancerAttributes"]}
    # A sync request is silent while its file is transcribed (minutes for 25 MB on a busy GPU): not cut at 60 s.
    assert int(attributes["idle_timeout.timeout_seconds"]) >= 300
    assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"
    ingress = [
        rule
        for group in resources_of(template, "AWS::EC2::SecurityGroup").values()
        for rule in group["Properties"].get("SecurityGroupIngress", [])
    ]
    public = [rule for rule in ingress if rule.get("CidrIp") == "0.0.0.0/0"]
    assert public and all(i["FromPort"] == i["ToPort"] == 443 for i in public)  # nothing else is open to all


def test_with_a_hosted_zone_the_live_domain_is_an_alias_of_the_balancer(synth, custom_domain_synth):
    template = custom_domain_synth.template("Workers")
    (balancer,) = resources_of(template, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    (record,) = resources_of(template, "AWS::Route53::RecordSet").values()
    props = record["Properties"]
    assert (props["HostedZoneId"], props["Name"], props["Type"]) == (
        CUSTOM_DOMAIN_CONTEXT["hark:hostedZoneId"],
        CUSTOM_DOMAIN_CONTEXT["hark:liveDomain"],
        "A",
    )
    # Route 53 aliases a load balancer by its DNS name and its own canonical hosted zone (CloudFormation's GetAtt)
    assert props["AliasTarget"]["DNSName"] == {"Fn::GetAtt": [balancer, "DNSName"]}
    assert props["AliasTarget"]["HostedZoneId"] == {"Fn::GetAtt": [balancer, "CanonicalHostedZoneID"]}
    assert not resources_of(synth.template("Workers"), "AWS::Route53::RecordSet")  # no zone given: the operator's


def test_the_task_runs_the_live_service_from_the_workers_image_on_the_gpu_capacity(synth):
    template = synth.template("Workers")
    container = live_container(template)
    assert container["Command"] == ["python", "-m", "worker.live"]
    transcription = next(
        t["Properties"]["ContainerDefinitions"][0]
        for k, t in resources_of(template, "AWS::ECS::TaskDefinition").items()
        if k.startswith("TranscriptionTask")
    )
    assert container["Image"] == transcription["Image"]  # one image: the same decoder, engine and model
    assert {"Type": "GPU", "Value": "1"} in container["ResourceRequirements"]
    assert container["PortMappings"] == [{"ContainerPort": Settings().live_port, "Protocol": "tcp"}]
    services = resources_of(template, "AWS::ECS::Service")
    service = next(s for k, s in services.items() if k.startswith("LiveService"))
    workers = next(s for k, s in services.items() if k.startswith("TranscriptionService"))
    assert service["Properties"]["CapacityProviderStrategy"] == workers["Properties"]["CapacityProviderStrategy"]
    assert "DesiredCount" not in service["Properties"]  # a deploy never resets the scaled count
    # its AWS needs: an API key's record (GetItem) and its rate-limit count and last use (UpdateItem), in the
    # keys table alone, as the API's authorizer (hark.api.auth.identify); the browser tickets (below); and its
    # own target's health (below)
    keys, tickets, health = role_statements(template, "LiveRole")
    assert keys["Effect"] == "Allow" and sorted(keys["Action"]) == ["dynamodb:GetItem", "dynamodb:UpdateItem"]
    assert template_resources().api_keys_table.name in json.dumps(keys["Resource"])
    assert (tickets["Sid"], health["Sid"]) == ("LiveTicketsTable", "OwnTargetHealth")


def test_every_task_shares_the_browser_tickets_in_one_table(synth):
    """hark.domain.live_tickets' table (Tables stack): keyed by the ticket's hash, expired ones removed by TTL;
    the live role may put a ticket and delete one (the redeem) there, on that table's ARN alone."""
    res = template_resources()
    (table,) = [
        t["Properties"]
        for t in resources_of(synth.template("Tables"), "AWS::DynamoDB::GlobalTable").values()
        if t["Properties"]["TableName"] == res.live_tickets_table.name
    ]
    assert table["KeySchema"] == [{"AttributeName": "ticket_sha256", "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": "ticket_sha256", "AttributeType": "S"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    (tickets,) = [
        s for s in role_statements(synth.template("Workers"), "LiveRole") if s.get("Sid") == "LiveTicketsTable"
    ]
    arn = "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/" + res.live_tickets_table.name
    assert tickets["Effect"] == "Allow" and sorted(tickets["Action"]) == ["dynamodb:DeleteItem", "dynamodb:PutItem"]
    assert render(tickets["Resource"]) == arn  # one table, no index, no wildcard


def test_the_credential_check_trusts_what_the_apis_authorizer_trusts(synth):
    env = {e["Name"]: e["Value"] for e in live_container(synth.template("Workers"))["Environment"]}
    functions = resources_of(synth.template("Api"), "AWS::Lambda::Function").values()
    (authorizer,) = [
        f["Properties"]["Environment"]["Variables"]
        for f in functions
        if f["Properties"]["Environment"]["Variables"].get("POWERTOOLS_SERVICE_NAME") == "authorizer"
    ]
    for name in ("HARK_ISSUER", "HARK_JWKS_URL", "HARK_AUTHORIZED_PARTIES"):
        assert env[name] == authorizer[name], name


def test_the_task_watches_its_own_target_in_the_listeners_target_group(synth):
    """The task's contract with worker/live/target.py: the group's ARN in HARK_LIVE_TARGET_GROUP_ARN (the one
    the listener forwards to, by Ref), DescribeTargetHealth allowed on '*' (it has no resource-level
    permissions) and that finding acknowledged for cdk-nag with its reason."""
    template = synth.template("Workers")
    env = {e["Name"]: e["Value"] for e in live_container(template)["Environment"]}
    (listener,) = resources_of(template, "AWS::ElasticLoadBalancingV2::Listener").values()
    (action,) = listener["Properties"]["DefaultActions"]
    assert env["HARK_LIVE_TARGET_GROUP_ARN"] == action["TargetGroupArn"]
    (group_id,) = resources_of(template, "AWS::ElasticLoadBalancingV2::TargetGroup")
    assert action["TargetGroupArn"] == {"Ref": group_id}
    (health,) = [s for s in role_statements(template, "LiveRole") if s.get("Sid") == "OwnTargetHealth"]
    assert health == {
        "Sid": "OwnTargetHealth",
        "Effect": "Allow",
        "Action": "elasticloadbalancing:DescribeTargetHealth",
        "Resource": "*",
    }
    (policy,) = [p for k, p in resources_of(template, "AWS::IAM::Policy").items() if k.startswith("LiveRole")]
    acknowledged = policy["Metadata"]["cdk_nag"]["rules_to_suppress"]
    assert "AwsSolutions-IAM5[Resource::*]" in {r["id"] for r in acknowledged}  # cdk-nag's finding, its reason


def live_policies(template: dict) -> list[dict]:
    return [
        p["Properties"]
        for k, p in resources_of(template, "AWS::ApplicationAutoScaling::ScalingPolicy").items()
        if k.startswith("LiveService")
    ]


def test_scaled_on_requests_per_task_from_the_warm_tasks_and_woken_from_zero(synth):
    template = synth.template("Workers")
    targets = resources_of(template, "AWS::ApplicationAutoScaling::ScalableTarget")
    (target,) = [t["Properties"] for k, t in targets.items() if k.startswith("LiveService")]
    assert target["MinCapacity"] == 0 and target["MaxCapacity"] >= 1  # warm tasks: off by default
    policies = live_policies(template)
    tracking = [
        p["TargetTrackingScalingPolicyConfiguration"] for p in policies if p["PolicyType"] == "TargetTrackingScaling"
    ]
    (spec,) = [t["PredefinedMetricSpecification"] for t in tracking if "PredefinedMetricSpecification" in t]
    assert spec["PredefinedMetricType"] == "ALBRequestCountPerTarget"
    (wake,) = [p for p in policies if p["PolicyType"] == "StepScaling"]
    steps = wake["StepScalingPolicyConfiguration"]["StepAdjustments"]
    assert [s["ScalingAdjustment"] for s in steps] == [1]
    alarms = [a["Properties"] for k, a in resources_of(template, "AWS::CloudWatch::Alarm").items() if "LiveWake" in k]
    (alarm,) = alarms
    expression = next(m["Expression"] for m in alarm["Metrics"] if "Expression" in m)
    assert "healthy" in expression and "requests" in expression
    metrics = {m["MetricStat"]["Metric"]["MetricName"] for m in alarm["Metrics"] if "MetricStat" in m}
    assert metrics == {"RequestCount", "HealthyHostCount"}


def test_scaled_on_the_streams_each_task_reports_open_as_its_reports_define_the_metric(synth, capsys):
    """The open-streams policy reads a metric the service's own report makes (an EMF line from worker/live/
    load.py): its namespace, name and dimensions, as CloudWatch extracts one metric per dimension set."""
    report(streams=3, requests=0, task="task-a")
    emf = json.loads(capsys.readouterr().out)
    (directive,) = emf["_aws"]["CloudWatchMetrics"]
    reported = [
        (directive["Namespace"], metric["Name"], {(d, emf[d]) for d in dims})
        for metric in directive["Metrics"]
        for dims in directive["Dimensions"]
    ]
    (streams,) = [
        p["TargetTrackingScalingPolicyConfiguration"]
        for p in live_policies(synth.template("Workers"))
        if "CustomizedMetricSpecification" in p.get("TargetTrackingScalingPolicyConfiguration", {})
    ]
    spec = streams["CustomizedMetricSpecification"]
    dimensions = {(d["Name"], d["Value"]) for d in spec["Dimensions"]}
    assert (spec["Namespace"], spec["MetricName"], dimensions) in reported
    assert len(spec["Dimensions"]) == 1  # all tasks: each reports once a period, so Average is the mean per task
    assert spec["Statistic"] == "Average"
    from hark_infra.config import HarkConfig  # the CDK app's package: on the path once the fixtures synthesised it

    assert streams["TargetValue"] == HarkConfig.from_lookup(TEST_CONTEXT.get).live_streams_per_task


def test_a_stopped_task_drains_its_connections_then_its_streams_end_within_the_stop_timeout(synth, monkeypatch):
    """The balancer lets a draining task's connections run for the deregistration delay (then ECS sends
    SIGTERM): at least as long as it lets a request be silent. After SIGTERM the service ends its streams
    within the stop timeout less the workers' margin (worker/live/__main__.py) with the timeout it reads."""
    template = synth.template("Workers")
    group = one(template, "AWS::ElasticLoadBalancingV2::TargetGroup")["Properties"]
    delay = {a["Key"]: a["Value"] for a in group["TargetGroupAttributes"]}["deregistration_delay.timeout_seconds"]
    balancer = one(template, "AWS::ElasticLoadBalancingV2::LoadBalancer")["Properties"]
    idle = {a["Key"]: a["Value"] for a in balancer["LoadBalancerAttributes"]}["idle_timeout.timeout_seconds"]
    assert int(delay) >= int(idle)
    container = live_container(template)
    for variable in container["Environment"]:  # the settings the task's service reads, references apart
        if variable["Name"].startswith("HARK_") and isinstance(variable["Value"], str):
            monkeypatch.setenv(variable["Name"], variable["Value"])
    app = create_app(Settings())
    drain = DrainingServer(Config(app), app.state.streams, Settings().stop_timeout_seconds).drain_seconds
    assert 0 < drain < container["StopTimeout"]


def test_the_balancers_health_check_and_requests_reach_the_app_as_it_answers_them(synth):
    """The target group's health check (path, port, the codes it calls healthy) against the real app, and a
    request the listener forwards without a credential: OpenAI's 401."""
    template = synth.template("Workers")
    group = one(template, "AWS::ElasticLoadBalancingV2::TargetGroup")["Properties"]
    assert group["TargetType"] == "ip" and group["Port"] == Settings().live_port
    with TestClient(create_app(Settings())) as app:
        health = app.get(group["HealthCheckPath"])
        assert str(health.status_code) == group["Matcher"]["HttpCode"]
        refused = app.get("/v1/models")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"


@pytest.mark.parametrize(
    ("context", "refusal"),
    [
        ({"hark:liveCertificateArn": "arn:aws:acm:us-east-1:123:certificate/x"}, "liveCertificateArn"),
        ({"hark:liveWarmTasks": 5, "hark:liveMaxTasks": 2}, "liveWarmTasks"),
        ({"hark:liveDomain": ""}, "liveDomain and hark:liveCertificateArn go together"),  # no name for the page
        ({"hark:liveCertificateArn": "", "hark:liveDomain": "live.hark.example"}, "go together"),  # no HTTPS
        ({"hark:liveDomain": "https://live.hark.example/v1"}, "a host name alone"),
    ],
)
def test_settings_that_cannot_deploy_are_refused_with_what_to_change(context, refusal):
    from hark_infra.config import HarkConfig

    with pytest.raises(ValueError, match=refusal):
        HarkConfig.from_lookup({**TEST_CONTEXT, **context}.get)
