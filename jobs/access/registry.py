"""The model package group policy a source environment puts on its groups (jobs.models.registry.register) so the
pipeline roles of its `aws.promotion_targets` can read them: `ftops promote --from <source>` checks, with the
target's credentials, that the source's package is Approved (DescribeModelPackage). Nothing more: the source
approves its own packages with its own role (`ftops models approve`), so no target may change them.

Pure (no boto3): the registry sends it, the IAM evaluation test evaluates the cross-account calls against it.
"""

from __future__ import annotations

from typing import Any

from jobs.config.environment import Environment


def promotion_targets(env: Environment) -> list[Environment]:
    """The environments of `aws.promotion_targets`: each must exist, use AWS and not be `env` itself."""
    from jobs.config.environment import environment_file, environment_names, load_environment
    from jobs.errors import ConfigError

    out = []
    for name in env.require_aws().promotion_targets:
        target = load_environment(name) if name in environment_names() and name != env.name else None
        if target is None or not (target.aws and target.aws.enabled):
            raise ConfigError(f"{name!r} is no other AWS environment", source=environment_file(env.name),
                              field="aws.promotion_targets",
                              hint=f"name environments that promote from {env.name} (AWS environments: " +
                                   ", ".join(n for n in environment_names() if n != env.name) + ")")
        out.append(target)
    return out


def promotion_readers(env: Environment) -> list[str]:
    """Pipeline role ARNs of the environments `env` promotes to (`aws.promotion_targets`)."""
    from jobs.config.resolved import derive_aws

    return [derive_aws(target).pipeline_role_arn for target in promotion_targets(env)]


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
    ]}
