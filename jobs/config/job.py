"""The job definition: the YAML file a data scientist writes under `definitions/` (one job, or one sweep).

`ftops render` validates it, applies the environment's overrides and policy, and turns it into job specs.
Provider-specific rules live in the `check_*` validators so that a wrong combination is one clear line.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from jobs.config.base import (RESERVED_TAG_PREFIXES, Declaration, Int, check_cloud_tags, check_named_like_file,
                              empty)
from jobs.config.environment import ENV_NAME
from jobs.config.policy import AzureTrainingType
from jobs.errors import FieldValueError
from jobs.training.metrics import METRICS

# Leaves room for `-g<NN>` (grid trials), `-<env>` (16) and `-<hash8>` within SageMaker's 63 characters.
JOB_NAME = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
JOB_NAME_MAX = 32
Provider = Literal["sagemaker", "azure-openai"]
Method = Literal["supervised", "dpo", "classification"]
Peft = Literal["lora", "qlora", "full"]
Scalar = str | int | float | bool
# Hyperparameters a sweep may vary, and the only keys an override's `hyperparameters` may set.
SWEEPABLE = ("epochs", "batch_size", "learning_rate", "learning_rate_multiplier", "seed", "lora_r", "lora_alpha",
             "lora_dropout", "max_length", "packing", "beta", "warmup_ratio", "weight_decay")
OVERRIDABLE = ("base_model", "hyperparameters", "compute", "azure", "tags", "evaluation", "deployment")


class BaseModelRef(Declaration):
    """The model to fine-tune. Azure: `azure_model` + `version`. SageMaker: `hf_model_id` or `jumpstart_id`,
    with the weights in S3 (`s3_uri`), because training containers run with the model hubs offline."""

    azure_model: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9.-]*$")
    """Azure OpenAI base model name, e.g. `gpt-4.1-mini` (Azure only)."""

    version: str | None = Field(None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    """Azure OpenAI model version, e.g. `2025-04-14` (Azure only)."""

    hf_model_id: str | None = Field(None, pattern=r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
    """Hugging Face model id, e.g. `Qwen/Qwen2.5-0.5B-Instruct` (SageMaker); passed to the script as `model_id`."""

    jumpstart_id: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9-]*$")
    """SageMaker JumpStart model id, e.g. `meta-textgeneration-llama-3-2-1b` (SageMaker; recorded as `model_id`)."""

    s3_uri: str | None = Field(None, pattern=r"^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/)?([A-Za-z0-9!_.*'()-]+/)*$")
    """Where the base weights are in S3 (becomes the `model` channel): a full `s3://bucket/prefix/` URI, or a
    key prefix such as `models/qwen2.5-0.5b/` inside the environment's artifacts bucket. Ends with '/'."""

    @property
    def azure_id(self) -> str:
        """The Azure model id the fine-tuning API takes, e.g. `gpt-4.1-mini-2025-04-14`."""
        return f"{self.azure_model}-{self.version}"


class Hyperparameters(Declaration):
    """Training hyperparameters. SageMaker passes them to the training script as strings; Azure takes
    `epochs`, `batch_size`, `learning_rate_multiplier`, `seed` (and `beta` for DPO)."""

    epochs: Int = Field(3, ge=1, le=50)
    """Passes over the training split."""

    batch_size: Int | None = Field(None, ge=1, le=256)
    """Examples per device per step (SageMaker `per_device_batch_size`, default 4; Azure `batch_size`, default auto)."""

    learning_rate: float | None = Field(None, gt=0, lt=1)
    """Peak learning rate (SageMaker only; default 2e-4 for LoRA/QLoRA, 2e-5 for full fine-tuning)."""

    learning_rate_multiplier: float | None = Field(None, gt=0, le=10)
    """Multiplier on the service's learning rate (Azure only; default auto)."""

    seed: Int = Field(42, ge=0, le=2**31 - 1)
    """Seed for data order and initialisation; the same seed and data give the same run."""

    lora_r: Int = Field(16, ge=1, le=512)
    """LoRA rank (SageMaker, LoRA and QLoRA)."""

    lora_alpha: Int = Field(32, ge=1, le=1024)
    """LoRA scaling alpha (SageMaker, LoRA and QLoRA)."""

    lora_dropout: float = Field(0.05, ge=0, lt=1)
    """Dropout on the LoRA layers (SageMaker, LoRA and QLoRA)."""

    max_length: Int = Field(2048, ge=16, le=131_072)
    """Longest tokenised example; longer ones are truncated (SageMaker)."""

    packing: bool = False
    """Lay each batch's examples end to end with no padding (SageMaker, supervised only): less compute, and each
    step still sees per_device_batch_size examples."""

    beta: float | None = Field(None, gt=0, le=10)
    """DPO beta: how far the policy may drift from the reference (DPO only)."""

    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    """Fraction of steps spent warming up the learning rate (SageMaker)."""

    weight_decay: float = Field(0.0, ge=0, lt=1)
    """AdamW weight decay (SageMaker)."""

    save_steps: Int = Field(100, ge=1)
    """Checkpoint every N steps (SageMaker; checkpoints sync to S3, so a spot interruption resumes from here)."""

    eval_steps: Int = Field(50, ge=1)
    """Evaluate on the validation split every N steps (SageMaker)."""

    early_stopping_patience: Int = Field(3, ge=0)
    """Stop after N evaluations without improvement in eval_loss; 0 turns early stopping off (SageMaker)."""

    gradient_checkpointing: bool = True
    """Trade compute for memory by recomputing activations (SageMaker)."""


class Compute(Declaration):
    """Where and how long a SageMaker job runs; unset limits come from the environment's training defaults."""

    instance_type: str = Field("ml.g5.2xlarge", pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
    """SageMaker instance type; must be in the environment's `aws.training.allowed_instance_types`."""

    instance_count: Int = Field(1, ge=1, le=64)
    """Number of instances (distributed training above 1)."""

    volume_size_gb: Int = Field(100, ge=1, le=16_384)
    """ML storage volume per instance (dataset, base model and checkpoints must fit)."""

    spot: bool | None = None
    """Managed spot training; unset takes the environment's default. Policy requires it outside prod."""

    max_runtime_s: Int | None = Field(None, ge=60, le=2_419_200)
    """MaxRuntimeInSeconds; unset takes the environment's default."""

    max_wait_s: Int | None = Field(None, ge=60, le=2_419_200)
    """MaxWaitTimeInSeconds for spot jobs (>= max_runtime_s); unset takes the environment's default."""

    max_retry_attempts: Int = Field(2, ge=1, le=30)
    """RetryStrategy: attempts when SageMaker fails the job for an internal error."""

    image_uri: str | None = Field(None, pattern=r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[\w./-]+:[\w.-]+$")
    """A training image to use instead of the pinned Hugging Face PyTorch image (an ECR URI)."""

    environment: dict[str, str] = empty(dict)
    """Extra container environment variables. Never secrets: the job runs with its execution role."""

    @field_validator("environment")
    @classmethod
    def check_environment_names(cls, env: dict[str, str]) -> dict[str, str]:
        for key in env:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]{0,511}$", key):
                raise ValueError(f"environment variable name {key!r} is invalid; use letters, digits and _")
        return env


class AzureTraining(Declaration):
    """Azure OpenAI fine-tuning options."""

    training_type: AzureTrainingType = "Standard"
    """Standard (regional, data stays in the region), GlobalStandard (cheaper, any region) or Developer
    (preemptible, cheapest; for experiments)."""

    suffix: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9-]{0,8}$")
    """Start of the fine-tuned model's suffix (up to 9 characters); ftops appends `-<hash8>` (Azure allows 18).
    Defaults to the first 9 characters of the job name."""


class TuningRange(Declaration):
    """One hyperparameter range of a SageMaker tuning job: `min`/`max` (continuous or integer) or `values`."""

    min: float | None = None
    """Lower bound (with `max`); integer bounds make an integer range."""

    max: float | None = None
    """Upper bound (with `min`)."""

    scaling: Literal["Auto", "Linear", "Logarithmic", "ReverseLogarithmic"] = "Auto"
    """How the tuner searches the range; Logarithmic suits learning rates."""

    values: list[Scalar] | None = None
    """Categorical choices (instead of `min`/`max`)."""

    @model_validator(mode="after")
    def check_bounds_or_values(self) -> "TuningRange":
        if self.values is not None:
            if self.min is not None or self.max is not None:
                raise ValueError("give either values or min/max, not both")
            if not self.values:
                raise ValueError("values is empty; list at least one choice")
        elif self.min is None or self.max is None or self.min >= self.max:
            raise ValueError("give min < max, or a values list")
        return self

    @property
    def kind(self) -> Literal["Continuous", "Integer", "Categorical"]:
        if self.values is not None:
            return "Categorical"
        return "Integer" if float(self.min).is_integer() and float(self.max).is_integer() else "Continuous"


class TuningObjective(Declaration):
    """The metric a SageMaker tuning job optimises; one of the training script's metric lines."""

    metric: str = "eval_loss"
    """A metric from the training script's metric lines (eval_loss, eval_accuracy, eval_f1, ...)."""

    goal: Literal["Minimize", "Maximize"] = "Minimize"
    """Whether lower or higher is better."""

    @field_validator("metric")
    @classmethod
    def check_metric_is_emitted(cls, metric: str) -> str:
        if metric not in METRICS:
            raise ValueError(f"metric {metric!r} is not printed by the training script; use one of {sorted(METRICS)}")
        return metric


class Tuning(Declaration):
    """A SageMaker hyperparameter tuning job (rendered to `sagemaker-tuning.json`)."""

    objective: TuningObjective = TuningObjective()
    """What to optimise."""

    ranges: dict[str, TuningRange] = Field(min_length=1)
    """Hyperparameter name -> range; the rest of the hyperparameters stay static."""

    strategy: Literal["Bayesian", "Random"] = "Bayesian"
    """Search strategy."""

    max_jobs: Int = Field(8, ge=1, le=500)
    """MaxNumberOfTrainingJobs."""

    max_parallel_jobs: Int = Field(2, ge=1, le=100)
    """MaxParallelTrainingJobs."""

    early_stopping: Literal["Off", "Auto"] = "Auto"
    """Let the tuner stop unpromising training jobs early."""


MAX_SWEEP_JOBS = 500
"""The most jobs one grid may expand to: the upper bound of `policy.max_sweep_jobs` in any environment."""


class Sweep(Declaration):
    """Several runs of one definition: a `grid` (each combination is its own job) or a SageMaker `tuning` job."""

    grid: dict[str, list[Scalar]] | None = None
    """Hyperparameter name -> values; the cartesian product expands into jobs named `<name>-g<N>`."""

    tuning: Tuning | None = None
    """A SageMaker hyperparameter tuning job (SageMaker only)."""

    @model_validator(mode="after")
    def check_one_kind(self) -> "Sweep":
        if (self.grid is None) == (self.tuning is None):
            raise ValueError("a sweep has exactly one of grid or tuning")
        keys = list(self.grid or {}) + list(self.tuning.ranges if self.tuning else {})
        for key in keys:
            if key not in SWEEPABLE:
                raise ValueError(f"{key!r} cannot be swept; sweepable hyperparameters: {', '.join(SWEEPABLE)}")
        for key, values in (self.grid or {}).items():
            if not values:
                raise ValueError(f"grid.{key} is empty; list at least one value")
        # Sized here, before render expands (and validates) one job per combination: a million would hang.
        if self.grid is not None and self.size > MAX_SWEEP_JOBS:
            raise ValueError(f"the grid has {self.size:,} combinations; no policy allows more than {MAX_SWEEP_JOBS} "
                             "jobs in one sweep")
        return self

    @property
    def size(self) -> int:
        if self.tuning is not None:
            return self.tuning.max_jobs
        size = 1
        for values in (self.grid or {}).values():
            size *= len(values)
        return size


class Judge(Declaration):
    """An LLM judge for evaluation (optional)."""

    model: str = Field(min_length=1)
    """The judge model's deployment or id."""

    rubric: str = Field(min_length=1)
    """What the judge scores, in plain words (it sees the question, reference and answer)."""


class PromotionGate(Declaration):
    """When a fine-tuned model may be promoted (deployed beyond dev)."""

    metric: str = "rougeL"
    """The metric that decides (one of `evaluation.metrics` or a custom metric's name)."""

    min_improvement: float = 0.0
    """Required improvement of `metric` over the base model (absolute, e.g. 0.02)."""

    max_robustness_regression: float = Field(0.05, ge=0)
    """Largest allowed drop of `metric` under the robustness perturbations."""

    max_out_of_domain_regression: float | None = Field(None, ge=0)
    """Largest allowed drop of `metric` on the shipped out-of-domain set (same units as robustness; unset: the
    drop is reported, and a collapse below the base model is a warning, not a refusal)."""


class Evaluation(Declaration):
    """How `ftops eval` scores the model on the held-out test split, and the promotion gate."""

    metrics: list[Literal["rougeL", "exact_match", "token_f1", "f1", "accuracy", "macro_f1", "json_valid",
                          "json_schema", "loss", "perplexity"]] = ["rougeL", "exact_match"]
    """Built-in metrics to compute (`f1` is token F1 for generation, macro-F1 for classification; `loss` and
    `perplexity` come from the training results)."""

    json_schema: str | None = None
    """For structured outputs: a JSON Schema file (repo-relative) the answers must conform to (`json_schema` metric)."""

    out_of_domain: bool = True
    """Also ask the shipped out-of-domain questions and report the drop (generation jobs with robustness set)."""

    custom_metrics: list[str] = empty(list)
    """Python functions `package.module:function` (or dotted) taking (prediction, reference) -> float."""

    judge: Judge | None = None
    """Optional LLM judge."""

    robustness: list[Literal["typos", "case", "whitespace", "punctuation", "truncation", "reorder"]] = empty(list)
    """Perturbations of the test inputs to measure robustness."""

    gate: PromotionGate = PromotionGate()
    """The promotion gate."""

    keep_deployments: bool = False
    """Keep the deployments the gate creates to evaluate (the candidate and, for SageMaker, the base model);
    by default they are removed when the gate ends, passed or failed."""

    @field_validator("custom_metrics")
    @classmethod
    def check_dotted_paths(cls, paths: list[str]) -> list[str]:
        for path in paths:
            if not re.match(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*([:.][A-Za-z_]\w*)$", path):
                raise ValueError(f"custom metric {path!r} is not a dotted path; write package.module:function")
        return paths


class AzureDeployment(Declaration):
    """The Azure OpenAI deployment of the fine-tuned model."""

    sku: Literal["Standard", "GlobalStandard", "DeveloperTier"] = "Standard"
    """Deployment SKU; DeveloperTier is for evaluation only (no SLA)."""

    capacity: Int = Field(1, ge=1, le=1000)
    """Capacity units (thousands of tokens per minute for Standard)."""


class SageMakerServerless(Declaration):
    """Serverless inference settings."""

    memory_mb: Literal[1024, 2048, 3072, 4096, 5120, 6144] = 6144
    """Memory of each serverless worker."""

    max_concurrency: Int = Field(5, ge=1, le=200)
    """Concurrent invocations."""


class SageMakerDeployment(Declaration):
    """The SageMaker endpoint for the fine-tuned model: serverless, or instances."""

    serverless: SageMakerServerless | None = None
    """Serve serverless (CPU, small models) instead of on instances."""

    instance_type: str = Field("ml.g5.xlarge", pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
    """Endpoint instance type (ignored when serverless)."""

    instance_count: Int = Field(1, ge=1, le=20)
    """Endpoint instances (ignored when serverless)."""


class DeploymentSettings(Declaration):
    """How `ftops deploy` serves the model."""

    azure: AzureDeployment = AzureDeployment()
    """Azure OpenAI deployment (azure-openai jobs)."""

    sagemaker: SageMakerDeployment = SageMakerDeployment()
    """SageMaker endpoint (sagemaker jobs)."""


SAGEMAKER_ONLY_HYPERPARAMETERS = ("lora_r", "lora_alpha", "lora_dropout", "max_length", "packing", "warmup_ratio",
                                  "weight_decay", "save_steps", "eval_steps", "early_stopping_patience",
                                  "gradient_checkpointing")
"""What `train.py` reads and Azure OpenAI's fine-tuning API has no parameter for (data-plane spec
2025-04-01-preview: FineTuningHyperParameters holds n_epochs, batch_size, learning_rate_multiplier;
DpoHyperparamsRequest adds beta and l2_multiplier; seed is a property of the job itself)."""


class JobDefinition(Declaration):
    """One fine-tuning job (or sweep), rendered per environment by `ftops render`."""

    name: str = Field(max_length=JOB_NAME_MAX, pattern=JOB_NAME)
    """Lowercase letters, digits and single hyphens, at most 32 characters; rendered names are
    `<name>-<env>-<hash8>` and must equal the file name (`definitions/<name>.yaml`)."""

    description: str = ""
    """What this job is for."""

    owner: str = Field(min_length=1, max_length=128)
    """Team or person responsible; becomes the `owner` tag."""

    tags: dict[str, str] = empty(dict)
    """Cost-allocation tags added to the environment's tags (the environment may require some)."""

    provider: Provider
    """`sagemaker` or `azure-openai`."""

    base_model: BaseModelRef
    """The model to fine-tune."""

    method: Method = "supervised"
    """supervised (SFT), dpo (preference data), or classification (SageMaker only)."""

    peft: Peft = "lora"
    """Parameter-efficient method on SageMaker: lora, qlora (4-bit base) or full fine-tuning (SageMaker only)."""

    dataset: str = Field(pattern=r"^[^/].*manifest\.json$")
    """The prepared dataset's manifest written by `ftops data prepare`, relative to the project root."""

    hyperparameters: Hyperparameters = Hyperparameters()
    """Training hyperparameters."""

    # A factory, not a shared default: Compute holds a dict, so pydantic would deep-copy a default instance for
    # every definition without a compute block.
    compute: Compute = Field(default_factory=Compute)
    """SageMaker compute (sagemaker jobs only)."""

    azure: AzureTraining = AzureTraining()
    """Azure OpenAI options (azure-openai jobs only)."""

    overrides: dict[str, dict[str, Any]] = empty(dict)
    """Per-environment changes: environment name -> the same keys as here (hyperparameters, compute, azure, tags,
    base_model, evaluation, deployment), merged over the definition for that environment only."""

    sweep: Sweep | None = None
    """Run a grid of jobs or a SageMaker tuning job instead of one job."""

    evaluation: Evaluation = Evaluation()
    """Evaluation and promotion gate (`ftops eval`)."""

    deployment: DeploymentSettings = DeploymentSettings()
    """Serving settings (`ftops deploy`)."""

    promotion: Literal["promote", "retrain"] = "promote"
    """How a model reaches the next environment: `promote` copies the evaluated artifact (nothing is
    retrained; what serves is what passed the gate); `retrain` trains again there, and that model must pass
    the gate there before it serves."""

    @field_validator("name")
    @classmethod
    def check_name_matches_file(cls, name: str, info: ValidationInfo) -> str:
        return check_named_like_file(name, info.context)

    @field_validator("tags")
    @classmethod
    def check_tags(cls, tags: dict[str, str]) -> dict[str, str]:
        return check_cloud_tags(tags, reserved=RESERVED_TAG_PREFIXES)

    @field_validator("overrides")
    @classmethod
    def check_overrides(cls, overrides: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for env, changes in overrides.items():
            if not re.match(ENV_NAME, env):
                raise ValueError(f"override key {env!r} is not an environment name (lowercase, e.g. prod)")
            for key in changes:
                if key not in OVERRIDABLE:
                    raise ValueError(f"overrides.{env}.{key} cannot be overridden; allowed: {', '.join(OVERRIDABLE)}")
        return overrides

    @model_validator(mode="after")
    def check_provider_fields(self) -> "JobDefinition":
        model, hp = self.base_model, self.hyperparameters
        if self.provider == "azure-openai":
            if not (model.azure_model and model.version):
                raise FieldValueError("base_model", "azure-openai jobs need base_model.azure_model and "
                                      "base_model.version (e.g. gpt-4.1-mini and 2025-04-14)")
            if model.hf_model_id or model.jumpstart_id or model.s3_uri:
                field = next(f for f in ("hf_model_id", "jumpstart_id", "s3_uri") if getattr(model, f))
                raise FieldValueError(f"base_model.{field}", "azure-openai jobs take base_model.azure_model/version "
                                      "only; remove hf_model_id, jumpstart_id and s3_uri")
            if self.method == "classification":
                raise FieldValueError("method", "method classification runs on SageMaker only; use supervised or "
                                      "dpo on Azure")
            if hp.learning_rate is not None:
                raise FieldValueError("hyperparameters.learning_rate", "Azure takes "
                                      "hyperparameters.learning_rate_multiplier, not learning_rate")
            if self.sweep and self.sweep.tuning:
                raise FieldValueError("sweep.tuning", "sweep.tuning is a SageMaker tuning job; use sweep.grid for "
                                      "Azure OpenAI")
            # Settings Azure OpenAI has no use for would otherwise be accepted and silently change nothing.
            written = [f for f in ("compute", "peft") if f in self.model_fields_set]
            written += [f"hyperparameters.{f}" for f in SAGEMAKER_ONLY_HYPERPARAMETERS if f in hp.model_fields_set]
            if "sagemaker" in self.deployment.model_fields_set:
                written.append("deployment.sagemaker")
            if written:
                raise FieldValueError(written[0], f"{written[0]} applies to sagemaker jobs only (Azure OpenAI has no "
                                      "such setting); remove it")
        else:
            if model.azure_model or model.version:
                raise FieldValueError("base_model.azure_model" if model.azure_model else "base_model.version",
                                      "sagemaker jobs take base_model.hf_model_id or jumpstart_id (with s3_uri); "
                                      "remove azure_model and version")
            if bool(model.hf_model_id) == bool(model.jumpstart_id):
                raise FieldValueError("base_model", "sagemaker jobs need exactly one of base_model.hf_model_id or "
                                      "base_model.jumpstart_id")
            if not model.s3_uri:
                raise FieldValueError("base_model", "sagemaker jobs need base_model.s3_uri (training runs with the "
                                      "hub offline); upload the weights to s3://<artifacts bucket>/models/<name>/ "
                                      "and give that prefix")
            if hp.learning_rate_multiplier is not None:
                raise FieldValueError("hyperparameters.learning_rate_multiplier", "SageMaker takes "
                                      "hyperparameters.learning_rate, not learning_rate_multiplier")
            written = [f for f in ("azure",) if f in self.model_fields_set]
            if "azure" in self.deployment.model_fields_set:
                written.append("deployment.azure")
            if written:
                raise FieldValueError(written[0], f"{written[0]} applies to azure-openai jobs only; remove it")
        if hp.beta is not None and self.method != "dpo":
            raise FieldValueError("hyperparameters.beta", "hyperparameters.beta applies to method dpo only; remove it")
        if hp.packing and self.method != "supervised":
            raise FieldValueError("hyperparameters.packing", "hyperparameters.packing applies to supervised "
                                  "fine-tuning only; set it to false")
        return self

    @property
    def is_tuning(self) -> bool:
        return self.sweep is not None and self.sweep.tuning is not None
