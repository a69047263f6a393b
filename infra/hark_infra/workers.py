"""The queue consumers: GPU transcription workers (ECS on EC2 GPUs, scaled on expected wait), the
notification worker and the webhook worker (Fargate).

Each part is a Construct class whose resources are the stack's children, not the construct's: their
logical IDs stay the stack's (a construct scope would rename them, and a renamed resource is replaced on
deploy)."""

from __future__ import annotations

import re
from typing import Any

from aws_cdk import CfnOutput, Duration, IgnoreMode, RemovalPolicy, Stack
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from hark.domain.resources import CHUNKS_PREFIX, PARTS_PREFIX, RENDITIONS_PREFIX, TRANSCRIPTS_PREFIX, UPLOADS_PREFIX
from hark.domain.settings import Settings
from hark.ops.scaling import (
    AUDIO,
    COST,
    DESIRED,
    DONE,
    GPU_INSTANCE_VCPUS,
    INFLIGHT,
    MODEL,
    NOTIFIER_SCALING,
    TASKS,
    VISIBLE,
    ScalingPolicy,
)
from hark_infra.common import (
    acknowledge,
    bucket_arn,
    list_bucket_statement,
    queue_arn,
    resource_env,
    secret_arn,
    ses_identity_arn,
    table_arn,
)
from hark_infra.config import REPO_ROOT, WORKER_ZONES, HarkConfig
from hark_infra.live import LiveService

GPU_INSTANCE_TYPE = "g4dn.xlarge"  # 1 NVIDIA T4 (16 GB), 4 vCPU, 16 GiB: one worker task per instance
# The mixed-instances pool, cheapest on-demand first (on-demand capacity takes them in this order; spot
# picks by price and capacity). Each has exactly one GPU, at least 4 vCPU and 16 GiB, so the task
# (1 GPU, 3.5 vCPU, 12 GiB reserved) fits once per instance, and each runs on the ECS GPU AMI's driver:
#   g4dn.xlarge   T4 16 GB,   4 vCPU, 16 GiB      g4dn.2xlarge  T4 16 GB,   8 vCPU, 32 GiB
#   g6.xlarge     L4 24 GB,   4 vCPU, 16 GiB      g5.xlarge     A10G 24 GB, 4 vCPU, 16 GiB
# More types mean fewer spot interruptions and fewer "no capacity" waits when waking from zero.
GPU_INSTANCE_TYPES = tuple(GPU_INSTANCE_VCPUS)  # hark/ops/scaling.py: the simulator and the quota read it too
# /etc/ecs/ecs.config on each GPU instance: drain the instance's tasks (SIGTERM, stopTimeout) as soon as
# its spot interruption notice arrives, two minutes before EC2 reclaims it; and keep awsvpc tasks away
# from the instance metadata service, so a task can never use the instance role's credentials.
ECS_AGENT_CONFIG = {"ECS_ENABLE_SPOT_INSTANCE_DRAINING": "true", "ECS_AWSVPC_BLOCK_IMDS": "true"}
MODEL_DIR_IN_IMAGE = "/opt/hark/model"
# The model in the image and how it runs: the transcription worker's and the live service's.
MODEL_ENV = {
    "HARK_MODEL_DIR": MODEL_DIR_IN_IMAGE,
    "HARK_MODEL_NAME": "large-v3-turbo",
    "HARK_DEVICE": "cuda",
    "HARK_COMPUTE_TYPE": "float16",
}
# The workers' own defaults (hark/domain/settings.py), carried into the task definitions, not copied: the
# stop budget the worker keeps and ECS's stopTimeout are one number.
_WORKER_DEFAULTS = {
    name: Settings.model_fields[name].default
    for name in ("stop_timeout_seconds", "visibility_lease_seconds", "notify_lease_seconds")
}
STOP_TIMEOUT_SECONDS = int(_WORKER_DEFAULTS["stop_timeout_seconds"])  # SIGTERM -> SIGKILL: finish or hand back
WORKER_ENV = {
    "HARK_STOP_TIMEOUT_SECONDS": str(STOP_TIMEOUT_SECONDS),
    "HARK_VISIBILITY_LEASE_SECONDS": str(_WORKER_DEFAULTS["visibility_lease_seconds"]),
}
# The notifier finishes the message in hand on SIGTERM. Its worst SES call is 3 attempts x (5 s connect
# + 20 s read) = 75 s plus botocore's backoff between them, then DynamoDB and SQS: 120 s, Fargate's maximum.
NOTIFICATION_STOP_TIMEOUT_SECONDS = STOP_TIMEOUT_SECONDS
WORKER_ERRORS_METRIC = "WorkerErrors"
METRIC_NAMESPACE = "Hark"
# The Docker build context is the repo root, narrowed to what the images install.
IMAGE_CONTEXT = ["*", "!hark", "!lambdas", "!worker", "!pyproject.toml", "!README.md"]


# The transcription worker's EMF metrics (worker/transcription/context.py record_speed): per message
# transcribed, its audio seconds and the seconds the worker spent on it, under one "service" dimension.
TRANSCRIPTION_METRICS_DIMENSIONS = {"service": "transcription-worker"}
AUDIO_SECONDS_METRIC, PROCESSING_SECONDS_METRIC = "AudioSeconds", "ProcessingSeconds"
COST_METRIC = "CostUsd"  # each transcription's model seconds at the configured price (worker/transcription/context.py)


def scaling_metrics(queue_name: str, cluster_name: str, service_name: str, period: Duration) -> dict[str, cw.Metric]:
    """The inputs of the scaling expressions, keyed by the ids hark.ops.scaling uses."""

    def sqs_metric(name: str) -> cw.Metric:
        return cw.Metric(
            namespace="AWS/SQS",
            metric_name=name,
            dimensions_map={"QueueName": queue_name},
            statistic="Maximum",
            period=period,
        )

    def ecs_metric(name: str) -> cw.Metric:
        return cw.Metric(
            namespace="ECS/ContainerInsights",
            metric_name=name,
            dimensions_map={"ClusterName": cluster_name, "ServiceName": service_name},
            statistic="Maximum",
            period=period,
        )

    def worker_metric(name: str, statistic: str) -> cw.Metric:
        return cw.Metric(
            namespace=METRIC_NAMESPACE,
            metric_name=name,
            dimensions_map=TRANSCRIPTION_METRICS_DIMENSIONS,
            statistic=statistic,
            period=period,
        )

    return {
        VISIBLE: sqs_metric("ApproximateNumberOfMessagesVisible"),
        INFLIGHT: sqs_metric("ApproximateNumberOfMessagesNotVisible"),
        TASKS: ecs_metric("RunningTaskCount"),
        DESIRED: ecs_metric("DesiredTaskCount"),
        AUDIO: worker_metric(AUDIO_SECONDS_METRIC, "Sum"),
        MODEL: worker_metric(PROCESSING_SECONDS_METRIC, "Sum"),
        DONE: worker_metric(AUDIO_SECONDS_METRIC, "SampleCount"),
        COST: worker_metric(COST_METRIC, "Sum"),
    }


def used_by(expression: str, metrics: dict[str, cw.Metric]) -> dict[str, cw.Metric]:
    """The metrics an expression names (an alarm lists only those)."""
    return {k: m for k, m in metrics.items() if re.search(rf"\b{k}\b", expression)}


class WorkersStack(Stack):
    def __init__(
        self,
        scope: Construct,
        cid: str,
        *,
        config: HarkConfig,
        web_origin: str,
        cors_origins: list[str],
        email_identity: str,
        api_url: str,
        **kwargs,
    ) -> None:
        super().__init__(scope, cid, **kwargs)
        self.cluster_name = f"{config.stack}-workers"
        self.transcription_service_name = f"{config.stack}-transcription"
        self.notification_service_name = f"{config.stack}-notification"
        self.webhook_service_name = f"{config.stack}-webhooks"
        self.live_service_name = f"{config.stack}-live"

        # ---- network: private subnets in WORKER_ZONES zones, each with its own NAT gateway (losing a zone
        # costs capacity, not service: docs/scaling.md); S3 and DynamoDB through free gateway endpoints ----
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=WORKER_ZONES,
            nat_gateways=config.nat_gateways,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(name="workers", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=20),
            ],
            gateway_endpoints={
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3),
                "DynamoDB": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.DYNAMODB),
            },
        )
        self.vpc.add_flow_log(
            "FlowLogs",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(
                logs.LogGroup(
                    self, "FlowLogGroup", retention=logs.RetentionDays.ONE_MONTH, removal_policy=RemovalPolicy.DESTROY
                )
            ),
            traffic_type=ec2.FlowLogTrafficType.REJECT,
        )
        workers_sg = ec2.SecurityGroup(
            self,
            "WorkersSg",
            vpc=self.vpc,
            allow_all_outbound=True,
            description="Hark workers: outbound only (queues, S3, DynamoDB, SES)",
        )
        private = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)

        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            cluster_name=self.cluster_name,
            vpc=self.vpc,
            container_insights_v2=ecs.ContainerInsights.ENABLED,
        )

        base_env = {"HARK_STACK": config.stack, **resource_env(), "LOG_LEVEL": "INFO", **WORKER_ENV}
        fleet = GpuFleet(self, "GpuFleet", config=config, security_group=workers_sg, subnets=private)
        self.launch_template = fleet.launch_template
        self.asg = fleet.asg
        self.capacity_provider = fleet.capacity_provider
        transcription = TranscriptionWorker(
            self, "TranscriptionWorker", config=config, base_env=base_env, security_group=workers_sg, subnets=private
        )
        self.transcription_role = transcription.transcription_role
        self.transcription_logs = transcription.transcription_logs
        self.transcription_task = transcription.transcription_task
        self.transcription_container = transcription.transcription_container
        self.transcription_service = transcription.transcription_service
        self.scaling_alarms = transcription.scaling_alarms
        notification = NotificationWorker(
            self,
            "NotificationWorker",
            config=config,
            base_env=base_env,
            web_origin=web_origin,
            email_identity=email_identity,
            api_url=api_url,
            security_group=workers_sg,
            subnets=private,
        )
        self.notification_role = notification.notification_role
        self.notification_logs = notification.notification_logs
        self.notification_task = notification.notification_task
        self.notification_service = notification.notification_service
        webhook = WebhookWorker(self, "WebhookWorker", config=config, base_env=base_env, subnets=private)
        self.webhook_role = webhook.webhook_role
        self.webhook_logs = webhook.webhook_logs
        self.webhook_task = webhook.webhook_task
        self.webhook_service = webhook.webhook_service
        tasks = [self.transcription_task, self.notification_task, self.webhook_task]
        self.live: LiveService | None = None
        if config.live_certificate_arn:  # the live service needs its certificate for HTTPS (docs/deploy.md)
            self.live = LiveService(
                self,
                "Live",
                config=config,
                cluster=self.cluster,
                capacity_provider=self.capacity_provider.capacity_provider_name,
                service_name=self.live_service_name,
                container=gpu_container(config),
                model_env=MODEL_ENV,
                authorized_parties=list(config.authorized_parties) or [web_origin],
                cors_origins=cors_origins,
                subnets=private,
            )
            tasks.append(self.live.task)

        for task in tasks:
            acknowledge(
                task.obtain_execution_role(),
                "ecr:GetAuthorizationToken has no resource-level "
                "permissions; image pulls and log writes are scoped by CDK.",
                "AwsSolutions-IAM5[Resource::*]",
            )
            acknowledge(
                task,
                "Only non-secret settings (stack name, region, sender address, web and API "
                "URLs) are passed as environment; the secrets are read from Secrets Manager at run "
                "time, by name.",
                "AwsSolutions-ECS2",
            )

        # Worker errors: any ERROR line or traceback in either worker's logs.
        for name, group in (
            ("transcription", self.transcription_logs),
            ("notification", self.notification_logs),
            ("webhook", self.webhook_logs),
        ):
            group.add_metric_filter(
                f"{name.title()}Errors",
                filter_pattern=logs.FilterPattern.any_term("ERROR", "Traceback"),
                metric_namespace=METRIC_NAMESPACE,
                metric_name=WORKER_ERRORS_METRIC,
                metric_value="1",
                dimensions=None,
                default_value=0,
            )
        CfnOutput(self, "ClusterName", value=self.cluster.cluster_name)

    def _fargate_worker(
        self,
        prefix: str,
        *,
        service_name: str,
        role: iam.Role,
        log_group_name: str,
        container: str,
        module: str,
        environment: dict[str, str],
        security_group: ec2.SecurityGroup,
        subnets: ec2.SubnetSelection,
        desired_count: int | None,
    ) -> tuple[logs.LogGroup, ecs.FargateTaskDefinition, ecs.FargateService]:
        """A small always-on SQS worker on Fargate (the notifier, the webhook worker): the notifier's image
        (base dependencies only) started as `python -m module`, rolled back if a deploy fails.

        `desired_count` None for an autoscaled service: CloudFormation sends DesiredCount on every service
        update, so a deploy would reset the count autoscaling set (ECS starts one task at creation)."""
        log_group = logs.LogGroup(
            self,
            f"{prefix}Logs",
            log_group_name=log_group_name,
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=RemovalPolicy.DESTROY,
        )
        task = ecs.FargateTaskDefinition(
            self,
            f"{prefix}Task",
            family=service_name,
            cpu=256,
            memory_limit_mib=512,
            task_role=role,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.X86_64, operating_system_family=ecs.OperatingSystemFamily.LINUX
            ),
        )
        task.add_container(
            container,
            image=ecs.ContainerImage.from_asset(
                str(REPO_ROOT),
                file="worker/notification/Dockerfile",
                exclude=IMAGE_CONTEXT,
                ignore_mode=_docker_ignore(),
                platform=ecr_assets.Platform.LINUX_AMD64,
            ),
            command=["python", "-m", module],
            stop_timeout=Duration.seconds(NOTIFICATION_STOP_TIMEOUT_SECONDS),  # a send in flight can finish
            environment=environment,
            logging=ecs.LogDrivers.aws_logs(
                stream_prefix=container, log_group=log_group, mode=ecs.AwsLogDriverMode.NON_BLOCKING
            ),
            health_check=_health_check(),
            readonly_root_filesystem=True,
        )
        service = ecs.FargateService(
            self,
            f"{prefix}Service",
            service_name=service_name,
            cluster=self.cluster,
            task_definition=task,
            desired_count=desired_count,
            min_healthy_percent=100,
            max_healthy_percent=200,
            security_groups=[security_group],
            vpc_subnets=subnets,
            assign_public_ip=False,
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
        )
        return log_group, task, service

    def _scale_on_expected_wait(
        self, policy: ScalingPolicy, queue_name: str, service: ecs.Ec2Service
    ) -> dict[str, cw.Alarm]:
        """Expected-wait step scaling (hark/ops/scaling.py): scale out, scale in on work per worker, wake."""
        period = Duration.seconds(policy.period_seconds)
        target = appscaling.ScalableTarget(
            self,
            "TranscriptionScalableTarget",
            service_namespace=appscaling.ServiceNamespace.ECS,
            scalable_dimension="ecs:service:DesiredCount",
            resource_id=f"service/{self.cluster_name}/{self.transcription_service_name}",
            min_capacity=policy.min_workers,
            max_capacity=policy.max_workers,
        )
        target.node.add_dependency(service)
        metrics = scaling_metrics(queue_name, self.cluster_name, self.transcription_service_name, period)

        def rule(
            rid: str,
            expression: str,
            label: str,
            threshold: float,
            op: cw.ComparisonOperator,
            periods: int,
            adjustment: appscaling.AdjustmentType,
            steps: list[tuple[float | None, float | None, int]],  # (lower, upper, change), relative to threshold
            cooldown: int,
            min_magnitude: int | None,
        ) -> cw.Alarm:
            alarm = cw.Alarm(
                self,
                f"{rid}Alarm",
                alarm_description=f"Hark GPU workers: {label}",
                metric=cw.MathExpression(
                    expression=expression, using_metrics=used_by(expression, metrics), label=label, period=period
                ),
                threshold=threshold,
                comparison_operator=op,
                evaluation_periods=periods,
                datapoints_to_alarm=periods,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            )
            action = appscaling.StepScalingAction(
                self,
                f"{rid}Action",
                scaling_target=target,
                adjustment_type=adjustment,
                cooldown=Duration.seconds(cooldown),
                min_adjustment_magnitude=min_magnitude,
                metric_aggregation_type=appscaling.MetricAggregationType.MAXIMUM,
            )
            for lower, upper, change in steps:
                action.add_adjustment(adjustment=change, lower_bound=lower, upper_bound=upper)
            alarm.add_alarm_action(cw_actions.ApplicationScalingAction(action))
            return alarm

        pct = appscaling.AdjustmentType.PERCENT_CHANGE_IN_CAPACITY
        gt, lt = cw.ComparisonOperator.GREATER_THAN_THRESHOLD, cw.ComparisonOperator.LESS_THAN_THRESHOLD
        return {
            "scale_out": rule(
                "ScaleOut",
                policy.expected_wait_expression,
                "expected wait (s)",
                policy.target_wait_seconds,
                gt,
                policy.scale_out_evaluation_periods,
                pct,
                scale_out_adjustments(policy),
                policy.scale_out_cooldown_seconds,
                policy.min_adjustment("out"),
            ),
            "scale_in": rule(
                "ScaleIn",
                policy.work_per_worker_expression,
                "work per worker",
                policy.scale_in_work_per_worker,
                lt,
                policy.scale_in_evaluation_periods,
                pct,
                scale_in_adjustments(policy),
                policy.scale_in_cooldown_seconds,
                policy.min_adjustment("in"),
            ),
            "wake": rule(
                "Wake",
                policy.wake_expression,
                "work waiting, no worker",
                0,
                gt,
                policy.wake_evaluation_periods,
                appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
                [(0, None, policy.wake_workers)],
                policy.scale_out_cooldown_seconds,
                None,
            ),
        }

    def _scale_notifier(self, queue_name: str, service: ecs.FargateService) -> None:
        """One notifier sends a few emails a second; a spike day's peak needs more (docs/scaling.md)."""
        ns = NOTIFIER_SCALING
        count = service.auto_scale_task_count(min_capacity=ns.min_tasks, max_capacity=ns.max_tasks)
        count.scale_on_metric(
            "NotifyBacklog",
            metric=cw.Metric(
                namespace="AWS/SQS",
                metric_name="ApproximateNumberOfMessagesVisible",
                dimensions_map={"QueueName": queue_name},
                statistic="Maximum",
                period=Duration.seconds(ns.period_seconds),
            ),
            scaling_steps=[
                appscaling.ScalingInterval(upper=ns.scale_in_visible, change=-1),
                appscaling.ScalingInterval(lower=ns.scale_out_visible, change=1),
                appscaling.ScalingInterval(lower=4 * ns.scale_out_visible, change=2),
            ],
            adjustment_type=appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
            cooldown=Duration.seconds(ns.cooldown_seconds),
            evaluation_periods=ns.evaluation_periods,
        )


class GpuFleet(Construct):
    """The GPU capacity: g4dn-class instances on the ECS GPU AMI, spot and on-demand mixed, and the cluster's
    capacity provider over them."""

    def __init__(
        self,
        stack: WorkersStack,
        cid: str,
        *,
        config: HarkConfig,
        security_group: ec2.SecurityGroup,
        subnets: ec2.SubnetSelection,
    ) -> None:
        super().__init__(stack, cid)
        policy = config.scaling
        workers_sg, private = security_group, subnets
        # ---- GPU capacity: g4dn on the ECS-optimized Amazon Linux 2023 GPU AMI, spot and on-demand mixed ----
        instance_role = iam.Role(
            stack,
            "GpuInstanceRole",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description="ECS container instances (agent only; tasks have their own roles)",
        )
        instance_role.add_managed_policy(
            iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AmazonEC2ContainerServiceforEC2Role")
        )
        instance_role.add_managed_policy(iam.ManagedPolicy.from_aws_managed_policy_name("AmazonSSMManagedInstanceCore"))
        acknowledge(
            instance_role,
            "AWS's managed policies for the ECS agent and Session Manager are the "
            "documented, maintained minimum for container instances.",
            "AwsSolutions-IAM4["
            "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role]",
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]",
        )
        acknowledge(
            instance_role,
            "The ECS agent's own calls (ecs:Submit*, ecs:Poll, ...) take no resource "
            "narrower than the cluster's container instances, which do not exist yet.",
            "AwsSolutions-IAM5[Action::ecs:Submit*]",
            "AwsSolutions-IAM5[Resource::*]",
        )
        user_data = ec2.UserData.for_linux()  # the capacity provider adds ECS_CLUSTER=... to it
        user_data.add_commands(*(f"echo {k}={v} >> /etc/ecs/ecs.config" for k, v in ECS_AGENT_CONFIG.items()))
        self.launch_template = ec2.LaunchTemplate(
            stack,
            "GpuLaunchTemplate",
            instance_type=ec2.InstanceType(GPU_INSTANCE_TYPE),
            machine_image=ecs.EcsOptimizedImage.amazon_linux2023(ecs.AmiHardwareType.GPU),
            role=instance_role,
            security_group=workers_sg,
            user_data=user_data,
            require_imdsv2=True,
            http_put_response_hop_limit=1,  # tasks cannot reach the instance's credentials
            detailed_monitoring=True,
            block_devices=[
                ec2.BlockDevice(
                    device_name="/dev/xvda",  # the image (CUDA, cuDNN, model) is ~10 GB
                    volume=ec2.BlockDeviceVolume.ebs(100, volume_type=ec2.EbsDeviceVolumeType.GP3, encrypted=True),
                )
            ],
        )
        self.asg = autoscaling.AutoScalingGroup(
            stack,
            "GpuAsg",
            vpc=stack.vpc,
            vpc_subnets=private,
            min_capacity=policy.min_workers,
            max_capacity=policy.max_workers,
            mixed_instances_policy=autoscaling.MixedInstancesPolicy(
                launch_template=self.launch_template,
                launch_template_overrides=[
                    autoscaling.LaunchTemplateOverrides(instance_type=ec2.InstanceType(t)) for t in GPU_INSTANCE_TYPES
                ],
                instances_distribution=autoscaling.InstancesDistribution(
                    on_demand_base_capacity=config.on_demand_base_workers,
                    on_demand_percentage_above_base_capacity=config.on_demand_percent_above_base,
                    spot_allocation_strategy=autoscaling.SpotAllocationStrategy.PRICE_CAPACITY_OPTIMIZED,
                ),
            ),
            capacity_rebalance=True,
            new_instances_protected_from_scale_in=False,  # the capacity provider manages protection
        )
        acknowledge(
            self.asg,
            "The launch template's only volume is gp3 with encrypted=True (asserted in "
            "tests/infra); the rule cannot read a launch template through the mixed instances "
            "policy's intrinsic references.",
            "AwsSolutions-EC26",
        )
        acknowledge(
            self.asg,
            "ECS managed scaling sizes this group from the tasks; instances have no "
            "load balancer, so EC2 status checks are the right health check.",
            "AwsSolutions-AS1",
            "AwsSolutions-AS2",
        )
        acknowledge(
            self.asg,
            "Scaling activity is visible through the capacity provider and the "
            "dashboard; the alarms go to the ops topic.",
            "AwsSolutions-AS3",
        )
        self.capacity_provider = ecs.AsgCapacityProvider(
            stack,
            "GpuCapacityProvider",
            capacity_provider_name=f"{config.stack}-gpu",
            auto_scaling_group=self.asg,
            enable_managed_scaling=True,
            enable_managed_termination_protection=True,
            enable_managed_draining=True,
            target_capacity_percent=100,
        )
        stack.cluster.add_asg_capacity_provider(self.capacity_provider)


def _transcription_role(stack: Stack, config: HarkConfig) -> iam.Role:
    """The transcription worker's task role: its queues, the jobs table, and S3 by key prefix."""
    res = config.resources
    audio, transcripts = res.audio_bucket.name, res.transcripts_bucket.name
    r = iam.Role(
        stack,
        "TranscriptionTaskRole",
        assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
        description="Hark transcription worker",
    )
    r.add_to_policy(
        _consumer_statement("TranscribeQueue", queue_arn(stack, res.transcribe_queue.name), "sqs:SendMessage")
    )
    r.add_to_policy(
        iam.PolicyStatement(
            sid="NotifyQueue",
            actions=["sqs:SendMessage", "sqs:GetQueueUrl"],
            resources=[queue_arn(stack, res.notify_queue.name), queue_arn(stack, res.webhook_queue.name)],
        )
    )
    r.add_to_policy(
        iam.PolicyStatement(
            sid="JobsTable",
            actions=[
                "dynamodb:GetItem",
                "dynamodb:Query",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:ConditionCheckItem",
                "dynamodb:DescribeTable",
            ],
            resources=[table_arn(stack, res.jobs_table.name)]
            + [table_arn(stack, res.jobs_table.name, i.name) for i in res.jobs_table.indexes],
        )
    )
    r.add_to_policy(
        iam.PolicyStatement(
            sid="ReadAudio",
            actions=["s3:GetObject"],
            resources=[
                bucket_arn(stack, audio, f"{UPLOADS_PREFIX}*"),
                bucket_arn(stack, audio, f"{CHUNKS_PREFIX}*"),
            ],
        )
    )
    r.add_to_policy(
        iam.PolicyStatement(
            sid="WriteChunks", actions=["s3:PutObject"], resources=[bucket_arn(stack, audio, f"{CHUNKS_PREFIX}*")]
        )
    )
    # A video's audio rendition for playback; removed again when its job was deleted meanwhile.
    r.add_to_policy(
        iam.PolicyStatement(
            sid="WriteRenditions",
            actions=["s3:PutObject", "s3:DeleteObject"],
            resources=[bucket_arn(stack, audio, f"{RENDITIONS_PREFIX}*")],
        )
    )
    r.add_to_policy(
        iam.PolicyStatement(
            sid="Transcripts",
            actions=["s3:GetObject", "s3:PutObject"],
            resources=[
                bucket_arn(stack, transcripts, f"{TRANSCRIPTS_PREFIX}*"),
                bucket_arn(stack, transcripts, f"{PARTS_PREFIX}*"),
            ],
        )
    )
    # The worker probes keys that may be missing (HeadObject: a chunk's part already written? the upload
    # still there?): S3 answers 404 only to a role that may list the bucket, else 403 and the job fails.
    r.add_to_policy(list_bucket_statement(stack, "ProbeAudioKeys", audio))
    r.add_to_policy(list_bucket_statement(stack, "ProbeTranscriptKeys", transcripts))
    # A job deleted by its owner while it ran: the worker removes the transcripts it just wrote.
    r.add_to_policy(
        iam.PolicyStatement(
            sid="RemoveTranscriptsOfDeletedJobs",
            actions=["s3:DeleteObject"],
            resources=[bucket_arn(stack, transcripts, f"{TRANSCRIPTS_PREFIX}*")],
        )
    )
    # An upload that no job accounts for (deleted, unknown, not the key its record names) is deleted
    # at once (hark.domain.arrivals), not left for the 30-day lifecycle rule; so is a completed job's video
    # once its rendition plays in its place (ending.py).
    r.add_to_policy(
        iam.PolicyStatement(
            sid="DeleteOrphanUploads",
            actions=["s3:DeleteObject"],
            resources=[bucket_arn(stack, audio, f"{UPLOADS_PREFIX}*")],
        )
    )
    acknowledge(
        r,
        "Object ARNs are scoped to the key prefixes this worker reads and writes; each job's "
        "keys live below them (hark/domain/keys.py). Table ARNs include the jobs table's indexes.",
        *[
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::{b}/{p}*]"
            for b, p in (
                (audio, UPLOADS_PREFIX),
                (audio, CHUNKS_PREFIX),
                (audio, RENDITIONS_PREFIX),
                (transcripts, TRANSCRIPTS_PREFIX),
                (transcripts, PARTS_PREFIX),
            )
        ],
    )
    return r


class TranscriptionWorker(Construct):
    """The transcription worker: its task role, logs, GPU task and service, scaled on expected wait."""

    def __init__(
        self,
        stack: WorkersStack,
        cid: str,
        *,
        config: HarkConfig,
        base_env: dict[str, str],
        security_group: ec2.SecurityGroup,
        subnets: ec2.SubnetSelection,
    ) -> None:
        super().__init__(stack, cid)
        res, policy = config.resources, config.scaling
        workers_sg, private = security_group, subnets
        self.transcription_role = _transcription_role(stack, config)
        r = self.transcription_role

        self.transcription_logs = logs.LogGroup(
            stack,
            "TranscriptionLogs",
            log_group_name=f"/hark/{config.stack}/transcription-worker",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.transcription_task = ecs.Ec2TaskDefinition(
            stack,
            "TranscriptionTask",
            family=stack.transcription_service_name,
            network_mode=ecs.NetworkMode.AWS_VPC,
            task_role=r,
        )
        self.transcription_container = self.transcription_task.add_container(
            "transcription",
            **gpu_container(config),
            command=["python", "-m", "worker.transcription"],
            stop_timeout=Duration.seconds(STOP_TIMEOUT_SECONDS),
            environment={**base_env, **MODEL_ENV},
            logging=ecs.LogDrivers.aws_logs(
                stream_prefix="transcription", log_group=self.transcription_logs, mode=ecs.AwsLogDriverMode.NON_BLOCKING
            ),
            health_check=_health_check(),
            readonly_root_filesystem=False,  # each download goes to a temporary directory under /tmp
        )
        self.transcription_service = ecs.Ec2Service(
            stack,
            "TranscriptionService",
            service_name=stack.transcription_service_name,
            cluster=stack.cluster,
            task_definition=self.transcription_task,
            # No desired_count: CloudFormation sends DesiredCount on every service update, so a deploy
            # would reset the autoscaled fleet (to zero, mid-day). Without it ECS starts one task when the
            # service is created and Application Auto Scaling owns the count from then on.
            min_healthy_percent=0,  # queue consumers: a replacement can start after the old one drains
            max_healthy_percent=100,
            capacity_provider_strategies=[
                ecs.CapacityProviderStrategy(capacity_provider=stack.capacity_provider.capacity_provider_name, weight=1)
            ],
            security_groups=[workers_sg],
            vpc_subnets=private,
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            enable_execute_command=False,
        )
        # The service may only be created once the cluster lists its capacity provider: CloudFormation
        # would otherwise create both in parallel and the service's strategy names an unknown provider.
        # The association resource is added to the cluster late (an aspect), and a dependency on a
        # construct covers every resource in it at synthesis, so depend on the whole cluster.
        self.transcription_service.node.add_dependency(stack.cluster)
        self.scaling_alarms = stack._scale_on_expected_wait(
            policy, res.transcribe_queue.name, self.transcription_service
        )


class NotificationWorker(Construct):
    """The notification worker (Fargate): its task role, logs and autoscaled service."""

    def __init__(
        self,
        stack: WorkersStack,
        cid: str,
        *,
        config: HarkConfig,
        base_env: dict[str, str],
        web_origin: str,
        email_identity: str,
        api_url: str,
        security_group: ec2.SecurityGroup,
        subnets: ec2.SubnetSelection,
    ) -> None:
        super().__init__(stack, cid)
        res = config.resources
        transcripts = res.transcripts_bucket.name
        workers_sg, private = security_group, subnets
        self.notification_role = iam.Role(
            stack,
            "NotificationTaskRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="Hark notification worker",
        )
        n = self.notification_role
        n.add_to_policy(_consumer_statement("NotifyQueue", queue_arn(stack, res.notify_queue.name)))
        n.add_to_policy(
            iam.PolicyStatement(
                sid="JobsTable",
                actions=["dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem"],
                resources=[table_arn(stack, res.jobs_table.name)],
            )
        )
        n.add_to_policy(
            iam.PolicyStatement(
                sid="ReadTranscripts",
                actions=["s3:GetObject"],
                resources=[bucket_arn(stack, transcripts, f"{TRANSCRIPTS_PREFIX}*")],
            )
        )
        # The preview read of a job deleted meanwhile must answer 404 (email without preview), not 403.
        n.add_to_policy(list_bucket_statement(stack, "ProbeTranscriptKeys", transcripts))
        n.add_to_policy(
            iam.PolicyStatement(
                sid="SendEmail",
                actions=["ses:SendEmail", "ses:SendRawEmail"],
                resources=[ses_identity_arn(stack, email_identity)],
                conditions={"StringEquals": {"ses:FromAddress": config.email_sender}},
            )
        )
        # The link key signs the links in emails; Clerk's key finds the address of a job without one.
        n.add_to_policy(
            iam.PolicyStatement(
                sid="ReadSecrets",
                actions=["secretsmanager:GetSecretValue"],
                resources=[secret_arn(stack, res.link_signing_secret), secret_arn(stack, res.clerk_secret)],
            )
        )
        acknowledge(
            n,
            "Read-only on the transcripts/ prefix: it reads a preview of each transcript.",
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::{transcripts}/{TRANSCRIPTS_PREFIX}*]",
        )

        self.notification_logs, self.notification_task, self.notification_service = stack._fargate_worker(
            "Notification",
            service_name=stack.notification_service_name,
            role=n,
            log_group_name=f"/hark/{config.stack}/notification-worker",
            container="notification",
            module="worker.notification",
            environment={
                **base_env,
                "HARK_EMAIL_SENDER": config.email_sender,
                "HARK_WEB_URL": web_origin,
                "HARK_API_URL": api_url,  # the links in emails: {api_url}/links/{token}
                "HARK_NOTIFY_LEASE_SECONDS": str(_WORKER_DEFAULTS["notify_lease_seconds"]),
            },
            security_group=workers_sg,
            subnets=private,
            desired_count=None,  # autoscaled (_scale_notifier)
        )

        stack._scale_notifier(res.notify_queue.name, self.notification_service)


class WebhookWorker(Construct):
    """The webhook worker (Fargate): its own security group (out on 443 only), task role, logs and service."""

    def __init__(
        self,
        stack: WorkersStack,
        cid: str,
        *,
        config: HarkConfig,
        base_env: dict[str, str],
        subnets: ec2.SubnetSelection,
    ) -> None:
        super().__init__(stack, cid)
        res = config.resources
        transcripts = res.transcripts_bucket.name
        private = subnets
        # An ECS service on the shared SQS runtime (worker/runtime.py), as the notifier: the same code runs
        # under `hark up`, each attempt sets its own retry delay on the message, and a 10 s POST needs no
        # Lambda timeout arithmetic. Its own security group lets it out on 443 only (receivers are https;
        # SQS, S3 and DynamoDB answer on 443 too), and it reads nothing but the jobs table's items.
        webhook_sg = ec2.SecurityGroup(
            stack,
            "WebhookSg",
            vpc=stack.vpc,
            allow_all_outbound=False,
            description="Hark webhook worker: outbound https only (receivers, queues, S3, DynamoDB)",
        )
        webhook_sg.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "https: receivers and AWS APIs")
        self.webhook_role = iam.Role(
            stack,
            "WebhookTaskRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="Hark webhook worker",
        )
        w = self.webhook_role
        w.add_to_policy(_consumer_statement("WebhookQueue", queue_arn(stack, res.webhook_queue.name)))
        # Reads the job and its owner's secret item; appends attempts, creates a secret never read yet.
        w.add_to_policy(
            iam.PolicyStatement(
                sid="JobsTable",
                actions=["dynamodb:GetItem", "dynamodb:UpdateItem"],
                resources=[table_arn(stack, res.jobs_table.name)],
            )
        )
        # The payload is the job as GET /jobs/{id} shows it: with presigned links to the transcripts.
        w.add_to_policy(
            iam.PolicyStatement(
                sid="PresignTranscripts",
                actions=["s3:GetObject"],
                resources=[bucket_arn(stack, transcripts, f"{TRANSCRIPTS_PREFIX}*")],
            )
        )
        acknowledge(
            w,
            "Read-only on the transcripts/ prefix: it presigns the links in the payload, as the API does.",
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::{transcripts}/{TRANSCRIPTS_PREFIX}*]",
        )
        # The notifier's image (the base dependencies only), started as the webhook worker.
        self.webhook_logs, self.webhook_task, self.webhook_service = stack._fargate_worker(
            "Webhook",
            service_name=stack.webhook_service_name,
            role=w,
            log_group_name=f"/hark/{config.stack}/webhook-worker",
            container="webhooks",
            module="worker.webhooks",
            environment={**base_env},
            security_group=webhook_sg,
            subnets=private,
            desired_count=1,  # one task, not autoscaled: a deploy keeps it at one
        )


def scale_out_adjustments(policy: ScalingPolicy) -> list[tuple[float | None, float | None, int]]:
    """The scale-out bands as AAS step adjustments: bounds are the wait above the threshold (seconds)."""
    t, steps = policy.target_wait_seconds, policy.scale_out_steps
    out: list[tuple[float | None, float | None, int]] = []
    for i, (ratio, percent) in enumerate(steps):
        upper = (steps[i + 1][0] - 1) * t if i + 1 < len(steps) else None
        out.append(((ratio - 1) * t, upper, percent))
    return out


def scale_in_adjustments(policy: ScalingPolicy) -> list[tuple[float | None, float | None, int]]:
    """The scale-in bands: bounds are work per worker below the threshold (negative), the last open."""
    u, steps = policy.scale_in_work_per_worker, policy.scale_in_steps
    out: list[tuple[float | None, float | None, int]] = []
    for i, (bound, percent) in enumerate(steps):
        lower = round(steps[i + 1][0] - u, 6) if i + 1 < len(steps) else None
        out.append((lower, round(bound - u, 6), -percent))
    return out


def _consumer_statement(sid: str, queue: str, *more: str) -> iam.PolicyStatement:
    """What a worker on the shared SQS runtime (worker/runtime.py) does with its queue: receive, settle
    (delete, or a visibility change for a retry or a lease), read its URL and attributes; `more` on top."""
    return iam.PolicyStatement(
        sid=sid,
        actions=[
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:ChangeMessageVisibility",
            *more,
            "sqs:GetQueueUrl",
            "sqs:GetQueueAttributes",
        ],
        resources=[queue],
    )


def gpu_container(config: HarkConfig) -> dict[str, Any]:
    """A GPU task's container, the transcription worker's and the live service's alike: the worker's image
    (its Dockerfile, the model baked in) on one GPU and most of one instance."""
    image = ecs.ContainerImage.from_asset(
        str(REPO_ROOT),
        file="worker/transcription/Dockerfile",
        exclude=IMAGE_CONTEXT + [f"!{config.model_src}"],
        ignore_mode=_docker_ignore(),
        platform=ecr_assets.Platform.LINUX_AMD64,
        build_args={"MODEL_SRC": config.model_src},
    )
    return {
        "image": image,
        "gpu_count": 1,
        "cpu": 3584,
        "memory_reservation_mib": 12 * 1024,
        "memory_limit_mib": 14 * 1024,
    }


def _docker_ignore() -> IgnoreMode:
    return IgnoreMode.DOCKER


def _health_check() -> ecs.HealthCheck:
    """Same check as the Dockerfiles' HEALTHCHECK (ECS ignores the image's own)."""
    return ecs.HealthCheck(
        command=["CMD", "/usr/local/bin/hark-healthcheck"],
        interval=Duration.seconds(30),
        timeout=Duration.seconds(10),
        retries=3,
        start_period=Duration.seconds(120),
    )
