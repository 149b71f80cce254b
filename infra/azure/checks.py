"""Model, region and quota checks, run by plan before anything is read or created.

Offline: the versioned model file (`jobs/reference/models.yaml`, with its source and date) says which models
fine-tune in which regions per training type. Live (whenever ARM is reachable, the emulator included):
`models.list(location)` must list each model under kind `OpenAI` (the list also holds `AIServices` entries) with
`finetuneCapabilities.fineTune` "true" (not `capabilities.fineTune`, which Azure sets "false" for models that
fine-tune: the spec's ListLocationModels example) and without a passed fine-tune deprecation date, and each
deployment's model/version/SKU; `usages.list(location)` gives the quota
plan shows next to what the deployments need.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from jobs.config.environment import Environment, environment_file
from jobs.errors import ConfigError
from jobs.reference import azure_models
from jobs.yamlio import line_for, load_yaml

ACCOUNT_KIND = "OpenAI"
"""The kind of account ftops creates; models.list entries of other kinds do not apply to it."""


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    subject: str
    message: str
    source: str
    """`models-file <date>` or `models.list`."""
    field: tuple[str | int, ...] = ()

    def to_json(self) -> dict:
        return {"ok": self.ok, "subject": self.subject, "message": self.message, "source": self.source,
                "field": ".".join(map(str, self.field)) or None}


@dataclass(frozen=True)
class QuotaLine:
    usage: str
    current: float
    limit: float
    requested: float = 0.0
    deployments: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.current + self.requested <= self.limit

    def to_json(self) -> dict:
        return {"usage": self.usage, "current": self.current, "limit": self.limit, "requested": self.requested,
                "deployments": self.deployments, "ok": self.ok}


def offline_checks(env: Environment) -> list[CheckResult]:
    azure = env.require_azure()
    catalog = azure_models()
    source = f"models file {catalog.retrieved.isoformat()}"
    results = []
    for i, wanted in enumerate(azure.openai.fine_tuning_models):
        where = ("azure", "openai", "fine_tuning_models", i, "model")
        found = catalog.find(wanted.model)
        if found is None:
            results.append(CheckResult(False, wanted.model, f"not a fine-tunable model in the models file; known: "
                                       f"{', '.join(catalog.models)}", source, where))
            continue
        key, model = found
        regions = model.regions(wanted.training_type)
        if azure.location in regions:
            results.append(CheckResult(True, key, f"fine-tunes with {wanted.training_type} training in "
                                       f"{azure.location}", source, where))
        else:
            results.append(CheckResult(False, key, f"cannot be fine-tuned with {wanted.training_type} training in "
                                       f"{azure.location}; regions: {', '.join(regions) or 'none'}", source, where))
    return results


def _live_models(env: Environment, clients: Any, on_retry=None) -> list[dict]:
    from infra.azure.resources import to_rest
    from infra.azure.errors import call

    location = env.require_azure().location
    return call(f"list models in {location}",
                lambda: [to_rest(m) for m in clients.cognitive.models.list(location)], on_retry=on_retry)


def live_checks(env: Environment, models: list[dict]) -> list[CheckResult]:
    azure = env.require_azure()
    catalog = azure_models()
    now = datetime.now(timezone.utc)
    results = []

    def listed(name: str, version: str) -> dict | None:
        for item in models:
            model = item.get("model") or {}
            if item.get("kind") == ACCOUNT_KIND and model.get("name") == name and model.get("version") == version:
                return model
        return None

    for i, wanted in enumerate(azure.openai.fine_tuning_models):
        found = catalog.find(wanted.model)
        if found is None:
            continue  # already reported offline
        key, ref = found
        where = ("azure", "openai", "fine_tuning_models", i, "model")
        model = listed(ref.base, ref.version)
        fine_tune = ((model or {}).get("finetuneCapabilities") or {}).get("fineTune") == "true"
        retire = ((model or {}).get("deprecation") or {}).get("fineTune")
        if model is None or not fine_tune:
            results.append(CheckResult(False, key, f"models.list({azure.location}) does not offer it for "
                                       "fine-tuning", "models.list", where))
        elif retire and datetime.fromisoformat(str(retire).replace("Z", "+00:00")) <= now:
            results.append(CheckResult(False, key, f"fine-tuning was retired on {retire}", "models.list", where))
        else:
            results.append(CheckResult(True, key, f"models.list({azure.location}) offers fine-tuning"
                                       + (f" until {str(retire)[:10]}" if retire else ""), "models.list", where))
    for i, deployment in enumerate(azure.openai.deployments):
        where = ("azure", "openai", "deployments", i, "model")
        model = listed(deployment.model, deployment.version)
        skus = [s.get("name") for s in (model or {}).get("skus") or []]
        subject = f"deployment {deployment.name} ({deployment.model} {deployment.version}, {deployment.sku})"
        if model is None:
            results.append(CheckResult(False, subject, f"models.list({azure.location}) does not list this model "
                                       "version", "models.list", where))
        elif deployment.sku not in skus:
            results.append(CheckResult(False, subject, f"SKU {deployment.sku} is not offered here; offered: "
                                       f"{', '.join(skus) or 'none'}", "models.list", ("azure", "openai",
                                                                                        "deployments", i, "sku")))
        else:
            results.append(CheckResult(True, subject, "deployable", "models.list", where))
    return results


def quota(env: Environment, clients: Any, models: list[dict], on_retry=None) -> list[QuotaLine]:
    """The usages the environment's deployments draw on (what plan shows next to their capacity)."""
    from infra.azure.resources import to_rest
    from infra.azure.errors import call

    azure = env.require_azure()
    wanted: dict[str, QuotaLine] = {}
    for deployment in azure.openai.deployments:
        for item in models:
            model = item.get("model") or {}
            if item.get("kind") == ACCOUNT_KIND and model.get("name") == deployment.model and \
                    model.get("version") == deployment.version:
                for sku in model.get("skus") or []:
                    if sku.get("name") == deployment.sku and sku.get("usageName"):
                        line = wanted.setdefault(sku["usageName"], QuotaLine(sku["usageName"], 0, 0))
                        line.deployments.append(deployment.name)
    if not wanted:
        return []
    usages = call(f"list usages in {azure.location}",
                  lambda: [to_rest(u) for u in clients.cognitive.usages.list(azure.location)], on_retry=on_retry)
    by_name = {(u.get("name") or {}).get("value"): u for u in usages}
    lines = []
    for name, line in wanted.items():
        usage = by_name.get(name) or {}
        requested = sum(d.capacity for d in azure.openai.deployments if d.name in line.deployments)
        lines.append(QuotaLine(name, float(usage.get("currentValue") or 0), float(usage.get("limit") or 0),
                               float(requested), line.deployments))
    return lines


def run_checks(env: Environment, clients: Any | None, on_retry=None) -> tuple[list[CheckResult], list[QuotaLine]]:
    results = offline_checks(env)
    if clients is None:
        return results, []
    models = _live_models(env, clients, on_retry)
    return results + live_checks(env, models), quota(env, clients, models, on_retry)


def raise_first_failure(env: Environment, results: list[CheckResult]) -> None:
    """A failed check becomes the one-line error naming the environment file, line and field."""
    failed = [r for r in results if not r.ok]
    if not failed:
        return
    first = failed[0]
    path = environment_file(env.name)
    line = None
    if path.exists():
        line = line_for(first.field, load_yaml(path)[1])
    more = f" (+{len(failed) - 1} more)" if len(failed) > 1 else ""
    raise ConfigError(f"{first.subject}: {first.message} [{first.source}]{more}", source=path, line=line,
                      field=".".join(map(str, first.field)) or None,
                      hint="choose a model and training type the region offers (see `ftops infra plan --cloud azure`)")
