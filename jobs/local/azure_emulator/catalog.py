"""The emulator's own model catalogue, in the shape of ARM's `models.list(location)` (Model / AccountModel of
Microsoft.CognitiveServices 2025-09-01): `kind`, `skuName`, `model.capabilities`, `model.finetuneCapabilities`
(where Azure says a model can be fine-tuned; `capabilities.fineTune` is "false" for those, as in the spec's
ListLocationModels example), `model.deprecation` and `model.skus`.

Its data is written here on purpose, not read from `jobs/reference/models.yaml`: the client's offline checks read
that file, and an emulator built from it could never disagree with them. Regions follow the same public
documentation (see models.yaml for the sources) but are the emulator's own decision, not evidence.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import cache
from typing import Any

GLOBAL = ("eastus", "eastus2", "northcentralus", "southcentralus", "swedencentral", "westus3")
REGIONAL = ("northcentralus", "swedencentral")
DEVELOPER = ("eastus2", "northcentralus", "swedencentral")
_GPT41 = {"training": {"standard": REGIONAL, "globalstandard": GLOBAL, "developerTier": DEVELOPER},
          "methods": ("supervised", "dpo")}
FINE_TUNABLE: dict[str, dict[str, Any]] = {
    "gpt-4o-mini-2024-07-18": {"base": "gpt-4o-mini", "version": "2024-07-18", "max_tokens": 65536,
                               "training": {"standard": REGIONAL, "globalstandard": GLOBAL,
                                            "developerTier": DEVELOPER}, "methods": ("supervised", "dpo")},
    "gpt-4o-2024-08-06": {"base": "gpt-4o", "version": "2024-08-06", "max_tokens": 65536,
                          "training": {"standard": ("eastus2", *REGIONAL), "globalstandard": GLOBAL},
                          "methods": ("supervised", "dpo")},
    "gpt-4.1-2025-04-14": {"base": "gpt-4.1", "version": "2025-04-14", "max_tokens": 65536, **_GPT41},
    "gpt-4.1-mini-2025-04-14": {"base": "gpt-4.1-mini", "version": "2025-04-14", "max_tokens": 65536, **_GPT41},
    "gpt-4.1-nano-2025-04-14": {"base": "gpt-4.1-nano", "version": "2025-04-14", "max_tokens": 32768, **_GPT41},
}
"""Base models the data plane fine-tunes: regions per wire `trainingType`, methods, tokens per example."""
FILE_LIMIT_BYTES = 512 * 1024 * 1024
MIN_TRAINING_EXAMPLES = 10
SUFFIX_MAX = 18

EXTRA_OPENAI_LOCATIONS = {"australiaeast", "canadaeast", "francecentral", "japaneast", "uksouth", "westeurope",
                          "westus"}
SKU_QUOTA = {"Standard": 300, "GlobalStandard": 1000, "DataZoneStandard": 500, "GlobalBatch": 1000}
"""Capacity units per (subscription, region, deployment sku, model): the `limit` usages.list reports."""


def find_fine_tunable(model: str) -> dict[str, Any] | None:
    return FINE_TUNABLE.get(model)


@cache
def openai_locations() -> frozenset[str]:
    regions = set(EXTRA_OPENAI_LOCATIONS)
    for model in FINE_TUNABLE.values():
        for locations in model["training"].values():
            regions.update(locations)
    return frozenset(regions)


def deployment_skus(model: dict[str, Any], location: str) -> list[str]:
    """GlobalStandard and GlobalBatch everywhere OpenAI exists; Standard where the model trains regionally."""
    if location not in openai_locations():
        return []
    skus = ["GlobalStandard", "GlobalBatch"]
    if location in model["training"].get("standard", ()):
        skus.append("Standard")
    return skus


def usage_name(sku: str, base: str) -> str:
    return f"OpenAI.{sku}.{base}"


def models(location: str) -> list[dict]:
    """`models.list(location)` items. Each model appears under kind OpenAI and again under AIServices (as Azure
    lists both), so a client that ignores `kind` sees duplicates."""
    items = []
    for model in FINE_TUNABLE.values():
        skus = deployment_skus(model, location)
        if not skus:
            continue
        trains_here = any(location in regions for regions in model["training"].values())
        entry = {
            "format": "OpenAI", "name": model["base"], "version": model["version"], "isDefaultVersion": True,
            "lifecycleStatus": "GenerallyAvailable",
            "capabilities": {"chatCompletion": "true", "fineTune": "false",
                             "maxContextToken": str(model["max_tokens"])},
            "deprecation": {"fineTune": _days_ahead(180), "inference": _days_ahead(365)},
            "skus": [{"name": sku, "usageName": usage_name(sku, model["base"]),
                      "capacity": {"minimum": 1, "default": 10, "maximum": SKU_QUOTA[sku]}} for sku in skus],
        }
        if trains_here:
            entry["finetuneCapabilities"] = {"fineTune": "true", "chat": "true", "scaleType": "Manual"}
        for kind in ("OpenAI", "AIServices"):
            items.append({"kind": kind, "skuName": "S0", "description": f"{model['base']} {model['version']}",
                          "model": entry})
    return items


def _days_ahead(days: int) -> str:
    """Retirement dates stay in the future whenever the emulator runs (a test can inject past ones)."""
    return (datetime.now(timezone.utc).date() + timedelta(days=days)).isoformat() + "T00:00:00Z"


def find(location: str, name: str, version: str) -> dict | None:
    for item in models(location):
        if item["kind"] == "OpenAI" and item["model"]["name"] == name and item["model"]["version"] == version:
            return item["model"]
    return None
