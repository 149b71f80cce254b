"""The names of every resource, from the same rules `jobs.config.resolved.derive_aws` uses (no aws_cdk here).

The stacks name their resources explicitly, so values derived before a deploy equal the deployed ones. ARNs are
formatted by `jobs.access.model.ArnFormat`, as the access model's are, so the IAM test compares one source.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobs.access.model import ArnFormat
from jobs.config.regions import partition_of
from jobs.config.environment import Environment
from jobs.config.resolved import derive_aws


@dataclass(frozen=True)
class Names(ArnFormat):
    env: str
    prefix: str
    account: str
    region: str
    partition: str
    stack: str
    datasets_bucket: str
    artifacts_bucket: str
    checkpoints_bucket: str
    access_logs_bucket: str
    key_alias: str
    execution_role: str
    endpoint_role: str
    pipeline_role: str
    training_defaults_parameter: str
    log_group: str
    topic: str
    budget: str

    @classmethod
    def of(cls, env: Environment) -> Names:
        aws = env.require_aws()
        derived = derive_aws(env)
        return cls(
            env=env.name, prefix=aws.resource_prefix, account=aws.account, region=aws.region,
            partition=partition_of(aws.region),
            stack=f"{aws.resource_prefix}-{env.name}",
            datasets_bucket=derived.datasets_bucket,
            artifacts_bucket=derived.output_bucket,
            checkpoints_bucket=derived.checkpoints_bucket,
            access_logs_bucket=aws.bucket_name(env.name, "access-logs"),
            key_alias="alias/" + derived.kms_key_arn.split(":alias/", 1)[1],
            execution_role=derived.execution_role_arn.rsplit("/", 1)[1],
            endpoint_role=derived.endpoint_role_arn.rsplit("/", 1)[1],
            pipeline_role=derived.pipeline_role_arn.rsplit("/", 1)[1],
            training_defaults_parameter=derived.training_defaults_parameter,
            log_group=derived.log_group_name,
            topic=derived.notifications_topic_arn.rsplit(":", 1)[1],
            budget=f"{aws.resource_prefix}-{env.name}-monthly",
        )

    # ArnFormat.arn gives literal ARNs (not tokens), so policies read plainly and cdk-nag findings are stable.
    s3_arn = ArnFormat.s3

    @property
    def log_group_arn(self) -> str:
        return self.arn("logs", f"log-group:{self.log_group}")

    @property
    def execution_role_arn(self) -> str:
        return self.arn("iam", f"role/{self.execution_role}", region=False)

    @property
    def endpoint_role_arn(self) -> str:
        return self.arn("iam", f"role/{self.endpoint_role}", region=False)

    @property
    def pipeline_role_arn(self) -> str:
        return self.arn("iam", f"role/{self.pipeline_role}", region=False)

    @property
    def parameter_arn(self) -> str:
        return self.arn("ssm", f"parameter{self.training_defaults_parameter}")
