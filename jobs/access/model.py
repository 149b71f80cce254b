"""The access record and the ARNs it names (pure Python: no boto3 call, no aws_cdk).

Why an Access names one resource: IAM authorizes each request against each resource it touches (a
CreateNetworkInterface is checked on the interface, the subnet and the security group), so one record is one
authorization question an evaluator (iam-simulate in the tests, iam:SimulatePrincipalPolicy in preflight) can answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jobs.config.environment import Environment
from jobs.config.resolved import ResolvedAws, resolved_aws
from jobs.config.regions import partition_of

PRINCIPALS = ("pipeline", "execution", "endpoint")
"""`pipeline`: what `ftops apply|deploy|promote` runs as in CI. `execution`: the role SageMaker training and tuning
jobs run as. `endpoint`: the role a deployed model's container runs as (ExecutionRoleArn of CreateModel)."""

SAMPLE_OBJECT = "ftops-access-check"
"""Object name standing in for keys chosen at run time under a prefix (the files of a channel, checkpoint shards).
IAM matches object ARNs by pattern, so any key under the prefix answers for all of them."""

ANY_RESOURCE = "*"


@dataclass(frozen=True)
class Access:
    principal: str
    """`pipeline` | `execution` | `endpoint`."""
    action: str
    """The IAM action, e.g. `s3:PutObject`."""
    resource: str
    """A full ARN, or `*` only where the action has no resource-level permission (`why` cites it)."""
    context: dict[str, Any] = field(default_factory=dict)
    """Condition-key values the request implies (strings, or lists for multi-valued keys)."""
    why: str = ""
    """What needs it, in words."""

    def __post_init__(self) -> None:
        if self.principal not in PRINCIPALS:
            raise ValueError(f"unknown principal {self.principal!r}")

    def key(self) -> tuple[str, str, str, str]:
        """Identity for de-duplication: equal requests with equal context are one question."""
        return (self.principal, self.action, self.resource, repr(sorted(self.context.items())))


def dedupe(accesses: list[Access]) -> list[Access]:
    seen: dict[tuple, Access] = {}
    for access in accesses:
        seen.setdefault(access.key(), access)
    return list(seen.values())


class ArnFormat:
    """ARNs in one account and region, mixed into `Arns` (the access model) and `infra.aws.naming.Names` (the
    stacks): one format, so the names the roles grant and the names the model asks about cannot drift apart."""

    partition: str
    region: str
    account: str

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        return (f"arn:{self.partition}:{service}:{self.region if region else ''}:"
                f"{self.account if account else ''}:{resource}")

    def s3(self, bucket: str, key: str | None = None) -> str:
        """A bucket's ARN, or its objects' under `key` (a key or a pattern)."""
        return f"arn:{self.partition}:s3:::{bucket}" + (f"/{key}" if key is not None else "")


@dataclass(frozen=True)
class Arns(ArnFormat):
    """ARNs of one environment's account and region."""

    partition: str
    region: str
    account: str
    resolved: ResolvedAws

    @classmethod
    def of(cls, env: Environment) -> Arns:
        aws = env.require_aws()
        return cls(partition_of(aws.region), aws.region, aws.account, resolved_aws(env))

    def sagemaker(self, kind: str, name: str) -> str:
        # SageMaker lower-cases resource names in its ARNs.
        return self.arn("sagemaker", f"{kind}/{name.lower()}")

    @property
    def key_arn(self) -> str:
        return self.resolved.kms_key_arn

    @property
    def execution_role_arn(self) -> str:
        return self.resolved.execution_role_arn

    @property
    def endpoint_role_arn(self) -> str:
        return self.resolved.endpoint_role_arn


def split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def ecr_repository_arn(partition: str, image_uri: str) -> str:
    """`<account>.dkr.ecr.<region>.amazonaws.com/<repo>[:tag|@digest]` -> the repository's ARN."""
    host, _, path = image_uri.partition("/")
    parts = host.split(".")
    if len(parts) < 6 or parts[1:3] != ["dkr", "ecr"]:
        raise ValueError(f"{image_uri!r} is not an ECR image URI (<account>.dkr.ecr.<region>.amazonaws.com/<repo>)")
    account, region = parts[0], parts[3]
    repo = path.split("@", 1)[0].split(":", 1)[0]
    return f"arn:{partition}:ecr:{region}:{account}:repository/{repo}"


def tag_context(tags: dict[str, str], *, request: bool) -> dict[str, Any]:
    """`aws:RequestTag/K` + `aws:TagKeys` (tagging on create) or `aws:ResourceTag/K` (acting on a tagged resource)."""
    if request:
        return {**{f"aws:RequestTag/{k}": v for k, v in tags.items()}, "aws:TagKeys": sorted(tags)}
    return {f"aws:ResourceTag/{k}": v for k, v in tags.items()}
