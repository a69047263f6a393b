"""boto3 clients bound to the configured endpoint (the local emulator, or AWS when unset).

Clients are cached per process: Lambda reuses them across warm invocations.
"""

from __future__ import annotations

from functools import lru_cache

import boto3
from botocore.config import Config

from hark.resources import Resources, resources
from hark.settings import get_settings


# (connect, read) seconds where botocore's 60 s + 60 s would stall a worker. SES: an unreachable SES
# must fail fast, well inside the notifier's send lease. (SQS keeps the default: long polls wait 20 s.)
TIMEOUTS = {"ses": (5, 20)}


def s3_addressing(endpoint_url: str | None) -> dict:
    """S3 addressing. The emulator is a bare host:port without DNS for bucket names: path style. In AWS,
    virtual-hosted style on the *regional* endpoint ({bucket}.s3.{region}.amazonaws.com) for every
    region, us-east-1 included: botocore's "auto" presigns on the legacy global endpoint, where a new
    bucket answers 307 for up to a day (browsers drop the redirect under CORS) and newer regions refuse."""
    if endpoint_url:
        return {"addressing_style": "path"}
    return {"addressing_style": "virtual", "us_east_1_regional_endpoint": "regional"}


@lru_cache
def client(service: str):
    settings = get_settings()
    connect, read = TIMEOUTS.get(service, (60, 60))
    config = Config(
        connect_timeout=connect,
        read_timeout=read,
        retries={"mode": "standard", "max_attempts": 3},
        s3=s3_addressing(settings.aws_endpoint_url),
        signature_version="s3v4",
    )
    endpoint = settings.aws_endpoint_url
    if service == "ses" and settings.ses_endpoint_url:
        endpoint = settings.ses_endpoint_url
    return boto3.client(service, region_name=settings.region, endpoint_url=endpoint, config=config)


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
def table(name: str):
    settings = get_settings()
    return boto3.resource("dynamodb", region_name=settings.region, endpoint_url=settings.aws_endpoint_url).Table(name)


def job_store():
    """The JobStore of this deployment's jobs table (hark.jobs)."""
    from hark.jobs import JobStore

    return JobStore(table(stack_resources().jobs_table.name))


def reset() -> None:
    """Forget settings and every cached client, after the environment changed (local stack, tests)."""
    for cached in (get_settings, client, stack_resources, queue_url, table):
        cached.cache_clear()
