"""Policy checks: the environment's rules, the providers' hard limits, before anything is written.

Every violation raises one ConfigError naming the job file, the field and the environment. Definition-level
checks run before templates; request-level checks run on the rendered requests (so a template regression
that drops, say, the checkpoint configuration of a spot job is caught too).
"""

from __future__ import annotations

import difflib
import re
from fnmatch import fnmatchcase
from functools import cache
from typing import Any


from jobs import paths
from jobs.config.environment import Environment
from jobs.errors import ConfigError
from jobs.render.definitions import JobVariant
from jobs.yamlio import load_shipped

SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
TUNING_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}$")
# Azure's FineTuningJobCreation.suffix: letters, digits, `-` and `_` (no `.`; data-plane spec 2025-04-01-preview).
AZURE_SUFFIX = re.compile(r"^[a-zA-Z0-9_-]+$")
MAX_HYPERPARAMETERS, MAX_HP_KEY, MAX_HP_VALUE = 100, 256, 2500
MAX_TAGS, MAX_TAG_KEY, MAX_TAG_VALUE = 50, 128, 256


@cache
def azure_models() -> dict[str, Any]:
    return load_shipped(paths.data_file("models.yaml"))


def check_definition(variant: JobVariant, env: Environment, environments: list[str] | None = None) -> None:
    """`environments`: the environment names, when the caller listed them already (once per render)."""
    job, policy = variant.definition, env.policy
    for key in policy.required_tags:
        if key not in job.tags and key not in env.tags:
            raise variant.error(f"required tag {key!r} is missing", "tags",
                                f"add tags.{key} (environment {env.name} requires {', '.join(policy.required_tags)})")
    if job.sweep and job.sweep.size > policy.max_sweep_jobs:
        raise variant.error(f"the sweep starts {job.sweep.size} jobs; the limit is {policy.max_sweep_jobs}", "sweep",
                            "shrink the grid or max_jobs, or raise policy.max_sweep_jobs")
    if job.overrides:
        _check_override_environments(variant, environments)
    if job.provider == "sagemaker":
        _check_sagemaker(variant, env)
        _check_locations(variant, env)
    else:
        _check_azure(variant, env)


def _check_override_environments(variant: JobVariant, known: list[str] | None = None) -> None:
    """Overrides for an environment that does not exist (a typo: `prdo`) would be silently ignored."""
    from jobs.config.environment import environment_file, environment_names

    overrides = variant.definition.overrides
    if known is not None and all(name in known for name in overrides):
        return
    # Without a listing, one stat per name instead of listing the directory for every job: a plain name whose
    # file exists is one `environment_names()` lists; anything else is judged against the listing.
    if known is None and all(name and "/" not in name and name not in (".", "..") and environment_file(name).is_file()
                             for name in overrides):
        return
    known = environment_names()
    for name in overrides:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise variant.error(f"overrides for unknown environment {name!r}", f"overrides.{name}",
                                f"{hint}environments: {', '.join(known)}")


def _check_locations(variant: JobVariant, env: Environment) -> None:
    """`base_model.s3_uri` and `compute.image_uri` must be on the environment's allow-lists: the training role
    would otherwise read weights, or run code, from any account."""
    from jobs.config.resolved import resolved_aws

    job, policy = variant.definition, env.policy
    uri, image = job.base_model.s3_uri, job.compute.image_uri
    if not (uri and uri.startswith("s3://")) and not image:
        return
    resolved = resolved_aws(env)
    if uri and uri.startswith("s3://"):
        bucket = uri[len("s3://"):].split("/", 1)[0]
        own = {resolved.datasets_bucket, resolved.output_bucket, resolved.checkpoints_bucket}
        if bucket not in own and not any(fnmatchcase(bucket, p) for p in policy.allowed_s3_buckets):
            raise variant.error(f"bucket {bucket} is not on environment {env.name}'s allow-list", "base_model.s3_uri",
                                f"use a key prefix in {resolved.output_bucket} (`ftops local seed-model` seeds one) "
                                "or add the bucket to policy.allowed_s3_buckets")
    if image:
        from jobs.render.images import training_image_uri

        registry = image.split("/", 1)[0]
        # The AWS DLC registry comes from sagemaker-core's image table (the one the pinned image is read from),
        # not from a hand-kept list of AWS account ids.
        domain = "amazonaws.com.cn" if resolved.region.startswith("cn-") else "amazonaws.com"  # China partition
        allowed = {f"{resolved.account}.dkr.ecr.{resolved.region}.{domain}"}
        try:
            allowed.add(training_image_uri(resolved.region, job.compute.instance_type).split("/", 1)[0])
        except ConfigError:
            pass  # no pinned image for this instance type: only the environment's own registry

        if registry not in allowed and not any(fnmatchcase(registry, p) for p in policy.allowed_image_registries):
            raise variant.error(f"registry {registry} is not on environment {env.name}'s allow-list",
                                "compute.image_uri", f"push the image to {sorted(allowed)[0]} or add the registry "
                                                     "to policy.allowed_image_registries")


def check_cost(variant: JobVariant, env: Environment, cost_usd: float | None) -> None:
    ceiling = env.policy.max_cost_per_job_usd
    if cost_usd is not None and ceiling is not None and cost_usd > ceiling:
        field = "compute.instance_type" if variant.definition.provider == "sagemaker" else "hyperparameters.epochs"
        raise variant.error(f"estimated cost ${cost_usd:,.2f} is above the ceiling ${ceiling:,.2f}", field,
                            "use a smaller instance, fewer epochs or less data, or raise policy.max_cost_per_job_usd")


def _check_sagemaker(variant: JobVariant, env: Environment) -> None:
    job = variant.definition
    if env.aws is None or not env.aws.enabled:
        raise variant.error("this environment has no AWS settings", "provider", "render it for an AWS environment")
    defaults, policy = env.aws.training, env.policy
    compute = job.compute
    if compute.instance_type not in defaults.allowed_instance_types:
        raise variant.error(f"instance type {compute.instance_type} is not allowed", "compute.instance_type",
                            f"use one of {', '.join(defaults.allowed_instance_types)}")
    if compute.instance_count > policy.max_instance_count:
        raise variant.error(f"{compute.instance_count} instances exceed the limit of {policy.max_instance_count}",
                            "compute.instance_count", "use fewer instances or raise policy.max_instance_count")
    spot = defaults.spot if compute.spot is None else compute.spot
    if policy.require_spot and not spot:
        raise variant.error("managed spot training is required in this environment", "compute.spot",
                            "set compute.spot: true (only prod may run on-demand)")
    if spot:
        runtime = compute.max_runtime_s or defaults.max_runtime_s
        wait = compute.max_wait_s or defaults.max_wait_s
        if wait < runtime:
            raise variant.error(f"max wait {wait}s is below max runtime {runtime}s", "compute.max_wait_s",
                                "spot jobs need max_wait_s >= max_runtime_s (wait includes interruptions)")
    if job.method == "classification" and job.peft == "qlora":
        raise variant.error("qlora needs a causal LM; classification uses lora or full", "peft")


def _check_azure(variant: JobVariant, env: Environment) -> None:
    job = variant.definition
    if env.azure is None or not env.azure.enabled:
        raise variant.error("this environment has no Azure settings", "provider", "render it for an Azure environment")
    catalogue = azure_models()
    model_id = job.base_model.azure_id
    entry = catalogue["models"].get(model_id)
    if entry is None:
        known = ", ".join(sorted(catalogue["models"]))
        raise variant.error(f"{model_id} cannot be fine-tuned on Azure OpenAI", "base_model.azure_model",
                            f"use one of {known} (jobs/reference/models.yaml)")
    if job.method not in entry["methods"]:
        raise variant.error(f"{model_id} does not support method {job.method}", "method",
                            f"use one of {', '.join(entry['methods'])}")
    training_type = job.azure.training_type
    if training_type not in env.policy.allowed_azure_training_types:
        raise variant.error(f"training type {training_type} is not allowed", "azure.training_type",
                            f"use one of {', '.join(env.policy.allowed_azure_training_types)}")
    regions = entry["training_types"].get(training_type, [])
    if env.azure.location not in regions:
        raise variant.error(f"{model_id} cannot be fine-tuned with {training_type} training in {env.azure.location}",
                            "azure.training_type", f"{training_type} regions: {', '.join(regions) or 'none'}")
    from jobs.reference import azure_models as reference  # the fine-tuned deployment table (models.yaml)

    sku = job.deployment.azure.sku
    problem = reference().models[model_id].deployment_problem(sku, env.azure.location)
    if problem:
        raise variant.error(problem, "deployment.azure.sku", "pick a deployment type the region offers for this "
                            "model (jobs/reference/models.yaml, `deployments`)")


def check_sagemaker_request(variant: JobVariant, request: dict[str, Any], *, tuning: bool) -> None:
    """SageMaker's limits on the rendered request (botocore's validator checks types, not these)."""
    if tuning:
        name = request["HyperParameterTuningJobName"]
        if not TUNING_NAME.match(name):
            raise variant.error(f"tuning job name {name!r} breaks SageMaker's rule (1-32 letters, digits, hyphens)",
                                "name", "shorten the job name")
        body = request["TrainingJobDefinition"]
        hyperparameters = body["StaticHyperParameters"]
    else:
        name = request["TrainingJobName"]
        if not SAGEMAKER_NAME.match(name):
            raise variant.error(f"job name {name!r} breaks SageMaker's rule (1-63 letters, digits, hyphens)",
                                "name", "shorten the job name")
        body = request
        hyperparameters = request["HyperParameters"]
    if len(hyperparameters) > MAX_HYPERPARAMETERS:
        raise variant.error(f"{len(hyperparameters)} hyperparameters exceed SageMaker's {MAX_HYPERPARAMETERS}",
                            "hyperparameters")
    for key, value in hyperparameters.items():
        if len(key) > MAX_HP_KEY or len(value) > MAX_HP_VALUE:
            raise variant.error(f"hyperparameter {key!r} is too long (keys {MAX_HP_KEY}, values {MAX_HP_VALUE} "
                                "characters)", f"hyperparameters.{key}")
    tags = request.get("Tags", [])
    if len(tags) > MAX_TAGS:
        raise variant.error(f"{len(tags)} tags exceed SageMaker's {MAX_TAGS}", "tags", "drop some tags")
    for tag in tags:
        if len(tag["Key"]) > MAX_TAG_KEY or len(tag["Value"]) > MAX_TAG_VALUE:
            raise variant.error(f"tag {tag['Key']!r} is too long", f"tags.{tag['Key']}",
                                f"keys up to {MAX_TAG_KEY}, values up to {MAX_TAG_VALUE} characters")
    if body.get("EnableManagedSpotTraining"):
        stopping = body["StoppingCondition"]
        if "CheckpointConfig" not in body:
            raise variant.error("spot training without a checkpoint configuration", "compute.spot",
                                "the template must emit CheckpointConfig for spot jobs")
        if stopping.get("MaxWaitTimeInSeconds", 0) < stopping["MaxRuntimeInSeconds"]:
            raise variant.error("MaxWaitTimeInSeconds is below MaxRuntimeInSeconds", "compute.max_wait_s",
                                "spot jobs need max_wait_s >= max_runtime_s")


def check_azure_body(variant: JobVariant, body: dict[str, Any]) -> None:
    suffix = body.get("suffix", "")
    limit = azure_models()["suffix_max_length"]
    if len(suffix) > limit or not AZURE_SUFFIX.match(suffix):
        raise variant.error(f"suffix {suffix!r} breaks Azure's rule (1-{limit} letters, digits, -_.)",
                            "azure.suffix", f"use at most {limit - 9} characters")
