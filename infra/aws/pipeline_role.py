"""The role the GitOps pipeline assumes to apply rendered jobs.

It may create, describe and stop training and tuning jobs, only with the execution role (PassRole scoped to it and
to SageMaker), only on the environment's allowed instance types and key, upload training source archives, and read
the training-defaults parameter.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.aws.naming import Names
from infra.aws.role_policy import add_to_default_policy


class PipelineRole(Construct):
    def __init__(self, scope: Construct, id: str, *, names: Names, key: kms.IKey, execution_role: iam.IRole,
                 allowed_instance_types: list[str], require_isolation: bool) -> None:
        super().__init__(scope, id)
        # Trusts this account: its CI identities (an OIDC role, a runner's instance role) get sts:AssumeRole
        # on this role through their own policies.
        self.role = iam.Role(
            self, "Role", role_name=names.pipeline_role, assumed_by=iam.AccountPrincipal(names.account),
            description=f"ftops {names.env}: applies rendered SageMaker jobs (GitOps)",
        )
        jobs = [names.arn("sagemaker", "training-job/*"), names.arn("sagemaker", "hyper-parameter-tuning-job/*")]
        key_arn = key.key_arn  # one jsii round trip, not one per use
        key_arns = [key_arn, names.arn("kms", names.key_alias)]
        create_conditions: dict = {
            "ForAllValues:StringEquals": {"sagemaker:InstanceTypes": allowed_instance_types},
            # Rendering uses the alias ARN until `ftops infra outputs` records the key ARN: accept both.
            "StringEquals": {"sagemaker:VolumeKmsKey": key_arns, "sagemaker:OutputKmsKey": key_arns},
        }
        if require_isolation:
            create_conditions["Bool"] = {"sagemaker:NetworkIsolation": "true",
                                         "sagemaker:InterContainerTrafficEncryption": "true"}
        statements = [
            iam.PolicyStatement(sid="CreateJobs",
                                actions=["sagemaker:CreateTrainingJob", "sagemaker:CreateHyperParameterTuningJob"],
                                resources=jobs, conditions=create_conditions),
            iam.PolicyStatement(sid="ManageJobs",
                                actions=["sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob",
                                         "sagemaker:DescribeHyperParameterTuningJob",
                                         "sagemaker:StopHyperParameterTuningJob",
                                         "sagemaker:ListTrainingJobsForHyperParameterTuningJob", "sagemaker:AddTags"],
                                resources=jobs),
            iam.PolicyStatement(sid="PassExecutionRoleToSageMaker", actions=["iam:PassRole"],
                                resources=[execution_role.role_arn],
                                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}),
            iam.PolicyStatement(sid="ReadTrainingDefaults", actions=["ssm:GetParameter"],
                                resources=[names.parameter_arn]),
            iam.PolicyStatement(sid="UploadTrainingSource", actions=["s3:PutObject", "s3:GetObject"],
                                resources=[names.s3_arn(names.artifacts_bucket, "source/*")]),
            iam.PolicyStatement(sid="EncryptTrainingSource", actions=["kms:GenerateDataKey", "kms:Decrypt"],
                                resources=[key_arn]),
        ]
        add_to_default_policy(self.role, statements)
