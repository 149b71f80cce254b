"""The SageMaker execution role: what training jobs (and tuning trials) and their profiler rules may touch, and
nothing more; endpoints run as their own role (infra.aws.endpoint_role) (jobs.access lists each need; tests/unit/test_infra_aws_iam.py evaluates
every one against this role).

Reads the dataset prefix, base models (`models/`), training source archives (`source/`); writes model output
(`training-output/`), TensorBoard and profiler output, checkpoints; uses the environment key, its log streams and
metrics; pulls the configured training and profiler-rule images; manages ENIs only with a VPC.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.aws.naming import Names
from infra.aws.role_policy import (add_to_default_policy, network_interfaces, pull_images, put_metrics,
                                   sagemaker_role, write_logs)

SAGEMAKER_LOG_GROUPS = ("/aws/sagemaker/TrainingJobs", "/aws/sagemaker/ProcessingJobs")
"""Where SageMaker writes the logs of training jobs and profiler rules (processing jobs); fixed by the service.
The same names are the CloudWatch metric namespaces of those jobs."""

READ_PREFIXES = ("models/", "source/", "profiler/")
"""Artifacts-bucket prefixes jobs read: base-model weights (the `model` channel), source archives, profiler data."""
WRITE_PREFIXES = ("training-output/", "tensorboard/", "profiler/")
"""Artifacts-bucket prefixes jobs write."""


class ExecutionRole(Construct):
    def __init__(self, scope: Construct, id: str, *, names: Names, key: kms.IKey, dataset_prefix: str,
                 checkpoint_prefix: str, image_repositories: list[str], vpc_arns: dict[str, list[str]] | None) -> None:
        super().__init__(scope, id)
        self.role = sagemaker_role(self, names, names.execution_role,
                                   f"ftops {names.env}: assumed by SageMaker training and tuning jobs")
        s3 = names.s3_arn
        art = names.artifacts_bucket
        key_arn = key.key_arn  # one jsii round trip, not one per use
        statements = [
            iam.PolicyStatement(sid="ListDatasetPrefix", actions=["s3:ListBucket"], resources=[s3(names.datasets_bucket)],
                                conditions={"StringLike": {"s3:prefix": [f"{dataset_prefix}*"]}}),
            iam.PolicyStatement(sid="ReadDatasets", actions=["s3:GetObject"],
                                resources=[s3(names.datasets_bucket, f"{dataset_prefix}*")]),
            iam.PolicyStatement(sid="ListArtifactPrefixes", actions=["s3:ListBucket"], resources=[s3(art)],
                                conditions={"StringLike": {"s3:prefix": [f"{p}*" for p in READ_PREFIXES]}}),
            iam.PolicyStatement(sid="ReadModelsSourceProfiler", actions=["s3:GetObject"],
                                resources=[s3(art, f"{p}*") for p in READ_PREFIXES]),
            iam.PolicyStatement(sid="WriteOutputTensorBoardProfiler",
                                actions=["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
                                resources=[s3(art, f"{p}*") for p in WRITE_PREFIXES]),
            iam.PolicyStatement(sid="ListCheckpointPrefix", actions=["s3:ListBucket"],
                                resources=[s3(names.checkpoints_bucket)],
                                conditions={"StringLike": {"s3:prefix": [f"{checkpoint_prefix}*"]}}),
            iam.PolicyStatement(sid="ReadWriteCheckpoints",
                                actions=["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload",
                                         "s3:ListMultipartUploadParts"],
                                resources=[s3(names.checkpoints_bucket, f"{checkpoint_prefix}*")]),
            iam.PolicyStatement(sid="UseEnvironmentKey",
                                actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                                resources=[key_arn]),
            # Encrypted training volumes: SageMaker creates a grant on the key for the EBS volumes.
            iam.PolicyStatement(sid="GrantKeyToVolumes", actions=["kms:CreateGrant"], resources=[key_arn],
                                conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}}),
            write_logs("WriteJobLogs",
                       [names.arn("logs", f"log-group:{group}:*") for group in SAGEMAKER_LOG_GROUPS]),
            put_metrics("PutJobMetrics", list(SAGEMAKER_LOG_GROUPS)),
            *pull_images("PullTrainingAndRuleImages", names, image_repositories),
        ]
        if vpc_arns is not None:
            statements += network_interfaces("Job", names, vpc_arns)
        add_to_default_policy(self.role, statements)
