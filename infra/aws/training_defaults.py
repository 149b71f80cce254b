"""The training-defaults SSM parameter: the JSON rendering and the pipeline read (limits, spot, locations, keys)."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra.aws.naming import Names
from jobs.config.aws import TrainingDefaults


class TrainingDefaultsParameter(Construct):
    def __init__(self, scope: Construct, id: str, *, names: Names, defaults: TrainingDefaults, kms_key_arn: str,
                 execution_role_arn: str, subnet_ids: list[str], security_group_ids: list[str],
                 tags: dict[str, str]) -> None:
        super().__init__(scope, id)
        document = {
            **defaults.model_dump(mode="json"),
            "environment": names.env,
            "datasets_bucket": names.datasets_bucket,
            "output_s3_uri": f"s3://{names.artifacts_bucket}/output/",
            "checkpoint_s3_uri": f"s3://{names.checkpoints_bucket}/{defaults.checkpoint_prefix}",
            "tensorboard_s3_uri": f"s3://{names.artifacts_bucket}/tensorboard/",
            "kms_key_arn": kms_key_arn,
            "volume_kms_key_arn": kms_key_arn,
            "execution_role_arn": execution_role_arn,
            "subnet_ids": subnet_ids,
            "security_group_ids": security_group_ids,
            "tags": tags,
        }
        self.parameter = ssm.StringParameter(
            self, "Parameter", parameter_name=names.training_defaults_parameter,
            description=f"ftops {names.env}: SageMaker training defaults (JSON)",
            string_value=Stack.of(self).to_json_string(document), tier=ssm.ParameterTier.STANDARD)
