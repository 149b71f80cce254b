"""What the rendered jobs need from an account: instances per type and usage, Azure models and deployments, cost.

Rendered jobs come from a tree on disk (`ftops render --out DIR`) or from an in-memory render; both become
`JobSpec`s, so the checks never care which.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from jobs.config.environment import Environment
from jobs.errors import ConfigError

# Service Quotas names SageMaker's per-instance-type quotas like this (e.g. "ml.g5.2xlarge for spot training job
# usage"; the issue quotes that name, and the Service Quotas console lists the three usages under these names).
USAGES = {"training": "{} for training job usage", "spot training": "{} for spot training job usage",
          "endpoint": "{} for endpoint usage"}
# Azure's rendered `trainingType` values (lower case in the request body) -> the environment file's names.
AZURE_TRAINING_TYPES = {"standard": "Standard", "globalstandard": "GlobalStandard", "developertier": "Developer",
                        "developer": "Developer"}


@dataclass(frozen=True)
class JobSpec:
    name: str
    provider: str
    index: dict[str, Any]
    load: Callable[[str], Any]
    """Target name -> the parsed rendered document."""
    rendered: Any = None
    """The same job as `jobs.apply.rendered.RenderedJob` (what the access model reads)."""

    @property
    def estimated_cost_usd(self) -> float | None:
        value = self.index.get("estimated_cost_usd")
        return None if value is None else float(value)

    def target(self, name: str) -> Any | None:
        return self.load(name) if name in (self.index.get("targets") or {}) else None


@dataclass(frozen=True)
class InstanceNeed:
    instance_type: str
    usage: str
    """A key of USAGES."""
    count: int
    job: str

    @property
    def quota_name(self) -> str:
        return USAGES[self.usage].format(self.instance_type)


@dataclass(frozen=True)
class AzureNeed:
    job: str
    model: str
    training_type: str | None
    deployment_sku: str | None
    deployment_capacity: int


def from_directory(directory: Path, env: Environment, only: list[str] | None = None) -> list[JobSpec]:
    from jobs.apply.rendered import load_rendered

    specs = []
    for job in load_rendered(directory, env.name, only):
        index = orjson.loads(job.index_file.read_bytes())
        specs.append(JobSpec(job.name, job.provider, index, job.load_target, job))
    return specs


def from_render(env: Environment, only: list[str] | None = None) -> list[JobSpec]:
    """Render in memory (nothing written): what `ftops render` would produce now."""
    from jobs.render.engine import render_environment

    specs = []
    for rendered in render_environment(env):
        if only and rendered.name not in only and rendered.index.get("job") not in only:
            continue
        targets = rendered.index.get("targets") or {}
        load = (lambda t, r=rendered, ts=targets: r.documents[ts[t]])
        specs.append(JobSpec(rendered.name, rendered.index["provider"], rendered.index, load,
                             _InMemoryJob.of(rendered.index, load)))
    if only and not specs:
        raise ConfigError(f"no job named {', '.join(only)} renders for {env.name}", field="job",
                          hint="`ftops render --env ENV` lists the jobs")
    return specs


def _in_memory_class():
    from pydantic import PrivateAttr

    from jobs.apply.rendered import RenderedJob

    class InMemoryJob(RenderedJob):
        """A rendered job that was never written: targets come from the in-memory render."""

        _load: Any = PrivateAttr(None)

        def load_target(self, target: str) -> Any:
            return self._load(target)

    return InMemoryJob


class _InMemoryJob:
    @staticmethod
    def of(index: dict[str, Any], load: Callable[[str], Any]) -> Any:
        job = _in_memory_class().model_validate(index)
        job._load = load
        return job


def instance_needs(spec: JobSpec, env: Environment | None = None) -> list[InstanceNeed]:
    """SageMaker instances a job holds at once: a training job's count, a tuning job's count x parallel jobs,
    plus (given `env`) the endpoint `ftops deploy` would create from its deployment settings."""
    needs = []
    training = spec.target("sagemaker")
    tuning = spec.target("sagemaker-tuning")
    if training:
        config = training.get("ResourceConfig") or {}
        usage = "spot training" if training.get("EnableManagedSpotTraining") else "training"
        if config.get("InstanceType"):
            needs.append(InstanceNeed(config["InstanceType"], usage, int(config.get("InstanceCount") or 1), spec.name))
    if tuning:
        definition = tuning.get("TrainingJobDefinition") or {}
        config = definition.get("ResourceConfig") or {}
        parallel = int(((tuning.get("HyperParameterTuningJobConfig") or {}).get("ResourceLimits") or {})
                       .get("MaxParallelTrainingJobs") or 1)
        usage = "spot training" if definition.get("EnableManagedSpotTraining") else "training"
        if config.get("InstanceType"):
            needs.append(InstanceNeed(config["InstanceType"], usage,
                                      int(config.get("InstanceCount") or 1) * parallel, spec.name))
    if env is not None and spec.provider == "sagemaker" and spec.rendered is not None and (training or tuning):
        from jobs.providers.sagemaker import deployment_settings

        deployment = deployment_settings(spec.rendered, env)
        if deployment.get("instance_type") and not deployment.get("serverless"):
            needs.append(InstanceNeed(deployment["instance_type"], "endpoint",
                                      int(deployment.get("instance_count") or 1), spec.name))
    return needs


def azure_need(spec: JobSpec) -> AzureNeed | None:
    request = spec.target("azure-openai")
    if not request:
        return None
    deployment = spec.target("azure-openai-deployment") or {}
    sku = (deployment.get("body") or {}).get("sku") or {}
    kind = request.get("trainingType") or request.get("training_type")
    return AzureNeed(spec.name, str(request.get("model")), AZURE_TRAINING_TYPES.get(str(kind).lower(), kind) if kind else None,
                     sku.get("name"), int(sku.get("capacity") or 0))
