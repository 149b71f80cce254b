"""AWS settings of an environment (the CDK stacks and the SageMaker provider read these)."""

from __future__ import annotations

from pydantic import Field

from jobs.config.base import Declaration

AWS_REGION = r"^[a-z]{2}(-gov)?-[a-z]+-\d$"


class AwsSettings(Declaration):
    enabled: bool = True
    """Whether this environment uses AWS at all."""

    account: str = Field(pattern=r"^\d{12}$")
    """The 12-digit AWS account id the environment deploys into."""

    region: str = Field(pattern=AWS_REGION)
    """The AWS region, e.g. `us-east-1`."""

    resource_prefix: str = Field("ftops", pattern=r"^[a-z][a-z0-9-]{1,20}$")
    """Prefix for bucket and resource names; bucket names are `<prefix>-<env>-<purpose>-<account>-<region>`."""

    def bucket_name(self, env_name: str, purpose: str) -> str:
        """Deterministic bucket names, so that rendering and upload agree with the deployed stacks."""
        return f"{self.resource_prefix}-{env_name}-{purpose}-{self.account}-{self.region}"
