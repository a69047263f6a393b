"""Contract tests: every handler driven by the event AWS documents for the way the synthesised
templates wire it, and the local gateway checked against the same templates.

The wiring (authorizer kind, identity source, cache TTL, stage, routes, CORS preflight, the S3
notification's events and prefix) is read from the templates, never copied; the event shapes follow
AWS's documentation:
- Lambda authorizer input: https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-lambda-authorizer-input.html
- REST proxy integration input (payload 1.0): https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html#api-gateway-simple-proxy-for-lambda-input-format
- S3 event message structure (version 2.1): https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html
"""

from __future__ import annotations

import fnmatch
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote_plus

import pytest
from werkzeug.test import Client

from hark.api import auth
from hark.api.webapp import HARDENING_HEADERS
from hark.domain import aws
from hark.domain.api_schemas import ErrorResponse
from hark.domain.keys import upload_key
from hark.domain.messages import parse_transcribe_body
from hark.domain.settings import get_settings
from hark.local.gateway import Gateway, LambdaContext
from hark.local.issuer import DevIssuer
from lambdas.api import handler as api_handler
from lambdas.authorizer import handler as authorizer_handler

from .conftest import api_routes, render, resources_of, template_resources

REPO = Path(__file__).resolve().parents[2]
WEB_ORIGIN = "https://app.hark.example"
REGION, ACCOUNT, API_ID = "eu-west-1", "123456789012", "a1b2c3d4e5"


# -- the wiring, read from the templates ------------------------------------------------------------
def authorizer_wiring(synth) -> dict:
    (authorizer,) = resources_of(synth.template("Api"), "AWS::ApiGateway::Authorizer").values()
    props = authorizer["Properties"]
    source = props["IdentitySource"]
    prefix = "method.request.header."
    assert source.startswith(prefix), source
    return {
        "kind": props["Type"],
        "header": source[len(prefix) :],
        "ttl": props.get("AuthorizerResultTtlInSeconds", 300),
    }


def stage_name(synth) -> str:
    (stage,) = resources_of(synth.template("Api"), "AWS::ApiGateway::Stage").values()
    return stage["Properties"]["StageName"]


def method_arn(synth, method: str, path: str) -> str:
    return f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{API_ID}/{stage_name(synth)}/{method}{path}"


def concrete(path: str) -> str:
    return path.replace("{id}", uuid.uuid4().hex).replace("{token}", "t0ken")


def authorizer_event(synth, sent_headers: dict, arn: str, path: str, method: str) -> dict:
    """What API Gateway sends the authorizer of the template's kind for a request with these headers."""
    wiring = authorizer_wiring(synth)
    if wiring["kind"] == "TOKEN":
        # The identity source header's value, looked up whatever case the client used.
        value = next(v for k, v in sent_headers.items() if k.lower() == wiring["header"].lower())
        return {"type": "TOKEN", "authorizationToken": value, "methodArn": arn}
    assert wiring["kind"] == "REQUEST", wiring
    return {
        "type": "REQUEST",
        "methodArn": arn,
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": dict(sent_headers),
        "multiValueHeaders": {k: [v] for k, v in sent_headers.items()},
        "queryStringParameters": {},
        "multiValueQueryStringParameters": {},
        "pathParameters": {},
        "stageVariables": {},
        "requestContext": {
            "path": f"/{stage_name(synth)}{path}",
            "accountId": ACCOUNT,
            "resourceId": "abc123",
            "stage": stage_name(synth),
            "requestId": str(uuid.uuid4()),
            "apiId": API_ID,
            "httpMethod": method,
            "resourcePath": path,
            "identity": {"sourceIp": "203.0.113.7"},
        },
    }


def allows(policy: dict, arn: str) -> bool:
    """IAM's wildcard rule for execute-api ARNs ("*" spans "/"), written independently of the gateway's."""
    statements = policy["Statement"]
    matching = [
        s for s in statements if fnmatch.fnmatchcase(arn, s["Resource"]) and s["Action"] == "execute-api:Invoke"
    ]
    return any(s["Effect"] == "Allow" for s in matching) and not any(s["Effect"] == "Deny" for s in matching)


# -- a Clerk-shaped issuer with its JWKS on loopback ------------------------------------------------
class Issuer:
    def __init__(self, key_file: Path):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.dev = DevIssuer(self.url, key_file)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def _handler(self):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = json.dumps(outer.dev.jwks()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        return Handler

    def token(self, email: str = "ada@example.com") -> str:
        return self.dev.token(email, azp=WEB_ORIGIN)["token"]


@pytest.fixture
def issuer(tmp_path, monkeypatch):
    server = Issuer(tmp_path / "key.pem")
    monkeypatch.setenv("HARK_ISSUER", server.url)
    monkeypatch.setenv("HARK_AUTHORIZED_PARTIES", json.dumps([WEB_ORIGIN]))
    monkeypatch.delenv("HARK_JWKS_URL", raising=False)
    get_settings.cache_clear()
    auth.verifier_for.cache_clear()
    yield server
    server.server.shutdown()
    server.server.server_close()
    get_settings.cache_clear()
    auth.verifier_for.cache_clear()


# -- the authorizer -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "header_name", ["Authorization", "authorization", "AUTHORIZATION"], ids=["http1", "http2-lowercase", "uppercase"]
)
def test_authorizer_allows_a_valid_token_in_the_event_its_wiring_sends(synth, issuer, header_name):
    sent = {header_name: f"Bearer {issuer.token()}", "Host": "api.hark.example"}
    arn = method_arn(synth, "GET", "/jobs")
    result = authorizer_handler.handler(authorizer_event(synth, sent, arn, "/jobs", "GET"), None)
    assert result["principalId"] == result["context"]["user_id"] and result["principalId"].startswith("user_")
    assert allows(result["policyDocument"], arn)


def test_authorizer_refuses_a_bad_token_with_the_one_message_api_gateway_maps_to_401(synth, issuer):
    sent = {"Authorization": f"Bearer {issuer.token()[:-4]}AAAA"}
    arn = method_arn(synth, "GET", "/jobs")
    with pytest.raises(Exception) as info:
        authorizer_handler.handler(authorizer_event(synth, sent, arn, "/jobs", "GET"), None)
    assert info.value.args == ("Unauthorized",)


def test_one_cached_allow_serves_every_route_of_the_stage(synth, issuer):
    # API Gateway caches the first answer per token for the TTL and evaluates it against each later
    # route's ARN: an Allow scoped to the first route would make the second one 403.
    assert authorizer_wiring(synth)["ttl"] > 0
    sent = {"Authorization": f"Bearer {issuer.token()}"}
    first = method_arn(synth, "POST", "/jobs")
    policy = authorizer_handler.handler(authorizer_event(synth, sent, first, "/jobs", "POST"), None)["policyDocument"]
    routes = api_routes(synth.template("Api"))
    authorized = [(m, p) for (m, p), props in routes.items() if props["AuthorizationType"] == "CUSTOM"]
    assert len(authorized) >= 2
    for method, path in authorized:
        assert allows(policy, method_arn(synth, method, concrete(path))), (method, path)


# -- the API Lambda: REST proxy events ---------------------------------------------------------------
def proxy_event(
    synth, method: str, resource: str, path_params: dict, authorizer: dict, body: dict | None = None
) -> dict:
    """The REST proxy event as AWS documents it, with HTTP/2's lowercase header names."""
    path = resource
    for k, v in path_params.items():
        path = path.replace("{" + k + "}", v)
    headers = {
        "accept": "application/json",
        "authorization": "Bearer x",
        "content-type": "application/json",
        "host": f"{API_ID}.execute-api.{REGION}.amazonaws.com",
        "origin": WEB_ORIGIN,
        "user-agent": "curl/8.5.0",
        "x-forwarded-for": "203.0.113.7",
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    }
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": path_params or None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "2gxmpl",
            "resourcePath": resource,
            "httpMethod": method,
            "extendedRequestId": "JJbxmHc9IAMFfTg=",
            "requestTime": "23/Nov/2026:19:01:16 +0000",
            "path": f"/{stage_name(synth)}{path}",
            "accountId": ACCOUNT,
            "protocol": "HTTP/1.1",
            "stage": stage_name(synth),
            "domainPrefix": API_ID,
            "requestTimeEpoch": int(time.time() * 1000),
            "requestId": str(uuid.uuid4()),
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "sourceIp": "203.0.113.7",
                "principalOrgId": None,
                "accessKey": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": "curl/8.5.0",
                "user": None,
            },
            "domainName": f"{API_ID}.execute-api.{REGION}.amazonaws.com",
            "apiId": API_ID,
            "authorizer": authorizer,
        },
        "body": json.dumps(body) if body is not None else None,
        "isBase64Encoded": False,
    }


def test_api_lambda_serves_every_authorized_route_from_the_documented_proxy_event(synth, issuer, stack):
    sent = {"Authorization": f"Bearer {issuer.token()}"}
    answer = authorizer_handler.handler(
        authorizer_event(synth, sent, method_arn(synth, "POST", "/jobs"), "/jobs", "POST"), None
    )
    # API Gateway hands the authorizer's context on with principalId and its own latency figure.
    authorizer = {"principalId": answer["principalId"], "integrationLatency": 12, **answer["context"]}
    routes = api_routes(synth.template("Api"))
    assert routes[("POST", "/jobs")]["Integration"]["Type"] == "AWS_PROXY"

    created = api_handler.handler(
        proxy_event(
            synth, "POST", "/jobs", {}, authorizer, {"filename": "memo.wav", "content_type": "audio/wav", "size": 1000}
        ),
        LambdaContext("hark-api"),
    )
    assert created["statusCode"] == 201, created
    job_id = json.loads(created["body"])["job"]["job_id"]
    expected = {
        ("GET", "/jobs"): 200,
        ("GET", "/jobs/{id}"): 200,
        ("GET", "/jobs/{id}/transcript"): 409,  # not transcribed yet
        ("DELETE", "/jobs/{id}"): 204,
    }
    for (method, resource), status in expected.items():
        assert routes[(method, resource)]["AuthorizationType"] == "CUSTOM"
        params = {"id": job_id} if "{id}" in resource else {}
        result = api_handler.handler(
            proxy_event(synth, method, resource, params, authorizer), LambdaContext("hark-api")
        )
        assert result["statusCode"] == status, (method, resource, result)


# -- the local gateway against the same templates ----------------------------------------------------
@pytest.fixture
def gateway(synth, issuer, stack, tmp_path):
    config = {
        "apiBase": "",
        "devAuth": True,
        "clerkPublishableKey": None,
        "webOrigin": WEB_ORIGIN,
        "authorizedParties": [WEB_ORIGIN],
    }
    gw = Gateway(issuer.dev, REPO / "frontend", config, REGION)
    return gw, Client(gw)


def test_local_gateway_is_wired_as_the_template(synth, gateway):
    gw, _ = gateway
    wiring = authorizer_wiring(synth)
    assert gw.api.authorizer.kind == wiring["kind"]
    assert gw.api.authorizer.identity_header == wiring["header"]
    assert gw.api.authorizer.result_cache_seconds == wiring["ttl"]
    assert gw.api.stage == stage_name(synth)
    routes = api_routes(synth.template("Api"))
    assert {(r.method, r.path, r.authorized) for r in gw.api.routes} == {
        (m, p, props["AuthorizationType"] == "CUSTOM") for (m, p), props in routes.items() if m != "OPTIONS"
    }


def test_local_gateway_sends_the_authorizer_event_of_the_templates_kind_once_per_token(synth, gateway, issuer):
    gw, client = gateway
    seen = []
    real = gw.authorizer_function.__call__

    class Recording:
        def __call__(self, event):
            seen.append(event)
            return real(event)

    gw.authorizer_function = Recording()
    headers = {"Authorization": f"Bearer {issuer.token()}", "Origin": WEB_ORIGIN}
    created = client.post("/jobs", json={"filename": "a.wav", "content_type": "audio/wav", "size": 10}, headers=headers)
    listed = client.get("/jobs", headers=headers)  # a second route, same token: the cached Allow serves it
    assert created.status_code == 201, created.get_data(as_text=True)
    assert listed.status_code == 200, listed.get_data(as_text=True)
    assert len(seen) == 1
    (event,) = seen
    assert event["type"] == authorizer_wiring(synth)["kind"]
    if event["type"] == "TOKEN":
        assert set(event) == {"type", "authorizationToken", "methodArn"}
        assert event["authorizationToken"] == headers["Authorization"]
    assert event["methodArn"].endswith(f"/{stage_name(synth)}/POST/jobs")


def test_local_gateway_answers_preflight_from_the_templates_cors_without_the_authorizer(synth, gateway):
    gw, client = gateway
    routes = api_routes(synth.template("Api"))
    preflight = routes[("OPTIONS", "/jobs")]["Integration"]["IntegrationResponses"][0]["ResponseParameters"]

    def header(name: str) -> str:
        return preflight[f"method.response.header.{name}"].strip("'")

    response = client.options(
        "/jobs",
        headers={
            "Origin": WEB_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert response.status_code == int(
        routes[("OPTIONS", "/jobs")]["Integration"]["IntegrationResponses"][0]["StatusCode"]
    )
    assert gw.authorizer_invocations == 0
    for name in ("Access-Control-Allow-Headers", "Access-Control-Allow-Methods", "Access-Control-Max-Age"):
        assert set(response.headers[name].split(",")) == set(header(name).split(",")), name
    assert response.headers["Access-Control-Allow-Origin"] == header("Access-Control-Allow-Origin")


# -- API Gateway's own answers: the gateway responses of the template, sent alike by the local gateway ----
def gateway_responses(synth) -> dict[str, dict]:
    """ResponseType -> {"status", "headers", "template"} of the Api template's gateway responses."""
    found = {}
    for resource in resources_of(synth.template("Api"), "AWS::ApiGateway::GatewayResponse").values():
        props = resource["Properties"]
        prefix = "gatewayresponse.header."
        found[props["ResponseType"]] = {
            "status": int(props["StatusCode"]) if "StatusCode" in props else None,
            "headers": {k[len(prefix) :]: v.strip("'") for k, v in props.get("ResponseParameters", {}).items()},
            "template": props["ResponseTemplates"]["application/json"],
        }
    return found


def assert_is_gateway_response(response, expected: dict) -> None:
    """A local answer is the deployed gateway response: status, body (the template is literal JSON), headers."""
    assert response.status_code == expected["status"], response.get_data(as_text=True)
    assert response.json == json.loads(expected["template"])
    assert response.mimetype == "application/json"
    for name, value in expected["headers"].items():
        assert response.headers[name] == value, name


def test_every_gateway_response_is_the_apis_error_shape(synth):
    responses = gateway_responses(synth)
    # The authorizer's refusals, an unknown route, and the catch-alls (throttling, timeouts, ...).
    assert {"UNAUTHORIZED", "ACCESS_DENIED", "MISSING_AUTHENTICATION_TOKEN", "DEFAULT_4XX", "DEFAULT_5XX"} <= set(
        responses
    )
    for rtype, response in responses.items():
        # API Gateway renders $context.error.messageString as a quoted JSON string.
        rendered = response["template"].replace("$context.error.messageString", json.dumps('Too "Many" Requests'))
        body = ErrorResponse.model_validate_json(rendered)  # the API Lambda's own error model
        assert json.loads(rendered) == body.model_dump(), rtype
        assert body.error.code.islower() and body.error.message, rtype
        assert response["headers"]["Access-Control-Allow-Origin"] == WEB_ORIGIN, rtype
        assert response["headers"]["X-Content-Type-Options"] == "nosniff", rtype
        assert response["headers"]["Cache-Control"] == "no-store", rtype
        for header, value in HARDENING_HEADERS.items():  # what every answer carries (hark.api.webapp)
            assert response["headers"][header] == value, (rtype, header)
    assert responses["UNAUTHORIZED"]["status"] == 401 and responses["ACCESS_DENIED"]["status"] == 403
    # An unknown route is the same 404 route_not_found the API Lambda answers for one it lacks.
    assert json.loads(responses["MISSING_AUTHENTICATION_TOKEN"]["template"])["error"]["code"] == "route_not_found"


def test_local_gateway_refuses_without_the_identity_header_before_the_authorizer(synth, gateway):
    gw, client = gateway
    responses = gateway_responses(synth)
    response = client.get("/jobs", headers={"Origin": WEB_ORIGIN})
    assert_is_gateway_response(response, responses["UNAUTHORIZED"])
    assert gw.authorizer_invocations == 0
    bad = client.get("/jobs", headers={"Authorization": "Bearer a.b.c"})
    assert_is_gateway_response(bad, responses["UNAUTHORIZED"])
    assert gw.authorizer_invocations == 1
    unknown = client.get("/nowhere/jobs")
    assert unknown.status_code == 404 and unknown.json["error"]["code"] == "not_found"  # the web app's 404
    for method, path in (("PUT", "/jobs"), ("GET", "/jobs/a/b/c"), ("PATCH", "/links/x")):
        missing = client.open(path, method=method, headers={"Authorization": "Bearer a.b.c"})
        assert_is_gateway_response(missing, responses["MISSING_AUTHENTICATION_TOKEN"])
    assert gw.authorizer_invocations == 1  # API Gateway answers unknown routes before any authorizer


def test_local_gateway_answers_a_deny_policy_with_the_templates_access_denied(synth, gateway, issuer):
    gw, client = gateway
    # An authorizer whose policy denies this route (ours allows the whole stage; the gateway must still
    # answer a Deny as API Gateway does).
    gw.authorizer_function = lambda event: {
        "principalId": "user_x",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": event["methodArn"]}],
        },
        "context": {"user_id": "user_x"},
    }
    response = client.get("/jobs", headers={"Authorization": f"Bearer {issuer.token()}"})
    assert_is_gateway_response(response, gateway_responses(synth)["ACCESS_DENIED"])


# -- S3 -> SNS -> SQS -> the transcription worker and the upload-status function ------------------------
def upload_wiring(synth) -> dict:
    """The upload fan-out as the templates wire it: the bucket's notification (events, prefix, topic), the
    topic's SQS subscriptions (queue names, raw delivery) and the upload-status function's event source."""
    (bucket,) = [
        b["Properties"]
        for b in resources_of(synth.template("Storage"), "AWS::S3::Bucket").values()
        if "NotificationConfiguration" in b["Properties"]
    ]
    (topic_config,) = bucket["NotificationConfiguration"]["TopicConfigurations"]
    (rule,) = topic_config["Filter"]["S3Key"]["Rules"]
    assert rule["Name"] == "prefix"
    queues = synth.template("Queues")
    topic_name = render(topic_config["Topic"]).rsplit(":", 1)[1]
    (topic_id,) = [
        k for k, t in resources_of(queues, "AWS::SNS::Topic").items() if t["Properties"]["TopicName"] == topic_name
    ]
    queue_names = {k: q["Properties"]["QueueName"] for k, q in resources_of(queues, "AWS::SQS::Queue").items()}
    subscribed = {}
    for sub in resources_of(queues, "AWS::SNS::Subscription").values():
        props = sub["Properties"]
        assert props["TopicArn"] == {"Ref": topic_id} and props["Protocol"] == "sqs"
        subscribed[queue_names[props["Endpoint"]["Fn::GetAtt"][0]]] = props.get("RawMessageDelivery", False)
    api = synth.template("Api")
    (mapping,) = resources_of(api, "AWS::Lambda::EventSourceMapping").values()
    function = api["Resources"][mapping["Properties"]["FunctionName"]["Ref"]]["Properties"]
    return {
        "event": topic_config["Event"],
        "prefix": rule["Value"],
        "subscribed": subscribed,  # queue name -> raw message delivery
        "status_queue": render(mapping["Properties"]["EventSourceArn"]).rsplit(":", 1)[1],
        "status_handler": function["Handler"],
        "response_types": mapping["Properties"].get("FunctionResponseTypes", []),
    }


def s3_event_record(key: str, size: int, bucket: str = "hark-audio-123456789012-eu-west-1") -> dict:
    """S3 event message structure, version 2.1; object keys are URL-encoded (spaces as '+')."""
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventTime": "2026-11-23T19:01:16.123Z",
        "eventName": "ObjectCreated:Post",
        "userIdentity": {"principalId": "AWS:AROAEXAMPLE:session"},
        "requestParameters": {"sourceIPAddress": "203.0.113.7"},
        "responseElements": {
            "x-amz-request-id": "C3D13FE58DE4C810",
            "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD",
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "transcribe",
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                "arn": f"arn:aws:s3:::{bucket}",
            },
            "object": {
                "key": quote_plus(key, safe="/"),
                "size": size,
                "eTag": "d41d8cd98f00b204e9800998ecf8427e",
                "sequencer": "0055AED6DCD90281E5",
            },
        },
    }


S3_TEST_EVENT = {
    "Service": "Amazon S3",
    "Event": "s3:TestEvent",
    "Time": "2026-11-23T19:01:16.123Z",
    "Bucket": "hark-audio-123456789012-eu-west-1",
    "RequestId": "5582815E1AEA5ADF",
    "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE",
}


def test_upload_fanout_of_the_templates_wiring_reads_as_an_upload_on_both_queues(synth, stack):
    wiring = upload_wiring(synth)
    assert wiring["event"] == "s3:ObjectCreated:*"
    key = upload_key("user_2abc", uuid.uuid4().hex, "réunion d'équipe 1.m4a")
    assert key.startswith(wiring["prefix"])  # the keys the API mints fall under the notified prefix
    # Raw delivery on every subscription: each queue's body is the S3 event itself (SNS's own envelope
    # would need unwrapping, and the worker reads S3's shape).
    assert all(wiring["subscribed"].values()), wiring["subscribed"]
    deployed = template_resources()
    assert set(wiring["subscribed"]) == {deployed.transcribe_queue.name, deployed.upload_status_queue.name}
    record = s3_event_record(key, 1024)
    # Through the real (emulated) queues, as each consumer receives it.
    sqs = aws.client("sqs")
    for queue in (stack.transcribe_queue.name, stack.upload_status_queue.name):
        url = aws.queue_url(queue)
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"Records": [record]}))
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(S3_TEST_EVENT))
        bodies = []
        while len(bodies) < 2:
            bodies += [
                m["Body"]
                for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
                    "Messages", []
                )
            ]
        parsed = [parse_transcribe_body(b) for b in bodies]
        assert [] in parsed  # the test event S3 sends when the notification is configured: nothing to do
        (uploads,) = [p for p in parsed if p != []]
        (upload,) = uploads
        assert upload.key == key and upload.bucket == record["s3"]["bucket"]["name"] and upload.size == 1024
        assert (upload.user_id, upload.job_id) == ("user_2abc", key.split("/")[2])


def sqs_lambda_event(bodies: list[str], queue: str) -> dict:
    """What Lambda's SQS event source hands the function (https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html)."""
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1545082649183",
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": "1545082649185",
                },
                "messageAttributes": {},
                "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}",
                "awsRegion": REGION,
            }
            for body in bodies
        ]
    }


def test_upload_status_function_queues_the_job_from_the_documented_sqs_event(synth, stack):
    """Issue 10, item 7: the function the template maps to the upload-status queue marks the job QUEUED
    with the object's real size, deletes an upload no job accounts for, and reports an unreadable body
    as a batch item failure (so only that record comes back, and in the end reaches the DLQ)."""
    import importlib

    from hark.domain.jobs import Job, JobStatus, new_job_id, now_iso

    wiring = upload_wiring(synth)
    assert wiring["status_queue"] == template_resources().upload_status_queue.name
    assert wiring["subscribed"][wiring["status_queue"]] is True  # fed, raw, by the uploads topic
    assert wiring["response_types"] == ["ReportBatchItemFailures"]
    module, _, name = wiring["status_handler"].rpartition(".")
    handler = getattr(importlib.import_module(module), name)

    store, s3 = aws.job_store(), aws.client("s3")
    job_id = new_job_id()
    job = store.create(
        Job(
            job_id=job_id,
            user_id="user_2abc",
            filename="memo.wav",
            content_type="audio/wav",
            size_bytes=1024,
            audio_key=upload_key("user_2abc", job_id, "memo.wav"),
            status=JobStatus.UPLOADING,
            created_at=now_iso(),
            updated_at=now_iso(),
        )
    )
    orphan = upload_key("user_2abc", new_job_id(), "left behind.wav")
    for k in (job.audio_key, orphan):
        s3.put_object(Bucket=stack.audio_bucket.name, Key=k, Body=b"\0" * 1024)
    bodies = [
        json.dumps({"Records": [s3_event_record(job.audio_key, 1024, stack.audio_bucket.name)]}),
        json.dumps({"Records": [s3_event_record(orphan, 1024, stack.audio_bucket.name)]}),
        json.dumps(S3_TEST_EVENT),
        "this is not an S3 event",
    ]
    event = sqs_lambda_event(bodies, stack.upload_status_queue.name)
    answer = handler(event, LambdaContext("hark-upload-status"))

    assert answer == {"batchItemFailures": [{"itemIdentifier": event["Records"][3]["messageId"]}]}
    queued = store.get(job_id)
    assert queued.status == JobStatus.QUEUED and queued.uploaded_bytes == 1024
    assert queued.queued_at == "2026-11-23T19:01:16.123000Z" and queued.attempts == 0
    listed = s3.list_objects_v2(Bucket=stack.audio_bucket.name)
    assert [o["Key"] for o in listed.get("Contents", [])] == [job.audio_key]  # the orphan is gone, nothing else
    # The same event again (at-least-once delivery): nothing changes, nothing fails.
    assert handler(
        sqs_lambda_event(bodies[:3], stack.upload_status_queue.name), LambdaContext("hark-upload-status")
    ) == {"batchItemFailures": []}
    assert store.get(job_id) == queued


def test_routes_without_authorization_reach_the_api_lambda_without_the_authorizer(synth, gateway):
    gw, client = gateway
    routes = api_routes(synth.template("Api"))
    public = [(m, p) for (m, p), props in routes.items() if m != "OPTIONS" and props["AuthorizationType"] == "NONE"]
    assert public  # the links in emails carry their own credential
    for method, path in public:
        response = client.open(concrete(path), method=method)  # no Authorization header at all
        # The API Lambda itself answered (its error shape), not API Gateway's 401.
        assert response.status_code == 403 and response.json["error"]["code"] == "link_invalid", response.json
    assert gw.authorizer_invocations == 0
