"""The SES identity the notifier sends from: the whole domain (DKIM) when given, else one address."""

from __future__ import annotations

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_ses as ses
from constructs import Construct

from hark_infra.config import HarkConfig


class EmailStack(Stack):
    def __init__(self, scope: Construct, cid: str, *, config: HarkConfig, **kwargs) -> None:
        super().__init__(scope, cid, **kwargs)
        if config.email_domain:
            self.identity_name = config.email_domain
            identity = ses.Identity.domain(config.email_domain)
        else:
            self.identity_name = config.email_sender
            identity = ses.Identity.email(config.email_sender)
        self.identity = ses.EmailIdentity(self, "SenderIdentity", identity=identity)
        CfnOutput(self, "EmailIdentity", value=self.identity_name,
                  description="Verify this SES identity, then request production access (docs/deploy.md)")
