"""The diff engine: desired bodies against actual state read with GETs, per resource.

Only properties ftops declares are compared (Azure adds many of its own, and other tags may be added by
policy); empty values compare equal to absent ones, lists compare as sets, locations ignore case and spaces.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from infra.azure.checks import CheckResult, QuotaLine, run_checks
from infra.azure.clients import AzureClients
from infra.azure.desired import Resource, desired_resources
from infra.azure.resources import OpenAIAccountHandler, handler
from jobs.config.environment import Environment

Action = Literal["create", "update", "replace", "unchanged"]
# ARM's ProvisioningState (accounts) and DeploymentProvisioningState (Microsoft.CognitiveServices 2025-09-01):
# no `Updating`; `Moving` is an operation in progress; `Canceled` (deployments) ended without the change.
TRANSITIONAL = {"Accepted", "Creating", "Deleting", "ResolvingDNS", "Moving"}
FAILED = {"Failed", "Canceled"}


@dataclass(frozen=True)
class PropertyChange:
    path: str
    before: Any
    after: Any


@dataclass
class Change:
    resource: Resource
    action: Action
    changes: list[PropertyChange] = field(default_factory=list)
    note: str = ""
    actual: dict | None = None

    def to_json(self) -> dict:
        return {"kind": self.resource.kind, "name": self.resource.name, "id": self.resource.id,
                "action": self.action, "note": self.note or None,
                "changes": [{"path": c.path, "before": c.before, "after": c.after} for c in self.changes]}


@dataclass
class Plan:
    environment: str
    subscription_id: str
    location: str
    changes: list[Change]
    checks: list[CheckResult] = field(default_factory=list)
    quota: list[QuotaLine] = field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        return any(c.action != "unchanged" for c in self.changes)

    def summary(self) -> dict[str, int]:
        counts = {"create": 0, "update": 0, "replace": 0, "unchanged": 0}
        for change in self.changes:
            counts[change.action] += 1
        return counts

    def to_json(self) -> dict:
        return {"environment": self.environment, "cloud": "azure", "subscription_id": self.subscription_id,
                "location": self.location, "has_changes": self.has_changes, "summary": self.summary(),
                "changes": [c.to_json() for c in self.changes],
                "checks": [c.to_json() for c in self.checks], "quota": [q.to_json() for q in self.quota]}


def _leaves(body: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted paths to the values of a nested dict; lists are leaves."""
    if isinstance(body, dict) and body:
        out: dict[str, Any] = {}
        for key, value in body.items():
            out.update(_leaves(value, f"{prefix}.{key}" if prefix else key))
        return out
    return {prefix: body}


def _at(body: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(body, dict):
            return None
        body = body.get(part)
    return body


def _normal(path: str, value: Any) -> Any:
    if value in ([], {}, ""):
        return None
    if path == "location" and isinstance(value, str):
        return value.lower().replace(" ", "")
    if isinstance(value, list):
        return sorted(orjson.dumps(item, option=orjson.OPT_SORT_KEYS) for item in value)
    return value


def diff(desired: dict, actual: dict) -> list[PropertyChange]:
    """The declared properties whose actual value differs, in declaration order."""
    return [PropertyChange(path, _at(actual, path), want)
            for path, want in _leaves(desired).items()
            if _normal(path, want) != _normal(path, _at(actual, path))]


def compare(res: Resource, actual: dict | None) -> Change:
    if actual is None:
        return Change(res, "create")
    changes = diff(res.body, actual)
    state = (actual.get("properties") or {}).get("provisioningState")
    if any(c.path in res.immutable for c in changes):
        fixed = ", ".join(c.path for c in changes if c.path in res.immutable)
        return Change(res, "replace", changes, f"{fixed} cannot change in place", actual)
    if state in FAILED:
        return Change(res, "update", changes, f"provisioningState is {state}: apply provisions it again", actual)
    if state in TRANSITIONAL:
        return Change(res, "update", changes, f"still {state}: apply waits for it, then converges", actual)
    return Change(res, "update" if changes else "unchanged", changes, actual=actual)


def make_plan(env: Environment, clients: AzureClients | None = None, *, live_checks: bool = True,
              on_retry=None) -> Plan:
    """Checks first (nothing is read if the declaration is impossible), then one GET per resource."""
    azure = env.require_azure()
    clients = clients or AzureClients.for_env(env)
    checks, quota = run_checks(env, clients if live_checks else None, on_retry=on_retry)
    changes: list[Change] = []
    missing: set[str] = set()
    for res in desired_resources(env):
        h = handler(clients, res.kind, on_retry)
        if res.parent and res.parent.lower() in missing:
            change = Change(res, "create")  # its parent is created first; nothing to read
        else:
            change = compare(res, h.read(res))
        # Soft-deleted accounts outlive their resource group and keep the name and subdomain for 48 hours.
        if change.action == "create" and isinstance(h, OpenAIAccountHandler) and h.soft_deleted(res):
            change.note = "a soft-deleted account holds this name: apply restores it"
        if change.action == "create":
            missing.add(res.id.lower())
        changes.append(change)
    return Plan(env.name, azure.subscription_id, azure.location, changes, checks, _net_quota(quota, changes))


def _net_quota(quota: list[QuotaLine], changes: list[Change]) -> list[QuotaLine]:
    """What each usage needs on top of today: capacity already deployed is part of `current`."""
    deployed = {c.resource.name.split("/", 1)[1]: int(((c.actual or {}).get("sku") or {}).get("capacity") or 0)
                for c in changes if c.resource.kind == "deployment"}
    return [QuotaLine(q.usage, q.current, q.limit, max(0.0, q.requested - sum(deployed.get(d, 0) for d in q.deployments)),
                      q.deployments) for q in quota]
