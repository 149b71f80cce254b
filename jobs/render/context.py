"""The values templates receive, computed from the job, the environment and its resolved infrastructure.

Only resolved values are read (`jobs.config.resolved`): rendering never calls a cloud. Names that depend on
the rendered content (job name, idempotency key, tuning name, Azure suffix) are placeholders here; the engine
hashes the rendered content and substitutes them (they are plain [a-z0-9-] tokens, safe in JSON and YAML).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

from jobs import paths
from jobs.config.environment import Environment
from jobs.config.job import JobDefinition
from jobs.config.resolved import ResolvedAws, ResolvedAzure, resolved_aws, resolved_azure
from jobs.data.manifest import Manifest, read_manifest
from jobs.errors import ConfigError
from jobs.render.definitions import JobVariant
from jobs.render.images import profiler_rule_image_uri, training_image_uri
from jobs.render.sagemaker_rules import CODE_CHANNEL, CODE_SUBMIT_DIRECTORY, has_instance_storage
from jobs.training.archive import source_archive
from jobs.training.metrics import metric_definitions

NAME = "ftops0job0name0placeholder"
KEY = "ftops0idempotency0key0placeholder"
TUNING_NAME = "ftops0tuning0name0placeholder"
SUFFIX = "ftops0suffix0placeholder"
PLACEHOLDERS = (NAME, KEY, TUNING_NAME, SUFFIX)

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"
TENSORBOARD_LOCAL_PATH = "/opt/ml/output/tensorboard"
DATASET_FORMATS = {"supervised": ("chat", "completion"), "dpo": ("preference",), "classification": ("classification",)}
SCRIPT_METHOD = {"supervised": "sft", "dpo": "dpo", "classification": "classification"}
# The fine-tuning API's spelling of the training types (sent as `trainingType` in the body), as Microsoft's
# fine-tuning how-to spells them (`globalstandard`, `developerTier`); `standard` is the documented default.
AZURE_TRAINING_TYPE = {"Standard": "standard", "GlobalStandard": "globalstandard", "Developer": "developerTier"}
AZURE_FILE_PLACEHOLDER = "ftops-file:{split}"


@dataclass(frozen=True)
class Dataset:
    manifest: Manifest
    relpath: str

    @cached_property
    def dataset_id(self) -> str:
        """The manifest's content address (a sha256 each time it is asked; templates and tags ask often)."""
        return self.manifest.dataset_id


def load_dataset(variant: JobVariant, datasets: dict[str, Dataset] | None = None) -> Dataset:
    """The variant's dataset; `datasets` (by relative path) lets one render read each manifest, and work out
    its content address, once."""
    relpath = variant.definition.dataset
    dataset = datasets.get(relpath) if datasets is not None else None
    if dataset is None:
        try:
            dataset = Dataset(read_manifest(paths.project_root() / relpath), relpath)
        except ConfigError as err:
            raise variant.error(f"dataset {relpath}: {err.message}", "dataset", err.hint) from None
        if datasets is not None:
            datasets[relpath] = dataset
    manifest = dataset.manifest
    if "train" not in manifest.files:
        raise variant.error("the dataset has no train split", "dataset", "re-run `ftops data prepare`")
    expected = DATASET_FORMATS[variant.definition.method]
    if manifest.format not in expected:
        raise variant.error(f"method {variant.definition.method} needs a {' or '.join(expected)} dataset; "
                            f"{variant.definition.dataset} is {manifest.format}", "method",
                            "prepare a dataset of the right format or change the method")
    return dataset


def _hp_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def script_hyperparameters(job: JobDefinition) -> dict[str, str]:
    """The training script's `--name value` arguments (strings, as SageMaker requires)."""
    hp = job.hyperparameters
    values: dict[str, Any] = {
        "method": SCRIPT_METHOD[job.method], "peft": job.peft, "epochs": hp.epochs,
        "per_device_batch_size": hp.batch_size or 4,
        "learning_rate": hp.learning_rate or (2e-5 if job.peft == "full" else 2e-4),
        "seed": hp.seed, "max_length": hp.max_length, "packing": hp.packing, "save_steps": hp.save_steps,
        "eval_steps": hp.eval_steps, "early_stopping_patience": hp.early_stopping_patience,
        "gradient_checkpointing": hp.gradient_checkpointing, "warmup_ratio": hp.warmup_ratio,
        "weight_decay": hp.weight_decay,
    }
    if job.peft != "full":
        values |= {"lora_r": hp.lora_r, "lora_alpha": hp.lora_alpha, "lora_dropout": hp.lora_dropout}
    if job.method == "dpo" and hp.beta is not None:
        values["beta"] = hp.beta
    # _hp_str inlined: this runs for every job in every environment.
    return {key: value if type(value) is str else ("true" if value else "false") if type(value) is bool
            else repr(value) if type(value) is float else str(value) for key, value in values.items()}


def _tags(variant: JobVariant, env: Environment, dataset: Dataset) -> dict[str, str]:
    job = variant.definition
    return {**env.all_tags, **job.tags, "owner": job.owner, "ftops:definition": variant.relpath,
            "ftops:job": variant.name, "ftops:dataset-id": dataset.dataset_id,
            "ftops:idempotency-key": KEY}


@cache
def _metric_definitions() -> tuple[dict[str, str], ...]:
    """The same for every job: built once (a tuple, as templates only read it)."""
    return tuple(metric_definitions())


def base_model_uri(s3_uri: str | None, output_bucket: str) -> str:
    """The `model` channel: `base_model.s3_uri` as given, or relative to the environment's artifacts bucket."""
    uri = s3_uri or ""
    return uri if uri.startswith("s3://") else f"s3://{output_bucket}/{uri}"


def sagemaker_context(variant: JobVariant, env: Environment, dataset: Dataset,
                      res: ResolvedAws | None = None) -> dict[str, Any]:
    """`res`: the environment's resolved values when the caller already read them (one read per render)."""
    job, aws = variant.definition, env.require_aws()
    res, defaults = res if res is not None else resolved_aws(env), aws.training
    spot = defaults.spot if job.compute.spot is None else job.compute.spot
    max_runtime = job.compute.max_runtime_s or defaults.max_runtime_s
    data_prefix = f"s3://{res.datasets_bucket}/{env.data.s3_prefix}{dataset.dataset_id}"
    channels = [{"name": split, "uri": f"{data_prefix}/{split}/", "content_type": "application/jsonlines"}
                for split in ("train", "validation") if split in dataset.manifest.files]
    channels.append({"name": "model", "uri": base_model_uri(job.base_model.s3_uri, res.output_bucket),
                     "content_type": "application/x-directory"})
    isolated = defaults.network_isolation
    # A network-isolated container reaches neither S3 nor PyPI: the code arrives as the `code` input channel (as
    # the SageMaker SDK ships it) and its archive installs nothing from an index (jobs/training/archive.py).
    archive = source_archive(offline=True) if isolated else source_archive()
    source_uri = f"s3://{res.output_bucket}/{archive.s3_key()}"
    if isolated:
        channels.append({"name": CODE_CHANNEL, "uri": source_uri, "content_type": "application/x-tar"})
    hyperparameters = script_hyperparameters(job)
    # Script mode; torch_distributed makes the container start train.py through torchrun, one process per GPU
    # on each of the job's instances (one process on a single-GPU instance).
    hyperparameters |= {"sagemaker_program": "train.py",
                        "sagemaker_submit_directory": CODE_SUBMIT_DIRECTORY if isolated else source_uri,
                        "sagemaker_torch_distributed_enabled": "true"}
    tags = _tags(variant, env, dataset)
    tags["ftops:base-model"] = job.base_model.hf_model_id or f"jumpstart:{job.base_model.jumpstart_id}"
    tuning = job.sweep.tuning if job.sweep and job.sweep.tuning else None
    ranges: dict[str, list[dict[str, Any]]] = {"Continuous": [], "Integer": [], "Categorical": []}
    if tuning:
        for name, rng in sorted(tuning.ranges.items()):
            hyperparameters.pop(name, None)
            entry: dict[str, Any] = {"name": name}
            if rng.kind == "Categorical":
                entry["values"] = [_hp_str(v) for v in rng.values or []]
            else:
                as_int = rng.kind == "Integer"
                entry |= {"min": _hp_str(int(rng.min) if as_int else rng.min),
                          "max": _hp_str(int(rng.max) if as_int else rng.max), "scaling": rng.scaling}
            ranges[rng.kind].append(entry)
    run_name = TUNING_NAME if tuning else NAME
    return {
        "job_name": NAME,
        "tuning_name": TUNING_NAME,
        "image_uri": job.compute.image_uri or training_image_uri(aws.region, job.compute.instance_type),
        "role_arn": res.execution_role_arn,
        "kms_key_arn": res.kms_key_arn,
        # Instance types with local NVMe storage encrypt it in hardware; SageMaker refuses a volume key there.
        "volume_kms_key": None if has_instance_storage(job.compute.instance_type) else res.kms_key_arn,
        "region": aws.region,
        "channels": channels,
        "hyperparameters": dict(sorted(hyperparameters.items())),
        "output_path": f"s3://{res.output_bucket}/training-output/",
        "instance_type": job.compute.instance_type,
        "instance_count": job.compute.instance_count,
        "volume_size_gb": job.compute.volume_size_gb,
        "max_runtime_s": max_runtime,
        "spot": spot,
        "max_wait_s": (job.compute.max_wait_s or defaults.max_wait_s) if spot else None,
        # Tuning jobs: every trial gets this prefix; train.py keeps each trial's checkpoints in a subdirectory
        # named after its training job (see jobs/training/train.py, trial_layout).
        "checkpoint_uri": f"s3://{res.checkpoints_bucket}/{defaults.checkpoint_prefix}{run_name}/",
        "checkpoint_local_path": CHECKPOINT_LOCAL_PATH,
        "vpc": {"subnets": res.subnet_ids, "security_group_ids": res.security_group_ids}
        if res.subnet_ids and res.security_group_ids else None,
        "network_isolation": defaults.network_isolation,
        "inter_container_encryption": defaults.inter_container_encryption,
        "environment": {**job.compute.environment, **OFFLINE_ENV},
        "max_retry_attempts": job.compute.max_retry_attempts,
        "metric_definitions": _metric_definitions(),
        "tensorboard_uri": f"s3://{res.output_bucket}/tensorboard/{run_name}/",
        "tensorboard_local_path": TENSORBOARD_LOCAL_PATH,
        "profiler": {"s3_uri": f"s3://{res.output_bucket}/profiler/", "interval_ms": 500,
                     "rule_image": profiler_rule_image_uri(aws.region)} if defaults.profiler else None,
        "tags": [{"key": k, "value": v} for k, v in sorted(tags.items())],
        "labels": {"ftops.dev/environment": env.name, "ftops.dev/job": variant.name},
        "tuning": {"strategy": tuning.strategy, "metric": tuning.objective.metric, "goal": tuning.objective.goal,
                   "max_jobs": tuning.max_jobs, "max_parallel_jobs": tuning.max_parallel_jobs,
                   "early_stopping": tuning.early_stopping, "ranges": ranges} if tuning else None,
        "source_archive": {"sha256": archive.sha256, "s3_uri": source_uri, "offline": archive.offline},
        "archive": archive,  # for the render-time checks; never reaches a template
    }


def azure_context(variant: JobVariant, env: Environment, dataset: Dataset,
                  res: ResolvedAzure | None = None) -> dict[str, Any]:
    job, res = variant.definition, res if res is not None else resolved_azure(env)
    hp = job.hyperparameters
    hyperparameters: dict[str, Any] = {"n_epochs": hp.epochs}
    if hp.batch_size is not None:
        hyperparameters["batch_size"] = hp.batch_size
    if hp.learning_rate_multiplier is not None:
        hyperparameters["learning_rate_multiplier"] = hp.learning_rate_multiplier
    if job.method == "dpo" and hp.beta is not None:
        hyperparameters["beta"] = hp.beta
    tags = _tags(variant, env, dataset)
    return {
        "job_name": NAME,
        "model": job.base_model.azure_id,
        "training_file": AZURE_FILE_PLACEHOLDER.format(split="train"),
        "validation_file": AZURE_FILE_PLACEHOLDER.format(split="validation")
        if "validation" in dataset.manifest.files else None,
        "suffix": SUFFIX,
        "seed": hp.seed,
        "method": job.method,
        "hyperparameters": hyperparameters,
        "training_type": AZURE_TRAINING_TYPE[job.azure.training_type],
        # The fine-tuning API allows 16 metadata pairs of 64/512 characters: only the identifying ones.
        "metadata": {"ftops-idempotency-key": KEY, "ftops-job": variant.name, "ftops-environment": env.name,
                     "ftops-dataset-id": dataset.dataset_id},
        "deployment": {"name": NAME, "sku": job.deployment.azure.sku, "capacity": job.deployment.azure.capacity},
        "account": {"name": res.openai_account, "id": res.openai_account_id, "resource_group": res.resource_group,
                    "subscription_id": res.subscription_id, "endpoint": res.openai_endpoint},
        "tags": dict(sorted(tags.items())),
    }
