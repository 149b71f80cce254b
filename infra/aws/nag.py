"""Every cdk-nag acknowledgement, with its reason, in one place. An unacknowledged finding fails synth.

Each finding is acknowledged on the construct that causes it (never app- or stack-wide) and names its exact
resource, so a new wildcard anywhere else still fails the build.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import Construct

from infra.aws.execution_role import SAGEMAKER_LOG_GROUP


def _ack(scope: Construct, findings: dict[str, str]) -> None:
    Validations.of(scope).acknowledge(*(
        Acknowledgment(id=f"AwsSolutions::AwsSolutions-IAM5[Resource::{resource}]", reason=reason)
        for resource, reason in findings.items()))


def acknowledge(stack) -> None:
    """The intentional wildcards of a PlatformStack: object prefixes, job name patterns, service-wide actions."""
    names = stack.names
    aws = stack.env_settings
    s3 = names.s3_arn
    objects = "object keys are chosen at run time (dataset ids, job names); the grant is scoped to this prefix"
    execution = {
        s3(names.datasets_bucket, f"{stack.dataset_prefix}*"): f"datasets: {objects}",
        s3(names.artifacts_bucket, "source/*"): f"training source archives: {objects}",
        s3(names.artifacts_bucket, "output/*"): f"model output: {objects}",
        s3(names.artifacts_bucket, "tensorboard/*"): f"TensorBoard logs: {objects}",
        s3(names.checkpoints_bucket, f"{aws.training.checkpoint_prefix}*"): f"checkpoints: {objects}",
        names.arn("logs", f"log-group:{SAGEMAKER_LOG_GROUP}:*"):
            "SageMaker writes job logs to this service-defined group, one stream per job instance",
        f"{names.log_group_arn}:*": "log streams of the environment's own training log group",
        "*": "cloudwatch:PutMetricData (scoped by a namespace condition), ecr:GetAuthorizationToken and, with a VPC, "
             "ec2:Describe* have no resource-level permissions",
    }
    if stack.network is not None:
        execution[names.arn("ec2", "network-interface/*")] = (
            "SageMaker creates the job's network interfaces at run time; subnets and security group are explicit")
    _ack(stack.execution_role.node.scope, execution)
    _ack(stack.pipeline_role.node.scope, {
        names.arn("sagemaker", "training-job/*"):
            "job names are rendered per run; creation is limited by instance-type, key and isolation conditions",
        names.arn("sagemaker", "hyper-parameter-tuning-job/*"):
            "tuning job names are rendered per run; creation is limited by the same conditions",
        s3(names.artifacts_bucket, "source/*"): f"apply uploads training source archives: {objects}",
    })
