"""Ops: one dashboard, and alarms (dead letters, stuck queues, worker errors, email failures, API 5xx, a
language's confidence falling) to an SNS topic.

Accuracy (issue 26): the dashboard graphs the confidence, low-confidence share and jobs of every language
(SEARCH over the `language` dimension, so a new language appears by itself) beside the WER people's
corrections measure. The alarm is CloudWatch anomaly detection, one per language in hark:accuracyLanguages,
on the hourly mean confidence: it fires when at least CONFIDENCE_HOURS_BELOW of the last day's hours are
below the band CloudWatch learnt from that language's own last two weeks. Not metric math: an alarm's math
sees only its own evaluation window and has no function that shifts or averages a metric over the days
before it, so "below its own recent baseline" would become a fixed threshold per language for the operator
to guess and retune with every model; the anomaly model learns each language's level (Spanish sits below
English) and its daily pattern itself. What it cannot see: a drift slow enough (weeks) to be learnt as the
new normal; the dashboard shows that.

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

from hark.domain import accuracy
from hark.domain.transcript import LOW_CONFIDENCE_PROBABILITY
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
API_SERVICE_DIMENSION = "hark-api"  # lambdas/api/handler.py's Metrics service: corrections' WER
# A language's confidence (hark.domain.accuracy): hourly means; the alarm looks at the last day's hours and
# fires when this many are below the anomaly band of this many standard deviations.
ACCURACY_PERIOD = Duration.hours(1)
CONFIDENCE_HOURS = 24
CONFIDENCE_HOURS_BELOW = 12
CONFIDENCE_BAND_STD_DEVS = 2
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


def language_metric(name: str, service: str, language: str) -> cw.Metric:
    """One language's hourly mean of an accuracy metric (hark.domain.accuracy)."""
    return cw.Metric(
        namespace=accuracy.NAMESPACE,
        metric_name=name,
        dimensions_map={"service": service, accuracy.LANGUAGE_DIMENSION: language},
        statistic="Average",
        period=ACCURACY_PERIOD,
    )


def by_language(name: str, service: str, statistic: str, label: str) -> cw.MathExpression:
    """Every language's series of an accuracy metric, hourly: a SEARCH, so languages need no list."""
    dimensions = f"{{{accuracy.NAMESPACE},{accuracy.LANGUAGE_DIMENSION},service}}"
    query = f'{dimensions} MetricName="{name}" service="{service}"'
    return cw.MathExpression(
        expression=f"SEARCH('{query}', '{statistic}', {int(ACCURACY_PERIOD.to_seconds())})",
        using_metrics={},
        label=label,
        period=ACCURACY_PERIOD,
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
        self._confidence_alarms(config)
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
            'queue policies, then `hark dlq replay undelivered --all` (docs/runbook.md, "A stuck job")',
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

    def _confidence_alarms(self, config: HarkConfig) -> None:
        """Per language: its hourly confidence below the band anomaly detection learnt from its own history."""
        for language in config.accuracy_languages:
            aid = f"ConfidenceDrop{language.capitalize()}"
            a = cw.AnomalyDetectionAlarm(
                self,
                aid,
                metric=language_metric(accuracy.CONFIDENCE, TRANSCRIPTION_SERVICE_DIMENSION, language),
                std_devs=CONFIDENCE_BAND_STD_DEVS,
                comparison_operator=cw.ComparisonOperator.LESS_THAN_LOWER_THRESHOLD,
                evaluation_periods=CONFIDENCE_HOURS,
                datapoints_to_alarm=CONFIDENCE_HOURS_BELOW,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,  # an hour without jobs says nothing
                alarm_description=f"Transcripts in {language} have been less confident than usual for "
                f"{CONFIDENCE_HOURS_BELOW} of the last {CONFIDENCE_HOURS} hours (below the band anomaly detection "
                "learnt from its own history): a new model, a new kind of audio or a noisy customer (docs/runbook.md, "
                '"Confidence fell")',
            )
            a.add_alarm_action(self._action)
            self.alarms[aid] = a


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
        accuracy_widgets(dashboard)
        dashboard.add_widgets(cw.AlarmStatusWidget(title="Alarms", alarms=alarms, width=24))


def accuracy_widgets(dashboard: cw.Dashboard) -> None:
    """Issue 26: confidence by language beside the WER people's corrections measure; the share of doubtful
    words and the language distribution below them."""
    worker = TRANSCRIPTION_SERVICE_DIMENSION
    dashboard.add_widgets(
        cw.GraphWidget(
            title="Confidence by language (hourly mean of jobs)",
            left=[by_language(accuracy.CONFIDENCE, worker, "Average", "")],
            width=12,
        ),
        cw.GraphWidget(
            title="Model WER against people's corrections, by language",
            left=[by_language(accuracy.CORRECTION_WORD_ERROR_RATE, API_SERVICE_DIMENSION, "Average", "")],
            width=12,
        ),
    )
    dashboard.add_widgets(
        cw.GraphWidget(
            title=f"Share of words below {LOW_CONFIDENCE_PROBABILITY:g} probability, by language",
            left=[by_language(accuracy.LOW_CONFIDENCE_SHARE, worker, "Average", "")],
            width=12,
        ),
        cw.GraphWidget(
            title="Jobs by language",
            left=[by_language(accuracy.JOBS_BY_LANGUAGE, worker, "Sum", "")],
            width=12,
        ),
    )
