"""Statements into a role's default policy with few jsii round trips (each Python -> node call is one), and
the statements the execution and endpoint roles share (both run SageMaker containers: logs, metrics, images,
VPC)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.aws.naming import Names


def add_to_default_policy(role: iam.Role, statements: list[iam.PolicyStatement]) -> None:
    """What `add_to_principal_policy` per statement does, in 6 round trips instead of 3 per statement.

    The first statement creates the role's DefaultPolicy (the policy the role splits if it outgrows the inline
    size limit); the rest go to that same policy in one `add_statements` call, in order, so the template is the same.
    """
    first, *rest = statements
    role.add_to_principal_policy(first)
    if rest:
        policy: iam.Policy = role.node.find_child("DefaultPolicy")
        policy.add_statements(*rest)


def sagemaker_role(scope: Construct, names: Names, role_name: str, description: str) -> iam.Role:
    """A role only SageMaker assumes, and only on this account's behalf (aws:SourceAccount: no confused
    deputy)."""
    only_ours = {"StringEquals": {"aws:SourceAccount": names.account}}
    return iam.Role(scope, "Role", role_name=role_name, description=description,
                    assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com", conditions=only_ours))


def write_logs(sid: str, log_group_arns: list[str]) -> iam.PolicyStatement:
    return iam.PolicyStatement(sid=sid, actions=["logs:CreateLogGroup", "logs:CreateLogStream",
                                                 "logs:PutLogEvents", "logs:DescribeLogStreams"],
                               resources=log_group_arns)


def put_metrics(sid: str, namespace: str | list[str]) -> iam.PolicyStatement:
    # PutMetricData has no resource-level permissions; the namespace condition is the scope.
    return iam.PolicyStatement(sid=sid, actions=["cloudwatch:PutMetricData"], resources=["*"],
                               conditions={"StringEquals": {"cloudwatch:namespace": namespace}})


def pull_images(sid: str, names: Names, repositories: Iterable[str]) -> list[iam.PolicyStatement]:
    return [
        # GetAuthorizationToken is account-wide by design (no resource-level permissions).
        iam.PolicyStatement(sid="EcrLogin", actions=["ecr:GetAuthorizationToken"], resources=["*"]),
        iam.PolicyStatement(sid=sid, actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
                                              "ecr:BatchCheckLayerAvailability"],
                            resources=[repository_arn(names, repo) for repo in dict.fromkeys(repositories)]),
    ]


def repository_arn(names: Names, repo: str) -> str:
    """`<account>/<name>` or an ECR image URI -> the repository's ARN in this environment's region."""
    if ".dkr.ecr." in repo:
        from jobs.access.model import ecr_repository_arn

        return ecr_repository_arn(names.partition, repo)
    account, name = repo.split("/", 1)
    return f"arn:{names.partition}:ecr:{names.region}:{account}:repository/{name}"


def network_interfaces(who: str, names: Names, vpc_arns: dict[str, Any]) -> list[iam.PolicyStatement]:
    """What SageMaker needs to put a `who` (Job, Endpoint) container in the environment's VPC."""
    interfaces = names.arn("ec2", "network-interface/*")
    return [
        # Describe calls have no resource-level permissions.
        iam.PolicyStatement(sid="DescribeNetwork",
                            actions=["ec2:DescribeNetworkInterfaces", "ec2:DescribeVpcs",
                                     "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups",
                                     "ec2:DescribeDhcpOptions"],
                            resources=["*"]),
        iam.PolicyStatement(sid=f"Create{who}NetworkInterfaces", actions=["ec2:CreateNetworkInterface"],
                            resources=[interfaces, *vpc_arns["subnets"], *vpc_arns["security_groups"]]),
        iam.PolicyStatement(sid=f"Manage{who}NetworkInterfaces",
                            actions=["ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterface",
                                     "ec2:DeleteNetworkInterfacePermission"],
                            resources=[interfaces]),
    ]
