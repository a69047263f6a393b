"""GPU workers on ECS (EC2 g4dn through a launch template, capacity provider), the Fargate notifier, and
scaling on expected wait with the thresholds of hark.ops.scaling."""

from __future__ import annotations

import re

import pytest
from aws_cdk.assertions import Match

from hark.ops.scaling import DEFAULT_POLICY as P
from hark.ops.scaling import GPU_INSTANCE_VCPUS
from hark.ops.scaling import NOTIFIER_SCALING as N

from .conftest import TEST_CONTEXT, one, resources_of
from .test_monitoring_stack import _worker_emf

STACK = TEST_CONTEXT["hark:stack"]
# The spot pool's instance types as AWS lists them (EC2 accelerated computing instance specifications):
# (GPUs, vCPUs, memory GiB). Each must take exactly one transcription task.
GPU_INSTANCES = {
    "g4dn.xlarge": (1, 4, 16),
    "g4dn.2xlarge": (1, 8, 32),
    "g5.xlarge": (1, 4, 16),
    "g6.xlarge": (1, 4, 16),
}
# Memory an instance keeps for the OS and the ECS agent: ECS registers less than the instance size.
ECS_MEMORY_OVERHEAD_MIB = 1024


def test_gpu_instances_from_a_launch_template_on_the_al2023_ecs_gpu_ami(synth):
    template = synth.template("Workers")
    data = one(template, "AWS::EC2::LaunchTemplate")["Properties"]["LaunchTemplateData"]
    assert data["InstanceType"] == "g4dn.xlarge"
    image_param = data["ImageId"]["Ref"]
    assert (
        template["Parameters"][image_param]["Default"]
        == "/aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended/image_id"
    )
    (volume,) = data["BlockDeviceMappings"]
    assert volume["Ebs"]["Encrypted"] is True and volume["Ebs"]["VolumeType"] == "gp3"
    assert not resources_of(template, "AWS::AutoScaling::LaunchConfiguration")


def test_asg_mixes_spot_and_on_demand_and_scales_to_zero(synth):
    asg = one(synth.template("Workers"), "AWS::AutoScaling::AutoScalingGroup")["Properties"]
    assert asg["MinSize"] == "0" and asg["MaxSize"] == str(P.max_workers)
    dist = asg["MixedInstancesPolicy"]["InstancesDistribution"]
    assert dist["OnDemandBaseCapacity"] >= 0 and 0 < dist["OnDemandPercentageAboveBaseCapacity"] < 100
    assert dist["SpotAllocationStrategy"] == "price-capacity-optimized"
    overrides = [o["InstanceType"] for o in asg["MixedInstancesPolicy"]["LaunchTemplate"]["Overrides"]]
    assert overrides[0] == "g4dn.xlarge"  # on-demand capacity takes the list in order: cheapest first
    assert set(overrides) == set(GPU_INSTANCES)
    assert asg["NewInstancesProtectedFromScaleIn"] is True  # managed termination protection


def test_capacity_provider_with_managed_scaling_and_draining(synth):
    t = synth.assertions("Workers")
    t.has_resource_properties(
        "AWS::ECS::CapacityProvider",
        {
            "AutoScalingGroupProvider": {
                "AutoScalingGroupArn": Match.any_value(),
                "ManagedScaling": {"Status": "ENABLED", "TargetCapacity": 100},
                "ManagedTerminationProtection": "ENABLED",
                "ManagedDraining": "ENABLED",
            }
        },
    )
    t.has_resource_properties(
        "AWS::ECS::Cluster",
        {"ClusterName": f"{STACK}-workers", "ClusterSettings": [{"Name": "containerInsights", "Value": "enabled"}]},
    )


def _container(synth, family: str) -> tuple[dict, dict]:
    (task,) = [
        r["Properties"]
        for r in resources_of(synth.template("Workers"), "AWS::ECS::TaskDefinition").values()
        if r["Properties"]["Family"] == family
    ]
    (container,) = task["ContainerDefinitions"]
    return task, container


def test_transcription_task_requests_a_gpu_and_drains_on_stop(synth):
    task, c = _container(synth, f"{STACK}-transcription")
    assert task["RequiresCompatibilities"] == ["EC2"]
    assert c["ResourceRequirements"] == [{"Type": "GPU", "Value": "1"}]
    assert c["StopTimeout"] == 120
    assert c["Command"] == ["python", "-m", "worker.transcription"]
    env = {e["Name"]: e["Value"] for e in c["Environment"]}
    assert env["HARK_STACK"] == STACK and env["HARK_MODEL_DIR"] == "/opt/hark/model"
    assert env["HARK_DEVICE"] == "cuda"
    assert not [k for k in env if k.startswith("HARK_AWS_ENDPOINT")]
    assert c["HealthCheck"]["Command"] == ["CMD", "/usr/local/bin/hark-healthcheck"]
    assert c["LogConfiguration"]["LogDriver"] == "awslogs"


def test_notification_task_lets_a_worst_case_ses_send_finish_on_stop(synth):
    """SIGTERM -> SIGKILL must cover 3 x (5 s connect + 20 s read) SES attempts; Fargate allows up to 120 s."""
    _, c = _container(synth, f"{STACK}-notification")
    assert 3 * (5 + 20) < c["StopTimeout"] <= 120


def test_transcription_service_uses_the_gpu_capacity_provider(synth):
    t = synth.assertions("Workers")
    t.has_resource_properties(
        "AWS::ECS::Service",
        {
            "ServiceName": f"{STACK}-transcription",
            "DesiredCount": Match.absent(),  # autoscaled: a deploy must not reset it (test_deploy_update.py)
            "CapacityProviderStrategy": [Match.object_like({"CapacityProvider": Match.any_value(), "Weight": 1})],
        },
    )


def test_notification_worker_on_fargate(synth):
    task, c = _container(synth, f"{STACK}-notification")
    assert task["RequiresCompatibilities"] == ["FARGATE"]
    assert c["Command"] == ["python", "-m", "worker.notification"]
    env = {e["Name"]: e["Value"] for e in c["Environment"]}
    assert env["HARK_EMAIL_SENDER"] == TEST_CONTEXT["hark:emailSender"]
    assert env["HARK_WEB_URL"] == TEST_CONTEXT["hark:webOrigin"]
    assert "ResourceRequirements" not in c
    synth.assertions("Workers").has_resource_properties(
        "AWS::ECS::Service",
        {
            "ServiceName": f"{STACK}-notification",
            "LaunchType": "FARGATE",
            "DesiredCount": Match.absent(),  # autoscaled from 1 up
            "NetworkConfiguration": {"AwsvpcConfiguration": Match.object_like({"AssignPublicIp": "DISABLED"})},
        },
    )


@pytest.fixture(scope="module")
def scaling(synth):
    template = synth.template("Workers")
    alarms = resources_of(template, "AWS::CloudWatch::Alarm")
    policies = resources_of(template, "AWS::ApplicationAutoScaling::ScalingPolicy")
    out = {}
    for alarm in alarms.values():
        props = alarm["Properties"]
        if "Metrics" not in props:  # the notifier's alarms are on one SQS metric (test below)
            continue
        (expr,) = [m for m in props["Metrics"] if "Expression" in m]
        (action,) = props["AlarmActions"]
        out[expr["Expression"]] = (props, policies[action["Ref"]]["Properties"]["StepScalingPolicyConfiguration"])
    return out


def _inputs(props) -> dict[str, dict]:
    return {m["Id"]: m["MetricStat"] for m in props["Metrics"] if "MetricStat" in m}


def test_expected_wait_reads_the_queue_the_service_and_the_workers_own_speed(scaling):
    """visible x audio per message / (desired x speed): SQS, Container Insights' desired count, and the
    AudioSeconds / ProcessingSeconds the transcription worker emits (read from its source)."""
    namespace, service, names = _worker_emf("worker/transcription")
    assert {"AudioSeconds", "ProcessingSeconds"} <= names
    props, _ = scaling[P.expected_wait_expression]
    m = _inputs(props)
    assert set(m) == {"visible", "desired", "audio", "model", "done"}
    assert m["visible"]["Metric"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert m["visible"]["Metric"]["Dimensions"] == [{"Name": "QueueName", "Value": f"{STACK}-transcribe"}]
    assert (m["desired"]["Metric"]["Namespace"], m["desired"]["Metric"]["MetricName"]) == (
        "ECS/ContainerInsights",
        "DesiredTaskCount",
    )
    assert {d["Name"]: d["Value"] for d in m["desired"]["Metric"]["Dimensions"]} == {
        "ClusterName": f"{STACK}-workers",
        "ServiceName": f"{STACK}-transcription",
    }
    for mid, metric, stat in (
        ("audio", "AudioSeconds", "Sum"),
        ("model", "ProcessingSeconds", "Sum"),
        ("done", "AudioSeconds", "SampleCount"),
    ):
        assert m[mid]["Metric"]["Namespace"] == namespace, mid
        assert m[mid]["Metric"]["MetricName"] == metric and m[mid]["Stat"] == stat, mid
        assert m[mid]["Metric"]["Dimensions"] == [{"Name": "service", "Value": service}], mid
    assert all(v["Period"] == P.period_seconds for v in m.values())


def test_scale_out_above_the_target_wait_in_growing_bands(scaling):
    props, step = scaling[P.expected_wait_expression]
    assert props["ComparisonOperator"] == "GreaterThanThreshold" and props["Threshold"] == P.target_wait_seconds
    assert props["EvaluationPeriods"] == P.scale_out_evaluation_periods
    assert step["AdjustmentType"] == "PercentChangeInCapacity"
    assert step["MinAdjustmentMagnitude"] == P.min_step_workers
    assert step["Cooldown"] == P.scale_out_cooldown_seconds
    # Each band starts where the wait reaches its multiple of the target: (ratio - 1) x target above it.
    adjustments = step["StepAdjustments"]
    assert len(adjustments) == len(P.scale_out_steps)
    for i, (ratio, percent) in enumerate(P.scale_out_steps):
        a = adjustments[i]
        assert a["MetricIntervalLowerBound"] == pytest.approx((ratio - 1) * P.target_wait_seconds)
        assert a["ScalingAdjustment"] == percent
        if i + 1 < len(P.scale_out_steps):
            assert a["MetricIntervalUpperBound"] == pytest.approx(
                (P.scale_out_steps[i + 1][0] - 1) * P.target_wait_seconds
            )
        else:
            assert "MetricIntervalUpperBound" not in a


def test_scale_in_on_work_per_worker_in_bands_below_the_threshold(scaling):
    props, step = scaling[P.work_per_worker_expression]
    assert set(_inputs(props)) == {"visible", "inflight", "desired"}
    assert _inputs(props)["inflight"]["Metric"]["MetricName"] == "ApproximateNumberOfMessagesNotVisible"
    assert props["ComparisonOperator"] == "LessThanThreshold" and props["Threshold"] == P.scale_in_work_per_worker
    assert props["EvaluationPeriods"] == P.scale_in_evaluation_periods
    assert step["AdjustmentType"] == "PercentChangeInCapacity" and step["MinAdjustmentMagnitude"] == 1
    adjustments = step["StepAdjustments"]
    assert len(adjustments) == len(P.scale_in_steps)
    for i, (bound, percent) in enumerate(P.scale_in_steps):
        a = adjustments[i]
        assert a["MetricIntervalUpperBound"] == pytest.approx(bound - P.scale_in_work_per_worker)
        assert a["ScalingAdjustment"] == -percent
        if i + 1 < len(P.scale_in_steps):
            assert a["MetricIntervalLowerBound"] == pytest.approx(
                P.scale_in_steps[i + 1][0] - P.scale_in_work_per_worker
            )
        else:
            assert "MetricIntervalLowerBound" not in a


def test_wake_from_zero_when_work_arrives(scaling):
    props, step = scaling[P.wake_expression]
    assert props["ComparisonOperator"] == "GreaterThanThreshold" and props["Threshold"] == 0
    assert step["AdjustmentType"] == "ChangeInCapacity"
    assert step["StepAdjustments"] == [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": P.wake_workers}]


def test_the_notifier_scales_on_its_queue(synth):
    """1..max_tasks Fargate tasks: +1 above scale_out_visible emails waiting, +2 above four times that,
    -1 below scale_in_visible (NOTIFIER_SCALING)."""
    template = synth.template("Workers")
    targets = resources_of(template, "AWS::ApplicationAutoScaling::ScalableTarget")
    (target_id,) = [k for k, v in targets.items() if v["Properties"]["MinCapacity"] == N.min_tasks]
    assert targets[target_id]["Properties"]["MaxCapacity"] == N.max_tasks
    alarms = [
        a["Properties"]
        for a in resources_of(template, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
    ]
    assert {a["Threshold"] for a in alarms} == {N.scale_in_visible, N.scale_out_visible}
    for a in alarms:
        assert a["Dimensions"] == [{"Name": "QueueName", "Value": f"{STACK}-notify"}]
        assert a["EvaluationPeriods"] == N.evaluation_periods
    policies = [
        p["Properties"]
        for p in resources_of(template, "AWS::ApplicationAutoScaling::ScalingPolicy").values()
        if p["Properties"].get("ScalingTargetId") == {"Ref": target_id}
    ]
    changes = sorted(
        (adj["ScalingAdjustment"], adj.get("MetricIntervalLowerBound"), adj.get("MetricIntervalUpperBound"))
        for p in policies
        for adj in p["StepScalingPolicyConfiguration"]["StepAdjustments"]
    )
    # Bounds are relative to each alarm's threshold: +1 from 100 to 400, +2 above 400, -1 below 10.
    assert changes == [
        (-1, None, 0),
        (1, 0, 3 * N.scale_out_visible),
        (2, 3 * N.scale_out_visible, None),
    ]


def test_scalable_target_zero_to_max(synth):
    synth.assertions("Workers").has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget",
        {
            "MinCapacity": 0,
            "MaxCapacity": P.max_workers,
            "ScalableDimension": "ecs:service:DesiredCount",
            "ResourceId": f"service/{STACK}-workers/{STACK}-transcription",
        },
    )


def test_every_gpu_instance_type_fits_one_transcription_task(synth):
    _task, c = _container(synth, f"{STACK}-transcription")
    gpus = int(next(r["Value"] for r in c["ResourceRequirements"] if r["Type"] == "GPU"))
    for instance, (instance_gpus, vcpus, gib) in GPU_INSTANCES.items():
        assert gpus == instance_gpus, f"{instance}: one task per GPU, one GPU per instance"
        assert c["Cpu"] <= vcpus * 1024, instance
        assert c["MemoryReservation"] <= gib * 1024 - ECS_MEMORY_OVERHEAD_MIB, instance


def _user_data_lines(synth) -> list[str]:
    data = one(synth.template("Workers"), "AWS::EC2::LaunchTemplate")["Properties"]["LaunchTemplateData"]
    sep, parts = data["UserData"]["Fn::Base64"]["Fn::Join"]
    text = sep.join(p if isinstance(p, str) else "${" + p["Ref"] + "}" for p in parts)
    return text.splitlines()


def test_instances_drain_on_spot_interruption_and_hide_imds_from_tasks(synth):
    """ecs.config lines in the instance user data (ECS container agent configuration)."""
    config = {}
    for line in _user_data_lines(synth):
        m = re.fullmatch(r"echo (\w+)=(\S+) >> /etc/ecs/ecs.config", line)
        if m:
            config[m.group(1)] = m.group(2)
    assert config["ECS_ENABLE_SPOT_INSTANCE_DRAINING"] == "true"
    assert config["ECS_AWSVPC_BLOCK_IMDS"] == "true"
    cluster = next(k for k, v in resources_of(synth.template("Workers"), "AWS::ECS::Cluster").items())
    assert config["ECS_CLUSTER"] == "${" + cluster + "}"
    task, _ = _container(synth, f"{STACK}-transcription")
    assert task["NetworkMode"] == "awsvpc"  # the mode ECS_AWSVPC_BLOCK_IMDS applies to


def test_gpu_service_waits_for_its_capacity_provider_association(synth):
    """The service's strategy names the capacity provider; CloudFormation must associate it with the
    cluster (AWS::ECS::ClusterCapacityProviderAssociations) before it creates the service."""
    template = synth.template("Workers")
    (provider,) = resources_of(template, "AWS::ECS::CapacityProvider")
    ((assoc_id, assoc),) = resources_of(template, "AWS::ECS::ClusterCapacityProviderAssociations").items()
    assert {"Ref": provider} in assoc["Properties"]["CapacityProviders"]
    (service,) = [
        v
        for v in resources_of(template, "AWS::ECS::Service").values()
        if v["Properties"]["ServiceName"] == f"{STACK}-transcription"
    ]
    assert service["Properties"]["CapacityProviderStrategy"][0]["CapacityProvider"] == {"Ref": provider}
    assert assoc_id in service["DependsOn"]


def test_alarms_count_a_missing_desired_count_as_zero(scaling):
    """Container Insights may publish no DesiredTaskCount while the service is at zero: every expression
    must FILL it, or the wake alarm has no data exactly when the fleet is at zero."""
    for expression in (P.wake_expression, P.expected_wait_expression, P.work_per_worker_expression):
        props, _ = scaling[expression]
        (desired_id,) = [
            m["Id"]
            for m in props["Metrics"]
            if m.get("MetricStat", {}).get("Metric", {}).get("MetricName") == "DesiredTaskCount"
        ]
        (expr,) = [m["Expression"] for m in props["Metrics"] if "Expression" in m]
        uses = re.findall(rf"\b{desired_id}\b", expr)
        filled = re.findall(rf"FILL\(\s*{desired_id}\s*,\s*0\s*\)", expr)
        assert uses and len(filled) == len(uses), expr
        assert props["TreatMissingData"] == "notBreaching"


def test_the_pool_is_the_one_hark_scaling_sizes_the_quota_from(synth):
    from hark_infra.workers import GPU_INSTANCE_TYPES  # importable once the synth put infra/ on the path

    assert tuple(GPU_INSTANCE_VCPUS) == GPU_INSTANCE_TYPES
    assert {t: GPU_INSTANCES[t][1] for t in GPU_INSTANCE_TYPES} == GPU_INSTANCE_VCPUS
