"""CORS for every authorized party (API Gateway's preflight and its own answers, the buckets' browser
rules), and the web app on a custom domain: a deployment with two parties and hark:webDomain."""

from __future__ import annotations

import re

import pytest

from .conftest import CUSTOM_DOMAIN_CONTEXT, PARTIES, TEST_CONTEXT, one, resources_of
from .test_live_service import live_container

STRANGER = "https://evil.example"


def preflight_answer(integration: dict, origin: str) -> str:
    """The Access-Control-Allow-Origin API Gateway's MOCK preflight sends for `origin`: the static
    header, unless the response template overrides it for exactly this origin."""
    (response,) = integration["IntegrationResponses"]
    static = response["ResponseParameters"]["method.response.header.Access-Control-Allow-Origin"].strip("'")
    template = response.get("ResponseTemplates", {}).get("application/json", "")
    overridden = re.findall(
        r'#if\(\$origin == "([^"]+)"\)\s*#set\(\$context\.responseOverride\.header\.'
        r"Access-Control-Allow-Origin = \$origin\)",
        template,
    )
    return origin if origin in overridden else static


def preflights(template: dict) -> list[dict]:
    methods = resources_of(template, "AWS::ApiGateway::Method").values()
    found = [m["Properties"]["Integration"] for m in methods if m["Properties"]["HttpMethod"] == "OPTIONS"]
    assert found
    return found


@pytest.mark.parametrize("party", PARTIES)
def test_the_preflight_of_every_route_answers_each_authorized_party(custom_domain_synth, party):
    for integration in preflights(custom_domain_synth.template("Api")):
        assert preflight_answer(integration, party) == party
        (response,) = integration["IntegrationResponses"]
        assert response["ResponseParameters"]["method.response.header.Vary"] == "'Origin'"


def test_the_preflight_never_answers_a_stranger(custom_domain_synth, synth):
    for s in (custom_domain_synth, synth):
        for integration in preflights(s.template("Api")):
            assert preflight_answer(integration, STRANGER) != STRANGER


def test_gateway_responses_carry_the_origin_of_any_authorized_party(custom_domain_synth, synth):
    """API Gateway's own 401/403/404/429 must be readable by every party's page (else the browser hides
    them); with one party the header is that party, with several the request's Origin, varied on."""
    many = resources_of(custom_domain_synth.template("Api"), "AWS::ApiGateway::GatewayResponse")
    assert many
    for response in many.values():
        params = response["Properties"]["ResponseParameters"]
        assert params["gatewayresponse.header.Access-Control-Allow-Origin"] == "method.request.header.Origin"
        assert params["gatewayresponse.header.Vary"] == "'Origin'"
        assert "gatewayresponse.header.Access-Control-Allow-Credentials" not in params
    for response in resources_of(synth.template("Api"), "AWS::ApiGateway::GatewayResponse").values():
        params = response["Properties"]["ResponseParameters"]
        assert params["gatewayresponse.header.Access-Control-Allow-Origin"] == f"'{TEST_CONTEXT['hark:webOrigin']}'"


def test_the_live_service_answers_the_preflight_of_each_origin_the_apis_answers_and_no_other(
    custom_domain_synth, monkeypatch
):
    """The web page asks the live service's own host for a ticket (and may call its OpenAI-compatible routes):
    the real app, configured from the live task's environment in the template, answers the browser's
    preflight without a credential for each origin API Gateway's preflight answers, and refuses a stranger's."""
    from starlette.testclient import TestClient

    from hark.domain.settings import Settings
    from worker.live.app import create_app

    for variable in live_container(custom_domain_synth.template("Workers"))["Environment"]:
        if variable["Name"].startswith("HARK_") and isinstance(variable["Value"], str):
            monkeypatch.setenv(variable["Name"], variable["Value"])
    api_preflights = preflights(custom_domain_synth.template("Api"))
    with TestClient(create_app(Settings())) as live:
        for party in PARTIES:
            assert all(preflight_answer(integration, party) == party for integration in api_preflights)
            for path in ("/v1/live/tickets", "/v1/audio/transcriptions"):
                asked = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
                answer = live.options(path, headers={"Origin": party, **asked})
                assert answer.status_code == 200, (party, path, answer.text)
                assert answer.headers["Access-Control-Allow-Origin"] == party
                assert "authorization" in answer.headers["Access-Control-Allow-Headers"].lower()
            # the refusal of a request without a credential is readable by the page, so it can say why
            refused = live.post("/v1/live/tickets", headers={"Origin": party})
            assert refused.status_code == 401 and refused.headers["Access-Control-Allow-Origin"] == party
        stranger = live.options(
            "/v1/live/tickets", headers={"Origin": STRANGER, "Access-Control-Request-Method": "POST"}
        )
    assert stranger.status_code == 400 and "Access-Control-Allow-Origin" not in stranger.headers


def test_the_api_lambdas_know_every_party(custom_domain_synth):
    import json

    for fn in resources_of(custom_domain_synth.template("Api"), "AWS::Lambda::Function").values():
        env = fn["Properties"]["Environment"]["Variables"]
        assert json.loads(env["HARK_AUTHORIZED_PARTIES"]) == PARTIES
        assert env["HARK_WEB_URL"] == f"https://{CUSTOM_DOMAIN_CONTEXT['hark:webDomain']}"


def test_browser_uploads_and_transcript_reads_allow_every_party(custom_domain_synth):
    buckets = resources_of(custom_domain_synth.template("Storage"), "AWS::S3::Bucket").values()
    rules = [r for b in buckets for r in b["Properties"].get("CorsConfiguration", {}).get("CorsRules", [])]
    assert {tuple(r["AllowedMethods"]) for r in rules} == {("PUT", "POST"), ("GET", "HEAD")}
    for rule in rules:
        assert sorted(rule["AllowedOrigins"]) == sorted(PARTIES)


def test_the_web_app_is_served_on_the_custom_domain_with_its_certificate(custom_domain_synth):
    template = custom_domain_synth.template("Web")
    config = one(template, "AWS::CloudFront::Distribution")["Properties"]["DistributionConfig"]
    assert config["Aliases"] == [CUSTOM_DOMAIN_CONTEXT["hark:webDomain"]]
    assert config["ViewerCertificate"] == {
        "AcmCertificateArn": CUSTOM_DOMAIN_CONTEXT["hark:certificateArn"],
        "MinimumProtocolVersion": "TLSv1.2_2021",
        "SslSupportMethod": "sni-only",  # no dedicated-IP charge
    }
    assert config.get("IPV6Enabled", True) is True  # the AAAA record below needs it
    assert template["Outputs"]["WebUrl"]["Value"] == f"https://{CUSTOM_DOMAIN_CONTEXT['hark:webDomain']}"
    # nothing to acknowledge any more: the viewer policy is TLS 1.2 or later
    (dist,) = resources_of(template, "AWS::CloudFront::Distribution").values()
    acks = {r["id"] for r in dist.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])}
    assert "AwsSolutions-CFR4" not in acks
    assert custom_domain_synth.error is None, custom_domain_synth.error


def test_alias_records_in_the_given_hosted_zone_point_at_the_distribution(custom_domain_synth):
    template = custom_domain_synth.template("Web")
    (dist_id,) = resources_of(template, "AWS::CloudFront::Distribution")
    records = resources_of(template, "AWS::Route53::RecordSet").values()
    assert sorted(r["Properties"]["Type"] for r in records) == ["A", "AAAA"]
    for record in records:
        props = record["Properties"]
        assert props["HostedZoneId"] == CUSTOM_DOMAIN_CONTEXT["hark:hostedZoneId"]
        assert props["Name"] == CUSTOM_DOMAIN_CONTEXT["hark:webDomain"]
        # CloudFront's own hosted zone, as Route 53's AliasTarget reference names it for every distribution
        assert props["AliasTarget"] == {
            "DNSName": {"Fn::GetAtt": [dist_id, "DomainName"]},
            "HostedZoneId": "Z2FDTNDATAQYW2",
        }


def test_without_a_domain_there_is_no_alias_and_no_record(synth):
    template = synth.template("Web")
    config = one(template, "AWS::CloudFront::Distribution")["Properties"]["DistributionConfig"]
    assert "Aliases" not in config
    assert not resources_of(template, "AWS::Route53::RecordSet")


@pytest.mark.parametrize(
    ("settings", "refusal"),
    [
        ({"hark:webDomain": "app.hark.example"}, "go together"),
        ({"hark:certificateArn": CUSTOM_DOMAIN_CONTEXT["hark:certificateArn"]}, "go together"),
        (
            {
                "hark:webDomain": "app.hark.example",
                "hark:certificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d",
            },
            "in us-east-1",
        ),
        ({"hark:hostedZoneId": "Z0123456789ABCDEFGHIJ"}, "needs hark:webDomain"),
        ({"hark:natGateways": 1}, "a NAT gateway in each"),
    ],
)
def test_settings_that_cannot_deploy_are_refused_with_what_to_change(settings, refusal):
    pytest.importorskip("aws_cdk")
    import aws_cdk as cdk

    from hark_infra.config import HarkConfig

    app = cdk.App(context={**TEST_CONTEXT, **settings})
    with pytest.raises(ValueError, match=refusal):
        HarkConfig.from_context(app)
