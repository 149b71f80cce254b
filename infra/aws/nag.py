"""Every cdk-nag acknowledgement, with its reason, in one place. An unacknowledged finding fails synth.

Each finding is acknowledged on the construct that causes it (never app- or stack-wide) and names its exact
resource, so a new wildcard anywhere else still fails the build.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import Construct

from infra.aws.endpoint_role import BASE_MODELS_PREFIX, ENDPOINT_LOG_GROUPS, SERVED_MODELS
from infra.aws.execution_role import READ_PREFIXES, SAGEMAKER_LOG_GROUPS, WRITE_PREFIXES
from infra.aws.pipeline_role import (LEDGER_PREFIX, OUTPUT_PREFIX, PROMOTED_PREFIX, RECORDS_PREFIX,
                                     REGISTRY_GROUP_PREFIX, SOURCE_MODEL, SOURCE_PREFIX)


def _ack(scope: Construct, findings: dict[str, str]) -> None:
    Validations.of(scope).acknowledge(*(
        Acknowledgment(id=f"AwsSolutions::AwsSolutions-IAM5[Resource::{resource}]", reason=reason)
        for resource, reason in findings.items()))


CONTAINER_ROLE_WILDCARDS = ("cloudwatch:PutMetricData (scoped by a namespace condition), ecr:GetAuthorizationToken "
                            "and, with a VPC, ec2:Describe* have no resource-level permissions")
"""Why the execution and endpoint roles (infra.aws.role_policy's shared statements) name `*`."""


def acknowledge(stack) -> None:
    """The intentional wildcards of a PlatformStack: object prefixes, job name patterns, service-wide actions."""
    names = stack.names
    aws = stack.env_settings
    s3 = names.s3_arn
    art = names.artifacts_bucket
    objects = "object keys are chosen at run time (dataset ids, job names); the grant is scoped to this prefix"
    purposes = {"models/": "base-model weights (the model channel)", "source/": "training source archives",
                "profiler/": "profiler output and rule reports", "training-output/": "model output",
                "tensorboard/": "TensorBoard logs"}
    execution = {
        s3(names.datasets_bucket, f"{stack.dataset_prefix}*"): f"datasets: {objects}",
        s3(names.checkpoints_bucket, f"{aws.training.checkpoint_prefix}*"): f"checkpoints: {objects}",
        **{s3(art, f"{p}*"): f"{purposes[p]}: {objects}"
           for p in dict.fromkeys(READ_PREFIXES + WRITE_PREFIXES)},
        **{names.arn("logs", f"log-group:{group}:*"):
           "SageMaker writes job and rule logs to these service-defined groups, one stream per instance"
           for group in SAGEMAKER_LOG_GROUPS},
        "*": CONTAINER_ROLE_WILDCARDS,
    }
    if stack.network is not None:
        execution[names.arn("ec2", "network-interface/*")] = (
            "SageMaker creates the job's network interfaces at run time; subnets and security group are explicit")
    _ack(stack.execution_role.node.scope, execution)
    endpoint = {
        **{s3(art, pattern): f"served models: {objects}" for pattern in SERVED_MODELS},
        s3(art, f"{BASE_MODELS_PREFIX}*"): f"base-model weights the promotion gate serves: {objects}",
        names.arn("logs", f"log-group:{ENDPOINT_LOG_GROUPS}:*"):
            "SageMaker writes an endpoint's logs to /aws/sagemaker/Endpoints/<endpoint name> (service-defined)",
        "*": CONTAINER_ROLE_WILDCARDS,
    }
    if stack.network is not None:
        endpoint[names.arn("ec2", "network-interface/*")] = (
            "SageMaker creates the endpoint's network interfaces at run time; subnets and security group are explicit")
    _ack(stack.endpoint_role.node.scope, endpoint)
    sm = "names are rendered per run (job names, endpoint names); creation needs ftops tags and the conditions"
    _ack(stack.pipeline_role.node.scope, {
        **{names.arn("sagemaker", f"{kind}/*"): f"{kind}: {sm}"
           for kind in ("training-job", "hyper-parameter-tuning-job", "model", "endpoint-config", "endpoint")},
        names.arn("sagemaker", f"model-package-group/{REGISTRY_GROUP_PREFIX}*"): "model registry: one group per job",
        names.arn("sagemaker", f"model-package/{REGISTRY_GROUP_PREFIX}*/*"): "model registry: versions of those groups",
        **{s3(art, f"{p}*"): f"{p}: {objects}"
           for p in (f"{LEDGER_PREFIX}{names.env}/", SOURCE_PREFIX, OUTPUT_PREFIX, f"{RECORDS_PREFIX}{names.env}/",
                     PROMOTED_PREFIX)},
        **promotion_sources(stack, objects),
        s3(names.datasets_bucket, f"{stack.dataset_prefix}*"): f"dataset uploads: {objects}",
        names.arn("cloudformation", f"stack/{names.stack}/*"):
            "preflight reads the environment's own stack, whose id is known only once deployed",
        "*": "sagemaker:ListTrainingJobs, ListHyperParameterTuningJobs, ListEndpoints, cloudwatch:GetMetricData, "
             "servicequotas:ListAWSDefaultServiceQuotas, ListServiceQuotas and ec2:DescribeInstanceTypeOfferings "
             "have no resource-level permissions",
    })


def promotion_sources(stack, objects: str) -> dict[str, str]:
    """The pipeline role's grants on the environments it promotes from (their bucket, key, model packages)."""
    out: dict[str, str] = {}
    for source in stack.promotion_sources:
        why = f"promotion from {source.env}"
        out[source.s3_arn(source.artifacts_bucket, f"{RECORDS_PREFIX}{source.env}/*")] = f"{why}: model records; {objects}"
        out[source.s3_arn(source.artifacts_bucket, SOURCE_MODEL)] = f"{why}: trained model.tar.gz; {objects}"
        out[source.arn("kms", "key/*")] = (f"{why}: the source's key id is known only once it is deployed; the "
                                           f"statement names it by its alias (kms:ResourceAliases) and S3 (ViaService)")
        out[source.arn("sagemaker", f"model-package/{REGISTRY_GROUP_PREFIX}*/*")] = (
            f"{why}: the source's model packages (DescribeModelPackage only)")
    return out
