"""Dashboard and alarms (dead letters, oldest message age, worker errors, API 5xx) to an SNS topic."""

from __future__ import annotations

from hark.resources import resources

from .conftest import TEST_CONTEXT, one, resources_of

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
    assert len(filters) == 2
    for f in filters.values():
        (transform,) = f["Properties"]["MetricTransformations"]
        assert (transform["MetricNamespace"], transform["MetricName"]) == ("Hark", "WorkerErrors")


def test_dashboard_shows_queues_backlog_and_api(synth):
    dashboard = one(synth.template("Monitoring"), "AWS::CloudWatch::Dashboard")["Properties"]
    body = dashboard["DashboardBody"]
    text = body if isinstance(body, str) else "".join(p if isinstance(p, str) else "" for p in body["Fn::Join"][1])
    for needle in ("Backlog per worker", "Dead-letter queues", "5XXError", "RunningTaskCount", "WorkerErrors"):
        assert needle in text, needle
