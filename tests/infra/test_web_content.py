"""The web app's deployment: frontend/ and a generated config.json copied into the site bucket by a
BucketDeployment in its own stack (WebContent), no-cache headers, and a CloudFront invalidation."""

from __future__ import annotations

import base64
import json
import re
import sys
import zipfile

import pytest

from hark.api.webapp import HARDENING_HEADERS, clerk_frontend_api_host

from .conftest import REPO, TEST_CONTEXT, one, render, resources_of

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
    return [
        (_source_files(synth, key), markers)
        for key, markers in zip(props["SourceObjectKeys"], props["SourceMarkers"], strict=True)
    ]


def test_frontend_folder_is_deployed_to_the_site_bucket(synth):
    props = _deployment(synth)
    assert props["DestinationBucketName"] == {
        "Fn::GetStackOutput": {"StackName": f"{STACK}-web", "OutputName": "SiteBucketName"}
    }
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
    # no hark:clerkPublishableKey in TEST_CONTEXT; the live service is deployed, at the URL the Workers stack gives
    assert config == {
        "apiBase": "API_URL",
        "devAuth": False,
        "liveBase": f"https://{TEST_CONTEXT['hark:liveDomain']}/v1",
    }
    assert config["liveBase"] == synth.template("Workers")["Outputs"]["LiveUrl"]["Value"]
    # the same keys frontend/api.js starts from; a missing clerkPublishableKey or liveBase keeps its default, null
    api_js = (REPO / "frontend" / "api.js").read_text()
    defaults = re.search(r"let config = \{([^}]*)\}", api_js).group(1)
    assert set(re.findall(r"(\w+):", defaults)) == {"apiBase", "devAuth", "clerkPublishableKey", "liveBase"}
    # the marker becomes the REST API's URL (stage v1) from the Api stack at deploy time
    join = json.dumps(markers[marker])
    assert markers[marker]["Fn::Join"][1][0] == '"https://' and markers[marker]["Fn::Join"][1][-1] == '/"'
    assert "execute-api" in join and f'"StackName": "{STACK}-api"' in join
    assert "PublishOutputRefApi" in join and "DeploymentStagev1" in join


def test_config_json_carries_the_clerk_publishable_key_when_set_and_no_live_base_without_the_live_service(web):
    assert web.web_config("https://x/v1/", "pk_live_abc") == {
        "apiBase": "https://x/v1/",
        "devAuth": False,
        "clerkPublishableKey": "pk_live_abc",
    }


def test_no_cache_and_cloudfront_invalidation_after_each_deploy(synth):
    props = _deployment(synth)
    assert props["SystemMetadata"] == {"cache-control": "no-cache"}
    assert props["DistributionPaths"] == ["/*"]
    assert props["DistributionId"] == {
        "Fn::GetStackOutput": {"StackName": f"{STACK}-web", "OutputName": "DistributionId"}
    }
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
    assert "Metadata" not in one(template, "Custom::CDKBucketDeployment") or "cdk_nag" not in one(
        template, "Custom::CDKBucketDeployment"
    ).get("Metadata", {})


# -- The distribution's response headers: security headers and a Content-Security-Policy ----------

FAPI_HOST = "clerk.hark.example"  # a Clerk Frontend API host, as Clerk's dashboard would show it


def publishable_key(host: str, prefix: str = "pk_live_") -> str:
    # Clerk's format: the prefix, then base64 of "<Frontend API host>$" (Clerk leaves the padding off)
    return prefix + base64.b64encode(f"{host}$".encode()).decode().rstrip("=")


def _csp(template: dict) -> dict[str, list[str]]:
    policy = one(template, "AWS::CloudFront::ResponseHeadersPolicy")["Properties"]["ResponseHeadersPolicyConfig"]
    text = render(policy["SecurityHeadersConfig"]["ContentSecurityPolicy"]["ContentSecurityPolicy"])
    assert policy["SecurityHeadersConfig"]["ContentSecurityPolicy"]["Override"] is True
    return {name: values for name, *values in (d.split() for d in text.split(";"))}


@pytest.fixture
def web():
    """hark_infra.web, importable without the session synth (which puts infra/ on the path too)."""
    pytest.importorskip("aws_cdk", reason="the infra extra (aws-cdk-lib, cdk-nag, cfn-lint) is not installed")
    if str(REPO / "infra") not in sys.path:
        sys.path.insert(0, str(REPO / "infra"))
    from hark_infra import web

    return web


def _web_template(web, key: str) -> dict:
    from aws_cdk import App
    from aws_cdk.assertions import Template

    from hark_infra.config import HarkConfig

    stack = web.WebStack(App(), "Web", config=HarkConfig(stack=STACK, clerk_publishable_key=key))
    return Template.from_stack(stack).to_json()


def _s3_hosts(*names: str) -> set[str]:
    # Presigned URLs use the regional virtual-hosted endpoint (hark.domain.aws.s3_addressing).
    return {f"https://{n}.s3.${{AWS::Region}}.amazonaws.com" for n in names}


def test_distribution_serves_security_headers_and_a_csp(synth):
    template = synth.template("Web")
    (policy_id,) = resources_of(template, "AWS::CloudFront::ResponseHeadersPolicy")
    behavior = one(template, "AWS::CloudFront::Distribution")["Properties"]["DistributionConfig"][
        "DefaultCacheBehavior"
    ]
    assert behavior["ResponseHeadersPolicyId"] == {"Ref": policy_id}
    headers = one(template, "AWS::CloudFront::ResponseHeadersPolicy")["Properties"]["ResponseHeadersPolicyConfig"][
        "SecurityHeadersConfig"
    ]
    assert headers["FrameOptions"]["FrameOption"] == "DENY"
    assert headers["ContentTypeOptions"]["Override"] is True
    assert headers["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 365 * 24 * 3600
    assert headers["ReferrerPolicy"]["ReferrerPolicy"] == "strict-origin-when-cross-origin"


def test_every_answer_of_the_distribution_error_pages_included_carries_the_hardening_headers(synth):
    """hark.api.webapp.HARDENING_HEADERS, as CloudFront's policy spells them, on the one cache behavior there
    is; the custom error answers (403/404 -> /index.html) are served through it, so they carry them too."""
    template = synth.template("Web")
    (policy_id,) = resources_of(template, "AWS::CloudFront::ResponseHeadersPolicy")
    config = one(template, "AWS::CloudFront::Distribution")["Properties"]["DistributionConfig"]
    assert not config.get("CacheBehaviors")  # no other behavior that an error page could be served by
    assert config["DefaultCacheBehavior"]["ResponseHeadersPolicyId"] == {"Ref": policy_id}
    assert {e["ErrorCode"] for e in config["CustomErrorResponses"]} == {403, 404}
    assert {e["ResponsePagePath"] for e in config["CustomErrorResponses"]} == {"/index.html"}
    headers = one(template, "AWS::CloudFront::ResponseHeadersPolicy")["Properties"]["ResponseHeadersPolicyConfig"][
        "SecurityHeadersConfig"
    ]
    served = {
        "X-Content-Type-Options": "nosniff" if headers["ContentTypeOptions"]["Override"] else None,
        "X-Frame-Options": headers["FrameOptions"]["FrameOption"],
        "Referrer-Policy": headers["ReferrerPolicy"]["ReferrerPolicy"],
    }
    assert served == HARDENING_HEADERS
    assert all(v["Override"] for v in headers.values())  # the origin cannot weaken them


def test_csp_without_a_clerk_key_allows_the_app_api_and_buckets_only(synth):
    from hark.domain.resources import resources

    res = resources(STACK, account="${AWS::AccountId}", region="${AWS::Region}")  # as the template writes them
    csp = _csp(synth.template("Web"))  # TEST_CONTEXT has no hark:clerkPublishableKey
    assert csp["default-src"] == ["'self'"] and csp["script-src"] == ["'self'"] and csp["style-src"] == ["'self'"]
    # the API (its URL is not known to this stack: the region's execute-api hosts), the presigned upload
    # to the audio bucket, the viewer's fetch from the transcripts bucket, the live service's host (its
    # ticket over HTTPS, its stream over WSS: TEST_CONTEXT deploys it)
    live = TEST_CONTEXT["hark:liveDomain"]
    assert set(csp["connect-src"]) == {
        "'self'",
        "https://*.execute-api.${AWS::Region}.amazonaws.com",
        f"https://{live}",
        f"wss://{live}",
    } | _s3_hosts(res.audio_bucket.name, res.transcripts_bucket.name)
    # the viewer's player: presigned GETs of the uploaded recording (GET /jobs/{id}/audio), audio bucket only
    assert set(csp["media-src"]) == {"'self'"} | _s3_hosts(res.audio_bucket.name)
    assert csp["frame-src"] == ["'none'"] and csp["object-src"] == ["'none'"] and csp["frame-ancestors"] == ["'none'"]
    assert not [v for values in csp.values() for v in values if "clerk" in v or "cloudflare" in v]


def test_csp_with_a_clerk_key_allows_its_frontend_api_host_and_no_other_clerk_host(web):
    csp = _csp(_web_template(web, publishable_key(FAPI_HOST)))
    clerk = f"https://{FAPI_HOST}"
    # Clerk's CSP guide: the Frontend API host for script and connect, img.clerk.com, Cloudflare's
    # bot-protection challenge (script and frame), workers from self and blob:, inline styles.
    assert set(csp["script-src"]) == {"'self'", clerk, "https://challenges.cloudflare.com"}
    assert clerk in csp["connect-src"]
    assert [v for v in csp["connect-src"] if "*" in v] == ["https://*.execute-api.${AWS::Region}.amazonaws.com"]
    assert not [v for v in csp["connect-src"] if v.startswith("wss:")]  # no live service: no host of its own
    assert set(csp["img-src"]) == {"'self'", "data:", "https://img.clerk.com"}
    assert set(csp["worker-src"]) == {"'self'", "blob:"}
    assert set(csp["style-src"]) == {"'self'", "'unsafe-inline'"}
    assert csp["frame-src"] == ["https://challenges.cloudflare.com"]
    assert not [
        v for values in csp.values() for v in values if "clerk" in v and v not in (clerk, "https://img.clerk.com")
    ]


def test_clerk_publishable_keys_decode_to_their_frontend_api_host(web):
    for host in (FAPI_HOST, "wise-owl-12.clerk.accounts.dev"):
        for prefix in ("pk_live_", "pk_test_"):
            assert clerk_frontend_api_host(publishable_key(host, prefix)) == host
    # with its base64 padding kept, too
    assert (
        clerk_frontend_api_host("pk_test_" + base64.b64encode(b"ab.clerk.accounts.dev$").decode())
        == "ab.clerk.accounts.dev"
    )


def test_a_bad_clerk_key_stops_the_synth_with_the_reason(web):
    bad = {
        "sk_live_" + publishable_key(FAPI_HOST)[8:]: "must start with pk_test_ or pk_live_",  # a secret key
        "pk_live_%%%": "does not decode",  # not base64
        "pk_live_" + base64.b64encode(FAPI_HOST.encode()).decode(): "does not decode",  # no "$" marker
        publishable_key("not a host"): "does not decode",
    }
    for key, reason in bad.items():
        with pytest.raises(ValueError, match=reason):
            clerk_frontend_api_host(key)
    with pytest.raises(ValueError, match="hark:clerkPublishableKey"):
        _web_template(web, "pk_live_%%%")
