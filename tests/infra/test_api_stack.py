"""The REST API: cached Lambda authorizer, the two Powertools Lambdas, throttling and access logs."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match

from .conftest import TEST_CONTEXT, render, resources_of


def _functions(synth) -> dict[str, dict]:
    return {f["Properties"]["Handler"]: f["Properties"]
            for f in resources_of(synth.template("Api"), "AWS::Lambda::Function").values()
            if f["Properties"].get("Handler", "").startswith("lambdas.")}


def test_two_lambdas_with_the_handlers_powertools_layer_and_settings(synth):
    functions = _functions(synth)
    assert set(functions) == {"lambdas.authorizer.handler.handler", "lambdas.api.handler.handler"}
    for props in functions.values():
        assert props["Runtime"].startswith("python3.")
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert props["LoggingConfig"]["LogFormat"] == "JSON"
        (layer,) = props["Layers"]
        assert ":017000801446:layer:AWSLambdaPowertoolsPythonV3-python3" in render(layer)
        env = props["Environment"]["Variables"]
        assert env["HARK_STACK"] == TEST_CONTEXT["hark:stack"]
        assert env["HARK_REGION"] == {"Ref": "AWS::Region"}
        assert env["HARK_ISSUER"] == TEST_CONTEXT["hark:issuer"]
        assert env["HARK_JWKS_URL"] == TEST_CONTEXT["hark:issuer"] + "/.well-known/jwks.json"
        assert json.loads(env["HARK_AUTHORIZED_PARTIES"]) == TEST_CONTEXT["hark:authorizedParties"]
        assert env["HARK_WEB_URL"] == TEST_CONTEXT["hark:webOrigin"]
        assert int(env["HARK_MAX_UPLOAD_BYTES"]) > 0
        assert env["POWERTOOLS_SERVICE_NAME"] in {"api", "authorizer"}
        assert "HARK_AWS_ENDPOINT_URL" not in env  # real AWS endpoints


def test_lambda_asset_holds_the_hark_and_lambdas_packages(synth):
    assets = [p for p in synth.outdir.iterdir() if p.name.startswith("asset.") and p.is_dir()]
    (code,) = [a for a in assets if (a / "BUNDLED_DEPENDENCIES").exists()]
    assert (code / "lambdas" / "api").is_dir() and (code / "lambdas" / "authorizer").is_dir()
    assert (code / "hark" / "settings.py").exists()
    assert not (code / "hark" / "local").exists()  # the emulator never ships to Lambda
    functions = [f["Properties"]["Code"] for f in resources_of(synth.template("Api"), "AWS::Lambda::Function").values()
                 if f["Properties"].get("Handler", "").startswith("lambdas.")]
    assert all(render(c["S3Key"]).startswith(code.name.removeprefix("asset.")) for c in functions)


def test_token_authorizer_with_caching_on_the_authorization_header(synth):
    t = synth.assertions("Api")
    t.has_resource_properties("AWS::ApiGateway::Authorizer", {
        "Type": "TOKEN",
        "IdentitySource": "method.request.header.Authorization",
        "AuthorizerResultTtlInSeconds": 300,
    })


def test_every_route_uses_the_authorizer_and_the_api_lambda(synth):
    template = synth.template("Api")
    paths = {}
    for rid, res in resources_of(template, "AWS::ApiGateway::Resource").items():
        parent = res["Properties"]["ParentId"]
        prefix = "" if "Fn::GetAtt" in parent else paths.get(parent["Ref"], "?")
        paths[rid] = f"{prefix}/{res['Properties']['PathPart']}"
    # resources are emitted parent first, but resolve again to be safe
    for rid, res in resources_of(template, "AWS::ApiGateway::Resource").items():
        parent = res["Properties"]["ParentId"]
        if "Ref" in parent:
            paths[rid] = f"{paths[parent['Ref']]}/{res['Properties']['PathPart']}"
    routes = set()
    for method in resources_of(template, "AWS::ApiGateway::Method").values():
        props = method["Properties"]
        if props["HttpMethod"] == "OPTIONS":
            assert props["AuthorizationType"] == "NONE"  # CORS preflight
            continue
        assert props["AuthorizationType"] == "CUSTOM"
        assert "AuthorizerId" in props
        assert props["Integration"]["Type"] == "AWS_PROXY"
        routes.add((props["HttpMethod"], paths[props["ResourceId"]["Ref"]]))
    assert routes == {("POST", "/jobs"), ("GET", "/jobs"), ("GET", "/jobs/{id}"), ("DELETE", "/jobs/{id}"),
                      ("GET", "/jobs/{id}/transcript")}


def test_stage_throttled_traced_and_access_logged(synth):
    t = synth.assertions("Api")
    t.has_resource_properties("AWS::ApiGateway::Stage", {
        "StageName": "v1",
        "TracingEnabled": True,
        "AccessLogSetting": {"DestinationArn": Match.any_value(), "Format": Match.string_like_regexp("status")},
        "MethodSettings": Match.array_with([Match.object_like({
            "HttpMethod": "*", "ResourcePath": "/*", "ThrottlingRateLimit": 50, "ThrottlingBurstLimit": 100})]),
    })
    t.has_resource_properties("AWS::ApiGateway::RestApi", {"Name": f"{TEST_CONTEXT['hark:stack']}-api"})
    t.has_resource_properties("AWS::ApiGateway::GatewayResponse", {
        "ResponseType": "DEFAULT_4XX",
        "ResponseParameters": {"gatewayresponse.header.Access-Control-Allow-Origin":
                               f"'{TEST_CONTEXT['hark:webOrigin']}'"}})
