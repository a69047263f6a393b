"""cdk-nag (AwsSolutions) passes with every acknowledged finding given a reason. cfn-lint, with the
serverless rules, runs in test_analyser.py."""

from __future__ import annotations


def test_cdk_nag_aws_solutions_has_no_unacknowledged_finding(synth):
    violations = []
    for plugin in (synth.report or {}).get("pluginReports", []):
        for v in plugin.get("violations", []):
            paths = [c["constructPath"] for c in v.get("violatingConstructs", [])]
            violations.append(f"{plugin['pluginName']}: {v['ruleName']} ({v.get('severity')}) at {paths}")
    errors = [v for v in violations if "(error)" in v or "AwsSolutions" in v.split(":")[0]]
    assert not errors, "\n".join(errors)
    assert synth.error is None, synth.error


def test_cdk_nag_ran_and_every_acknowledgment_has_a_reason(synth):
    acks = []
    for stack, template in synth.templates.items():
        for rid, resource in template["Resources"].items():
            for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
                acks.append((stack, rid, rule))
    assert acks, "no cdk-nag acknowledgment was recorded"
    for stack, rid, rule in acks:
        # ours (AwsSolutions-*) and the few CDK records itself (CloudFormation-Validate::*)
        assert rule["id"].startswith(("AwsSolutions-", "CloudFormation-Validate::")), (stack, rid, rule)
        assert len(rule.get("reason", "").strip()) >= 30, f"{stack}/{rid}: {rule['id']} needs a real reason"
    ids = {rule["id"] for _, _, rule in acks}
    # the findings accepted on purpose, each documented where it is acknowledged
    assert {"AwsSolutions-APIG3", "AwsSolutions-L1", "AwsSolutions-ECS2"} <= ids
    assert not {i for i in ids if i.startswith("AwsSolutions-IAM5[Action::s3:*") or i.endswith("Action::*]")}
