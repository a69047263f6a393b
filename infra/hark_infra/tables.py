"""The jobs table (with its GSIs), Powertools' idempotency table, the API keys table and the live service's tickets
table, as hark.domain.resources defines them."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as ddb
from constructs import Construct

from hark.domain.resources import TableDef
from hark_infra.config import HarkConfig


def _table(scope: Construct, cid: str, tdef: TableDef) -> ddb.TableV2:
    string = ddb.AttributeType.STRING
    return ddb.TableV2(
        scope,
        cid,
        table_name=tdef.name,
        partition_key=ddb.Attribute(name=tdef.partition_key, type=string),
        billing=ddb.Billing.on_demand(),
        point_in_time_recovery_specification=ddb.PointInTimeRecoverySpecification(point_in_time_recovery_enabled=True),
        time_to_live_attribute=tdef.ttl_attribute,
        encryption=ddb.TableEncryptionV2.aws_managed_key(),
        deletion_protection=True,
        removal_policy=RemovalPolicy.RETAIN,
        global_secondary_indexes=[
            ddb.GlobalSecondaryIndexPropsV2(
                index_name=index.name,
                partition_key=ddb.Attribute(name=index.partition_key, type=string),
                sort_key=ddb.Attribute(name=index.sort_key, type=string),
                projection_type=ddb.ProjectionType.ALL,
            )
            for index in tdef.indexes
        ]
        or None,
    )


class TablesStack(Stack):
    def __init__(self, scope: Construct, cid: str, *, config: HarkConfig, **kwargs) -> None:
        super().__init__(scope, cid, **kwargs)
        res = config.resources
        self.jobs_table = _table(self, "JobsTable", res.jobs_table)
        self.idempotency_table = _table(self, "IdempotencyTable", res.idempotency_table)
        self.api_keys_table = _table(self, "ApiKeysTable", res.api_keys_table)
        self.live_tickets_table = _table(self, "LiveTicketsTable", res.live_tickets_table)
