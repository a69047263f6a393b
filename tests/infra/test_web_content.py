"""The web app's deployment: frontend/ and a generated config.json copied into the site bucket by a
BucketDeployment in its own stack (WebContent), no-cache headers, and a CloudFront invalidation."""

from __future__ import annotations

import json
import re
import zipfile

from .conftest import REPO, TEST_CONTEXT, one, resources_of

STACK = TEST_CONTEXT["hark:stack"]
MARKER = re.compile(r"<<marker:0x[0-9a-f]+:\d+>>")


def _deployment(synth) -> dict:
    return one(synth.template("WebContent"), "Custom::CDKBucketDeployment")["Properties"]


def _source_files(synth, key: str) -> dict[str, bytes]:
    """The files of one deployment source (an asset zip, or its staged folder) in the cloud assembly."""
    asset_hash = key.removesuffix(".zip")
    staged = synth.outdir / f"asset.{asset_hash}"
    if staged.is_dir():
        return {p.relative_to(staged).as_posix(): p.read_bytes() for p in staged.rglob("*") if p.is_file()}
    with zipfile.ZipFile(f"{staged}.zip") as z:
        return {name: z.read(name) for name in z.namelist() if not name.endswith("/")}


def _sources(synth) -> list[tuple[dict[str, bytes], dict]]:
    props = _deployment(synth)
    return [(_source_files(synth, key), markers)
            for key, markers in zip(props["SourceObjectKeys"], props["SourceMarkers"], strict=True)]


def test_frontend_folder_is_deployed_to_the_site_bucket(synth):
    props = _deployment(synth)
    assert props["DestinationBucketName"] == {
        "Fn::GetStackOutput": {"StackName": f"{STACK}-web", "OutputName": "SiteBucketName"}}
    assert props["Prune"] is True
    assert len(props["SourceObjectKeys"]) == 2
    frontend = {p.name: p.read_bytes() for p in (REPO / "frontend").iterdir() if p.is_file()}
    assert "index.html" in frontend and "config.json" not in frontend
    files, markers = _sources(synth)[0]
    assert files == frontend and markers == {}


def test_config_json_has_the_keys_the_web_app_reads(synth):
    files, markers = _sources(synth)[1]
    assert set(files) == {"config.json"}
    text = files["config.json"].decode()
    (marker,) = set(MARKER.findall(text))
    config = json.loads(MARKER.sub('"API_URL"', text))  # json_data's marker stands for a whole JSON string
    assert config == {"apiBase": "API_URL", "devAuth": False}  # no hark:clerkPublishableKey in TEST_CONTEXT
    # the same keys frontend/api.js starts from; a missing clerkPublishableKey keeps its default, null
    api_js = (REPO / "frontend" / "api.js").read_text()
    defaults = re.search(r"let config = \{([^}]*)\}", api_js).group(1)
    assert set(re.findall(r"(\w+):", defaults)) == {"apiBase", "devAuth", "clerkPublishableKey"}
    # the marker becomes the REST API's URL (stage v1) from the Api stack at deploy time
    join = json.dumps(markers[marker])
    assert markers[marker]["Fn::Join"][1][0] == '"https://' and markers[marker]["Fn::Join"][1][-1] == '/"'
    assert "execute-api" in join and f'"StackName": "{STACK}-api"' in join
    assert "PublishOutputRefApi" in join and "DeploymentStagev1" in join


def test_config_json_carries_the_clerk_publishable_key_when_set():
    from hark_infra.web import web_config

    assert web_config("https://x/v1/", "pk_live_abc") == {
        "apiBase": "https://x/v1/", "devAuth": False, "clerkPublishableKey": "pk_live_abc"}


def test_no_cache_and_cloudfront_invalidation_after_each_deploy(synth):
    props = _deployment(synth)
    assert props["SystemMetadata"] == {"cache-control": "no-cache"}
    assert props["DistributionPaths"] == ["/*"]
    assert props["DistributionId"] == {
        "Fn::GetStackOutput": {"StackName": f"{STACK}-web", "OutputName": "DistributionId"}}
    assert props["WaitForDistributionInvalidation"] is True
    outputs = synth.template("Web")["Outputs"]
    assert {"SiteBucketName", "DistributionId", "DistributionDomainName"} <= set(outputs)


def test_web_content_is_deployed_after_web_and_api(synth):
    deps = set(synth.manifest["artifacts"]["WebContent"].get("dependencies", []))
    assert {"Web", "Api"} <= deps
    assert "WebContent" not in synth.manifest["artifacts"]["Api"].get("dependencies", [])
    assert "WebContent" not in synth.manifest["artifacts"]["Web"].get("dependencies", [])


def test_deployment_handler_findings_are_acknowledged_on_it_only(synth):
    template = synth.template("WebContent")
    (fn_id,) = [k for k in resources_of(template, "AWS::Lambda::Function") if k.startswith("CustomCDKBucketDeployment")]
    rules = {r["id"] for r in template["Resources"][fn_id]["Metadata"]["cdk_nag"]["rules_to_suppress"]}
    assert "AwsSolutions-IAM5[Resource::*]" in rules
    assert not [r for r in rules if r.startswith("AwsSolutions-IAM5[Action::s3:*")]
    # the deployment's own custom resource and the rest of the stack carry no acknowledgment
    assert "Metadata" not in one(template, "Custom::CDKBucketDeployment") or \
        "cdk_nag" not in one(template, "Custom::CDKBucketDeployment").get("Metadata", {})
