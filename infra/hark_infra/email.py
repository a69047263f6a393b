"""What the emails need: the SES identity the notifier sends from (the whole domain with DKIM when given,
else one address), and two secrets: the key that signs the links in emails, and Clerk's secret key, with
which the notifier reads a user's address from Clerk's Backend API."""

from __future__ import annotations

from aws_cdk import CfnOutput, SecretValue, Stack
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_ses as ses
from constructs import Construct

from hark.domain.resources import CLERK_SECRET_PLACEHOLDER
from hark_infra.common import acknowledge
from hark_infra.config import HarkConfig

LINK_KEY_LENGTH = 64  # characters of [A-Za-z0-9]: ~380 bits, more than HMAC-SHA256's 256


class EmailStack(Stack):
    def __init__(self, scope: Construct, cid: str, *, config: HarkConfig, **kwargs) -> None:
        super().__init__(scope, cid, **kwargs)
        res = config.resources
        if config.email_domain:
            self.identity_name = config.email_domain
            identity = ses.Identity.domain(config.email_domain)
        else:
            self.identity_name = config.email_sender
            identity = ses.Identity.email(config.email_sender)
        self.identity = ses.EmailIdentity(self, "SenderIdentity", identity=identity)
        CfnOutput(
            self,
            "EmailIdentity",
            value=self.identity_name,
            description="Verify this SES identity, then request production access (docs/deploy.md)",
        )

        # Generated once by Secrets Manager, never in the template. Read by the notifier (signs) and the
        # API (verifies); names from hark.domain.resources, so the grants need no export.
        self.link_signing_key = secretsmanager.Secret(
            self,
            "LinkSigningKey",
            secret_name=res.link_signing_secret,
            description="Hark: HMAC-SHA256 key of the transcript links in emails (hark/domain/links.py)",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=LINK_KEY_LENGTH, exclude_punctuation=True, include_space=False
            ),
        )
        # A placeholder the operator replaces with Clerk's sk_live_... key (docs/deploy.md). CloudFormation
        # only writes SecretString when the template's value changes, so later deploys keep the real key.
        self.clerk_secret_key = secretsmanager.Secret(
            self,
            "ClerkSecretKey",
            secret_name=res.clerk_secret,
            description="Hark: Clerk Backend API secret key (sk_live_...), to read users' email addresses",
            secret_string_value=SecretValue.unsafe_plain_text(CLERK_SECRET_PLACEHOLDER),
        )
        acknowledge(
            self.link_signing_key,
            "Rotating the link key ends every link already emailed before its "
            "stated 24 h; rotate by hand when needed (docs/runbook.md), accepting that.",
            "AwsSolutions-SMG4",
        )
        acknowledge(
            self.clerk_secret_key,
            "Clerk issues and rotates this key in its dashboard; Secrets Manager "
            "cannot rotate it. The operator puts each new key here (docs/runbook.md).",
            "AwsSolutions-SMG4",
        )
        CfnOutput(
            self,
            "ClerkSecretName",
            value=res.clerk_secret,
            description="Put Clerk's secret key here: aws secretsmanager put-secret-value (docs/deploy.md)",
        )
