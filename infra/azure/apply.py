"""Apply a plan in dependency order; destroy in reverse, touching only what ftops manages for the environment.

Apply converges: each step reads nothing it has not planned and every write is an idempotent PUT/PATCH, so
an apply killed half-way is finished by the next one (a resource left mid-provisioning answers 409 until it
settles; the retry layer waits for it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from infra.azure.checks import raise_first_failure
from infra.azure.clients import AzureClients
from infra.azure.desired import Resource, desired_resources
from infra.azure.plan import Plan, make_plan
from infra.azure.resources import OpenAIAccountHandler, ResourceGroupHandler, handler
from jobs.config.environment import Environment
from jobs.config.resolved import ResolvedAzure
from jobs.errors import CloudError, ConfigError

Event = Callable[[str], None]


def is_production(env: Environment) -> bool:
    return env.name == "prod" or env.require_azure().production


def check_plan(env: Environment, plan: Plan) -> None:
    """Refuse before any write: failed model/region checks, quota, or a change Azure cannot make in place."""
    raise_first_failure(env, plan.checks)
    short = [q for q in plan.quota if not q.ok]
    if short:
        q = short[0]
        raise ConfigError(f"quota {q.usage}: {q.current:g} used of {q.limit:g}, the deployments need "
                          f"{q.requested:g} more", field="azure.openai.deployments",
                          hint="lower the capacity or request more quota for the region")
    for change in plan.changes:
        if change.action == "replace":
            raise CloudError(f"{change.resource.label}: {change.note}",
                             hint="destroy and apply again, or restore the old value in the environment file")


def apply(env: Environment, plan: Plan | None = None, *, clients: AzureClients | None = None,
          on_event: Event = lambda _: None) -> tuple[Plan, ResolvedAzure]:
    """Create or update what the plan says, parents first; then record the outputs rendering reads."""
    from infra.azure.outputs import resolve_outputs

    clients = clients or AzureClients.for_env(env)
    retry = lambda message, _wait: on_event(message)  # noqa: E731
    plan = plan or make_plan(env, clients, on_retry=retry)
    check_plan(env, plan)
    for change in plan.changes:
        if change.action == "unchanged":
            continue
        h = handler(clients, change.resource.kind, retry)
        on_event(f"{change.action} {change.resource.label}")
        if change.action == "create":
            h.create(change.resource, change.actual)
        else:
            h.update(change.resource, change.actual)
    return plan, resolve_outputs(env, clients)


# --- destroy ------------------------------------------------------------------------------------------------

@dataclass
class DestroyStep:
    resource: Resource
    action: str
    """`delete`, or `keep` (not ours, or holds resources ftops did not create), or `absent`."""
    reason: str = ""

    def to_json(self) -> dict:
        return {"kind": self.resource.kind, "name": self.resource.name, "id": self.resource.id,
                "action": self.action, "reason": self.reason or None}


@dataclass
class DestroyPlan:
    environment: str
    steps: list[DestroyStep] = field(default_factory=list)
    outputs_removed: str | None = None
    """The resolved-values file destroy removed (it described resources that are gone)."""

    def to_json(self) -> dict:
        return {"environment": self.environment, "cloud": "azure", "steps": [s.to_json() for s in self.steps],
                "delete": sum(s.action == "delete" for s in self.steps), "outputs_removed": self.outputs_removed}


def _owned(env: Environment, actual: dict) -> bool:
    tags = actual.get("tags") or {}
    return tags.get("managed-by") == "ftops" and tags.get("environment") == env.name


def plan_destroy(env: Environment, clients: AzureClients | None = None, on_retry=None) -> DestroyPlan:
    """Children before parents; each resource deleted only if it exists and carries this environment's tags."""
    clients = clients or AzureClients.for_env(env)
    plan = DestroyPlan(env.name)
    for res in reversed(desired_resources(env)):
        if res.kind in ("blob_service", "container"):
            continue  # they belong to the storage account and go with it
        actual = handler(clients, res.kind, on_retry).read(res)
        if actual is None:
            plan.steps.append(DestroyStep(res, "absent"))
        elif res.kind == "role_assignment":
            props = actual.get("properties") or {}
            ours = props.get("principalId") == res.body["properties"]["principalId"] and \
                (props.get("roleDefinitionId") or "").lower() == res.body["properties"]["roleDefinitionId"].lower()
            plan.steps.append(DestroyStep(res, "delete" if ours else "keep",
                                          "" if ours else "assignment differs from the one ftops creates"))
        elif not _owned(env, actual):
            plan.steps.append(DestroyStep(res, "keep", f"not tagged managed-by=ftops environment={env.name}"))
        else:
            plan.steps.append(DestroyStep(res, "delete"))
    return plan


def destroy(env: Environment, plan: DestroyPlan | None = None, *, clients: AzureClients | None = None,
            on_event: Event = lambda _: None) -> DestroyPlan:
    clients = clients or AzureClients.for_env(env)
    retry = lambda message, _wait: on_event(message)  # noqa: E731
    plan = plan or plan_destroy(env, clients, retry)
    for step in plan.steps:
        if step.action != "delete":
            continue
        h = handler(clients, step.resource.kind, retry)
        if isinstance(h, ResourceGroupHandler):
            left = h.remaining(step.resource)
            if left:
                step.action, step.reason = "keep", f"still holds {len(left)} resource(s) ftops did not create"
                on_event(f"keep {step.resource.label}: {step.reason}")
                continue
        on_event(f"delete {step.resource.label}")
        if isinstance(h, OpenAIAccountHandler):
            # Outside production, purge the soft-deleted account so its subdomain is free for the next apply;
            # production keeps it recoverable for 48 hours (apply restores it).
            h.delete(step.resource, purge=not is_production(env))
        else:
            h.delete(step.resource)
    from infra.azure.outputs import OUTPUT_KINDS, forget_outputs

    if all(s.action != "keep" for s in plan.steps if s.resource.kind in OUTPUT_KINDS):
        # Rendering would otherwise keep reading ids of an account and storage that no longer exist.
        removed = forget_outputs(env)
        plan.outputs_removed = str(removed) if removed else None
    return plan
