"""Azure checks: effective permissions (ARM permissions API), fine-tune capability and retirement (models list),
quota for the deployments jobs create (usages), and network rules against the runner's address. GETs only.

`arm(path, api_version)` returns the parsed JSON of one ARM GET (see `ArmReader`); tests answer with bodies shaped
as the REST specs' examples.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from fnmatch import fnmatchcase
from typing import Any

from jobs.config.environment import Environment, environment_file
from jobs.preflight.needs import AzureNeed
from jobs.preflight.report import ENV, Row

COGNITIVE_API = "2025-09-01"   # the ARM spec version ftops is checked against (../shared/contracts/azure)
PERMISSIONS_API = "2022-04-01"  # azure-mgmt-authorization's default for Permissions - List For Resource(Group)
STORAGE_API = "2023-05-01"
RETIREMENT_WARNING = timedelta(days=30)


class ArmError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code = status, code


Arm = Callable[[str, str], dict]


class ArmReader:
    """ARM GETs through the SDK's own pipeline (credential, emulator endpoint and loopback rules from
    infra.azure.clients); it can only build GET requests, so preflight cannot change anything."""

    def __init__(self, clients: Any) -> None:
        self._client = clients.resources
        self.methods: list[str] = []

    def __call__(self, path: str, api_version: str) -> dict:
        from azure.core.rest import HttpRequest

        request = HttpRequest("GET", path, params={"api-version": api_version})
        self.methods.append(request.method)
        response = self._client.send_request(request)
        if response.status_code >= 400:
            try:
                error = response.json().get("error") or {}
            except ValueError:
                error = {}
            raise ArmError(response.status_code, error.get("code", "Error"), error.get("message", response.text()))
        return response.json()


# --- scopes --------------------------------------------------------------------------------------------------

def scopes(env: Environment) -> dict[str, str]:
    from jobs.config.resolved import resolved_azure

    resolved = resolved_azure(env)
    rg = f"/subscriptions/{resolved.subscription_id}/resourceGroups/{resolved.resource_group}"
    return {"resource group": rg, "openai account": resolved.openai_account_id,
            "container": f"{resolved.storage_account_id}/blobServices/default/containers/{env.data.blob_container}"}


SCOPE_NAMES = {"resource_group": "resource group", "account": "openai account", "container": "container"}
"""The access model's scopes that ARM's permissions API answers for (it has no subscription-level list; the
subscription-level reads preflight needs, models and usages, are proven by making them)."""


def required_actions(env: Environment) -> dict[str, list[tuple[str, bool, str]]]:
    """Scope name -> [(permission, is data action, what needs it)]: the pipeline identity's calls in the Azure
    access model (jobs.access.azure), i.e. what `ftops apply|jobs|deploy|eval` do with this identity."""
    from jobs.access.azure import CALLS

    required: dict[str, list[tuple[str, bool, str]]] = defaultdict(list)
    for call in CALLS:
        if call.identity == "pipeline" and call.scope in SCOPE_NAMES:
            entry = (call.permission, call.data, call.what)
            if entry[:2] not in {e[:2] for e in required[SCOPE_NAMES[call.scope]]}:
                required[SCOPE_NAMES[call.scope]].append(entry)
    return dict(required)


def allows(permissions: list[dict], action: str, data: bool) -> bool:
    """Whether an ARM permissions list (actions/notActions or dataActions/notDataActions) grants `action`.
    ARM matches case-insensitively with `*` wildcards; a permission's not-list carves out of its own list."""
    wanted = action.lower()
    allow, deny = ("dataActions", "notDataActions") if data else ("actions", "notActions")
    for permission in permissions:
        if any(fnmatchcase(wanted, p.lower()) for p in permission.get(allow) or []) and \
                not any(fnmatchcase(wanted, p.lower()) for p in permission.get(deny) or []):
            return True
    return False


def permissions(env: Environment, arm: Arm) -> list[Row]:
    required = required_actions(env)
    rows = []
    for scope_name, scope in scopes(env).items():
        if not required.get(scope_name):
            continue
        try:
            granted = arm(f"{scope}/providers/Microsoft.Authorization/permissions", PERMISSIONS_API).get("value", [])
        except ArmError as exc:
            if env.emulated and exc.status == 404:
                # One row: the emulator answers no permissions query at any scope.
                return [Row("azure-permission", ENV, "skip", "the emulator has no Microsoft.Authorization/"
                            "permissions API; effective permissions are checked against a real subscription only",
                            "", "not evaluated (emulator)")]
            rows.append(Row("azure-permission", ENV, "block", f"{scope_name}: permissions not readable ({exc})",
                            "grant the caller Microsoft.Authorization/*/read at the scope (Reader does)",
                            "Microsoft.Authorization/permissions"))
            continue
        missing = [(a, why) for a, data, why in required.get(scope_name, []) if not allows(granted, a, data)]
        if missing:
            rows.append(Row("azure-permission", ENV, "block", f"{scope_name}: missing " +
                            "; ".join(f"{a} ({why})" for a, why in missing),
                            f"assign a role granting them at {scope} (`ftops infra apply --cloud azure` assigns "
                            "the pipeline's data roles when azure.pipeline_principal_id is set)",
                            "Microsoft.Authorization/permissions"))
        else:
            rows.append(Row("azure-permission", ENV, "ok", f"{scope_name}: all {len(required.get(scope_name, []))} "
                            "permissions the pipeline identity's calls need are granted (jobs.access.azure)", "",
                            "Microsoft.Authorization/permissions"))
    return rows


# --- models and quota ----------------------------------------------------------------------------------------

def _models(env: Environment, arm: Arm) -> list[dict]:
    azure = env.require_azure()
    path = f"/subscriptions/{azure.subscription_id}/providers/Microsoft.CognitiveServices/locations/{azure.location}/models"
    return [item.get("model") or {} for item in arm(path, COGNITIVE_API).get("value", [])]


def _find(models: list[dict], name: str, version: str) -> dict | None:
    return next((m for m in models if m.get("name") == name and m.get("version") == version), None)


def fine_tunable(model: dict) -> tuple[bool, str]:
    """`finetuneCapabilities.fineTune` says whether the model can be fine-tuned (`capabilities.fineTune` is about
    the base model's own deployment and is "false" for gpt-4o 2024-08-06 in the spec's example, which fine-tunes).
    Only when a listing has no `finetuneCapabilities` at all is `capabilities.fineTune` read."""
    if "finetuneCapabilities" in model:
        return str((model.get("finetuneCapabilities") or {}).get("fineTune")).lower() == "true", "finetuneCapabilities"
    return str((model.get("capabilities") or {}).get("fineTune")).lower() == "true", "capabilities, no finetuneCapabilities listed"


def models_and_quota(env: Environment, arm: Arm, needs: list[AzureNeed], now: datetime | None = None) -> list[Row]:
    from jobs.reference import azure_models

    azure = env.require_azure()
    now = now or datetime.now(timezone.utc)
    catalog = azure_models()
    models = _models(env, arm)
    rows: list[Row] = []
    usage_needs: dict[str, list[AzureNeed]] = defaultdict(list)
    for need in needs:
        found = catalog.find(need.model)
        if found is None:
            rows.append(Row("azure-model", need.job, "block", f"{need.model} is not in the models file",
                            "use a model listed in jobs/reference (see `ftops env show`)", "models file"))
            continue
        _, ref = found
        model = _find(models, ref.base, ref.version)
        source = f"models.list({azure.location})"
        if model is None:
            rows.append(Row("azure-model", need.job, "block", f"{ref.base} {ref.version} is not offered in "
                            f"{azure.location}", "pick a region or model that lists it", source))
            continue
        ok, field = fine_tunable(model)
        retire = (model.get("deprecation") or {}).get("fineTune")
        retire_at = datetime.fromisoformat(str(retire).replace("Z", "+00:00")) if retire else None
        if not ok:
            rows.append(Row("azure-model", need.job, "block", f"{ref.base} {ref.version} cannot be fine-tuned in "
                            f"{azure.location} (fineTune is not true in {field})",
                            "choose a model that fine-tunes here (azure.openai.fine_tuning_models)", source))
        elif retire_at and retire_at <= now:
            rows.append(Row("azure-model", need.job, "block", f"fine-tuning {ref.base} {ref.version} retired on "
                            f"{retire_at.date()}", "move the job definition to a current model version", source))
        else:
            # models.list says nothing about training types: where each type trains comes from the versioned
            # models file (jobs/reference/models.yaml, with its source and date).
            regions = ref.regions(need.training_type) if need.training_type else []
            if need.training_type and azure.location not in regions:
                others = [t for t in ("Standard", "GlobalStandard", "Developer")
                          if t != need.training_type and azure.location in ref.regions(t)]
                rows.append(Row("azure-model", need.job, "block", f"{ref.base} fine-tunes, but not with "
                                f"{need.training_type} training in {azure.location}; {need.training_type} regions: "
                                f"{', '.join(regions) or 'none'}",
                                f"use {' or '.join(others)} training (the job's training_type)" if others
                                else f"use a region listed for {need.training_type} training",
                                f"{source} + models file {catalog.retrieved.isoformat()}"))
                continue
            soon = retire_at and retire_at - now <= RETIREMENT_WARNING
            detail = (f"{ref.base} {ref.version} fine-tunes in {azure.location} ({field}), training type "
                      f"{need.training_type or 'default'}" + (f"; fine-tuning retires {retire_at.date()}" if retire_at else ""))
            rows.append(Row("azure-model", need.job, "warn" if soon else "ok", detail,
                            "plan the move to a newer version before it retires" if soon else "", source))
        if need.deployment_sku and need.deployment_capacity:
            sku = next((s for s in model.get("skus") or [] if str(s.get("name")).lower() == need.deployment_sku.lower()), None)
            if sku is None or not sku.get("usageName"):
                rows.append(Row("azure-quota", need.job, "block", f"deployment SKU {need.deployment_sku} is not offered "
                                f"for {ref.base} in {azure.location}", "change the job's deployment sku", source))
            else:
                usage_needs[sku["usageName"]].append(need)
    if usage_needs:
        path = f"/subscriptions/{azure.subscription_id}/providers/Microsoft.CognitiveServices/locations/{azure.location}/usages"
        usages = {(u.get("name") or {}).get("value"): u for u in arm(path, COGNITIVE_API).get("value", [])}
        for name, wanted in sorted(usage_needs.items()):
            jobs = ", ".join(n.job for n in wanted)
            asked = sum(n.deployment_capacity for n in wanted)
            usage = usages.get(name)
            if usage is None:
                rows.append(Row("azure-quota", jobs, "block", f"no usage {name} in {azure.location}: no quota",
                                "request quota for it in the Azure AI Foundry portal (Quotas)", f"usages({azure.location})"))
                continue
            current, limit = float(usage.get("currentValue") or 0), float(usage.get("limit") or 0)
            detail = f"{name}: {current:g} of {limit:g} used, the deployments need {asked}"
            if current + asked <= limit:
                rows.append(Row("azure-quota", jobs, "ok", detail, "", f"usages({azure.location})"))
            else:
                rows.append(Row("azure-quota", jobs, "block", detail, "lower the deployments' capacity, delete unused "
                                "deployments, or request more quota (Azure AI Foundry portal, Quotas)",
                                f"usages({azure.location})"))
    return rows


# --- network -------------------------------------------------------------------------------------------------

def _allowed(rules: list[dict], address: str) -> bool:
    ip = ipaddress.ip_address(address)
    for rule in rules:
        value = rule.get("value") or rule.get("IPAddressOrRange") or ""
        try:
            if ip in ipaddress.ip_network(value, strict=False):
                return True
        except ValueError:
            continue
    return False


def network(env: Environment, arm: Arm, runner_ip: str | None) -> list[Row]:
    from jobs.config.resolved import resolved_azure

    resolved = resolved_azure(env)
    fix_file = environment_file(env.name).name
    rows = []
    for label, resource_id, api in (("openai account", resolved.openai_account_id, COGNITIVE_API),
                                    ("storage account", resolved.storage_account_id, STORAGE_API)):
        try:
            props = arm(resource_id, api).get("properties") or {}
        except ArmError as exc:
            # 404: never created (or deleted). Jobs would fail on its data plane: its host does not resolve.
            what = f"{resource_id.rsplit('/', 1)[-1]} does not exist" if exc.status == 404 else "not readable"
            rows.append(Row("azure-network", ENV, "block", f"{label}: {what} ({exc})",
                            f"ftops infra apply --cloud azure --env {env.name}", "ARM GET"))
            continue
        acls = props.get("networkAcls") or {}
        public = props.get("publicNetworkAccess") or "Enabled"
        default = acls.get("defaultAction") or "Allow"
        source = f"ARM GET {label}"
        if public == "Disabled":
            rows.append(Row("azure-network", ENV, "warn" if runner_ip is None else "block",
                            f"{label}: public network access is disabled; only private endpoints reach it",
                            "run the pipeline on a runner inside the virtual network", source))
        elif default == "Allow":
            rows.append(Row("azure-network", ENV, "ok", f"{label}: network rules allow every address", "", source))
        elif runner_ip is None:
            rows.append(Row("azure-network", ENV, "warn", f"{label}: default action Deny and the runner's address is "
                            "unknown, so it is not checked", "pass --runner-ip (or FTOPS_RUNNER_IP) with the runner's "
                            "public egress address", source))
        elif _allowed(acls.get("ipRules") or [], runner_ip):
            rows.append(Row("azure-network", ENV, "ok", f"{label}: {runner_ip} is allowed by an IP rule", "", source))
        else:
            rows.append(Row("azure-network", ENV, "block", f"{label}: default action Deny and no IP rule allows "
                            f"{runner_ip}", f"add {runner_ip} to azure.network.ip_ranges in {fix_file}, then "
                            f"`ftops infra apply --cloud azure --env {env.name}`", source))
    return rows
