"""Every cdk-nag acknowledgement, with its reason, in one place. An unacknowledged finding fails synth.

Each finding is acknowledged on the construct that causes it (never app- or stack-wide) and names its exact
resource, so a new wildcard anywhere else still fails the build.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import Construct

from infra.aws.execution_role import (ENDPOINT_READ_PREFIXES, READ_PREFIXES, SAGEMAKER_LOG_GROUPS,
                                     WRITE_PREFIXES)
from infra.aws.pipeline_role import LEDGER_PREFIX, OUTPUT_PREFIX, PROMOTED_PREFIX, SOURCE_PREFIX


def _ack(scope: Construct, findings: dict[str, str]) -> None:
    Validations.of(scope).acknowledge(*(
        Acknowledgment(id=f"AwsSolutions::AwsSolutions-IAM5[Resource::{resource}]", reason=reason)
        for resource, reason in findings.items()))


def acknowledge(stack) -> None:
    """The intentional wildcards of a PlatformStack: object prefixes, job name patterns, service-wide actions."""
    names = stack.names
    aws = stack.env_settings
    s3 = names.s3_arn
    art = names.artifacts_bucket
    objects = "object keys are chosen at run time (dataset ids, job names); the grant is scoped to this prefix"
    purposes = {"models/": "base-model weights (the model channel)", "source/": "training source archives",
                "profiler/": "profiler output and rule reports", "training-output/": "model output",
                "tensorboard/": "TensorBoard logs", "promoted/": "models promoted into this environment"}
    execution = {
        s3(names.datasets_bucket, f"{stack.dataset_prefix}*"): f"datasets: {objects}",
        s3(names.checkpoints_bucket, f"{aws.training.checkpoint_prefix}*"): f"checkpoints: {objects}",
        **{s3(art, f"{p}*"): f"{purposes[p]}: {objects}"
           for p in dict.fromkeys(READ_PREFIXES + ENDPOINT_READ_PREFIXES + WRITE_PREFIXES)},
        **{names.arn("logs", f"log-group:{group}:*"):
           "SageMaker writes job, rule and endpoint logs to these service-defined groups, one stream per instance"
           for group in SAGEMAKER_LOG_GROUPS},
        "*": "cloudwatch:PutMetricData (scoped by a namespace condition), ecr:GetAuthorizationToken and, with a VPC, "
             "ec2:Describe* have no resource-level permissions",
    }
    if stack.network is not None:
        execution[names.arn("ec2", "network-interface/*")] = (
            "SageMaker creates the job's network interfaces at run time; subnets and security group are explicit")
    _ack(stack.execution_role.node.scope, execution)
    sm = "names are rendered per run (job names, endpoint names); creation needs ftops tags and the conditions"
    _ack(stack.pipeline_role.node.scope, {
        **{names.arn("sagemaker", f"{kind}/*"): f"{kind}: {sm}"
           for kind in ("training-job", "hyper-parameter-tuning-job", "model", "endpoint-config", "endpoint")},
        names.arn("sagemaker", f"model-package-group/{names.prefix}-*"): "promotion: one group per job definition",
        names.arn("sagemaker", f"model-package/{names.prefix}-*/*"): "promotion: versions of those groups",
        **{s3(art, f"{p}*"): f"{p}: {objects}"
           for p in (f"{LEDGER_PREFIX}{names.env}/", SOURCE_PREFIX, OUTPUT_PREFIX, PROMOTED_PREFIX)},
        s3(names.datasets_bucket, f"{stack.dataset_prefix}*"): f"dataset uploads: {objects}",
        "*": "sagemaker:ListTrainingJobs and cloudwatch:GetMetricData have no resource-level permissions",
    })
