"""Dashboard and alarms (dead letters, oldest message age, worker errors, email failures, API 5xx) to an
SNS topic."""

from __future__ import annotations

import json
import re

from hark.domain.resources import resources
from hark.ops.scaling import DEFAULT_POLICY as P
from hark.ops.scaling import TRANSCRIBE_USD_PER_MINUTE

from .conftest import REPO, TEST_CONTEXT, one, resources_of

RES = resources(TEST_CONTEXT["hark:stack"])


def _alarms(synth) -> list[dict]:
    return [a["Properties"] for a in resources_of(synth.template("Monitoring"), "AWS::CloudWatch::Alarm").values()]


def _metric(alarm: dict) -> tuple[str, str, dict]:
    return alarm["Namespace"], alarm["MetricName"], {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])}


def test_every_alarm_notifies_the_encrypted_topic(synth):
    template = synth.template("Monitoring")
    topic_id, topic = next(iter(resources_of(template, "AWS::SNS::Topic").items()))
    assert "KmsMasterKeyId" in topic["Properties"]
    alarms = _alarms(synth)
    assert len(alarms) >= 7
    for alarm in alarms:
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]
    sub = one(template, "AWS::SNS::Subscription")["Properties"]
    assert sub["Protocol"] == "email" and sub["Endpoint"] == TEST_CONTEXT["hark:alarmEmail"]


def test_dead_letter_depth_and_oldest_message_alarms(synth):
    metrics = {_metric(a)[1:2] + (_metric(a)[2].get("QueueName"),): a for a in _alarms(synth)}
    for qdef in RES.queues:
        dlq = metrics[("ApproximateNumberOfMessagesVisible", qdef.dlq_name)]
        assert dlq["Threshold"] == 0 and dlq["ComparisonOperator"] == "GreaterThanThreshold"
        age = metrics[("ApproximateAgeOfOldestMessage", qdef.name)]
        assert age["Threshold"] > 0


def test_worker_errors_and_api_5xx_alarms(synth):
    by_metric = {(_metric(a)[0], _metric(a)[1]): a for a in _alarms(synth)}
    assert ("Hark", "WorkerErrors") in by_metric
    api = by_metric[("AWS/ApiGateway", "5XXError")]
    assert _metric(api)[2] == {"ApiName": f"{TEST_CONTEXT['hark:stack']}-api", "Stage": "v1"}
    # the worker log groups feed the WorkerErrors metric
    filters = resources_of(synth.template("Workers"), "AWS::Logs::MetricFilter")
    assert len(filters) == 3  # transcription, notification, webhooks
    for f in filters.values():
        (transform,) = f["Properties"]["MetricTransformations"]
        assert (transform["MetricNamespace"], transform["MetricName"]) == ("Hark", "WorkerErrors")


def _dashboard_text(synth) -> str:
    body = one(synth.template("Monitoring"), "AWS::CloudWatch::Dashboard")["Properties"]["DashboardBody"]
    return body if isinstance(body, str) else "".join(p if isinstance(p, str) else "" for p in body["Fn::Join"][1])


def test_dashboard_shows_queues_backlog_and_api(synth):
    text = _dashboard_text(synth)
    for needle in ("Expected wait (s)", "Dead-letter queues", "5XXError", "RunningTaskCount", "WorkerErrors"):
        assert needle in text, needle


def test_dashboard_graphs_the_scaling_expressions_the_alarms_use(synth):
    """The expected wait, work per worker and measured speed, as hark.ops.scaling writes them, with the
    scale-out and scale-in thresholds drawn on them."""
    text = _dashboard_text(synth)
    for expression in (P.expected_wait_expression, P.work_per_worker_expression, P.measured_speed_expression):
        assert json.dumps(expression) in text, expression
    assert f'"value":{P.target_wait_seconds:g},"label":"scale out"' in text
    assert f'"value":{P.scale_in_work_per_worker:g},"label":"scale in"' in text
    assert '"DesiredTaskCount"' in text


def test_dashboard_graphs_cost_per_audio_hour_next_to_transcribe(synth):
    """Running tasks x an hour x the worker-hour price over the audio hours the workers reported, with
    Amazon Transcribe's list price drawn on it."""
    from hark_infra.config import HarkConfig, cdk_json_context

    price = float(cdk_json_context()["hark:workerUsdPerHour"])
    assert price == HarkConfig().worker_usd_per_hour
    text = _dashboard_text(synth)
    assert json.dumps(P.cost_per_audio_hour_expression(price, 3600)) in text
    assert f"FILL(tasks, 0) * 1 * {price:g} / (audio / 3600)" in P.cost_per_audio_hour_expression(price, 3600)
    assert f'"value":{TRANSCRIBE_USD_PER_MINUTE * 60:g},"label":"Amazon Transcribe' in text


def _worker_emf(path: str) -> tuple[str, str, set[str]]:
    """(namespace, service dimension, metric names) a worker emits, read from its source (a file, or
    every module of a worker's package)."""
    where = REPO / path
    source = "\n".join(f.read_text() for f in sorted(where.glob("*.py"))) if where.is_dir() else where.read_text()
    service = re.search(r'^SERVICE = "([^"]+)"', source, re.M).group(1)
    namespace = re.search(r'Metrics\(namespace="([^"]+)", service=SERVICE\)', source).group(1)
    names = set(re.findall(r'add_metric\(name="(\w+)"', source)) | set(re.findall(r'\.metric\("(\w+)"', source))
    return namespace, service, names


def test_emails_failed_alarm_covers_an_ses_outage(synth):
    """EmailsFailed > 0 in each of three 5-minute periods -> the alarm topic; the notify queue's age alarm
    can miss an outage because SQS stops counting a message's age after its third receive."""
    namespace, service, names = _worker_emf("worker/notification/worker.py")
    assert {"EmailsSent", "EmailsFailed"} <= names
    topic_id = next(iter(resources_of(synth.template("Monitoring"), "AWS::SNS::Topic")))
    (alarm,) = [a for a in _alarms(synth) if a["MetricName"] == "EmailsFailed"]
    assert (
        _metric(alarm)
        == (namespace, "EmailsFailed", {"service": service})
        == ("Hark", "EmailsFailed", {"service": "notification"})
    )
    assert alarm["Statistic"] == "Sum" and alarm["Period"] == 300
    assert alarm["EvaluationPeriods"] == 3 and alarm["DatapointsToAlarm"] == 3  # 15 minutes running
    assert alarm["Threshold"] == 0 and alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"  # no failure, no EMF line
    assert alarm["AlarmActions"] == [{"Ref": topic_id}]


def test_dashboard_reads_the_workers_metrics_as_they_emit_them(synth):
    text = _dashboard_text(synth)
    for path, wanted in (
        ("worker/transcription", ("JobsCompleted", "JobsFailed")),
        ("worker/notification/worker.py", ("EmailsSent", "EmailsFailed")),
        ("worker/webhooks/worker.py", ("WebhooksDelivered", "WebhookAttemptsFailed", "WebhooksRefused")),
    ):
        namespace, service, names = _worker_emf(path)
        for metric in wanted:
            assert metric in names, (path, metric)
            # CloudWatch's dashboard metric array: [namespace, name, dimension, value, ...]
            assert f'["{namespace}","{metric}","service","{service}"' in text, (path, metric)


def test_dashboard_graphs_the_jobs_own_cost_per_audio_hour(synth):
    """Issue 13.5: the sum of the jobs' cost (CostUsd, as the transcription worker emits it) over the audio
    hours, on the same graph as the fleet's cost and Amazon Transcribe's price."""
    namespace, service, names = _worker_emf("worker/transcription")
    assert {"CostUsd", "AudioSeconds"} <= names
    text = _dashboard_text(synth)
    assert json.dumps(P.job_cost_per_audio_hour_expression) in text
    assert f'["{namespace}","CostUsd","service","{service}"' in text
