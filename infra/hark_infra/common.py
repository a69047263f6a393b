"""Small helpers shared by the stacks: ARNs built from the deterministic names, cdk-nag acknowledgments."""

from __future__ import annotations

from aws_cdk import Acknowledgment, ArnFormat, Stack, Validations
from constructs import IConstruct


def bucket_arn(scope: IConstruct, name: str, key_pattern: str | None = None) -> str:
    """arn:aws:s3:::name (or name/key_pattern). Buckets are named by hark.resources, so no export is needed."""
    resource = name if key_pattern is None else f"{name}/{key_pattern}"
    return Stack.of(scope).format_arn(service="s3", resource=resource, region="", account="",
                                      arn_format=ArnFormat.NO_RESOURCE_NAME)


def queue_arn(scope: IConstruct, name: str) -> str:
    return Stack.of(scope).format_arn(service="sqs", resource=name, arn_format=ArnFormat.NO_RESOURCE_NAME)


def table_arn(scope: IConstruct, name: str, index: str | None = None) -> str:
    resource_name = name if index is None else f"{name}/index/{index}"
    return Stack.of(scope).format_arn(service="dynamodb", resource="table", resource_name=resource_name)


def ses_identity_arn(scope: IConstruct, identity: str) -> str:
    return Stack.of(scope).format_arn(service="ses", resource="identity", resource_name=identity)


def secret_arn(scope: IConstruct, name: str) -> str:
    """A Secrets Manager secret by its name (hark.resources): Secrets Manager appends '-' and six random
    characters to the ARN, matched by '-??????' (exactly six, so no other secret's name can match)."""
    return Stack.of(scope).format_arn(service="secretsmanager", resource="secret", resource_name=f"{name}-??????",
                                      arn_format=ArnFormat.COLON_RESOURCE_NAME)


def acknowledge(scope: IConstruct, reason: str, *rule_ids: str) -> None:
    """Acknowledge cdk-nag findings on `scope` (and its children), each with the reason it is accepted."""
    if not reason.strip():
        raise ValueError("every acknowledged finding needs a reason")
    Validations.of(scope).acknowledge(*(Acknowledgment(id=rule_id, reason=reason) for rule_id in rule_ids))
