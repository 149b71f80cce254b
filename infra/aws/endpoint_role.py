"""The role ftops endpoints run as (CreateModel's ExecutionRoleArn in `ftops deploy` and the promotion gate):
read the model it serves, pull the inference image, write its logs and metrics, and nothing a training job
needs (jobs.access lists each need under the `endpoint` principal; tests/unit/test_infra_aws_iam.py evaluates
every one against this role).

Models: a training job's `training-output/<job>/output/model.tar.gz`, a promoted copy
`ftops-models/artifacts/<job>/<sha256>/model.tar.gz` (jobs.models.artifacts.promoted_key), and the uncompressed
base weights under `models/` that the gate serves for comparison.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.aws.naming import Names
from infra.aws.role_policy import (add_to_default_policy, network_interfaces, pull_images, put_metrics,
                                   sagemaker_role, write_logs)

ENDPOINT_LOG_GROUPS = "/aws/sagemaker/Endpoints/*"
"""SageMaker writes an endpoint's logs to `/aws/sagemaker/Endpoints/<endpoint name>` (fixed by the service)."""
ENDPOINT_METRICS_NAMESPACE = "/aws/sagemaker/Endpoints"
SERVED_MODELS = ("training-output/*/output/model.tar.gz", "ftops-models/artifacts/*/model.tar.gz")
"""Artifacts-bucket keys an endpoint serves: a training job's model, a promoted copy."""
BASE_MODELS_PREFIX = "models/"
"""Uncompressed base weights (an S3 prefix the gate's base-model endpoint loads)."""


class EndpointRole(Construct):
    def __init__(self, scope: Construct, id: str, *, names: Names, key: kms.IKey, image_repositories: list[str],
                 vpc_arns: dict[str, list[str]] | None) -> None:
        super().__init__(scope, id)
        self.role = sagemaker_role(self, names, names.endpoint_role,
                                   f"ftops {names.env}: assumed by the SageMaker endpoints ftops deploys")
        s3 = names.s3_arn
        art = names.artifacts_bucket
        key_arn = key.key_arn
        statements = [
            iam.PolicyStatement(sid="ReadServedModels", actions=["s3:GetObject"],
                                resources=[s3(art, pattern) for pattern in SERVED_MODELS]),
            iam.PolicyStatement(sid="ListBaseModels", actions=["s3:ListBucket"], resources=[s3(art)],
                                conditions={"StringLike": {"s3:prefix": [f"{BASE_MODELS_PREFIX}*"]}}),
            iam.PolicyStatement(sid="ReadBaseModels", actions=["s3:GetObject"],
                                resources=[s3(art, f"{BASE_MODELS_PREFIX}*")]),
            iam.PolicyStatement(sid="DecryptThroughS3", actions=["kms:Decrypt"], resources=[key_arn],
                                conditions={"StringEquals": {"kms:ViaService": f"s3.{names.region}.amazonaws.com"}}),
            # Encrypted instance volumes (the endpoint config's KmsKeyId): SageMaker grants the key to the volumes.
            iam.PolicyStatement(sid="GrantKeyToVolumes", actions=["kms:CreateGrant"], resources=[key_arn],
                                conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}}),
            iam.PolicyStatement(sid="DescribeKey", actions=["kms:DescribeKey"], resources=[key_arn]),
            write_logs("WriteEndpointLogs", [names.arn("logs", f"log-group:{ENDPOINT_LOG_GROUPS}:*")]),
            put_metrics("PutEndpointMetrics", ENDPOINT_METRICS_NAMESPACE),
            *pull_images("PullInferenceImages", names, image_repositories),
        ]
        if vpc_arns is not None:
            statements += network_interfaces("Endpoint", names, vpc_arns)
        add_to_default_policy(self.role, statements)
