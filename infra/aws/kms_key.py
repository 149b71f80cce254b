"""The environment's customer-managed KMS key: rotation on, one alias, used by every bucket, log group and topic."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.aws.naming import Names


class PlatformKey(Construct):
    def __init__(self, scope: Construct, id: str, *, names: Names, removal_policy: RemovalPolicy) -> None:
        super().__init__(scope, id)
        self.key = kms.Key(
            self, "Key", alias=names.key_alias, enable_key_rotation=True,
            description=f"ftops {names.env}: datasets, artifacts, checkpoints, training volumes, logs, notifications",
            removal_policy=removal_policy,
            pending_window=Duration.days(7 if removal_policy == RemovalPolicy.DESTROY else 30),
        )
        # CloudWatch Logs encrypts log groups with the key only if the key policy lets the regional service in,
        # scoped to this account's log groups through the encryption context.
        self.key.add_to_resource_policy(iam.PolicyStatement(
            sid="CloudWatchLogs",
            principals=[iam.ServicePrincipal(f"logs.{names.region}.amazonaws.com")],
            actions=["kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey",
                     "kms:DescribeKey"],
            resources=["*"],  # in a key policy, "*" means this key
            conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": names.arn("logs", "log-group:*")}},
        ))
