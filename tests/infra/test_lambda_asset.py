"""The Lambda asset, alone: built by the project's bundler, every handler the synthesised template names is
imported and driven with nothing on the path but the asset, the Powertools layer's packages at the release
of the layer version the template pins, and the runtime's boto3 (hark.ops.lambda_runtime), under the Lambda's
Python (-I -S), with the function's environment variables from the template (the account and region, the
issuer and the emulator substituted with local ones).

Checked once by removing a requirement: with "standardwebhooks>=1.1" taken out of lambda_bundle.REQUIREMENTS,
test_every_handler_imports_from_the_asset_alone failed (the API handler's init: ModuleNotFoundError: No module
named 'standardwebhooks'), as the API Lambda fails in AWS; so did the first run here, against the layer's
Powertools 3.23.0 without the asset's own (ImportError: RequestUnsupportedContentType).
"""

from __future__ import annotations

import json
import sys
import threading
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from hark.local.emulator import LOCAL_CREDENTIALS
from hark.local.issuer import DevIssuer
from hark.local.lambda_process import AssetFunction, FunctionError, Runtime, runtime_python
from hark.ops.lambda_runtime import LAMBDA_PYTHON, powertools_release
from tests.events import authorizer_context, rest_proxy_event

from .conftest import INFRA, TEST_CONTEXT, render, resources_of

REGION, ACCOUNT = "us-east-1", "123456789012"


def _lambda_bundle():
    import lambda_bundle  # infra/lambda_bundle.py (the synth fixture puts infra/ on sys.path)

    return lambda_bundle


@pytest.fixture(scope="module")
def functions(synth) -> dict[str, dict]:
    """Every Lambda function of the API stack by handler: its properties as the template has them."""
    return {
        f["Properties"]["Handler"]: f["Properties"]
        for f in resources_of(synth.template("Api"), "AWS::Lambda::Function").values()
        if f["Properties"].get("Handler", "").startswith("lambdas.")
    }


@pytest.fixture(scope="module")
def runtime(functions) -> Runtime:
    """The asset and what Lambda puts beside it, for the Lambda's Python (this machine's where it lacks it)."""
    assert str(INFRA) in sys.path
    (layer_version,) = {int(render(p["Layers"][0]).rsplit(":", 1)[1]) for p in functions.values()}
    assert {p["Runtime"] for p in functions.values()} == {f"python{LAMBDA_PYTHON}"}
    python, version = runtime_python()
    if version != LAMBDA_PYTHON:
        warnings.warn(
            f"no Python {LAMBDA_PYTHON} on this machine: the asset is built for, and run under, Python {version}",
            stacklevel=1,
        )
    bundle = _lambda_bundle()
    return Runtime(python, (str(bundle.build(version)), str(bundle.runtime_packages(version, layer_version))))


@pytest.fixture(scope="module")
def issuer(tmp_path_factory) -> Iterator[DevIssuer]:
    """A token issuer whose JWKS is served over HTTP on loopback (Clerk's, in the template)."""
    holder: dict[str, DevIssuer] = {}

    class Jwks(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps(holder["issuer"].jwks()).encode()
            self.send_response(200 if self.path == "/.well-known/jwks.json" else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
    origin = f"http://127.0.0.1:{server.server_address[1]}"
    holder["issuer"] = DevIssuer(origin, tmp_path_factory.mktemp("issuer") / "key.pem", backend_secret_key=str)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield holder["issuer"]
    server.shutdown()


def local_environment(template_env: dict, issuer: DevIssuer, emulator_endpoint: str, stack: str) -> dict[str, str]:
    """The template's variables, with what names AWS, Clerk and the stack replaced by local values."""
    env = {k: v for k, v in template_env.items() if isinstance(v, str)}
    tokens = {k: render(v) for k, v in template_env.items() if not isinstance(v, str)}
    assert tokens == {"HARK_ACCOUNT": "${AWS::AccountId}", "HARK_REGION": "${AWS::Region}"}, tokens
    assert env["HARK_ISSUER"] == TEST_CONTEXT["hark:issuer"] and env["HARK_STACK"] == TEST_CONTEXT["hark:stack"]
    return {
        **env,
        "HARK_ACCOUNT": ACCOUNT,
        "HARK_REGION": REGION,
        "HARK_STACK": stack,
        "HARK_ISSUER": issuer.issuer,
        "HARK_JWKS_URL": f"{issuer.issuer}/.well-known/jwks.json",
        "HARK_AWS_ENDPOINT_URL": emulator_endpoint,
        **LOCAL_CREDENTIALS,
    }


@pytest.fixture
def environments(functions, runtime, issuer, stack, emulator) -> Iterator[dict[str, AssetFunction]]:
    started = {}
    for handler, props in functions.items():
        env = local_environment(props["Environment"]["Variables"], issuer, emulator.endpoint, stack.stack)
        started[handler] = AssetFunction(runtime, handler, props["FunctionName"], env)
    yield started
    for fn in started.values():
        fn.stop()


def test_the_template_deploys_the_asset_with_the_packages_and_not_the_client_side(synth, functions):
    assets = [p for p in synth.outdir.iterdir() if p.name.startswith("asset.") and p.is_dir()]
    (code,) = [a for a in assets if (a / "BUNDLED_DEPENDENCIES").exists()]
    assert all(render(p["Code"]["S3Key"]).startswith(code.name.removeprefix("asset.")) for p in functions.values())
    assert (code / "lambdas" / "api").is_dir() and (code / "lambdas" / "authorizer").is_dir()
    # Chosen by inclusion: the shared domain and the API side, and of hark nothing else (no local stack,
    # client side, operations or evaluation).
    assert (code / "hark" / "domain" / "settings.py").exists() and (code / "hark" / "api" / "control.py").exists()
    shipped = {p.name for p in (code / "hark").iterdir() if p.name != "__pycache__"}
    assert shipped == {"__init__.py", "domain", "api"}


def test_every_handler_imports_from_the_asset_alone(environments):
    for handler, fn in environments.items():
        try:
            fn.start()
        except FunctionError as err:
            pytest.fail(f"{handler} cannot start from the asset alone: {err}\n{''.join(err.report['stackTrace'])}")


def test_the_layer_holds_the_release_of_the_pinned_layer_version(runtime, functions):
    (arn,) = {render(p["Layers"][0]) for p in functions.values()}
    layer_dir = Path(runtime.paths[1])
    (dist,) = layer_dir.glob("aws_lambda_powertools-*.dist-info")
    assert dist.name == f"aws_lambda_powertools-{powertools_release(int(arn.rsplit(':', 1)[1]))}.dist-info"
    assert not any(Path(runtime.paths[0]).glob("boto3*")), "boto3 is the runtime's: the asset must not carry it"


def test_the_authorizer_allows_a_valid_token_and_refuses_a_bad_one(environments, issuer):
    authorizer = environments["lambdas.authorizer.handler.handler"]
    party = json.loads(authorizer.environment["HARK_AUTHORIZED_PARTIES"])[0]
    method_arn = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:abc123/prod/GET/jobs"
    token = issuer.token("ada@example.com", azp=party)["token"]
    # The TOKEN event API Gateway sends (hark.api.http_api's authorizer kind; hark.local.gateway builds the same).
    answer = authorizer({"type": "TOKEN", "authorizationToken": f"Bearer {token}", "methodArn": method_arn})
    (statement,) = answer["policyDocument"]["Statement"]
    assert statement["Effect"] == "Allow" and answer["principalId"] == answer["context"]["user_id"]
    with pytest.raises(FunctionError, match="Unauthorized"):
        authorizer({"type": "TOKEN", "authorizationToken": "Bearer not-a-jwt", "methodArn": method_arn})


def test_an_api_key_from_the_assets_api_lets_the_assets_authorizer_in_as_its_user(environments):
    api, authorizer = environments["lambdas.api.handler.handler"], environments["lambdas.authorizer.handler.handler"]
    user = authorizer_context("asset-user")
    created = api(
        rest_proxy_event(
            "POST",
            "/api-keys",
            "/api-keys",
            headers={"Content-Type": "application/json"},
            body=json.dumps({"name": "asset"}),
            authorizer=user,
        )
    )
    assert created["statusCode"] == 201, created
    key = json.loads(created["body"])
    method_arn = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:abc123/prod/GET/jobs"
    answer = authorizer({"type": "TOKEN", "authorizationToken": f"Bearer {key['key']}", "methodArn": method_arn})
    assert answer["principalId"] == "asset-user" and answer["context"]["key_id"] == key["id"]
    # The key's request through the asset's API: its rate limit's window is written in the keys table.
    listed = api(rest_proxy_event("GET", "/jobs", "/jobs", authorizer={**user, **answer["context"]}))
    assert listed["statusCode"] == 200, listed


def test_the_api_answers_routes_from_the_asset_with_dynamodb_in_the_emulator(environments):
    api = environments["lambdas.api.handler.handler"]
    user = authorizer_context("asset-user")
    listed = api(rest_proxy_event("GET", "/jobs", "/jobs", authorizer=user))
    assert listed["statusCode"] == 200, listed
    assert json.loads(listed["body"])["items"] == []  # a new user has none: read from the jobs table
    missing = api(rest_proxy_event("GET", "/jobs/{id}", "/jobs/nope", path_params={"id": "nope"}, authorizer=user))
    assert missing["statusCode"] == 404, missing
    bad = api(
        rest_proxy_event("POST", "/jobs", "/jobs", headers={"Content-Type": "text/plain"}, body="x", authorizer=user)
    )
    assert bad["statusCode"] == 415 and json.loads(bad["body"])["error"]["code"] == "unsupported_body_type", bad


def test_the_upload_status_function_answers_an_sqs_batch(environments):
    (handler,) = [h for h in environments if h.startswith("lambdas.upload_status.")]
    unreadable = {
        "messageId": "m-1",
        "receiptHandle": "r-1",
        "body": "not json",
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:uploads",
        "awsRegion": REGION,
    }
    # An unreadable body fails its record (lambdas/upload_status/handler.py); a batch whose every record
    # failed is a function error in Powertools' batch processing, so SQS delivers the whole batch again.
    with pytest.raises(FunctionError) as failed:
        environments[handler]({"Records": [unreadable]})
    assert failed.value.report["errorType"] == "BatchProcessingError"
    assert "message body is not JSON" in failed.value.report["errorMessage"]
