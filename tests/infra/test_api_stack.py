"""The REST API: cached Lambda authorizer, the two Powertools Lambdas, throttling and access logs."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match

from hark.api.http_api import HTTP_API
from hark.domain.resources import upload_status_function

from .conftest import TEST_CONTEXT, api_routes, render, resources_of, template_resources


def _functions(synth) -> dict[str, dict]:
    return {
        f["Properties"]["Handler"]: f["Properties"]
        for f in resources_of(synth.template("Api"), "AWS::Lambda::Function").values()
        if f["Properties"].get("Handler", "").startswith("lambdas.")
    }


def test_three_lambdas_with_the_handlers_powertools_layer_and_settings(synth):
    functions = _functions(synth)
    status_handler = upload_status_function(template_resources()).handler
    assert set(functions) == {"lambdas.authorizer.handler.handler", "lambdas.api.handler.handler", status_handler}
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
        assert env["POWERTOOLS_SERVICE_NAME"] in {"api", "authorizer", "upload-status"}
        assert "HARK_AWS_ENDPOINT_URL" not in env  # real AWS endpoints


# Clerk session tokens live 60 seconds (Clerk docs, "Session tokens": "a short-lived 60-second JWT").
CLERK_SESSION_TOKEN_SECONDS = 60


def test_authorizer_is_the_defined_kind_cached_no_longer_than_a_token_lives(synth):
    (authorizer,) = resources_of(synth.template("Api"), "AWS::ApiGateway::Authorizer").values()
    props = authorizer["Properties"]
    assert props["Type"] == HTTP_API.authorizer.kind
    assert props["IdentitySource"] == f"method.request.header.{HTTP_API.authorizer.identity_header}"
    assert props["AuthorizerResultTtlInSeconds"] == HTTP_API.authorizer.result_cache_seconds
    assert 0 < props["AuthorizerResultTtlInSeconds"] <= CLERK_SESSION_TOKEN_SECONDS


def test_every_defined_route_and_only_those_reach_the_api_lambda(synth):
    routes = api_routes(synth.template("Api"))
    preflights = {k: v for k, v in routes.items() if k[0] == "OPTIONS"}
    assert all(p["AuthorizationType"] == "NONE" for p in preflights.values())  # CORS preflight
    proxied = {k: v for k, v in routes.items() if k[0] != "OPTIONS"}
    assert set(proxied) == {(r.method, r.path) for r in HTTP_API.routes}
    for route in HTTP_API.routes:
        props = proxied[(route.method, route.path)]
        assert props["Integration"]["Type"] == "AWS_PROXY"
        assert "ApiFunction" in render(props["Integration"]["Uri"])
        if route.authorized:
            assert props["AuthorizationType"] == "CUSTOM" and "AuthorizerId" in props
        else:
            assert props["AuthorizationType"] == "NONE" and "AuthorizerId" not in props


def test_logging_has_the_accounts_api_gateway_cloudwatch_role(synth):
    # Without AWS::ApiGateway::Account naming a role API Gateway can assume, a stage with access
    # logging fails to create ("CloudWatch Logs role ARN must be set in account settings").
    template = synth.template("Api")
    (account,) = resources_of(template, "AWS::ApiGateway::Account").values()
    role_id = account["Properties"]["CloudWatchRoleArn"]["Fn::GetAtt"][0]
    role = template["Resources"][role_id]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "apigateway.amazonaws.com"}
    assert "AmazonAPIGatewayPushToCloudWatchLogs" in render(role["ManagedPolicyArns"])
    (stage_id,) = resources_of(template, "AWS::ApiGateway::Stage")
    (deployment_id,) = resources_of(template, "AWS::ApiGateway::Deployment")
    depends = template["Resources"][stage_id].get("DependsOn", []) + template["Resources"][deployment_id].get(
        "DependsOn", []
    )
    assert any(d in resources_of(template, "AWS::ApiGateway::Account") for d in depends)


def test_stage_throttled_traced_and_access_logged(synth):
    t = synth.assertions("Api")
    t.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "StageName": HTTP_API.stage,
            "TracingEnabled": True,
            "AccessLogSetting": {"DestinationArn": Match.any_value(), "Format": Match.string_like_regexp("status")},
            "MethodSettings": Match.array_with(
                [
                    Match.object_like(
                        {
                            "HttpMethod": "*",
                            "ResourcePath": "/*",
                            "ThrottlingRateLimit": HTTP_API.throttle.rate_limit,
                            "ThrottlingBurstLimit": HTTP_API.throttle.burst_limit,
                        }
                    )
                ]
            ),
        },
    )
    t.has_resource_properties("AWS::ApiGateway::RestApi", {"Name": f"{TEST_CONTEXT['hark:stack']}-api"})
    t.has_resource_properties(
        "AWS::ApiGateway::GatewayResponse",
        {
            "ResponseType": "DEFAULT_4XX",
            "ResponseParameters": {
                "gatewayresponse.header.Access-Control-Allow-Origin": f"'{TEST_CONTEXT['hark:webOrigin']}'"
            },
        },
    )
