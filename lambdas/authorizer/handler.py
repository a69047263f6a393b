"""API Gateway Lambda authorizer: verify the bearer token, answer with an Allow policy for the API.

It takes the event of either authorizer kind (TOKEN or REQUEST): hark.api.http_api says which one the
stage is wired with, and the contract tests drive this handler with what that kind sends.

Thin: hark.api.auth does the verification. Any failure raises Exception("Unauthorized") - the one
message API Gateway turns into a 401 - and the real reason goes only to the log.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

from hark.api.auth import Unauthorized, allow_policy, authorizer_token, verifier_for
from hark.domain.settings import get_settings

logger = Logger(service="hark-authorizer")


def handler(event: dict, context) -> dict:
    if not isinstance(event, dict):
        event = {}
    context_ = event.get("requestContext")
    logger.set_correlation_id(context_.get("requestId") if isinstance(context_, dict) else None)
    method_arn = str(event.get("methodArn") or "")
    try:
        settings = get_settings()
        verifier = verifier_for(
            settings.resolved_jwks_url, settings.issuer, tuple(settings.authorized_parties), settings.jwt_leeway_seconds
        )
        identity = verifier.verify(authorizer_token(event))
        policy = allow_policy(identity, method_arn)
    except Unauthorized as err:
        logger.warning("denied", reason=err.reason, method_arn=method_arn[:300])
        raise Exception("Unauthorized") from None
    except Exception as err:  # never let a bug become an Allow, or leak through the response
        logger.exception("denied", reason=f"internal error: {type(err).__name__}")
        raise Exception("Unauthorized") from None
    logger.info("allowed", user_id=identity.user_id)
    return policy
