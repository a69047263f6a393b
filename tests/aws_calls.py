"""The AWS calls each component made during the test run, checked against its IAM role in the synthesised
templates. The emulator enforces no IAM, so this is where a grant missing from a role shows before a deploy.

hark.domain.aws records every operation (and every presigned URL) of a component to HARK_RECORD_AWS_CALLS as JSON
lines (tests/conftest.py sets it for the session and its subprocesses). Each call becomes the IAM requests
AWS would authorise for it (`needs`), with the resource ARN built from the call's parameters in the
deployed names, and each request must be allowed by an Allow statement of the component's role (IAM
wildcards and the conditions Hark uses) and not denied by a Deny statement (`allowed`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from hark.domain.resources import Resources, resources

# Component -> (stack, logical-id prefix of its role). The ops CLI runs with the operator's own
# credentials: its calls are recorded (so the attribution is proven) but there is no role to check.
ROLES = {
    "api": ("Api", "ApiFunctionRole"),
    "authorizer": ("Api", "AuthorizerFunctionRole"),
    "upload-status": ("Api", "UploadStatusFunctionRole"),
    "transcription-worker": ("Workers", "TranscriptionTaskRole"),
    "notification-worker": ("Workers", "NotificationTaskRole"),
    "webhook-worker": ("Workers", "WebhookTaskRole"),
    "live-service": ("Workers", "LiveRole"),
}
UNCHECKED = {"ops-cli": "runs with the operator's credentials; no role in the templates"}
# One account and region to resolve the templates' ARNs in (any will do: names and grants use the same ones).
PSEUDO = {"AWS::AccountId": "111122223333", "AWS::Region": "eu-west-1", "AWS::Partition": "aws"}
# Operations that need no permission at all (AWS Service Authorization Reference, AWS STS).
NO_PERMISSION = {("sts", "GetCallerIdentity")}
# IAM actions where they are not "service:Operation" (Service Authorization Reference, "Actions,
# resources, and condition keys for Amazon S3"; S3 API reference, "Permissions" of each operation):
# HeadObject is authorised as s3:GetObject; ListObjects(V2) as s3:ListBucket on the bucket, with the
# request's Prefix as s3:prefix; DeleteObjects as s3:DeleteObject on each key; the multipart upload
# calls (boto3's managed transfers, the API's uploads in parts) as s3:PutObject, ListParts as
# s3:ListMultipartUploadParts. Other SQS, DynamoDB and SES v1 operations map to
# `service:Operation` (sqs:GetQueueUrl, dynamodb:Query, ses:SendRawEmail, ...).
S3_ACTIONS = {
    "HeadObject": "s3:GetObject",
    "ListObjectsV2": "s3:ListBucket",
    "ListObjects": "s3:ListBucket",
    "DeleteObjects": "s3:DeleteObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "ListParts": "s3:ListMultipartUploadParts",
}
# SQS authorises each batch call with its single action (Service Authorization Reference, Amazon SQS:
# there is no sqs:SendMessageBatch; "the permissions for batch actions are those of the single action").
SQS_ACTIONS = {
    "SendMessageBatch": "sqs:SendMessage",
    "DeleteMessageBatch": "sqs:DeleteMessage",
    "ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
}
# A read of a missing key answers 404 only to a caller allowed s3:ListBucket on the bucket, else 403
# (S3 API reference, HeadObject/GetObject "Permissions"). Whether that implicit check carries the key as
# s3:prefix is not documented, so it is evaluated with no s3:prefix (a prefix-conditioned grant does not
# count). HeadObject is an existence probe, so it always needs it; GetObject when the run saw a 404.
MISSING_KEY_PROBES = {"HeadObject"}


@dataclass(frozen=True)
class Need:
    """One IAM authorisation a recorded call needs."""

    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()  # condition keys the request carries
    why: str = ""


class NameMap:
    """Names the recording processes used (the emulator's) -> the names the templates deploy."""

    def __init__(self, deployed: Resources):
        self.deployed = deployed

    def translate(self, record: dict) -> dict[str, str]:
        local = resources(record["stack"], record["email_sender"])
        named = zip((*local.buckets, *local.tables), (*self.deployed.buckets, *self.deployed.tables), strict=True)
        pairs = {mine.name: theirs.name for mine, theirs in named}
        for queue, deployed in zip(local.queues, self.deployed.queues, strict=True):
            pairs[queue.name], pairs[queue.dlq_name] = deployed.name, deployed.dlq_name
        pairs[local.email_identity] = self.deployed.email_identity
        for attr in ("link_signing_secret", "clerk_secret"):
            pairs[getattr(local, attr)] = getattr(self.deployed, attr)
        return pairs


def deployed_resources(context: dict) -> Resources:
    return resources(
        context["hark:stack"],
        context["hark:emailSender"],
        account=PSEUDO["AWS::AccountId"],
        region=PSEUDO["AWS::Region"],
    )


def needs(record: dict, names: dict[str, str]) -> list[Need]:
    """The IAM requests AWS would authorise for one recorded call, in the deployed names."""
    service, op, params = record["service"], record["operation"], record["params"]
    if (service, op) in NO_PERMISSION:
        return []
    region, account, partition = PSEUDO["AWS::Region"], PSEUDO["AWS::AccountId"], PSEUDO["AWS::Partition"]

    def name(value: str) -> str:
        if value not in names:
            raise KeyError(f"{service}:{op} on {value!r}, which hark.domain.resources does not define")
        return names[value]

    why = f"{record['component']}: {op}{' (presigned)' if record['presign'] else ''}"
    if service == "s3":
        bucket = f"arn:{partition}:s3:::{name(params['Bucket'])}"
        action = S3_ACTIONS.get(op, f"s3:{op}")
        if action == "s3:ListBucket":
            return [Need(action, bucket, (("s3:prefix", params.get("Prefix", "")),), why)]
        keys = record.get("keys") or [params["Key"]]
        out = [Need(action, f"{bucket}/{key}", (), why) for key in keys]
        if op in MISSING_KEY_PROBES or (op == "GetObject" and record.get("status") == 404):
            out.append(Need("s3:ListBucket", bucket, (), f"{why}: a missing key must answer 404, not 403"))
        return out
    if service == "sqs":
        queue = params.get("QueueName") or params["QueueUrl"].rstrip("/").rsplit("/", 1)[1]
        return [
            Need(SQS_ACTIONS.get(op, f"sqs:{op}"), f"arn:{partition}:sqs:{region}:{account}:{name(queue)}", (), why)
        ]
    if service == "dynamodb":
        table = f"arn:{partition}:dynamodb:{region}:{account}:table/{name(params['TableName'])}"
        if params.get("IndexName"):
            table += f"/index/{params['IndexName']}"
        return [Need(f"dynamodb:{op}", table, (), why)]
    if service == "ses":
        sender = name(params["Source"])
        identity = f"arn:{partition}:ses:{region}:{account}:identity/{sender}"
        return [Need(f"ses:{op}", identity, (("ses:FromAddress", sender),), why)]
    if service == "elbv2":  # IAM's prefix; its Describe actions have no resource-level permissions: "*"
        return [Need(f"elasticloadbalancing:{op}", "*", (), why)]
    if service == "secretsmanager":
        # A secret's ARN ends in its name, '-' and six characters Secrets Manager picks (any six will do here).
        secret = f"arn:{partition}:secretsmanager:{region}:{account}:secret:{name(params['SecretId'])}-Ab12Cd"
        return [Need(f"secretsmanager:{op}", secret, (), why)]
    raise KeyError(f"no IAM mapping for {service}:{op}: add it to tests/aws_calls.py")


# -- IAM policy evaluation (the subset Hark's roles use) ------------------------------------------------
def _wildcard(pattern: str, value: str, case: bool = True) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, 0 if case else re.IGNORECASE) is not None


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


KNOWN_OPERATORS = {"StringEquals", "ArnEquals", "StringLike", "ArnLike", "StringNotEquals", "StringNotLike"}


def _conditions_hold(conditions: dict, context: dict[str, str]) -> bool:
    for operator, tests in conditions.items():
        if_exists = operator.endswith("IfExists")
        base = operator.removesuffix("IfExists")
        if base not in KNOWN_OPERATORS:
            raise ValueError(f"condition operator {operator} is beyond this check: extend tests/aws_calls.py")
        for key, wanted in tests.items():
            if key not in context:
                if if_exists:
                    continue
                return False  # IAM: a condition on a key the request does not carry does not match
            value = context[key]
            if base in ("StringEquals", "ArnEquals"):
                ok = value in _as_list(wanted)
            elif base in ("StringLike", "ArnLike"):
                ok = any(_wildcard(w, value) for w in _as_list(wanted))
            elif base == "StringNotEquals":
                ok = value not in _as_list(wanted)
            else:  # StringNotLike
                ok = not any(_wildcard(w, value) for w in _as_list(wanted))
            if not ok:
                return False
    return True


def _matches(statement: dict, need: Need) -> bool:
    if "NotAction" in statement or "NotResource" in statement:
        raise ValueError(f"NotAction/NotResource is beyond this check: {statement}")
    if not any(_wildcard(a, need.action, case=False) for a in _as_list(statement["Action"])):
        return False
    if not any(isinstance(r, str) and _wildcard(r, need.resource) for r in _as_list(statement["Resource"])):
        return False
    return _conditions_hold(statement.get("Condition", {}), dict(need.context))


def allowed(need: Need, statements: list[dict]) -> bool:
    """IAM's decision for one request against one identity policy: an explicit Deny wins, then any Allow."""
    if any(s.get("Effect") == "Deny" and _matches(s, need) for s in statements):
        return False
    return any(s.get("Effect") == "Allow" and _matches(s, need) for s in statements)


def resolved_statements(template: dict, role_prefix: str) -> list[dict]:
    """The role's statements with every ARN resolved in PSEUDO's account and region."""
    from tests.infra.conftest import evaluate, role_statements

    def resolve(value):
        if isinstance(value, list):
            return [resolve(v) for v in value]
        if isinstance(value, dict) and not ({"Fn::Join", "Ref"} & set(value)):
            return {k: resolve(v) for k, v in value.items()}
        return evaluate(value, PSEUDO)

    return [resolve(s) for s in role_statements(template, role_prefix)]


# -- the check -----------------------------------------------------------------------------------------
def read(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def check(
    records: list[dict], templates: dict[str, dict], context: dict, required: set[str] = frozenset()
) -> list[str]:
    """Every problem found: a call its component's role would refuse, a call no mapping covers, or a
    component whose tests ran but recorded nothing (the recording itself broke)."""
    problems: list[str] = []
    names = NameMap(deployed_resources(context))
    by_component: dict[str, list[dict]] = {}
    for record in records:
        by_component.setdefault(record["component"], []).append(record)
    for component in sorted(required - set(by_component)):
        problems.append(
            f"{component}: its tests ran but no AWS call of it was recorded (is hark.domain.aws's "
            "attribution still right? see hark.domain.aws.COMPONENTS)"
        )
    for component, recs in sorted(by_component.items()):
        if component in UNCHECKED:
            continue
        if component not in ROLES:
            problems.append(f"{component}: calls recorded, but no role is known for it (tests/aws_calls.py ROLES)")
            continue
        stack, role = ROLES[component]
        statements = resolved_statements(templates[stack], role)
        refused: dict[tuple[str, str], Need] = {}
        for record in recs:
            try:
                for need in needs(record, names.translate(record)):
                    if not allowed(need, statements):
                        refused.setdefault((need.action, need.resource), need)
            except (KeyError, ValueError) as err:
                problems.append(f"{component}: {err}")
        for need in refused.values():
            context_text = f" with {dict(need.context)}" if need.context else ""
            problems.append(
                f"{component} ({stack}/{role}) may not {need.action} on {need.resource}{context_text} [{need.why}]"
            )
    return problems


def summary(records: list[dict]) -> str:
    counts: dict[str, int] = {}
    for record in records:
        counts[record["component"]] = counts.get(record["component"], 0) + 1
    return ", ".join(f"{c}: {n}" for c, n in sorted(counts.items())) or "none"
