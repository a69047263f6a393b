"""Ops: one dashboard, and alarms (dead letters, stuck queues, worker errors, email failures, API 5xx)
to an SNS topic.

Metrics are addressed by the deterministic names (hark.domain.resources, the stack's service names), so this
stack holds no cross-stack references and can be changed without touching the others.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from constructs import Construct

from hark.ops.scaling import TRANSCRIBE_USD_PER_MINUTE, ScalingPolicy
from hark_infra.config import HarkConfig
from hark_infra.workers import METRIC_NAMESPACE, WORKER_ERRORS_METRIC, scaling_metrics, used_by

FIVE_MINUTES = Duration.minutes(5)
# Age of the oldest message that means the consumers are not keeping up (seconds).
# The upload-status function takes its queue's messages within seconds; 5 minutes means it is failing
# or throttled, and jobs stay UPLOADING on the page (docs/runbook.md, "A stuck job").
# A webhook message waits up to 12 h between retries on purpose (about 22 h in all): older than a day, the
# webhook worker is not consuming.
OLDEST_MESSAGE_ALARM_SECONDS = {
    "transcribe": 30 * 60,
    "notify": 15 * 60,
    "uploadstatus": 5 * 60,
    "webhook": 24 * 3600,
}
API_STAGE = "v1"
# The workers' own metrics: Powertools EMF on stdout, namespace "Hark", one dimension "service" set to
# the worker's SERVICE (worker/transcription/context.py, worker/notification/worker.py).
WORKER_METRICS_NAMESPACE = "Hark"
TRANSCRIPTION_SERVICE_DIMENSION = "transcription-worker"
NOTIFICATION_SERVICE_DIMENSION = "notification"
WEBHOOK_SERVICE_DIMENSION = "webhooks"  # worker/webhooks/worker.py SERVICE
# EmailsFailed (SES refused after botocore's own retries) in each of 3 consecutive 5-minute periods:
# an SES outage or a rejected sender, not a blip. ApproximateAgeOfOldestMessage cannot be relied on
# for this: SQS stops counting a message once it has been received 3 times, which the notifier's
# backoff does within the first minute.
EMAILS_FAILED_PERIODS = 3


def sqs_metric(name: str, metric: str, statistic: str = "Maximum") -> cw.Metric:
    return cw.Metric(
        namespace="AWS/SQS",
        metric_name=metric,
        dimensions_map={"QueueName": name},
        statistic=statistic,
        period=FIVE_MINUTES,
    )


def worker_metric(service: str, name: str) -> cw.Metric:
    return cw.Metric(
        namespace=WORKER_METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={"service": service},
        statistic="Sum",
        period=FIVE_MINUTES,
    )


def worker_errors_metric() -> cw.Metric:
    """Error lines in any worker's logs (the workers stack's metric filters)."""
    return cw.Metric(namespace=METRIC_NAMESPACE, metric_name=WORKER_ERRORS_METRIC, statistic="Sum", period=FIVE_MINUTES)


class MonitoringStack(Stack):
    def __init__(
        self,
        scope: Construct,
        cid: str,
        *,
        config: HarkConfig,
        cluster_name: str,
        transcription_service: str,
        api_function_name: str,
        **kwargs,
    ) -> None:
        super().__init__(scope, cid, **kwargs)

        key = kms.Key(self, "AlarmTopicKey", enable_key_rotation=True, description="Hark alarm topic encryption")
        # CloudWatch alarms publish to an encrypted topic only if they may use its key.
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": self.account}},
            )
        )
        self.topic = sns.Topic(
            self, "AlarmTopic", topic_name=f"{config.stack}-alarms", master_key=key, enforce_ssl=True
        )
        # A topic policy replaces SNS's default one, and enforce_ssl writes a policy holding only the TLS
        # deny: without this grant nothing may publish, and every alarm would fire into nothing.
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowThisAccountsAlarms",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "ArnLike": {
                        "aws:SourceArn": self.format_arn(
                            service="cloudwatch",
                            resource="alarm",
                            resource_name="*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    },
                    "StringEquals": {"aws:SourceAccount": self.account},
                },
            )
        )
        if config.alarm_email:
            self.topic.add_subscription(subs.EmailSubscription(config.alarm_email))
        self._action = cw_actions.SnsAction(self.topic)
        self.alarms: dict[str, cw.Alarm] = {}
        self._queue_alarms(config)
        self._worker_and_api_alarms(config, api_function_name)
        OpsDashboard(
            self,
            "OpsDashboard",
            config=config,
            cluster_name=cluster_name,
            transcription_service=transcription_service,
            alarms=list(self.alarms.values()),
        )

    def _alarm(self, aid: str, metric: cw.IMetric, threshold: float, description: str, periods: int = 1) -> cw.Alarm:
        a = cw.Alarm(
            self,
            aid,
            metric=metric,
            threshold=threshold,
            evaluation_periods=periods,
            datapoints_to_alarm=periods if periods > 1 else None,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        a.add_alarm_action(self._action)
        self.alarms[aid] = a
        return a

    def _queue_alarms(self, config: HarkConfig) -> None:
        """Dead letters and stuck queues, and upload events SNS could not deliver."""
        res = config.resources
        for label, qdef in (
            ("Transcribe", res.transcribe_queue),
            ("Notify", res.notify_queue),
            ("UploadStatus", res.upload_status_queue),
            ("Webhook", res.webhook_queue),
        ):
            self._alarm(
                f"{label}DeadLetters",
                sqs_metric(qdef.dlq_name, "ApproximateNumberOfMessagesVisible"),
                0,
                f"Messages in {qdef.dlq_name}: inspect and replay (docs/runbook.md)",
            )
            self._alarm(
                f"{label}OldestMessage",
                sqs_metric(qdef.name, "ApproximateAgeOfOldestMessage"),
                OLDEST_MESSAGE_ALARM_SECONDS[label.lower()],
                f"The oldest message on {qdef.name} is older than expected: consumers are not keeping up",
            )

        undelivered = res.uploads_topic.undelivered_queue
        self._alarm(
            "UploadsUndelivered",
            sqs_metric(undelivered, "ApproximateNumberOfMessagesVisible"),
            0,
            f"Upload events SNS could not deliver are in {undelivered}: their jobs stay UPLOADING; check the "
            'queue policies, then send each message to its queue (docs/runbook.md, "A stuck job")',
        )

    def _worker_and_api_alarms(self, config: HarkConfig, api_function_name: str) -> None:
        """Worker error lines, emails SES would not send, the API's 5xx and its function's errors."""
        self._alarm("WorkerErrors", worker_errors_metric(), 5, "More than 5 worker error lines in 5 minutes")
        emails_failed = worker_metric(NOTIFICATION_SERVICE_DIMENSION, "EmailsFailed")
        self._alarm(
            "EmailsFailed",
            emails_failed,
            0,
            "The notifier could not send email in each of the last 15 minutes (SES down, throttling or "
            "rejecting the sender): emails wait in the notify queue (docs/runbook.md)",
            periods=EMAILS_FAILED_PERIODS,
        )

        api_dims = {"ApiName": f"{config.stack}-api", "Stage": API_STAGE}
        api_5xx = cw.Metric(
            namespace="AWS/ApiGateway",
            metric_name="5XXError",
            dimensions_map=api_dims,
            statistic="Sum",
            period=FIVE_MINUTES,
        )
        self._alarm("Api5xx", api_5xx, 5, "The API answered more than 5 server errors in 5 minutes")
        api_errors = cw.Metric(
            namespace="AWS/Lambda",
            metric_name="Errors",
            dimensions_map={"FunctionName": api_function_name},
            statistic="Sum",
            period=FIVE_MINUTES,
        )
        self._alarm("ApiFunctionErrors", api_errors, 5, "The API Lambda failed more than 5 times in 5 minutes")


class OpsDashboard(Construct):
    """The ops dashboard: the transcribe queue and fleet, expected wait, speed, cost, queues, the API, the
    workers' own metrics and every alarm. Its dashboard is the stack's child, not this construct's: its logical
    ID stays the stack's (a construct scope would rename it, and a renamed resource is replaced on deploy)."""

    def __init__(
        self,
        stack: Stack,
        cid: str,
        *,
        config: HarkConfig,
        cluster_name: str,
        transcription_service: str,
        alarms: list[cw.Alarm],
    ) -> None:
        super().__init__(stack, cid)
        res = config.resources
        policy: ScalingPolicy = config.scaling
        api_dims = {"ApiName": f"{config.stack}-api", "Stage": API_STAGE}
        scaling = scaling_metrics(res.transcribe_queue.name, cluster_name, transcription_service, Duration.minutes(1))

        def scaling_math(expression: str, label: str) -> cw.MathExpression:
            return cw.MathExpression(
                expression=expression,
                using_metrics=used_by(expression, scaling),
                label=label,
                period=Duration.minutes(1),
            )

        expected_wait = scaling_math(policy.expected_wait_expression, "expected wait (s)")
        work_per_worker = scaling_math(policy.work_per_worker_expression, "work per worker")
        # The speed the workers measure (audio seconds per model second), and their busy share.
        speed = scaling_math(policy.measured_speed_expression, "measured speed (x real time)")
        hourly = scaling_metrics(res.transcribe_queue.name, cluster_name, transcription_service, Duration.hours(1))
        cost_expression = policy.cost_per_audio_hour_expression(config.worker_usd_per_hour, 3600)
        cost_per_audio_hour = cw.MathExpression(
            expression=cost_expression,
            using_metrics=used_by(cost_expression, hourly),
            label=f"fleet $ per audio hour (at ${config.worker_usd_per_hour:g} a worker-hour)",
            period=Duration.hours(1),
        )
        job_cost_expression = policy.job_cost_per_audio_hour_expression
        job_cost_per_audio_hour = cw.MathExpression(
            expression=job_cost_expression,
            using_metrics=used_by(job_cost_expression, hourly),
            label="jobs' own $ per audio hour (model time at the configured price)",
            period=Duration.hours(1),
        )

        undelivered = res.uploads_topic.undelivered_queue
        dashboard = cw.Dashboard(stack, "Dashboard", dashboard_name=f"{config.stack}-ops")
        dashboard.add_widgets(
            cw.GraphWidget(
                title="Transcribe queue and workers",
                left=[scaling["visible"], scaling["inflight"]],
                right=[scaling["tasks"], scaling["desired"]],
                width=8,
            ),
            cw.GraphWidget(
                title="Expected wait (s)",
                left=[expected_wait],
                width=8,
                left_annotations=[cw.HorizontalAnnotation(value=policy.target_wait_seconds, label="scale out")],
            ),
            cw.GraphWidget(
                title="Work per worker and measured speed",
                left=[work_per_worker],
                right=[speed],
                width=8,
                left_annotations=[cw.HorizontalAnnotation(value=policy.scale_in_work_per_worker, label="scale in")],
            ),
        )
        dashboard.add_widgets(
            cw.GraphWidget(
                title="Cost per audio hour ($)",
                left=[cost_per_audio_hour, job_cost_per_audio_hour],
                width=24,
                left_annotations=[
                    cw.HorizontalAnnotation(
                        value=TRANSCRIBE_USD_PER_MINUTE * 60, label="Amazon Transcribe list price (batch, tier 1)"
                    )
                ],
            ),
        )
        dashboard.add_widgets(
            cw.GraphWidget(
                title="Dead-letter queues",
                left=[sqs_metric(q.dlq_name, "ApproximateNumberOfMessagesVisible") for q in res.queues]
                + [sqs_metric(undelivered, "ApproximateNumberOfMessagesVisible")],
                width=8,
            ),
            cw.GraphWidget(
                title="Oldest message age (s)",
                left=[sqs_metric(q.name, "ApproximateAgeOfOldestMessage") for q in res.queues],
                width=8,
            ),
            cw.GraphWidget(title="Worker errors", left=[worker_errors_metric()], width=8),
        )
        dashboard.add_widgets(
            cw.GraphWidget(
                title="API requests and errors",
                left=[
                    cw.Metric(
                        namespace="AWS/ApiGateway",
                        metric_name=m,
                        dimensions_map=api_dims,
                        statistic="Sum",
                        period=FIVE_MINUTES,
                    )
                    for m in ("Count", "4XXError", "5XXError")
                ],
                width=12,
            ),
            cw.GraphWidget(
                title="API latency p95 (ms)",
                left=[
                    cw.Metric(
                        namespace="AWS/ApiGateway",
                        metric_name="Latency",
                        dimensions_map=api_dims,
                        statistic="p95",
                        period=FIVE_MINUTES,
                    )
                ],
                width=12,
            ),
        )
        dashboard.add_widgets(
            cw.GraphWidget(
                title="Transcription jobs",
                left=[worker_metric(TRANSCRIPTION_SERVICE_DIMENSION, m) for m in ("JobsCompleted", "JobsFailed")],
                width=12,
            ),
            cw.GraphWidget(
                title="Emails",
                left=[worker_metric(NOTIFICATION_SERVICE_DIMENSION, m) for m in ("EmailsSent", "EmailsFailed")],
                width=12,
                left_annotations=[
                    cw.HorizontalAnnotation(value=0, label="EmailsFailed alarm: > 0 in 3 periods running")
                ],
            ),
        )
        dashboard.add_widgets(
            cw.GraphWidget(
                title="Webhooks",
                left=[
                    worker_metric(WEBHOOK_SERVICE_DIMENSION, m)
                    for m in ("WebhooksDelivered", "WebhookAttemptsFailed", "WebhooksRefused")
                ],
                width=24,
            )
        )
        dashboard.add_widgets(cw.AlarmStatusWidget(title="Alarms", alarms=alarms, width=24))
