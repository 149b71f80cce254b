"""SageMaker's own rules on a rendered request: what the API shapes allow but SageMaker refuses, or what breaks
once the job runs. moto checks none of them; botocore's ParamValidator checks only types and required fields.

`check_request` raises one line per violation naming the file, the field, the environment and the rule's
source. Pure Python and stdlib only: `ftops render` stays fast (no SDK import).
"""

from __future__ import annotations

import re
from typing import Any

from jobs.config.environment import Environment
from jobs.errors import ConfigError
from jobs.render.definitions import JobVariant

# Instance families with local NVMe instance storage. SageMaker mounts that storage instead of an EBS volume,
# encrypts it in hardware, and refuses a VolumeKmsKeyId on them.
# Sources (checked 2026-11-29):
# - botocore 1.44.8, sagemaker service-2 `ResourceConfig.VolumeKmsKeyId`: "Certain Nitro-based instances include
#   local storage ... You can't request a VolumeKmsKeyId when using an instance type with local storage."
# - sagemaker-core 2.27.0, `sagemaker.core.common_utils.instance_supports_kms` (= `volume_size_supported`):
#   a family containing "d" (c5d, m5d, g4dn, p4d, p4de, ...) or starting with g5, g6, g7e, p5, p6-b200, trn1, trn2.
# tests/unit/test_sagemaker_rules.py compares this table with that function for every TrainingInstanceType.
INSTANCE_STORAGE_FAMILY_PREFIXES = ("g5", "g6", "g7e", "p5", "p6-b200", "trn1", "trn2")

# Where a KMS alias is not accepted: botocore's docs list only "KMS Key ID" and "ARN of a KMS Key" for
# ResourceConfig.VolumeKmsKeyId (OutputDataConfig.KmsKeyId also takes an alias name or alias ARN).
KEY_ID = re.compile(r"^(mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")
KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/(mrk-[0-9a-f]{32}|[0-9a-f-]{36})$")

# Network isolation: the SageMaker Python SDK (v2 `sagemaker.job._Job._load_config`, estimator
# `code_channel_name = "code"`) ships the source archive as an input channel named `code` when
# enable_network_isolation is on; the training toolkit then reads the archive from the channel's directory
# instead of downloading `sagemaker_submit_directory` from S3 (which an isolated container cannot reach).
CODE_CHANNEL = "code"
CODE_SUBMIT_DIRECTORY = f"/opt/ml/input/data/{CODE_CHANNEL}/sourcedir.tar.gz"

# The variables every job gets (jobs.render.context.OFFLINE_ENV); train.py sets them itself as well.
OFFLINE_ENVIRONMENT = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
SOURCE_ACK_CRD = "ACK sagemaker-controller 1.9.1 HyperParameterTuningJob CRD"
SOURCE_VOLUME_KEY = "botocore sagemaker model, ResourceConfig.VolumeKmsKeyId; sagemaker-core instance_supports_kms"
SOURCE_ISOLATION = ("SageMaker developer guide, 'Run training and inference containers in internet-free mode' "
                    "(no outbound network, S3 included); SageMaker SDK code channel")


def has_instance_storage(instance_type: str) -> bool:
    """`ml.g5.2xlarge` -> True: the family has local NVMe storage (no EBS volume, no volume key)."""
    parts = instance_type.split(".")
    family = parts[1] if len(parts) == 3 and parts[0] == "ml" else parts[0]
    return "d" in family or family.startswith(INSTANCE_STORAGE_FAMILY_PREFIXES)


def is_key_id_or_arn(value: str) -> bool:
    return bool(KEY_ID.match(value) or KEY_ARN.match(value))


def _fail(variant: JobVariant, env: Environment, file: str, field: str, message: str, source: str,
          hint: str) -> ConfigError:
    """`definitions/x.yaml: sagemaker.json ResourceConfig.VolumeKmsKeyId: ... [environment prod; rule: ...] (fix)`."""
    return ConfigError(f"{message} [environment {env.name}; rule: {source}]", source=variant.relpath,
                       field=f"{file} {field}", hint=hint)


def check_request(variant: JobVariant, env: Environment, request: dict[str, Any], *, tuning: bool,
                  archive_files: dict[str, bytes] | None = None) -> None:
    """Raise the first rule `request` (sagemaker.json or sagemaker-tuning.json) breaks in `env`.

    `archive_files`: the source archive's files, where the caller has them (for the no-network-at-start rule).
    """
    file = "sagemaker-tuning.json" if tuning else "sagemaker.json"
    prefix = "TrainingJobDefinition." if tuning else ""
    body = request["TrainingJobDefinition"] if tuning else request
    hyperparameters = body["StaticHyperParameters"] if tuning else body["HyperParameters"]
    resource = body["ResourceConfig"]
    instance_type = resource["InstanceType"]
    volume_key = resource.get("VolumeKmsKeyId")
    if volume_key is not None and has_instance_storage(instance_type):
        raise _fail(variant, env, file, f"{prefix}ResourceConfig.VolumeKmsKeyId",
                    f"{instance_type} has local instance storage; SageMaker refuses a volume key there",
                    SOURCE_VOLUME_KEY, "the template must omit VolumeKmsKeyId for this instance family")
    if volume_key is not None and not is_key_id_or_arn(volume_key):
        raise _fail(variant, env, file, f"{prefix}ResourceConfig.VolumeKmsKeyId",
                    f"{volume_key!r} is not a key id or key ARN (an alias is not accepted here)", SOURCE_VOLUME_KEY,
                    f"run `ftops infra outputs --env {env.name}` after the stack is deployed, so rendering reads "
                    f"the key ARN, and commit the result")
    aws = env.require_aws()
    if (env.is_production or aws.vpc.enabled) and not body.get("VpcConfig"):
        raise _fail(variant, env, file, f"{prefix}VpcConfig",
                    "this environment runs training in its VPC, but no subnets and security groups are resolved",
                    f"environments/{env.name}.yaml aws.vpc (production guard rail)",
                    f"run `ftops infra outputs --env {env.name}` and commit environments/resolved/{env.name}.aws.json")
    extra_environment = sorted(set(body.get("Environment") or {}) - set(OFFLINE_ENVIRONMENT))
    if tuning and extra_environment:
        raise _fail(variant, env, file, f"{prefix}Environment",
                    f"a sweep cannot carry container variables ({', '.join(extra_environment)}): the ACK "
                    "HyperParameterTuningJob (ack.yaml) has no trainingJobDefinition.environment", SOURCE_ACK_CRD,
                    "drop compute.environment for sweeps, or pass the setting as a hyperparameter")
    if body.get("EnableNetworkIsolation"):
        _check_isolated(variant, env, file, prefix, body, hyperparameters, archive_files)


def _check_isolated(variant: JobVariant, env: Environment, file: str, prefix: str, body: dict[str, Any],
                    hyperparameters: dict[str, str], archive_files: dict[str, bytes] | None) -> None:
    from jobs.training.archive import needs_network_at_start

    hp_field = f"{prefix}{'StaticHyperParameters' if prefix else 'HyperParameters'}.sagemaker_submit_directory"
    submit = hyperparameters.get("sagemaker_submit_directory", "").strip('"')
    if submit.startswith(("s3://", "https://")):
        raise _fail(variant, env, file, hp_field,
                    "network isolation: the container cannot download its code from S3", SOURCE_ISOLATION,
                    f"ship the code as the {CODE_CHANNEL!r} channel and point this at {CODE_SUBMIT_DIRECTORY}")
    channels = {c["ChannelName"] for c in body.get("InputDataConfig", [])}
    if submit.startswith(f"/opt/ml/input/data/{CODE_CHANNEL}/") and CODE_CHANNEL not in channels:
        raise _fail(variant, env, file, f"{prefix}InputDataConfig",
                    f"network isolation: no {CODE_CHANNEL!r} channel delivers {submit}", SOURCE_ISOLATION,
                    f"add the source archive as the {CODE_CHANNEL!r} input channel")
    if archive_files is not None and needs_network_at_start(archive_files):
        raise _fail(variant, env, file, hp_field,
                    "network isolation: the source archive's requirements.txt installs from a package index "
                    "at start", SOURCE_ISOLATION,
                    "use dependencies from the image, or put wheels in jobs/training/wheels/ (installed with "
                    "--no-index)")
