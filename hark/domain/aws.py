"""boto3 clients bound to the configured endpoint (the local emulator, or AWS when unset).

Clients are cached per process: Lambda reuses them across warm invocations.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from functools import lru_cache
from types import FrameType
from typing import TYPE_CHECKING, Any, Literal, overload

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from hark.domain.resources import Resources, resources
from hark.domain.settings import get_settings

if TYPE_CHECKING:  # the boto3-stubs (test extra): types only, never at run time
    from botocore.config import _S3Dict  # botocore-stubs' type of Config(s3=...)
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.service_resource import Table
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_service_quotas import ServiceQuotasClient
    from mypy_boto3_ses import SESClient
    from mypy_boto3_sesv2 import SESV2Client
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_ssm import SSMClient
    from mypy_boto3_sts import STSClient

# (connect, read) seconds where botocore's 60 s + 60 s would stall a worker. SES: an unreachable SES
# must fail fast, well inside the notifier's send lease. (SQS keeps the default: long polls wait 20 s.)
# elbv2: the live task's look at its own target (worker/live/target.py), one attempt, fail fast: the next look
# (seconds later) is the retry, and the first one runs before the task serves.
TIMEOUTS = {"ses": (5, 20), "secretsmanager": (5, 10), "elbv2": (5, 10)}
# Attempts in all, the first included (botocore's `max_attempts` counts retries only: 3 meant 4 calls).
# SES: 3, so its worst call is 3 x (5 + 20) s plus botocore's backoff, inside the notifier's send lease
# (HARK_NOTIFY_LEASE_SECONDS) and its stop budget.
TOTAL_ATTEMPTS = {"ses": 3, "elbv2": 1}


def s3_addressing(endpoint_url: str | None) -> _S3Dict:
    """S3 addressing. The emulator is a bare host:port without DNS for bucket names: path style. In AWS,
    virtual-hosted style on the *regional* endpoint ({bucket}.s3.{region}.amazonaws.com) for every
    region, us-east-1 included: botocore's "auto" presigns on the legacy global endpoint, where a new
    bucket answers 307 for up to a day (browsers drop the redirect under CORS) and newer regions refuse."""
    if endpoint_url:
        return {"addressing_style": "path"}
    return {"addressing_style": "virtual", "us_east_1_regional_endpoint": "regional"}


@overload
def client(service: Literal["cloudformation"]) -> CloudFormationClient: ...
@overload
def client(service: Literal["dynamodb"]) -> DynamoDBClient: ...
@overload
def client(service: Literal["ec2"]) -> EC2Client: ...
@overload
def client(service: Literal["elbv2"]) -> ElasticLoadBalancingv2Client: ...
@overload
def client(service: Literal["iam"]) -> IAMClient: ...
@overload
def client(service: Literal["s3"]) -> S3Client: ...
@overload
def client(service: Literal["secretsmanager"]) -> SecretsManagerClient: ...
@overload
def client(service: Literal["service-quotas"]) -> ServiceQuotasClient: ...
@overload
def client(service: Literal["ses"]) -> SESClient: ...
@overload
def client(service: Literal["sesv2"]) -> SESV2Client: ...
@overload
def client(service: Literal["sns"]) -> SNSClient: ...
@overload
def client(service: Literal["sqs"]) -> SQSClient: ...
@overload
def client(service: Literal["ssm"]) -> SSMClient: ...
@overload
def client(service: Literal["sts"]) -> STSClient: ...
def client(service: str) -> Any:
    """The process's one client for `service`, typed per service for mypy (boto3-stubs)."""
    return _client(service)


@lru_cache
def _client(service: str) -> Any:
    settings = get_settings()
    connect, read = TIMEOUTS.get(service, (60, 60))
    config = Config(
        connect_timeout=connect,
        read_timeout=read,
        retries={"mode": "standard", "total_max_attempts": TOTAL_ATTEMPTS.get(service, 4)},
        s3=s3_addressing(settings.aws_endpoint_url),
        signature_version="s3v4",
    )
    endpoint = settings.aws_endpoint_url
    if service == "ses" and settings.ses_endpoint_url:
        endpoint = settings.ses_endpoint_url
    # boto3-stubs types boto3.client per literal service name; `client`'s overloads carry that typing.
    name: Any = service
    made = boto3.client(name, region_name=settings.region, endpoint_url=endpoint, config=config)
    if settings.record_aws_calls:
        _record_calls(made, settings.record_aws_calls)
    return made


@lru_cache
def stack_resources() -> Resources:
    settings = get_settings()
    if settings.aws_endpoint_url:  # the emulator: names after the stack alone
        return resources(settings.stack, settings.email_sender)
    # In AWS the bucket names carry the account. Lambdas and tasks get HARK_ACCOUNT from the stack; an
    # operator's CLI asks STS who it is (GetCallerIdentity needs no permission).
    account = settings.account or client("sts").get_caller_identity()["Account"]
    return resources(settings.stack, settings.email_sender, account=account, region=settings.region)


@lru_cache
def queue_url(name: str) -> str:
    return client("sqs").get_queue_url(QueueName=name)["QueueUrl"]


@lru_cache
def table(name: str) -> Table:
    settings = get_settings()
    resource = boto3.resource("dynamodb", region_name=settings.region, endpoint_url=settings.aws_endpoint_url)
    if settings.record_aws_calls:
        _record_calls(resource.meta.client, settings.record_aws_calls)
    return resource.Table(name)


@lru_cache
def _secrets_provider():
    # Imported here: only the processes that read a secret pay for it.
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    return SecretsProvider(boto3_client=client("secretsmanager"))


def secret(name: str) -> str:
    """A Secrets Manager string, cached per process for settings.secret_cache_seconds (Powertools)."""
    return _secrets_provider().get(name, max_age=get_settings().secret_cache_seconds)


def job_store():
    """The JobStore of this deployment's jobs table (hark.domain.jobs)."""
    from hark.domain.jobs import JobStore

    return JobStore(table(stack_resources().jobs_table.name))


def api_key_store():
    """The ApiKeyStore of this deployment's API keys table (hark.domain.api_keys)."""
    from hark.domain.api_keys import ApiKeyStore

    return ApiKeyStore(table(stack_resources().api_keys_table.name))


def live_tickets():
    """The LiveTickets of this deployment's live tickets table (hark.domain.live_tickets)."""
    from hark.domain.live_tickets import LiveTickets

    return LiveTickets(table(stack_resources().live_tickets_table.name))


def reset() -> None:
    """Forget settings and every cached client, after the environment changed (local stack, tests)."""
    for cached in (get_settings, _client, stack_resources, queue_url, table, _secrets_provider):
        cached.cache_clear()


# -- recording the calls each component makes (tests: HARK_RECORD_AWS_CALLS) --------------------------------
# The emulator enforces no IAM, so a grant missing from a role only shows in AWS. With record_aws_calls set,
# every operation a client of this module performs, and every URL it presigns (the browser's request runs
# with the signer's permissions), is appended to that file as one JSON line, attributed to the component
# whose code made it; tests/aws_calls.py checks each line against that component's role in the templates.
# Module prefix -> component; the innermost matching frame wins, else the process's main module
# (`python -m worker.transcription`: its helper threads have no worker frame of their own).
COMPONENTS = (
    ("lambdas.authorizer", "authorizer"),
    ("lambdas.api", "api"),
    ("lambdas.upload_status", "upload-status"),
    ("worker.transcription", "transcription-worker"),
    ("worker.notification", "notification-worker"),
    ("worker.webhooks", "webhook-worker"),
    ("worker.live", "live-service"),
    ("hark.ops.dlq", "ops-cli"),
)
# The request parameters that name the resource an IAM policy is checked against.
RECORDED_PARAMS = ("Bucket", "Key", "Prefix", "QueueUrl", "QueueName", "TableName", "IndexName", "Source", "SecretId")
_recorded: set[str] = set()
_record_lock = threading.Lock()
_quiet = threading.local()  # inside generate_presigned_post: botocore's internal events are not calls


def _component_of(module: str) -> str | None:
    for prefix, component in COMPONENTS:
        if module == prefix or module.startswith(prefix + "."):
            return component
    return None


def _component() -> str | None:
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        spec = frame.f_globals.get("__spec__")
        found = _component_of(spec.name if name == "__main__" and spec else name)
        if found:
            return found
        frame = frame.f_back
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return _component_of(spec.name) if spec else None


def _write_record(path: str, record: dict) -> None:
    line = json.dumps(record, sort_keys=True)
    with _record_lock:
        if line in _recorded:
            return
        _recorded.add(line)
        # One write of one line with O_APPEND: processes recording into the same file never interleave.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)


def _record_calls(made, path: str) -> None:
    """Register the recording hooks on one botocore client."""
    service = made.meta.service_model.service_name
    settings = get_settings()

    def record(operation: str, params: dict, presign: bool, status: int | None = None) -> None:
        component = _component()
        if component is None:  # test set-up and provisioning: not a deployed component
            return
        _write_record(
            path,
            {
                "component": component,
                "service": service,
                "operation": operation,
                "presign": presign,
                "status": status,
                "params": {k: params[k] for k in RECORDED_PARAMS if isinstance(params.get(k), str)},
                "keys": sorted(o["Key"] for o in params.get("Delete", {}).get("Objects", [])),
                "stack": settings.stack,
                "email_sender": settings.email_sender,
            },
        )

    def on_params(params, model, context, **_):
        if getattr(_quiet, "on", False):
            return
        if context.get("is_presign_request"):
            record(model.name, params, presign=True)
        else:
            context["hark_recorded_params"] = dict(params)  # recorded with its outcome (after-call)

    def on_done(http_response, model, context, **_):
        if "hark_recorded_params" in context:
            record(model.name, context["hark_recorded_params"], presign=False, status=http_response.status_code)

    made.meta.events.register("provide-client-params", on_params)
    made.meta.events.register("after-call", on_done)
    if service == "s3":
        original = made.generate_presigned_post

        def presigned_post(Bucket, Key, *args, **kwargs):  # noqa: N803 (botocore's parameter names)
            record("PutObject", {"Bucket": Bucket, "Key": Key}, presign=True)  # the browser's POST upload
            _quiet.on = True
            try:
                return original(Bucket, Key, *args, **kwargs)
            finally:
                _quiet.on = False

        made.generate_presigned_post = presigned_post


# The error codes S3 answers for an object that is not there (GetObject, HeadObject: 404 without a body).
S3_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})


def s3_not_found(err: Exception) -> bool:
    """True when `err` is S3 saying the object does not exist."""
    return isinstance(err, ClientError) and err.response.get("Error", {}).get("Code") in S3_NOT_FOUND
