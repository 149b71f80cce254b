"""The model package group policy a source environment puts on its groups (jobs.models.registry.register) so the
pipeline roles of its `aws.promotion_targets` can record their approval there (`ftops promote` approves the
source's package): DescribeModelPackage, and UpdateModelPackage to `Approved` only.

Pure (no boto3): the registry sends it, the IAM evaluation test evaluates the cross-account calls against it.
"""

from __future__ import annotations

from typing import Any

from jobs.config.environment import Environment


def promotion_readers(env: Environment) -> list[str]:
    """Pipeline role ARNs of the environments `env` promotes to (`aws.promotion_targets`)."""
    from jobs.config.environment import load_environment
    from jobs.config.resolved import derive_aws

    aws = env.require_aws()
    return [derive_aws(load_environment(name)).pipeline_role_arn for name in aws.promotion_targets]


def group_policy(group_arn: str, readers: list[str]) -> dict[str, Any]:
    """Principals are the readers' accounts narrowed by aws:PrincipalArn (a policy naming a role that does not
    exist yet is refused)."""
    accounts = list(dict.fromkeys(arn.split(":")[4] for arn in readers))
    partition = group_arn.split(":")[1]
    principal = {"AWS": [f"arn:{partition}:iam::{a}:root" for a in accounts]}
    who = {"ArnEquals": {"aws:PrincipalArn": readers}}
    packages = group_arn.replace(":model-package-group/", ":model-package/") + "/*"
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "PromotionTargetsDescribe", "Effect": "Allow", "Principal": principal,
         "Action": ["sagemaker:DescribeModelPackage"], "Resource": packages, "Condition": who},
        {"Sid": "PromotionTargetsApprove", "Effect": "Allow", "Principal": principal,
         "Action": ["sagemaker:UpdateModelPackage"], "Resource": packages,
         "Condition": {**who, "StringEquals": {"sagemaker:ModelApprovalStatus": "Approved"}}},
    ]}
