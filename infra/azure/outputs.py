"""The deployed values rendering reads: `environments/resolved/<env>.azure.json`, with source="deployed".

Read from the actual resources (not from the environment file), so the file says what exists.
"""

from __future__ import annotations

from pathlib import Path

from infra.azure.clients import AzureClients
from infra.azure.desired import desired_resources
from infra.azure.resources import handler
from jobs.config.environment import Environment
from jobs.config.resolved import ResolvedAzure, resolved_file
from jobs.errors import CloudError
from jobs.fsutil import atomic_write


OUTPUT_KINDS = ("openai_account", "storage_account")
"""The resources the resolved values describe (the container goes with its storage account)."""


def forget_outputs(env: Environment) -> Path | None:
    """Remove the environment's resolved-values file once what it describes is destroyed; its path, or None."""
    path = resolved_file(env.name, "azure")
    if not path.is_file():
        return None
    path.unlink()
    return path


def resolve_outputs(env: Environment, clients: AzureClients | None = None) -> ResolvedAzure:
    """Read the account, storage account and container; write and return the resolved values."""
    azure = env.require_azure()
    clients = clients or AzureClients.for_env(env)
    by_kind = {res.kind: res for res in desired_resources(env) if res.kind != "role_assignment"}
    actual = {}
    for kind in ("openai_account", "storage_account", "container"):
        found = handler(clients, kind).read(by_kind[kind])
        if found is None:
            raise CloudError(f"{by_kind[kind].label} does not exist in subscription {azure.subscription_id}",
                             hint=f"run `ftops infra apply --cloud azure --env {env.name}` first")
        actual[kind] = found
    account, storage = actual["openai_account"], actual["storage_account"]
    blob = ((storage.get("properties") or {}).get("primaryEndpoints") or {}).get("blob") \
        or f"https://{azure.storage_account}.blob.core.windows.net/"
    resolved = ResolvedAzure(
        subscription_id=azure.subscription_id, resource_group=azure.resource_group, location=azure.location,
        openai_account=account["name"],
        openai_endpoint=(account.get("properties") or {}).get("endpoint")
        or f"https://{azure.openai_subdomain}.openai.azure.com/",
        openai_account_id=account["id"], storage_account=storage["name"], storage_account_id=storage["id"],
        container_url=f"{blob.rstrip('/')}/{actual['container']['name']}", source="deployed",
    )
    atomic_write(resolved_file(env.name, "azure"), resolved.model_dump_json(indent=2) + "\n")
    return resolved
