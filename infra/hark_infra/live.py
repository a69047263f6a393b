"""The live service (docs/architecture.md, "The live service"): an Application Load Balancer (HTTPS) in front of
an ECS service on the GPU capacity provider that runs `python -m worker.live` from the transcription worker's
image, so synchronous requests (the OpenAI-compatible endpoint; the live WebSocket) never pass API Gateway's
10 MB and 29 s limits nor the transcription queue.

Its resources are the stack's children (as the workers' constructs: workers.py's module docstring says why)."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_route53 as route53
from constructs import Construct

from hark.domain import live_metrics
from hark.domain.settings import Settings
from hark_infra.common import acknowledge, table_arn
from hark_infra.config import HarkConfig

LIVE_PORT = int(Settings.model_fields["live_port"].default)  # the container's port: worker/live/__main__.py
HEALTH_PATH = "/healthz"  # worker/live/app.py
# The balancer closes a connection idle this long. A sync request is silent while it is transcribed (a 25 MB
# file: minutes on a busy GPU), and a live stream pauses between sentences; 10 minutes covers both.
IDLE_TIMEOUT_SECONDS = 600
# Requests per minute per task that the target tracking holds (ALBRequestCountPerTarget): at about 10 s of
# GPU per 25 MB request, 30 a minute keep a task busy without a queue forming behind its 4 slots.
REQUESTS_PER_TASK_PER_MINUTE = 30
# Stopping a task (scale-in, a deploy), the balancer drains it first: no new connection, the open ones go on
# until they close or this delay ends, when the balancer breaks them (the ECS best practices guide, "Load
# balancer connection draining"); only then does ECS send SIGTERM. As long as the idle timeout: a 25 MB sync
# request's worst wait, and time for most live streams (a dictation, a call) to end by themselves. A task with
# no connection open is drained at once (uvicorn closes an idle keep-alive after 75 s).
DEREGISTRATION_SECONDS = IDLE_TIMEOUT_SECONDS
# From SIGTERM to SIGKILL: the streams still open get the finals of what they sent, then 1012 (reconnect), in
# this less the workers' margin (worker/live/__main__.py): each has its unfinished sentence and at most
# MAX_BACKLOG_SECONDS (30) of audio not yet stepped left to decode. The workers' own stopTimeout.
STOP_TIMEOUT_SECONDS = int(Settings.model_fields["stop_timeout_seconds"].default)
# The open-streams policy's period: one report per task per period, so its Average is the mean per task.
STREAMS_PERIOD = Duration.seconds(live_metrics.REPORT_SECONDS)


class LiveService(Construct):
    """The live service's load balancer, task, service and scaling."""

    def __init__(
        self,
        stack: Stack,
        cid: str,
        *,
        config: HarkConfig,
        cluster: ecs.Cluster,
        capacity_provider: str,
        service_name: str,
        container: dict[str, Any],
        model_env: dict[str, str],
        authorized_parties: list[str],
        cors_origins: list[str],
        subnets: ec2.SubnetSelection,
    ) -> None:
        super().__init__(stack, cid)
        vpc = cluster.vpc
        balancer_sg = ec2.SecurityGroup(
            stack, "LiveBalancerSg", vpc=vpc, allow_all_outbound=False, description="Hark live: HTTPS from anywhere"
        )
        balancer_sg.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS: the live service's clients")
        acknowledge(
            balancer_sg,
            "The live service is a public HTTPS endpoint, as the API is: every request is authenticated by the service.",
            "AwsSolutions-EC23",
        )
        task_sg = ec2.SecurityGroup(
            stack, "LiveTaskSg", vpc=vpc, allow_all_outbound=True, description="Hark live tasks: from the balancer"
        )
        task_sg.add_ingress_rule(balancer_sg, ec2.Port.tcp(LIVE_PORT), "the live service's balancer")
        balancer_sg.add_egress_rule(task_sg, ec2.Port.tcp(LIVE_PORT), "to the live tasks")

        self.balancer = elbv2.ApplicationLoadBalancer(
            stack,
            "LiveBalancer",
            vpc=vpc,
            internet_facing=True,
            security_group=balancer_sg,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            idle_timeout=Duration.seconds(IDLE_TIMEOUT_SECONDS),
            drop_invalid_header_fields=True,
        )
        acknowledge(
            self.balancer,
            "Each request is logged by the service itself (its CloudWatch log group); the balancer's access "
            "logs would need a bucket of their own for the same lines.",
            "AwsSolutions-ELB2",
        )
        listener = self.balancer.add_listener(
            "LiveHttps",
            port=443,
            protocol=elbv2.ApplicationProtocol.HTTPS,
            certificates=[elbv2.ListenerCertificate.from_arn(config.live_certificate_arn)],
            ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
            open=False,  # the security group above says who may connect
        )

        self.logs = logs.LogGroup(
            stack,
            "LiveLogs",
            log_group_name=f"/hark/{config.stack}/live",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.role = self._task_role(stack, config)
        self.task = ecs.Ec2TaskDefinition(
            stack, "LiveTask", family=service_name, network_mode=ecs.NetworkMode.AWS_VPC, task_role=self.role
        )
        self.container = self.task.add_container(
            "live",
            **container,  # the transcription worker's image and size (workers.gpu_container)
            command=["python", "-m", "worker.live"],
            stop_timeout=Duration.seconds(STOP_TIMEOUT_SECONDS),
            port_mappings=[ecs.PortMapping(container_port=LIVE_PORT)],
            environment={
                "HARK_STACK": config.stack,
                "LOG_LEVEL": "INFO",
                "HARK_ISSUER": config.issuer,
                "HARK_JWKS_URL": config.resolved_jwks_url,
                "HARK_AUTHORIZED_PARTIES": json.dumps(authorized_parties),  # the API's authorizer's own
                "HARK_LIVE_CORS_ORIGINS": json.dumps(cors_origins),  # the API's CORS origins: the web page calls both
                **model_env,
            },
            logging=ecs.LogDrivers.aws_logs(
                stream_prefix="live", log_group=self.logs, mode=ecs.AwsLogDriverMode.NON_BLOCKING
            ),
            readonly_root_filesystem=False,  # each upload is decoded in a temporary directory under /tmp
        )
        self.service = ecs.Ec2Service(
            stack,
            "LiveService",
            service_name=service_name,
            cluster=cluster,
            task_definition=self.task,
            # No desired_count: Application Auto Scaling owns it (a deploy must not reset it), as for the workers.
            min_healthy_percent=100,  # requests are answered while a deployment replaces tasks
            max_healthy_percent=200,
            capacity_provider_strategies=[ecs.CapacityProviderStrategy(capacity_provider=capacity_provider, weight=1)],
            security_groups=[task_sg],
            vpc_subnets=subnets,
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            health_check_grace_period=Duration.seconds(180),  # the model loads before the first health check
        )
        self.service.node.add_dependency(cluster)  # its capacity provider first (TranscriptionWorker says why)
        self.target_group = listener.add_targets(
            "Live",
            port=LIVE_PORT,
            protocol=elbv2.ApplicationProtocol.HTTP,
            targets=[self.service.load_balancer_target(container_name="live", container_port=LIVE_PORT)],
            health_check=elbv2.HealthCheck(path=HEALTH_PATH, healthy_http_codes="200"),
            deregistration_delay=Duration.seconds(DEREGISTRATION_SECONDS),
        )
        # The task watches its own target in the group, to end its streams (finals, then 1012) as soon as the
        # target drains, before the balancer breaks them at the end of the delay (worker/live/target.py).
        self.container.add_environment("HARK_LIVE_TARGET_GROUP_ARN", self.target_group.target_group_arn)
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="OwnTargetHealth",
                actions=["elasticloadbalancing:DescribeTargetHealth"],
                resources=["*"],
            )
        )
        acknowledge(
            self.role,
            "elasticloadbalancing:DescribeTargetHealth has no resource-level permissions (Service Authorization "
            "Reference, Elastic Load Balancing V2): it takes only '*'. It reads health, nothing else.",
            "AwsSolutions-IAM5[Resource::*]",
        )
        self._scale(config)
        self._alias_record(config)
        # The URL is the certificate's name (hark:liveDomain), which the operator points at the balancer's DNS name
        # (or hark:hostedZoneId's alias record does).
        CfnOutput(stack, "LiveUrl", value=config.live_url)
        CfnOutput(stack, "LiveBalancerDnsName", value=self.balancer.load_balancer_dns_name)

    def _alias_record(self, config: HarkConfig) -> None:
        """With hark:hostedZoneId: an A alias record for hark:liveDomain in that zone, pointing at the balancer
        (as the web stack's records point the web domain at the distribution)."""
        if not config.hosted_zone_id:
            return
        route53.CfnRecordSet(
            self,
            "LiveDomainA",
            hosted_zone_id=config.hosted_zone_id,
            name=config.live_domain,
            type="A",
            alias_target=route53.CfnRecordSet.AliasTargetProperty(
                dns_name=self.balancer.load_balancer_dns_name,
                hosted_zone_id=self.balancer.load_balancer_canonical_hosted_zone_id,
                evaluate_target_health=True,
            ),
        )

    @staticmethod
    def _task_role(stack: Stack, config: HarkConfig) -> iam.Role:
        """The task's role, two tables: a bearer that is an API key is looked up (GetItem) and counted against its
        rate limit and marked used (UpdateItem), as the API's authorizer and function do (hark.api.auth.identify);
        session tokens are checked against the issuer's JWKS over HTTPS. A browser's ticket is written (PutItem)
        by the task that issues it and used up (one conditional DeleteItem) by the task that opens its stream
        (hark.domain.live_tickets). Its own target's health is added with the target group."""
        role = iam.Role(stack, "LiveRole", assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"))
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ApiKeysTable",
                actions=["dynamodb:GetItem", "dynamodb:UpdateItem"],
                resources=[table_arn(stack, config.resources.api_keys_table.name)],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="LiveTicketsTable",
                actions=["dynamodb:PutItem", "dynamodb:DeleteItem"],
                resources=[table_arn(stack, config.resources.live_tickets_table.name)],
            )
        )
        return role

    def _scale(self, config: HarkConfig) -> None:
        """Two target tracking policies between the warm tasks and the most: requests per task (the balancer's
        RequestCountPerTarget) and open streams per task (the service's own LiveActiveStreams, worker/live/
        load.py), since a WebSocket stream is one long request the request count hardly sees. Application Auto
        Scaling scales out when either asks and in only when both do. From zero tasks neither has a value, so
        a step on the balancer's RequestCount while no target is healthy starts the first one."""
        scaling = self.service.auto_scale_task_count(
            min_capacity=config.live_warm_tasks, max_capacity=config.live_max_tasks
        )
        scaling.scale_on_request_count(
            "LiveRequestsPerTask",
            requests_per_target=REQUESTS_PER_TASK_PER_MINUTE,
            target_group=self.target_group,
            scale_in_cooldown=Duration.minutes(10),
        )
        scaling.scale_to_track_custom_metric(
            "LiveStreamsPerTask",
            metric=open_streams_per_task(),
            target_value=config.live_streams_per_task,
            scale_in_cooldown=Duration.minutes(10),
        )
        requests = self.balancer.metrics.request_count(period=Duration.minutes(1), statistic="Sum")
        healthy = self.target_group.metrics.healthy_host_count(period=Duration.minutes(1), statistic="Maximum")
        waking = cw.MathExpression(
            expression="IF(FILL(healthy, 0) < 1 AND FILL(requests, 0) > 0, 1, 0)",
            using_metrics={"requests": requests, "healthy": healthy},
            period=Duration.minutes(1),
            label="requests with no live task",
        )
        scaling.scale_on_metric(
            "LiveWake",
            metric=waking,
            scaling_steps=[
                appscaling.ScalingInterval(upper=0, change=0),
                appscaling.ScalingInterval(lower=1, change=1),
            ],
            adjustment_type=appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
            evaluation_periods=1,
        )


def open_streams_per_task() -> cw.Metric:
    """The mean of the tasks' reports of their open streams (a customized metric, not metric math): each task
    reports once a period under the service's dimension, zeros included, so the Average statistic is already
    the streams per task. A sum over the balancer's HealthyHostCount would count a draining task's streams and
    not the task, and two metrics published apart would not line up to the minute."""
    return cw.Metric(
        namespace=live_metrics.NAMESPACE,
        metric_name=live_metrics.ACTIVE_STREAMS,
        dimensions_map={live_metrics.SERVICE_DIMENSION: live_metrics.SERVICE},
        statistic="Average",
        period=STREAMS_PERIOD,
    )
