"""Resolved infrastructure values: what rendering reads instead of calling the clouds.

`ftops infra outputs --env ENV` turns the CDK outputs file / the Azure apply outputs into
`environments/resolved/<env>.<cloud>.json` (committed, so a pull request renders offline and deterministically).
Emulated environments keep theirs in `.ftops/resolved/`: emulator ids are per machine and never committed.
Before anything is deployed, the values are derived from the environment file with the same naming rules
the stacks use, so `local` renders out of the box.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from jobs import paths
from jobs.config.environment import Environment
from jobs.errors import ConfigError, FtopsError
from jobs.fsutil import regular_file
from jobs.yamlio import describe_validation_error

M = TypeVar("M", bound=BaseModel)


class ResolvedAws(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    account: str
    region: str
    datasets_bucket: str
    output_bucket: str
    checkpoints_bucket: str
    kms_key_arn: str
    """Key ARN once deployed; before that the alias ARN (SageMaker accepts both)."""
    execution_role_arn: str
    pipeline_role_arn: str
    training_defaults_parameter: str
    log_group_name: str
    notifications_topic_arn: str
    endpoint_role_arn: str
    """The role endpoints run as (CreateModel's ExecutionRoleArn): model artifacts, inference images, logs."""
    subnet_ids: list[str] = []
    security_group_ids: list[str] = []
    source: str = "derived"
    """`derived` (from the environment file) or `deployed` (from stack outputs)."""

    @model_validator(mode="before")
    @classmethod
    def endpoint_role_by_name(cls, values):
        # Files written before the stack had an endpoint role: the stack names it by rule, beside the execution role.
        if isinstance(values, dict) and "endpoint_role_arn" not in values and \
                str(values.get("execution_role_arn", "")).endswith(EXECUTION_ROLE_SUFFIX):
            values = {**values, "endpoint_role_arn": values["execution_role_arn"].removesuffix(EXECUTION_ROLE_SUFFIX)
                      + ENDPOINT_ROLE_SUFFIX}
        return values


EXECUTION_ROLE_SUFFIX = "-sagemaker-execution"
ENDPOINT_ROLE_SUFFIX = "-sagemaker-endpoint"


class ResolvedAzure(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    subscription_id: str
    resource_group: str
    location: str
    openai_account: str
    openai_endpoint: str
    openai_account_id: str
    storage_account: str
    storage_account_id: str
    container_url: str
    source: str = "derived"


def resolved_file(env_name: str, cloud: str) -> Path:
    from jobs.config.environment import load_environment

    base = paths.state_dir() if load_environment(env_name).emulated else paths.environments_dir()
    return base / "resolved" / f"{env_name}.{cloud}.json"


def derive_aws(env: Environment) -> ResolvedAws:
    """The names the CDK stacks give their resources (they set them explicitly, from the same rules)."""
    from jobs.config.regions import partition_of

    aws = env.require_aws()
    partition = partition_of(aws.region)  # aws-cn and aws-us-gov ARNs differ from the commercial ones
    arn = f"arn:{partition}:{{svc}}:{aws.region}:{aws.account}"
    prefix = f"{aws.resource_prefix}-{env.name}"
    return ResolvedAws(
        account=aws.account, region=aws.region,
        datasets_bucket=aws.bucket_name(env.name, "datasets"),
        output_bucket=aws.bucket_name(env.name, "artifacts"),
        checkpoints_bucket=aws.bucket_name(env.name, "checkpoints"),
        kms_key_arn=arn.format(svc="kms") + f":alias/{prefix}",
        execution_role_arn=f"arn:{partition}:iam::{aws.account}:role/{prefix}{EXECUTION_ROLE_SUFFIX}",
        endpoint_role_arn=f"arn:{partition}:iam::{aws.account}:role/{prefix}{ENDPOINT_ROLE_SUFFIX}",
        pipeline_role_arn=f"arn:{partition}:iam::{aws.account}:role/{prefix}-pipeline",
        training_defaults_parameter=f"/{aws.resource_prefix}/{env.name}/training-defaults",
        log_group_name=f"/{aws.resource_prefix}/{env.name}/training",
        notifications_topic_arn=arn.format(svc="sns") + f":{prefix}-training-events",
    )


def derive_azure(env: Environment) -> ResolvedAzure:
    azure = env.require_azure()
    account = azure.openai_account_name
    rg_id = f"/subscriptions/{azure.subscription_id}/resourceGroups/{azure.resource_group}"
    return ResolvedAzure(
        subscription_id=azure.subscription_id, resource_group=azure.resource_group, location=azure.location,
        openai_account=account, openai_endpoint=f"https://{azure.openai_subdomain}.openai.azure.com/",
        openai_account_id=f"{rg_id}/providers/Microsoft.CognitiveServices/accounts/{account}",
        storage_account=azure.storage_account,
        storage_account_id=f"{rg_id}/providers/Microsoft.Storage/storageAccounts/{azure.storage_account}",
        container_url=f"https://{azure.storage_account}.blob.core.windows.net/{env.data.blob_container}",
    )


def load_resolved(env: Environment, cloud: str, model: type[M]) -> M | None:
    """The environment's resolved-values file for `cloud`, validated; None if there is none. A file that is
    not one (a directory), not JSON or not valid is one line naming the file, line and field, and the command
    that writes it again."""
    path = resolved_file(env.name, cloud)
    if not path.exists():
        return None
    regenerate = f"re-run `ftops infra outputs --env {env.name} --cloud {cloud}` to write it again"
    try:
        data = regular_file(path, what="resolved values").read_bytes()
    except FtopsError as exc:
        raise ConfigError(exc.message, source=path, hint=f"remove it, then {regenerate}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", source=path, hint=regenerate) from None
    try:
        return model.model_validate_json(data)
    except ValidationError as exc:
        loc, message, _ = describe_validation_error(exc, model)
        raise ConfigError(f"invalid resolved values: {message}", source=path, line=_json_line(data, loc, message),
                          field=".".join(map(str, loc)) or None, hint=regenerate) from None


def _json_line(data: bytes, loc: tuple, message: str) -> int | None:
    """The line of the top-level key an error is about (ftops writes one key a line), or the one pydantic's
    JSON parser names ("... at line N column M")."""
    if loc and isinstance(loc[0], str):
        key = re.compile(rb'"' + re.escape(loc[0].encode()) + rb'"\s*:')
        for number, text in enumerate(data.splitlines(), 1):
            if key.search(text):
                return number
        return None
    parsed = re.search(r"at line (\d+) column", message)
    return int(parsed.group(1)) if parsed else None


def resolved_aws(env: Environment) -> ResolvedAws:
    return load_resolved(env, "aws", ResolvedAws) or derive_aws(env)


def resolved_azure(env: Environment) -> ResolvedAzure:
    return load_resolved(env, "azure", ResolvedAzure) or derive_azure(env)
