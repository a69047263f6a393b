"""What AWS puts beside Hark's Lambda code, as data, and each function's environment: one definition for the
CDK app (hark_infra) and for the local stack, which runs the handlers from the built asset as Lambda does
(hark.local.lambda_process).

Lambda's Python puts the function's code (/var/task) first on sys.path, then the layers (/opt/python), then
the runtime's own packages (boto3). Hark's functions carry one layer, the public Powertools for AWS Lambda
(Python) v3 layer, pinned by version number; a layer version number says nothing of the Powertools release
inside, so the release each pinned version carries is written here, from Powertools' documentation.
"""

from __future__ import annotations

import json

# The Lambda runtime (python3.13) and the Powertools layer version the functions use (a deployment may pick
# another with -c hark:powertoolsLayerVersion=N: add its release to POWERTOOLS_RELEASES).
LAMBDA_PYTHON = "3.13"
POWERTOOLS_LAYER_VERSION = 27

# Layer version of AWSLambdaPowertoolsPythonV3-python313-x86_64 -> the aws-lambda-powertools release in it.
# Each release publishes one layer version; Powertools' docs name the layer of each release ("docs(layer):
# update layer version number", and the layer docs update of each release: 23 is v3.20.0, 2025-09-09);
# 24 v3.21.0, 25 v3.22.0, 26 v3.22.1, 27 v3.23.0 (2025-11-13). The layer holds the package with all its
# extras (layer_v3/layer/layer_stack.py: include_extras=True) and never boto3.
POWERTOOLS_RELEASES = {27: "3.23.0"}
POWERTOOLS_LAYER_EXTRAS = "all"

# The AWS SDK for Python in the python3.13 runtime (AWS Lambda Developer Guide, "Building Lambda functions
# with Python", Runtime-included SDK versions: boto3 and botocore of the same version).
RUNTIME_BOTO3 = "1.40.4"


def powertools_release(layer_version: int) -> str:
    try:
        return POWERTOOLS_RELEASES[layer_version]
    except KeyError:
        raise LookupError(
            f"Powertools layer version {layer_version} carries an unknown release: add it to "
            "hark.ops.lambda_runtime.POWERTOOLS_RELEASES (Powertools' docs name the release of each layer)"
        ) from None


def runtime_requirements(layer_version: int = POWERTOOLS_LAYER_VERSION) -> tuple[str, ...]:
    """What the layer and the runtime add to the asset, as pip requirements."""
    return (
        f"aws-lambda-powertools[{POWERTOOLS_LAYER_EXTRAS}]=={powertools_release(layer_version)}",
        f"boto3=={RUNTIME_BOTO3}",
        f"botocore=={RUNTIME_BOTO3}",
    )


def function_environment(
    *,
    stack: str,
    service: str,
    account: str,
    region: str,
    issuer: str,
    jwks_url: str,
    authorized_parties: list[str],
    web_url: str,
    max_upload_bytes: int,
) -> dict[str, str]:
    """Every Hark Lambda's environment variables (the CDK app passes CloudFormation tokens for the account
    and region; the local stack its own values)."""
    return {
        "HARK_STACK": stack,
        # The account and region: bucket names carry them (hark.domain.resources).
        "HARK_ACCOUNT": account,
        "HARK_REGION": region,
        "HARK_ISSUER": issuer,
        "HARK_JWKS_URL": jwks_url,
        "HARK_AUTHORIZED_PARTIES": json.dumps(authorized_parties),
        "HARK_WEB_URL": web_url,
        "HARK_MAX_UPLOAD_BYTES": str(max_upload_bytes),
        "POWERTOOLS_METRICS_NAMESPACE": "Hark",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "POWERTOOLS_SERVICE_NAME": service,
    }
