"""AWS settings of an environment (the CDK stacks and the SageMaker provider read these)."""

from __future__ import annotations

import ipaddress
from functools import cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from jobs.config.base import Declaration, Int
from jobs.errors import FieldValueError

AWS_REGION = r"^[a-z]{2}(-gov)?-[a-z]+-\d$"
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
# The values CloudWatch Logs accepts for RetentionInDays.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
                      2922, 3288, 3653)


@cache
def sagemaker_training_instance_types() -> frozenset[str]:
    """SageMaker's TrainingInstanceType enum from botocore's bundled service model (offline, current with boto3)."""
    import gzip

    import botocore
    import orjson

    # Only the enum is needed: reading it straight from the newest bundled service-2.json(.gz) with orjson takes
    # ~0.05 s, where botocore's session and ServiceModel take ~0.25 s (this runs on every `cdk synth`).
    service = Path(botocore.__file__).parent / "data" / "sagemaker"
    latest = max(path for path in service.iterdir() if path.is_dir())
    plain = latest / "service-2.json"
    raw = plain.read_bytes() if plain.is_file() else gzip.decompress((latest / "service-2.json.gz").read_bytes())
    return frozenset(orjson.loads(raw)["shapes"]["TrainingInstanceType"]["enum"])


class TrainingDefaults(Declaration):
    """Defaults and limits for SageMaker training jobs; the CDK stack publishes them as an SSM parameter."""

    allowed_instance_types: list[str] = Field(
        default=["ml.g5.xlarge", "ml.g5.2xlarge", "ml.g5.12xlarge", "ml.g6.xlarge", "ml.g6.2xlarge", "ml.p4d.24xlarge"],
        min_length=1)
    """Instance types jobs may use in this environment."""

    spot: bool = True
    """Whether jobs use managed spot training by default (required outside prod)."""

    max_runtime_s: Int = Field(86_400, ge=60, le=2_419_200)
    """Default MaxRuntimeInSeconds (SageMaker allows up to 28 days)."""

    max_wait_s: Int = Field(172_800, ge=60, le=2_419_200)
    """Default MaxWaitTimeInSeconds for spot jobs; must be at least max_runtime_s."""

    checkpoint_prefix: str = Field("checkpoints/", pattern=r"^([A-Za-z0-9._-]+/)+$")
    """Key prefix in the checkpoints bucket; each job checkpoints under `<prefix><job name>/`."""

    network_isolation: bool = False
    """EnableNetworkIsolation on training jobs (no outbound network from the container)."""

    inter_container_encryption: bool = False
    """EnableInterContainerTrafficEncryption for multi-instance jobs."""

    profiler: bool = False
    """Emit ProfilerConfig system monitoring and the profiler report rule."""

    @field_validator("allowed_instance_types")
    @classmethod
    def check_instance_types_exist(cls, types: list[str]) -> list[str]:
        known = sagemaker_training_instance_types()
        for name in types:
            if name not in known:
                raise ValueError(f"{name!r} is not a SageMaker training instance type "
                                 "(see the TrainingInstanceType list in the SageMaker API reference)")
        if len(set(types)) != len(types):
            raise ValueError("allowed_instance_types lists an instance type twice")
        return types

    @model_validator(mode="after")
    def check_wait_covers_runtime(self) -> "TrainingDefaults":
        if self.spot and self.max_wait_s < self.max_runtime_s:
            raise ValueError(f"max_wait_s ({self.max_wait_s}) must be >= max_runtime_s ({self.max_runtime_s}) "
                             "when spot is on; raise max_wait_s")
        return self


class VpcSettings(Declaration):
    """A VPC for training jobs: private isolated subnets, S3 gateway and interface endpoints, one security group."""

    enabled: bool = False
    """Create the VPC and run training jobs in it (required in production environments)."""

    cidr: str = "10.64.0.0/16"
    """The VPC's IPv4 range; subnets are carved from it per availability zone."""

    max_azs: Int = Field(2, ge=1, le=6)
    """How many availability zones get a private isolated subnet."""

    availability_zones: list[str] = Field(default=[], json_schema_extra={"items": {"pattern": r"^[a-z]{2}(-gov)?-[a-z]+-\d[a-z]$"}})
    """The zones (e.g. `us-east-1a`) of the subnets, at least `max_azs` of them: synth reads them from here,
    never from a lookup, so it works offline with no credentials. Required when the VPC is enabled."""

    @model_validator(mode="after")
    def check_zones(self) -> "VpcSettings":
        import re

        for zone in self.availability_zones:
            if not re.match(r"^[a-z]{2}(-gov)?-[a-z]+-\d[a-z]$", zone):
                raise ValueError(f"{zone!r} is not an availability zone name such as us-east-1a")
        if self.enabled and len(self.availability_zones) < self.max_azs:
            raise ValueError(f"list at least {self.max_azs} availability_zones (max_azs), e.g. [us-east-1a, us-east-1b]: "
                             "synth takes them from here instead of looking them up")
        return self

    interface_endpoints: list[str] = Field(
        default=["sagemaker.api", "sts", "logs", "ecr.api", "ecr.dkr", "kms"],
        json_schema_extra={"items": {"pattern": r"^[a-z0-9-]+(\.[a-z0-9-]+)*$"}})
    """Interface endpoints (service names after `com.amazonaws.<region>.`) jobs reach without internet; S3 is always a gateway endpoint."""

    @field_validator("cidr")
    @classmethod
    def check_cidr(cls, cidr: str) -> str:
        try:
            net = ipaddress.IPv4Network(cidr)
        except ValueError:
            raise ValueError(f"{cidr!r} is not an IPv4 CIDR such as 10.64.0.0/16") from None
        if not 16 <= net.prefixlen <= 24:
            raise ValueError(f"the VPC range must be between /16 and /24, got /{net.prefixlen}")
        return cidr


class BudgetSettings(Declaration):
    """An AWS Budgets cost budget for the environment's account, alerting the SNS topic and the emails."""

    monthly_limit_usd: float = Field(1000.0, gt=0)
    """The monthly cost budget in US dollars."""

    alert_thresholds_percent: list[Int] = Field(default=[50, 80, 100], min_length=1, max_length=4)
    """Actual-spend alerts at these percentages of the limit (plus a forecast alert at 100%)."""

    @field_validator("alert_thresholds_percent")
    @classmethod
    def check_thresholds(cls, values: list[int]) -> list[int]:
        if any(not 1 <= v <= 1000 for v in values) or len(set(values)) != len(values):
            raise ValueError("thresholds must be distinct percentages between 1 and 1000, e.g. [50, 80, 100]")
        return sorted(values)


class AwsSettings(Declaration):
    enabled: bool = True
    """Whether this environment uses AWS at all."""

    account: str = Field(pattern=r"^\d{12}$")
    """The 12-digit AWS account id the environment deploys into."""

    region: str = Field(pattern=AWS_REGION)
    """The AWS region, e.g. `us-east-1` (checked against botocore's partition data)."""

    @field_validator("region")
    @classmethod
    def check_region_exists(cls, region: str) -> str:
        from jobs.config.regions import check_aws_region

        return check_aws_region(region)

    resource_prefix: str = Field("ftops", pattern=r"^[a-z][a-z0-9-]{1,20}$")
    """Prefix for bucket and resource names; bucket names are `<prefix>-<env>-<purpose>-<account>-<region>`."""

    production: bool = False
    """Production guard rails (always on for the environment named `prod`): VPC, network isolation, inter-container encryption, retained data."""

    synthesizer: Literal["default", "bootstrapless"] = "default"
    """CDK synthesizer: `default` needs `cdk bootstrap`; `bootstrapless` (no assets, no bootstrap version check) is for the emulator."""

    removal_policy: Literal["retain", "destroy"] = Field("retain", validate_default=True)
    """What `cdk destroy` does to buckets, key and logs: `retain` keeps data (required in production), `destroy` is for dev and local."""

    training: TrainingDefaults = Field(default_factory=TrainingDefaults, validate_default=True)
    """Defaults and limits for SageMaker training jobs in this environment."""

    vpc: VpcSettings = Field(default_factory=VpcSettings, validate_default=True)
    """The training VPC; on in production environments."""

    training_image_repositories: list[str] = Field(
        default=["763104351884/huggingface-pytorch-training"],
        json_schema_extra={"items": {"pattern": r"^\d{12}/[a-z0-9][a-z0-9._/-]*$"}})
    """ECR repositories (`<account>/<name>`) the execution role may pull training images from; the default is AWS's Hugging Face DLC."""

    gate_base_endpoint: str | None = Field(None, pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
    """A SageMaker endpoint serving the base model, for the promotion gate to compare with. Unset: the gate
    deploys the base model (from the job's `base_model.s3_uri`, serverless) and removes it when it ends."""

    inference_image_repositories: list[str] = Field(
        default=["763104351884/huggingface-pytorch-inference"],
        json_schema_extra={"items": {"pattern": r"^\d{12}/[a-z0-9][a-z0-9._/-]*$"}})
    """ECR repositories (`<account>/<name>`) endpoints `ftops deploy` creates may pull inference images from; the default is AWS's Hugging Face inference DLC."""

    promotion_targets: list[str] = Field(default=[], json_schema_extra={"items": {"pattern": r"^[a-z][a-z0-9-]*$"}})
    """Environments whose pipeline role may promote models out of this one (`ftops promote --from <this> --to
    <target>` runs there): this stack lets that role list and read the model records and the evaluated
    `model.tar.gz`, decrypt them through S3 with this environment's key, and describe this environment's model
    packages. Read only: approval stays with this environment's own role (`ftops models approve`)."""

    checkpoint_expiry_days: Int = Field(30, ge=1, le=3650)
    """Checkpoints older than this are deleted by the checkpoints bucket's lifecycle rule."""

    noncurrent_version_expiry_days: Int = Field(90, ge=1, le=3650)
    """Overwritten or deleted versions in the versioned datasets and artifacts buckets are kept this long."""

    log_retention_days: Int = 90
    """Retention of the training log group (a value CloudWatch Logs accepts, e.g. 30, 90, 365)."""

    notification_emails: list[str] = Field(default=[], max_length=10, json_schema_extra={"items": {"pattern": EMAIL}})
    """Addresses subscribed to training-job events and budget alerts (each confirms by email)."""

    budget: BudgetSettings = BudgetSettings()
    """The monthly cost budget and its alert thresholds."""

    quotas: dict[str, Annotated[float, Field(ge=0)]] = Field(default={}, json_schema_extra={"propertyNames": {"pattern": r"^ml\.[a-z0-9.-]+ for .+$"}})
    """SageMaker Service Quotas by name (e.g. `ml.g5.2xlarge for spot training job usage: 2`) for `ftops preflight` where no Service Quotas API answers (the emulator); real accounts are always asked."""

    @staticmethod
    def _is_production(info: ValidationInfo) -> bool:
        source = (info.context or {}).get("source")
        return bool(info.data.get("production")) or (source is not None and Path(source).stem == "prod")

    @field_validator("removal_policy")
    @classmethod
    def check_production_retains(cls, policy: str, info: ValidationInfo) -> str:
        if policy != "retain" and cls._is_production(info):
            raise ValueError("production environments must keep their data; set removal_policy: retain")
        return policy

    @field_validator("training")
    @classmethod
    def check_production_training(cls, training: TrainingDefaults, info: ValidationInfo) -> TrainingDefaults:
        if cls._is_production(info):
            missing = [flag for flag in ("network_isolation", "inter_container_encryption") if not getattr(training, flag)]
            if missing:
                raise ValueError(f"production environments need {' and '.join(f'{m}: true' for m in missing)}")
        elif not training.spot:
            raise ValueError("spot: false is only allowed in production environments; keep spot: true")
        return training

    @field_validator("vpc")
    @classmethod
    def check_production_vpc(cls, vpc: VpcSettings, info: ValidationInfo) -> VpcSettings:
        if not vpc.enabled and cls._is_production(info):
            raise ValueError("production environments run training in a VPC; set vpc.enabled: true")
        region = info.data.get("region")
        elsewhere = [zone for zone in vpc.availability_zones if region and zone[:-1] != region]
        if elsewhere:  # a subnet in another region's zone fails only at deploy time, after a long wait
            raise FieldValueError("availability_zones", f"{elsewhere[0]!r} is not a zone of {region}; list zones "
                                  f"such as {region}a, {region}b")
        return vpc

    @field_validator("training_image_repositories", "inference_image_repositories")
    @classmethod
    def check_repositories(cls, repos: list[str]) -> list[str]:
        import re

        for repo in repos:
            if not re.match(r"^\d{12}/[a-z0-9][a-z0-9._/-]*$", repo):
                raise ValueError(f"{repo!r} is not <12-digit account>/<repository name>")
        return repos

    @field_validator("log_retention_days")
    @classmethod
    def check_retention(cls, days: int) -> int:
        if days not in LOG_RETENTION_DAYS:
            raise ValueError(f"{days} is not a CloudWatch Logs retention; use one of {', '.join(map(str, LOG_RETENTION_DAYS))}")
        return days

    @field_validator("notification_emails")
    @classmethod
    def check_emails(cls, emails: list[str]) -> list[str]:
        import re

        for email in emails:
            if not re.match(EMAIL, email):
                raise ValueError(f"{email!r} is not an email address")
        return emails

    def bucket_name(self, env_name: str, purpose: str) -> str:
        """Deterministic bucket names, so that rendering and upload agree with the deployed stacks."""
        return f"{self.resource_prefix}-{env_name}-{purpose}-{self.account}-{self.region}"
