"""A deploy of new code, as CloudFormation would see the update: the app synthesised twice from a copy of
the repository, the second time with one source file changed (as any commit under hark/ changes it).

Only code-carrying properties may change: each Lambda's Code, each task definition's image, asset keys.
Never a count, a name, a retention, a scaling bound; never a resource added or removed. And no change
may need CloudFormation to replace a resource with a custom name (it refuses: the name is taken).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .conftest import REPO, STACKS, TEST_CONTEXT

# What the synth reads: the packages the assets and the CDK app are built from, the web app, pyproject.
COPIED = ("hark", "lambdas", "worker", "infra", "frontend", "tools", "requirements", "pyproject.toml", "README.md")
NOT_COPIED = shutil.ignore_patterns("cdk.out", "build", "__pycache__", "*.pyc", ".pytest_cache")
CHANGED_FILE = "hark/__init__.py"  # in the Lambda asset and in both worker images

# The properties that carry code, per resource type (a path prefix inside Properties), and how
# CloudFormation applies a change to each (the "Update requires" line of the CloudFormation reference).
CODE_PROPERTIES = {
    "AWS::Lambda::Function": (("Code",), "No interruption"),
    "AWS::ECS::TaskDefinition": (("ContainerDefinitions", "*", "Image"), "Replacement"),
    "Custom::CDKBucketDeployment": (("SourceObjectKeys",), "No interruption"),
}
# A replaced resource with a custom name cannot be created beside the old one, except a task definition:
# its Family names a series of revisions, and a replacement registers the next revision of it.
NAME_PROPERTIES = {
    "AWS::ECS::TaskDefinition": ("Family", True),
    "AWS::Lambda::Function": ("FunctionName", False),
}

SYNTH = textwrap.dedent(
    """
    import json, sys
    root, outdir = sys.argv[1], sys.argv[2]
    sys.path[:0] = [root + "/infra", root]
    from hark_infra import build_app
    build_app(context=json.loads(sys.argv[3]), outdir=outdir).synth()
    """
)


def synth_copy(root: Path, outdir: Path) -> dict[str, dict]:
    env = {k: v for k, v in os.environ.items() if k not in ("CDK_CONTEXT_JSON", "CDK_OUTDIR", "PYTHONPATH")}
    env["JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"] = "20"
    subprocess.run(
        [sys.executable, "-c", SYNTH, str(root), str(outdir), json.dumps(TEST_CONTEXT)],
        check=True,
        cwd=root,
        env=env,
        capture_output=True,
    )
    return {s: json.loads((outdir / f"{s}.template.json").read_text()) for s in STACKS}


@pytest.fixture(scope="module")
def two_synths(tmp_path_factory) -> tuple[dict[str, dict], dict[str, dict]]:
    pytest.importorskip("aws_cdk", reason="the infra extra is not installed")
    root = tmp_path_factory.mktemp("repo")
    for name in COPIED:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, root / name, ignore=NOT_COPIED)
        else:
            shutil.copy2(src, root / name)
    before = synth_copy(root, tmp_path_factory.mktemp("before"))
    with (root / CHANGED_FILE).open("a") as f:
        f.write("\n# a new release\n")
    after = synth_copy(root, tmp_path_factory.mktemp("after"))
    return before, after


def changed_paths(a, b, path=()) -> list[tuple]:
    """Every leaf path where a and b differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            out += changed_paths(a.get(key), b.get(key), (*path, key))
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [p for i, (x, y) in enumerate(zip(a, b, strict=True)) for p in changed_paths(x, y, (*path, i))]
    return [] if a == b else [path]


def under(path: tuple, prefix: tuple) -> bool:
    return len(path) >= len(prefix) and all(p == "*" or p == q for p, q in zip(prefix, path, strict=False))


def updates(before: dict[str, dict], after: dict[str, dict]) -> dict[tuple[str, str], list[tuple]]:
    """(stack, resource) -> the changed paths of its Properties; everything else must be equal."""
    out = {}
    for stack in STACKS:
        a, b = before[stack], after[stack]
        assert a.get("Parameters") == b.get("Parameters"), stack
        assert a.get("Outputs") == b.get("Outputs"), stack
        assert sorted(a["Resources"]) == sorted(b["Resources"]), f"{stack}: resources added or removed"
        for rid, ra in a["Resources"].items():
            rb = b["Resources"][rid]
            assert (ra["Type"], ra.get("DependsOn"), ra.get("DeletionPolicy"), ra.get("UpdateReplacePolicy")) == (
                rb["Type"],
                rb.get("DependsOn"),
                rb.get("DeletionPolicy"),
                rb.get("UpdateReplacePolicy"),
            ), f"{stack}/{rid}"
            paths = changed_paths(ra.get("Properties", {}), rb.get("Properties", {}))
            if paths:
                out[(stack, rid)] = paths
    return out


def test_new_code_changes_only_the_code_carrying_properties(two_synths):
    before, after = two_synths
    changes = updates(before, after)
    for (stack, rid), paths in changes.items():
        rtype = before[stack]["Resources"][rid]["Type"]
        assert rtype in CODE_PROPERTIES, f"{stack}/{rid} ({rtype}) changes with the code: {paths}"
        prefix, _ = CODE_PROPERTIES[rtype]
        assert all(under(p, prefix) for p in paths), f"{stack}/{rid}: {paths} beyond {prefix}"
    # The code did change: every function and every worker image is a new version.
    changed = {(s, before[s]["Resources"][r]["Type"]) for s, r in changes}
    functions = {(s, "AWS::Lambda::Function") for s in ("Api",)}
    assert functions <= changed, changes
    tasks = {
        r for (s, r) in changes if s == "Workers" and before[s]["Resources"][r]["Type"] == "AWS::ECS::TaskDefinition"
    }
    assert len(tasks) == 4, f"transcription, live, notification and webhook images: {tasks}"


def test_no_update_replaces_a_resource_with_a_custom_name(two_synths):
    before, after = two_synths
    for (stack, rid), _ in updates(before, after).items():
        resource = before[stack]["Resources"][rid]
        _, behaviour = CODE_PROPERTIES[resource["Type"]]
        if behaviour != "Replacement":
            continue
        name_property, replaceable = NAME_PROPERTIES[resource["Type"]]
        if name_property in resource["Properties"]:
            assert replaceable, f"{stack}/{rid}: replaced, but named {resource['Properties'][name_property]}"
        # each service follows its replaced task definition by reference: an in-place service update
        users = [r for r in before[stack]["Resources"].values() if r["Type"] == "AWS::ECS::Service"]
        assert [u["Properties"]["TaskDefinition"] for u in users].count({"Ref": rid}) == 1, rid


def test_autoscaled_services_carry_no_desired_count(synth):
    """CloudFormation sends DesiredCount on every service update: the fleet would be reset by a deploy."""
    template = synth.template("Workers")
    services = {rid: r for rid, r in template["Resources"].items() if r["Type"] == "AWS::ECS::Service"}
    autoscaled = set()
    for target in (
        r for r in template["Resources"].values() if r["Type"] == "AWS::ApplicationAutoScaling::ScalableTarget"
    ):
        resource_id = json.dumps(target["Properties"]["ResourceId"])
        autoscaled |= {
            rid
            for rid, s in services.items()
            if f'"{rid}", "Name"' in resource_id or resource_id.endswith(f'/{s["Properties"]["ServiceName"]}"')
        }
    assert len(autoscaled) == 3, f"the GPU transcription service, the live service and the notifier: {autoscaled}"
    for rid in autoscaled:
        assert "DesiredCount" not in services[rid]["Properties"], rid
