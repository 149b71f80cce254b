"""Read-only checks against a real AWS account (nothing is created or changed).

Runs only when FTOPS_LIVE_AWS_ENV names a real environment whose stack is deployed and boto3 finds
credentials (a pipeline's OIDC role, or a profile on a laptop). It proves what moto cannot: the deployed
stack's outputs are the values rendering assumes, and the buckets really enforce encryption and block public access.
"""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.live

ENV_NAME = os.environ.get("FTOPS_LIVE_AWS_ENV")


def _has_credentials() -> bool:
    try:
        import boto3

        return boto3.Session().get_credentials() is not None
    except Exception:  # noqa: BLE001 - any failure here means "not configured", which is a skip
        return False


@pytest.mark.skipif(not (ENV_NAME and _has_credentials()),
                    reason="needs FTOPS_LIVE_AWS_ENV (a deployed environment) and AWS credentials")
def test_deployed_stack_matches_what_rendering_assumes():
    import boto3

    from infra.aws.outputs import resolved_from_outputs, stack_name
    from jobs.config.environment import load_environment
    from jobs.config.resolved import derive_aws

    env = load_environment(ENV_NAME)
    session = boto3.Session(region_name=env.aws.region)
    stack = session.client("cloudformation").describe_stacks(StackName=stack_name(env))["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    deployed = resolved_from_outputs(env, outputs)
    derived = derive_aws(env)
    assert deployed.model_dump(exclude={"kms_key_arn", "source", "subnet_ids", "security_group_ids"}) == \
        derived.model_dump(exclude={"kms_key_arn", "source", "subnet_ids", "security_group_ids"})

    s3 = session.client("s3")
    for bucket in (deployed.datasets_bucket, deployed.output_bucket, deployed.checkpoints_bucket):
        rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
        assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
        assert rule["BucketKeyEnabled"] is True
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert all(block.values())
