"""The one definition of every AWS resource Hark uses.

Both the CDK app (`infra/`) and the local provisioning (`hark.local.provision`) read these, so a
queue's visibility timeout or the table's key schema cannot drift between the cloud and the laptop.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class QueueDef:
    name: str
    visibility_timeout_seconds: int
    max_receive_count: int  # receives before SQS moves a message to the dead-letter queue
    retention_seconds: int = 4 * 24 * 3600
    dlq_retention_seconds: int = 14 * 24 * 3600
    receive_wait_seconds: int = 20  # long polling

    @property
    def dlq_name(self) -> str:
        return f"{self.name}-dlq"


@dataclass(frozen=True)
class TopicDef:
    name: str
    # Queues subscribed with raw message delivery: each receives the published body itself (here the S3
    # event, exactly as S3 would send it to a queue), not SNS's envelope around it.
    raw_subscribers: tuple[str, ...] = ()
    # Where SNS puts a message it could not deliver to a subscriber (AWS only: the subscriptions' redrive
    # policy; moto delivers or raises), so an upload's event is kept rather than dropped.
    undelivered_queue: str = ""
    undelivered_retention_seconds: int = 14 * 24 * 3600


@dataclass(frozen=True)
class IndexDef:
    name: str
    partition_key: str
    sort_key: str


@dataclass(frozen=True)
class TableDef:
    name: str
    partition_key: str
    ttl_attribute: str
    indexes: tuple[IndexDef, ...] = ()


@dataclass(frozen=True)
class LifecycleRule:
    prefix: str
    expire_days: int


@dataclass(frozen=True)
class BucketDef:
    name: str
    lifecycle: tuple[LifecycleRule, ...] = ()
    # Parts of a multipart upload never completed or aborted (a closed tab, issue 25: big uploads resume from
    # their parts for this long) cost storage until S3 removes them this many days after the upload began.
    abort_incomplete_multipart_days: int = 1
    # Prefix whose ObjectCreated events go to the uploads topic, which fans them out to the transcribe
    # and upload-status queues (None: no notification).
    notify_prefix: str | None = None
    cors_upload: bool = False


# S3 key prefixes (hark.domain.keys builds the full keys).
UPLOADS_PREFIX = "uploads/"
CHUNKS_PREFIX = "chunks/"
PARTS_PREFIX = "parts/"
TRANSCRIPTS_PREFIX = "transcripts/"
# A video's audio rendition, played in its place (docs/scaling.md, "Video: what is kept").
RENDITIONS_PREFIX = "renditions/"


@dataclass(frozen=True)
class Resources:
    stack: str
    audio_bucket: BucketDef
    transcripts_bucket: BucketDef
    jobs_table: TableDef
    idempotency_table: TableDef
    # API keys (hark.domain.api_keys): one item per key, and the per-key request counters of the rate limit.
    api_keys_table: TableDef
    # The live service's browser tickets (hark.domain.live_tickets): one short-lived item per ticket, shared
    # by every live task, so a ticket issued by one opens a stream on any.
    live_tickets_table: TableDef
    transcribe_queue: QueueDef
    notify_queue: QueueDef
    # An upload's S3 event goes to this topic, which fans it out to the transcribe queue (the workers)
    # and the upload-status queue (the upload-status function marks the job QUEUED at once).
    uploads_topic: TopicDef
    upload_status_queue: QueueDef
    # Webhook deliveries (worker/webhooks): one message per finished job that asked for a webhook.
    webhook_queue: QueueDef
    email_identity: str
    # Secrets Manager names. The link key signs the API links in emails (hark.domain.links); the Clerk key
    # reads a user's email address from Clerk's Backend API (worker.notification.recipients).
    link_signing_secret: str
    clerk_secret: str

    @property
    def queues(self) -> tuple[QueueDef, ...]:
        return (self.transcribe_queue, self.notify_queue, self.upload_status_queue, self.webhook_queue)

    @property
    def tables(self) -> tuple[TableDef, ...]:
        return (*self.api_tables, self.live_tickets_table)

    @property
    def api_tables(self) -> tuple[TableDef, ...]:
        """The tables the API's function reads and writes (the tickets are the live service's alone)."""
        return (self.jobs_table, self.idempotency_table, self.api_keys_table)

    @property
    def buckets(self) -> tuple[BucketDef, ...]:
        return (self.audio_bucket, self.transcripts_bucket)


@dataclass(frozen=True)
class QueueFunctionDef:
    """A Lambda fed by an SQS queue (an event source mapping with partial batch responses); the local
    stack runs the same handler behind hark.local.event_source."""

    name: str
    handler: str  # module path, as Lambda loads it
    queue: QueueDef
    batch_size: int
    timeout_seconds: int


def upload_status_function(res: Resources) -> QueueFunctionDef:
    """Marks a job QUEUED as soon as its upload lands (lambdas/upload_status/handler.py)."""
    return QueueFunctionDef(
        name=f"{res.stack}-upload-status",
        handler="lambdas.upload_status.handler.handler",
        queue=res.upload_status_queue,
        batch_size=10,
        timeout_seconds=10,
    )


# What CDK stores in the Clerk secret until the operator puts the real sk_live_... key there.
CLERK_SECRET_PLACEHOLDER = "REPLACE-ME-with-the-Clerk-secret-key"

JOBS_BY_USER_INDEX = "by-user"
# A user's API keys, newest first (GET /api-keys); the rate-limit counters have no user_id, so are in no index.
API_KEYS_BY_USER_INDEX = "by-user"
# Receives of one webhook message before the DLQ: the first attempt and one per retry delay
# (HARK_WEBHOOK_RETRY_DELAYS_SECONDS' default, 7 delays over about 22 hours).
WEBHOOK_ATTEMPTS = 8
# Sparse: only unfinished jobs carry `active_user_id`, so counting them for the quota is one small query.
ACTIVE_JOBS_INDEX = "active-by-user"


# S3 bucket names are global across all AWS accounts (3-63 characters): in AWS they carry the account
# and region, so the same stack name deploys in any account and region. 63 - len("-transcripts")
# - len("-123456789012") - len("-ap-southeast-4") (the longest region names) leaves 23 for the stack.
MAX_STACK_NAME = 23


def bucket_name(stack: str, purpose: str, account: str | None = None, region: str | None = None) -> str:
    """{stack}-{purpose}-{account}-{region} in AWS; {stack}-{purpose} on the emulator (no account).

    `account` and `region` may be CloudFormation tokens (the CDK app passes AWS::AccountId and
    AWS::Region); at run time they are the HARK_ACCOUNT and HARK_REGION the stack gives every consumer.
    """
    if account is None:
        return f"{stack}-{purpose}"
    if not region:
        raise ValueError("bucket names in AWS need the region with the account")
    return f"{stack}-{purpose}-{account}-{region}"


def resources(
    stack: str = "hark",
    email_identity: str = "transcripts@hark.local",
    account: str | None = None,
    region: str | None = None,
) -> Resources:
    """Every resource of one deployment, named after its stack (buckets also after account and region)."""
    if len(stack) > MAX_STACK_NAME or not re.fullmatch(r"[a-z0-9][a-z0-9-]*", stack):
        raise ValueError(
            f"stack name {stack!r}: lowercase letters, digits and hyphens, at most {MAX_STACK_NAME} "
            "characters (it prefixes S3 bucket names)"
        )
    # A chunk of at most chunk_target_seconds transcribes well inside 15 minutes even on a CPU;
    # the worker extends visibility while it runs, so this only bounds how long a dead worker's
    # message stays hidden.
    transcribe = QueueDef(name=f"{stack}-transcribe", visibility_timeout_seconds=15 * 60, max_receive_count=4)
    # Read by the upload-status function (a Lambda SQS event source). Visibility: six times its 10 s
    # timeout, as AWS recommends for Lambda event sources; a record that fails 5 times goes to the DLQ.
    upload_status = QueueDef(name=f"{stack}-upload-status", visibility_timeout_seconds=60, max_receive_count=5)
    return Resources(
        stack=stack,
        audio_bucket=BucketDef(
            name=bucket_name(stack, "audio", account, region),
            lifecycle=(
                LifecycleRule(UPLOADS_PREFIX, 30),
                LifecycleRule(RENDITIONS_PREFIX, 30),  # kept as long as an upload would have been
                LifecycleRule(CHUNKS_PREFIX, 2),
            ),
            notify_prefix=UPLOADS_PREFIX,
            cors_upload=True,
        ),
        transcripts_bucket=BucketDef(
            name=bucket_name(stack, "transcripts", account, region),
            lifecycle=(LifecycleRule(TRANSCRIPTS_PREFIX, 365), LifecycleRule(PARTS_PREFIX, 7)),
        ),
        jobs_table=TableDef(
            name=f"{stack}-jobs",
            partition_key="job_id",
            ttl_attribute="expires_at",
            indexes=(
                IndexDef(JOBS_BY_USER_INDEX, "user_id", "created_at"),
                IndexDef(ACTIVE_JOBS_INDEX, "active_user_id", "created_at"),
            ),
        ),
        # A table of its own, not items in the jobs table: the authorizer reads keys and nothing of the jobs
        # (its role names this table only), and the keys' by-user index stays apart from the jobs' listing.
        api_keys_table=TableDef(
            name=f"{stack}-api-keys",
            partition_key="key_id",
            ttl_attribute="expires_at",
            indexes=(IndexDef(API_KEYS_BY_USER_INDEX, "user_id", "created_at"),),
        ),
        # Powertools idempotency's default schema: partition key "id", TTL "expiration".
        idempotency_table=TableDef(name=f"{stack}-idempotency", partition_key="id", ttl_attribute="expiration"),
        # Keyed by the ticket's SHA-256; DynamoDB's TTL removes the expired ones nobody redeemed.
        live_tickets_table=TableDef(
            name=f"{stack}-live-tickets", partition_key="ticket_sha256", ttl_attribute="expires_at"
        ),
        transcribe_queue=transcribe,
        # SES outages: the notifier backs off by receive count; 12 receives span several hours.
        notify_queue=QueueDef(name=f"{stack}-notify", visibility_timeout_seconds=60, max_receive_count=12),
        uploads_topic=TopicDef(
            name=f"{stack}-uploads",
            raw_subscribers=(transcribe.name, upload_status.name),
            undelivered_queue=f"{stack}-uploads-undelivered",
        ),
        upload_status_queue=upload_status,
        # Retries wait up to 12 h each (the consumer hides the message that long), so a delivery spans a
        # day; 4 days' retention keeps the last attempt's message well inside it.
        webhook_queue=QueueDef(
            name=f"{stack}-webhooks", visibility_timeout_seconds=60, max_receive_count=WEBHOOK_ATTEMPTS
        ),
        email_identity=email_identity,
        link_signing_secret=f"{stack}/link-signing-key",
        clerk_secret=f"{stack}/clerk-secret-key",
    )
