"""An analyser independent of cdk-nag: cfn-lint (AWS's template linter) with AWS's serverless rules
(cfn-lint-serverless, awslabs/serverless-rules), over every synthesised template. Each finding is fixed
or acknowledged with its reason in infra/analyser-acknowledged.yaml, the one file of them."""

from __future__ import annotations

import json
from fnmatch import fnmatchcase

import pytest
import yaml

from .conftest import REPO

ACKNOWLEDGED = REPO / "infra" / "analyser-acknowledged.yaml"
SERVERLESS_RULES = "cfn_lint_serverless.rules"


def acknowledgments() -> list[dict]:
    entries = yaml.safe_load(ACKNOWLEDGED.read_text())
    for entry in entries:
        assert set(entry) == {"rule", "stack", "resource", "reason"}, entry
        assert len(entry["reason"].split()) >= 12, f"{entry['rule']}: say why it is accepted"
    return entries


@pytest.fixture(scope="module")
def findings(synth, custom_domain_synth) -> list[tuple[str, str, str, str]]:
    """(stack, rule, logical id, message) of every finding in every template of both deployments."""
    import cfn_lint_serverless  # noqa: F401 - the infra extra's; missing, the analyser would run without its rules
    from cfnlint.api import ManualArgs, lint

    out = []
    for stack, template in [*synth.templates.items(), *custom_domain_synth.templates.items()]:
        config = ManualArgs(regions=["us-east-1"], append_rules=[SERVERLESS_RULES])
        for match in lint(json.dumps(template), config=config):
            path = list(match.path) if match.path else []
            resource = path[1] if len(path) > 1 and path[0] == "Resources" else ""
            out.append((stack, match.rule.id, resource, str(match.message)))
    return out


def matches(entry: dict, finding: tuple[str, str, str, str]) -> bool:
    stack, rule, resource, _ = finding
    return rule == entry["rule"] and fnmatchcase(stack, entry["stack"]) and fnmatchcase(resource, entry["resource"])


def test_the_serverless_rules_ran(findings):
    """The appended rules are loaded: their ids (ES*, WS*) appear among the findings."""
    assert any(rule.startswith(("ES", "WS")) for _, rule, _, _ in findings)


def test_every_finding_is_fixed_or_acknowledged_with_its_reason(findings):
    entries = acknowledgments()
    new = [f for f in findings if not any(matches(e, f) for e in entries)]
    assert not new, "fix these or acknowledge them in infra/analyser-acknowledged.yaml:\n" + "\n".join(
        f"{s} {rule} {rid}: {msg}" for s, rule, rid, msg in new
    )


def test_every_acknowledgment_still_matches_a_finding(findings):
    stale = [e for e in acknowledgments() if not any(matches(e, f) for f in findings)]
    assert not stale, f"no finding matches these any more: remove them: {stale}"
