"""AWS settings of an environment (the CDK stacks and the SageMaker provider read these)."""

from __future__ import annotations

from pydantic import Field, model_validator

from jobs.config.base import Declaration

AWS_REGION = r"^[a-z]{2}(-gov)?-[a-z]+-\d$"


class TrainingDefaults(Declaration):
    """Defaults and limits for SageMaker training jobs; the CDK stack publishes them as an SSM parameter."""

    allowed_instance_types: list[str] = Field(
        default=["ml.g5.xlarge", "ml.g5.2xlarge", "ml.g5.12xlarge", "ml.g6.xlarge", "ml.g6.2xlarge", "ml.p4d.24xlarge"],
        min_length=1)
    """Instance types jobs may use in this environment."""

    spot: bool = True
    """Whether jobs use managed spot training by default (required outside prod)."""

    max_runtime_s: int = Field(86_400, ge=60, le=2_419_200)
    """Default MaxRuntimeInSeconds (SageMaker allows up to 28 days)."""

    max_wait_s: int = Field(172_800, ge=60, le=2_419_200)
    """Default MaxWaitTimeInSeconds for spot jobs; must be at least max_runtime_s."""

    checkpoint_prefix: str = Field("checkpoints/", pattern=r"^([A-Za-z0-9._-]+/)+$")
    """Key prefix in the checkpoints bucket; each job checkpoints under `<prefix><job name>/`."""

    network_isolation: bool = False
    """EnableNetworkIsolation on training jobs (no outbound network from the container)."""

    inter_container_encryption: bool = False
    """EnableInterContainerTrafficEncryption for multi-instance jobs."""

    profiler: bool = False
    """Emit ProfilerConfig system monitoring and the profiler report rule."""

    @model_validator(mode="after")
    def check_wait_covers_runtime(self) -> "TrainingDefaults":
        if self.spot and self.max_wait_s < self.max_runtime_s:
            raise ValueError(f"max_wait_s ({self.max_wait_s}) must be >= max_runtime_s ({self.max_runtime_s}) "
                             "when spot is on; raise max_wait_s")
        return self


class AwsSettings(Declaration):
    enabled: bool = True
    """Whether this environment uses AWS at all."""

    account: str = Field(pattern=r"^\d{12}$")
    """The 12-digit AWS account id the environment deploys into."""

    region: str = Field(pattern=AWS_REGION)
    """The AWS region, e.g. `us-east-1`."""

    resource_prefix: str = Field("ftops", pattern=r"^[a-z][a-z0-9-]{1,20}$")
    """Prefix for bucket and resource names; bucket names are `<prefix>-<env>-<purpose>-<account>-<region>`."""

    training: TrainingDefaults = TrainingDefaults()
    """Defaults and limits for SageMaker training jobs in this environment."""

    def bucket_name(self, env_name: str, purpose: str) -> str:
        """Deterministic bucket names, so that rendering and upload agree with the deployed stacks."""
        return f"{self.resource_prefix}-{env_name}-{purpose}-{self.account}-{self.region}"
