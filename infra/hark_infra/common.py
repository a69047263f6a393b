"""Small helpers shared by the stacks: ARNs built from the deterministic names, cdk-nag acknowledgments."""

from __future__ import annotations

from aws_cdk import Acknowledgment, ArnFormat, Aws, Stack, Token, Validations
from constructs import IConstruct


def bucket_arn(scope: IConstruct, name: str, key_pattern: str | None = None) -> str:
    """arn:aws:s3:::name (or name/key_pattern). Buckets are named by hark.domain.resources, so no export is needed."""
    resource = name if key_pattern is None else f"{name}/{key_pattern}"
    return Stack.of(scope).format_arn(
        service="s3", resource=resource, region="", account="", arn_format=ArnFormat.NO_RESOURCE_NAME
    )


def queue_arn(scope: IConstruct, name: str) -> str:
    return Stack.of(scope).format_arn(service="sqs", resource=name, arn_format=ArnFormat.NO_RESOURCE_NAME)


def table_arn(scope: IConstruct, name: str, index: str | None = None) -> str:
    resource_name = name if index is None else f"{name}/index/{index}"
    return Stack.of(scope).format_arn(service="dynamodb", resource="table", resource_name=resource_name)


def list_bucket_statement(scope: IConstruct, sid: str, bucket: str, prefixes: list[str] | None = None):
    """s3:ListBucket on one bucket. Without it S3 answers a read of a missing key (HeadObject, GetObject)
    with 403 instead of 404, and ListObjectsV2 is refused. `prefixes` scopes listing with s3:prefix;
    leave it None for a role that probes keys that may be missing: that implicit check is not documented
    to carry the key as s3:prefix, so a prefix-conditioned grant may not turn the 403 into a 404."""
    from aws_cdk import aws_iam as iam

    return iam.PolicyStatement(
        sid=sid,
        actions=["s3:ListBucket"],
        resources=[bucket_arn(scope, bucket)],
        conditions={"StringLike": {"s3:prefix": [f"{p}*" for p in prefixes]}} if prefixes else None,
    )


def ses_identity_arn(scope: IConstruct, identity: str) -> str:
    return Stack.of(scope).format_arn(service="ses", resource="identity", resource_name=identity)


def secret_arn(scope: IConstruct, name: str) -> str:
    """A Secrets Manager secret by its name (hark.domain.resources): Secrets Manager appends '-' and six random
    characters to the ARN, matched by '-??????' (exactly six, so no other secret's name can match)."""
    return Stack.of(scope).format_arn(
        service="secretsmanager",
        resource="secret",
        resource_name=f"{name}-??????",
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )


def resource_env() -> dict[str, str]:
    """The environment every Lambda and task needs to name the stack's resources as hark.domain.resources
    does here: bucket names carry the account and region (hark.domain.resources.bucket_name)."""
    return {"HARK_ACCOUNT": Aws.ACCOUNT_ID, "HARK_REGION": Aws.REGION}


def nag_text(scope: IConstruct, text: str) -> str:
    """`text` as cdk-nag writes it in a finding id: a token such as AWS::AccountId becomes <AWS::AccountId>."""
    if not Token.is_unresolved(text):
        return text
    resolved = Stack.of(scope).resolve(text)

    def flat(value) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and "Fn::Join" in value:
            sep, parts = value["Fn::Join"]
            return sep.join(flat(p) for p in parts)
        if isinstance(value, dict) and "Ref" in value:
            return f"<{value['Ref']}>"
        raise ValueError(f"cannot write {value!r} as cdk-nag does")

    return flat(resolved)


def acknowledge(scope: IConstruct, reason: str, *rule_ids: str) -> None:
    """Acknowledge cdk-nag findings on `scope` (and its children), each with the reason it is accepted.
    Rule ids may hold tokens (bucket names carry AWS::AccountId): they are written as cdk-nag does."""
    if not reason.strip():
        raise ValueError("every acknowledged finding needs a reason")
    Validations.of(scope).acknowledge(
        *(Acknowledgment(id=nag_text(scope, rule_id), reason=reason) for rule_id in rule_ids)
    )
