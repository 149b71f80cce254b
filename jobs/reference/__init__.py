"""Versioned reference data shipped with ftops (each file names its source and the date it was read)."""

from __future__ import annotations

from datetime import date
from functools import cache
from typing import Literal

from pydantic import BaseModel, ConfigDict

from jobs import paths
from jobs.errors import ConfigError
from jobs.yamlio import load_shipped

TrainingType = Literal["Standard", "GlobalStandard", "Developer"]
DeploymentType = Literal["Standard", "GlobalStandard", "DeveloperTier"]


class DeploymentTypeFacts(BaseModel):
    """What a fine-tuned deployment of this type costs and how long it lives (see models.yaml's sources)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hosting_fee: bool
    lifetime_hours: int | None
    idle_delete_days: int | None


class FineTunableModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    base: str
    version: str
    tokenizer: str
    max_example_tokens: int
    methods: list[str]
    training_types: dict[TrainingType, list[str]]
    deployments: dict[DeploymentType, list[str]] = {}
    """Regions per fine-tuned deployment type (ARM `sku.name`)."""

    def regions(self, training_type: TrainingType) -> list[str]:
        return self.training_types.get(training_type, [])

    def deployment_problem(self, sku: str, location: str) -> str | None:
        """Why a fine-tuned deployment of this model with `sku` cannot exist in `location`, or None."""
        if sku not in self.deployments:
            offered = ", ".join(self.deployments) or "none"
            return f"{self.base} {self.version} has no fine-tuned {sku} deployments (offered: {offered})"
        if location not in self.deployments[sku]:
            return (f"fine-tuned {self.base} {self.version} deploys as {sku} only in "
                    f"{', '.join(self.deployments[sku])}, not {location}")
        return None


class AzureModelCatalog(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str
    retrieved: date
    min_training_examples: int
    max_file_bytes: int
    suffix_max_length: int
    deployment_types: dict[DeploymentType, DeploymentTypeFacts] = {}
    models: dict[str, FineTunableModel]

    def find(self, name: str, version: str | None = None) -> tuple[str, FineTunableModel] | None:
        """Look a model up by `name-version` id, or by base name and version."""
        if name in self.models:
            return name, self.models[name]
        for key, model in self.models.items():
            if model.base == name and (version is None or model.version == version):
                return key, model
        return None


@cache
def azure_models() -> AzureModelCatalog:
    path = paths.data_file("models.yaml")
    try:
        return AzureModelCatalog.model_validate(load_shipped(path))
    except ValueError as exc:
        raise ConfigError(f"invalid reference data: {exc}", source=path) from None
