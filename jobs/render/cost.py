"""The cost estimate behind the policy's per-job ceiling: an adapter over the data stage's estimator.

The data stage owns prices and token arithmetic (`jobs.data.estimate`); rendering only asks "how much will one
run of this job cost" and compares it with the ceiling. The call is kept here so it matches the estimator's
signature in one place.
"""

from __future__ import annotations

from jobs.config.environment import Environment
from jobs.data.manifest import Manifest
from jobs.errors import FtopsError
from jobs.render.definitions import JobVariant


def estimate_job_cost(variant: JobVariant, env: Environment, manifest: Manifest) -> float | None:
    """Estimated USD for one run of `variant` in `env` (None: no price known and no ceiling to enforce)."""
    from jobs.data.estimate import estimate_cost

    job = variant.definition
    try:
        if job.provider == "azure-openai":
            # Without manifest_dir the manifest's totals are used: they can only overstate the cost.
            estimate = estimate_cost(manifest, provider="azure-openai", model=job.base_model.azure_id,
                                     epochs=job.hyperparameters.epochs, training_type=job.azure.training_type, env=env)
            return estimate.cost_usd
        training = env.require_aws().training
        spot = training.spot if job.compute.spot is None else job.compute.spot
        estimate = estimate_cost(manifest, provider="sagemaker", model=job.base_model.hf_model_id,
                                 epochs=job.hyperparameters.epochs, instance_type=job.compute.instance_type,
                                 spot=spot, env=env)
        # The estimator prices one instance; data-parallel jobs bill every instance for the same hours.
        return round(estimate.cost_usd * job.compute.instance_count, 2)
    except FtopsError as err:
        if env.policy.max_cost_per_job_usd is None:
            return None
        field = "compute.instance_type" if job.provider == "sagemaker" else "base_model.azure_model"
        raise variant.error(f"cannot estimate the cost for the ceiling: {err.message}", field, err.hint) from None


def cost_key(variant: JobVariant, env: Environment, dataset_relpath: str) -> tuple[object, ...]:
    """Everything `estimate_job_cost` reads from the job, for memoising it within one environment's render.

    Keep in step with `estimate_job_cost` above: two jobs with equal keys get the same estimate (most jobs of a
    fork share dataset, model, epochs and instance, so one render asks the estimator only a few times).
    """
    job = variant.definition
    if job.provider == "azure-openai":
        return (job.provider, dataset_relpath, job.base_model.azure_id, job.hyperparameters.epochs,
                job.azure.training_type)
    return (job.provider, dataset_relpath, job.base_model.hf_model_id, job.hyperparameters.epochs,
            job.compute.instance_type, job.compute.spot, job.compute.instance_count)
