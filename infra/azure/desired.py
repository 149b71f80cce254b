"""What an environment asks for: ARM request bodies, in dependency order, with no ids hard-coded.

Bodies are written in ARM's own JSON shape (what `az resource show` prints), so a plan's property paths read
like the portal's JSON view. Each body holds only the properties ftops manages: the diff ignores the rest.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from jobs.config.environment import Environment

# Built-in role definition ids (the same GUIDs in every tenant).
ROLE_OPENAI_CONTRIBUTOR = "a001fd3d-188f-4b5d-821b-7da978bf7442"
"""Cognitive Services OpenAI Contributor: upload files, fine-tune, deploy; no key listing."""
ROLE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
"""Storage Blob Data Contributor: read and write training data in the container."""
ROLE_NAMES = {ROLE_OPENAI_CONTRIBUTOR: "Cognitive Services OpenAI Contributor",
              ROLE_BLOB_DATA_CONTRIBUTOR: "Storage Blob Data Contributor"}
# Stable names for role assignments, so a rerun PUTs the same assignment instead of a duplicate.
_ASSIGNMENT_NAMESPACE = uuid.UUID("0c6f3a52-3f7e-4b84-9a4e-6f7470730001")


@dataclass(frozen=True)
class Resource:
    kind: str
    """resource_group, storage_account, blob_service, container, openai_account, deployment, role_assignment."""
    name: str
    id: str
    body: dict[str, Any]
    immutable: tuple[str, ...] = ()
    """Property paths Azure cannot change in place (a change needs destroy and apply)."""
    tagged: bool = True
    """Carries the ftops tags (destroy checks them before deleting)."""
    parent: str | None = None
    """The id of the resource this one lives in (deleted with it)."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name}"


def _rg_id(env: Environment) -> str:
    azure = env.require_azure()
    return f"/subscriptions/{azure.subscription_id}/resourceGroups/{azure.resource_group}"


def _network_acls(env: Environment, *, storage: bool) -> dict[str, Any]:
    network = env.require_azure().network
    rules = [{"value": ip, **({"action": "Allow"} if storage else {})} for ip in sorted(network.ip_ranges)]
    acls: dict[str, Any] = {"defaultAction": network.default_action, "ipRules": rules}
    # Trusted Azure services (the OpenAI account's identity reading training data) pass the storage firewall.
    acls["bypass"] = "AzureServices"
    if storage:
        acls["virtualNetworkRules"] = []
    return acls


def role_assignment(env: Environment, scope: str, role: str, principal_id: str, principal_type: str,
                    label: str) -> Resource:
    azure = env.require_azure()
    name = str(uuid.uuid5(_ASSIGNMENT_NAMESPACE, f"{scope.lower()}|{principal_id}|{role}"))
    return Resource(
        kind="role_assignment", name=f"{ROLE_NAMES.get(role, role)} on {label}",
        id=f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}",
        body={"properties": {
            "roleDefinitionId": f"/subscriptions/{azure.subscription_id}/providers/Microsoft.Authorization/"
                                f"roleDefinitions/{role}",
            "principalId": principal_id, "principalType": principal_type}},
        immutable=("properties.roleDefinitionId", "properties.principalId"), tagged=False, parent=scope,
        extra={"scope": scope, "assignment_name": name})


def desired_resources(env: Environment) -> list[Resource]:
    """Everything apply provisions, parents before children (destroy walks it backwards)."""
    azure = env.require_azure()
    tags = dict(sorted(env.all_tags.items()))
    rg_id = _rg_id(env)
    storage_id = f"{rg_id}/providers/Microsoft.Storage/storageAccounts/{azure.storage_account}"
    container = env.data.blob_container
    container_id = f"{storage_id}/blobServices/default/containers/{container}"
    account = azure.openai_account_name
    account_id = f"{rg_id}/providers/Microsoft.CognitiveServices/accounts/{account}"
    network = azure.network

    resources = [
        Resource("resource_group", azure.resource_group, rg_id,
                 {"location": azure.location, "tags": tags}, immutable=("location",)),
        Resource("storage_account", azure.storage_account, storage_id, {
            "location": azure.location, "kind": "StorageV2", "sku": {"name": azure.storage_sku}, "tags": tags,
            "properties": {
                "supportsHttpsTrafficOnly": True, "minimumTlsVersion": "TLS1_2", "allowBlobPublicAccess": False,
                "allowSharedKeyAccess": False, "defaultToOAuthAuthentication": True,
                "allowCrossTenantReplication": False, "publicNetworkAccess": network.public_network_access,
                "networkAcls": _network_acls(env, storage=True)}},
            immutable=("location", "kind"), parent=rg_id),
        Resource("blob_service", f"{azure.storage_account}/default", f"{storage_id}/blobServices/default", {
            "properties": {
                "deleteRetentionPolicy": {"enabled": True, "days": azure.soft_delete_days},
                "containerDeleteRetentionPolicy": {"enabled": True, "days": azure.soft_delete_days}}},
            tagged=False, parent=storage_id),
        Resource("container", f"{azure.storage_account}/{container}", container_id,
                 {"properties": {"publicAccess": "None"}}, tagged=False, parent=storage_id),
        Resource("openai_account", account, account_id, {
            "location": azure.location, "kind": "OpenAI", "sku": {"name": azure.openai.sku},
            "identity": {"type": "SystemAssigned"}, "tags": tags,
            "properties": {
                "customSubDomainName": azure.openai_subdomain,
                "disableLocalAuth": azure.openai.disable_local_auth,
                "publicNetworkAccess": network.public_network_access,
                "networkAcls": _network_acls(env, storage=False),
                "restrictOutboundNetworkAccess": azure.openai.restrict_outbound_network_access,
                **({"allowedFqdnList": sorted(azure.openai.allowed_fqdns)}
                   if azure.openai.restrict_outbound_network_access else {})}},
            immutable=("location", "kind", "properties.customSubDomainName"), parent=rg_id),
    ]
    for deployment in azure.openai.deployments:
        resources.append(Resource("deployment", f"{account}/{deployment.name}",
                                  f"{account_id}/deployments/{deployment.name}", {
            "sku": {"name": deployment.sku, "capacity": deployment.capacity}, "tags": tags,
            "properties": {"model": {"format": "OpenAI", "name": deployment.model, "version": deployment.version}}},
            immutable=("properties.model.name",), parent=account_id,
            extra={"model": deployment.model, "version": deployment.version, "sku": deployment.sku,
                   "capacity": deployment.capacity}))
    if azure.pipeline_principal_id:
        principal, kind = azure.pipeline_principal_id, azure.pipeline_principal_type
        resources.append(role_assignment(env, account_id, ROLE_OPENAI_CONTRIBUTOR, principal, kind,
                                         f"account {account}"))
        resources.append(role_assignment(env, container_id, ROLE_BLOB_DATA_CONTRIBUTOR, principal, kind,
                                         f"container {container}"))
    return resources
