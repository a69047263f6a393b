"""boto3 clients bound to the configured endpoint (the local emulator, or AWS when unset).

Clients are cached per process: Lambda reuses them across warm invocations.
"""

from __future__ import annotations

from functools import lru_cache

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from hark.resources import Resources, resources
from hark.settings import get_settings


# (connect, read) seconds where botocore's 60 s + 60 s would stall a worker. SES: an unreachable SES
# must fail fast, well inside the notifier's send lease. (SQS keeps the default: long polls wait 20 s.)
TIMEOUTS = {"ses": (5, 20), "secretsmanager": (5, 10)}
# Attempts in all, the first included (botocore's `max_attempts` counts retries only: 3 meant 4 calls).
# SES: 3, so its worst call is 3 x (5 + 20) s plus botocore's backoff, inside the notifier's send lease
# (HARK_NOTIFY_LEASE_SECONDS) and its stop budget.
TOTAL_ATTEMPTS = {"ses": 3}


@lru_cache
def client(service: str):
    settings = get_settings()
    connect, read = TIMEOUTS.get(service, (60, 60))
    config = Config(
        connect_timeout=connect,
        read_timeout=read,
        retries={"mode": "standard", "total_max_attempts": TOTAL_ATTEMPTS.get(service, 4)},
        # Virtual-hosted addressing needs DNS for bucket names; the emulator is a bare host:port.
        s3={"addressing_style": "path" if settings.aws_endpoint_url else "auto"},
        signature_version="s3v4",
    )
    endpoint = settings.aws_endpoint_url
    if service == "ses" and settings.ses_endpoint_url:
        endpoint = settings.ses_endpoint_url
    return boto3.client(service, region_name=settings.region, endpoint_url=endpoint, config=config)


@lru_cache
def stack_resources() -> Resources:
    settings = get_settings()
    return resources(settings.stack, settings.email_sender)


@lru_cache
def queue_url(name: str) -> str:
    return client("sqs").get_queue_url(QueueName=name)["QueueUrl"]


@lru_cache
def table(name: str):
    settings = get_settings()
    return boto3.resource("dynamodb", region_name=settings.region, endpoint_url=settings.aws_endpoint_url).Table(name)


@lru_cache
def _secrets_provider():
    # Imported here: only the processes that read a secret pay for it.
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    return SecretsProvider(boto3_client=client("secretsmanager"))


def secret(name: str) -> str:
    """A Secrets Manager string, cached per process for settings.secret_cache_seconds (Powertools)."""
    return _secrets_provider().get(name, max_age=get_settings().secret_cache_seconds)


def job_store():
    """The JobStore of this deployment's jobs table (hark.jobs)."""
    from hark.jobs import JobStore

    return JobStore(table(stack_resources().jobs_table.name))


def reset() -> None:
    """Forget settings and every cached client, after the environment changed (local stack, tests)."""
    for cached in (get_settings, client, stack_resources, queue_url, table, _secrets_provider):
        cached.cache_clear()


# The error codes S3 answers for an object that is not there (GetObject, HeadObject: 404 without a body).
S3_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})


def s3_not_found(err: Exception) -> bool:
    """True when `err` is S3 saying the object does not exist."""
    return isinstance(err, ClientError) and err.response.get("Error", {}).get("Code") in S3_NOT_FOUND
