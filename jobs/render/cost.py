"""The cost estimate behind the policy's per-job ceiling: an adapter over the data stage's estimator.

The data stage owns prices and token arithmetic (`jobs.data.estimate`); rendering only asks "how much will one
run of this job cost" and compares it with the ceiling. The call is kept here so it matches the estimator's
signature in one place.
"""

from __future__ import annotations

from typing import Any

from jobs.config.environment import Environment
from jobs.data.manifest import Manifest
from jobs.errors import FtopsError
from jobs.render.definitions import JobVariant

Memo = dict[tuple[Any, ...], tuple[Manifest, "float | FtopsError"]]
"""Estimates already made in one render (one environment): most jobs share dataset, model, epochs, instance."""


def _estimate(manifest: Manifest, env: Environment, memo: Memo | None, **args: Any) -> float:
    """`estimate_cost(...).cost_usd`, asked once per distinct question within one render."""
    from jobs.data.estimate import estimate_cost

    # The environment is fixed for a memo's lifetime, so the manifest and the arguments are the whole question.
    key = (id(manifest), *sorted(args.items()))
    hit = memo.get(key) if memo is not None else None
    if hit is not None and hit[0] is manifest:
        if isinstance(hit[1], FtopsError):
            raise hit[1]
        return hit[1]
    try:
        result: float | FtopsError = estimate_cost(manifest, env=env, **args).cost_usd
    except FtopsError as err:
        result = err
    if memo is not None:
        memo[key] = (manifest, result)
    if isinstance(result, FtopsError):
        raise result
    return result


def estimate_job_cost(variant: JobVariant, env: Environment, manifest: Manifest,
                      memo: Memo | None = None) -> float | None:
    """Estimated USD for one run of `variant` in `env` (None: no price known and no ceiling to enforce).

    `memo`: reuse estimates across the jobs of one render for `env` (pass a fresh dict per environment).
    """
    job = variant.definition
    try:
        if job.provider == "azure-openai":
            # Without manifest_dir the manifest's totals are used: they can only overstate the cost.
            return _estimate(manifest, env, memo, provider="azure-openai", model=job.base_model.azure_id,
                             epochs=job.hyperparameters.epochs, training_type=job.azure.training_type)
        training = env.require_aws().training
        spot = training.spot if job.compute.spot is None else job.compute.spot
        cost = _estimate(manifest, env, memo, provider="sagemaker", model=job.base_model.hf_model_id,
                         epochs=job.hyperparameters.epochs, instance_type=job.compute.instance_type, spot=spot)
        # The estimator prices one instance; data-parallel jobs bill every instance for the same hours.
        return round(cost * job.compute.instance_count, 2)
    except FtopsError as err:
        if env.policy.max_cost_per_job_usd is None:
            return None
        field = "compute.instance_type" if job.provider == "sagemaker" else "base_model.azure_model"
        raise variant.error(f"cannot estimate the cost for the ceiling: {err.message}", field, err.hint) from None
