"""What the emulator answers for models and quota: built from ftops' own versioned model file, so the
emulator and the offline checks agree (the real service is the authority for everything else)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import cache

from jobs.reference import azure_models

# Regions where the emulator lets OpenAI accounts be created (a subset of the real list is enough here).
EXTRA_OPENAI_LOCATIONS = {"australiaeast", "canadaeast", "francecentral", "japaneast", "uksouth", "westeurope",
                          "westus"}
SKU_QUOTA = {"Standard": 300, "GlobalStandard": 1000, "DataZoneStandard": 500}
"""Capacity units per (subscription, region, deployment sku, model): the `limit` usages.list reports."""


@cache
def openai_locations() -> frozenset[str]:
    regions = set(EXTRA_OPENAI_LOCATIONS)
    for model in azure_models().models.values():
        for locations in model.training_types.values():
            regions.update(locations)
    return frozenset(regions)


def fine_tune_types(model_key: str, location: str) -> list[str]:
    model = azure_models().models[model_key]
    return [kind for kind, regions in model.training_types.items() if location in regions]


def deployment_skus(model_key: str, location: str) -> list[str]:
    """GlobalStandard everywhere OpenAI exists; Standard where the model is trained regionally."""
    if location not in openai_locations():
        return []
    skus = ["GlobalStandard"]
    if location in azure_models().models[model_key].regions("Standard"):
        skus.append("Standard")
    return skus


def usage_name(sku: str, base: str) -> str:
    return f"OpenAI.{sku}.{base}"


def models(location: str) -> list[dict]:
    """`models.list(location)` items: AccountModel with capabilities, skus and deprecation dates."""
    items = []
    for key, model in azure_models().models.items():
        skus = deployment_skus(key, location)
        if not skus:
            continue
        capabilities = {"chatCompletion": "true", "maxContextToken": str(model.max_example_tokens)}
        if fine_tune_types(key, location):
            capabilities["fineTune"] = "true"
        items.append({
            "kind": "OpenAI", "skuName": "S0", "description": f"{model.base} {model.version}",
            "model": {
                "format": "OpenAI", "name": model.base, "version": model.version, "isDefaultVersion": True,
                "lifecycleStatus": "GenerallyAvailable", "capabilities": capabilities,
                "deprecation": {"fineTune": _days_ahead(180), "inference": _days_ahead(365)},
                "skus": [{"name": sku, "usageName": usage_name(sku, model.base),
                          "capacity": {"minimum": 1, "default": 10, "maximum": SKU_QUOTA[sku]}}
                         for sku in skus],
            },
        })
    return items


def _days_ahead(days: int) -> str:
    """Retirement dates stay in the future whenever the emulator runs (a test can inject past ones)."""
    return (datetime.now(timezone.utc).date() + timedelta(days=days)).isoformat() + "T00:00:00Z"


def find(location: str, name: str, version: str) -> dict | None:
    for item in models(location):
        if item["model"]["name"] == name and item["model"]["version"] == version:
            return item["model"]
    return None
