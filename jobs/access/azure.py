"""Azure access model: every ARM and data-plane call ftops makes, the permission (action or data action) Azure
checks for it, the scope it is checked at, and which identity makes it; the roles ftops tells users to grant
(and the ones it assigns), transcribed from Azure's built-in role definitions; and the one reading of a 403.

Two identities:
- `apply`: runs `ftops infra plan|apply|destroy --cloud azure` (a platform pipeline or an admin).
- `pipeline`: `pipeline_principal_id`, runs `ftops apply|jobs|deploy|eval` (uploads data, fine-tunes, deploys).

Preflight reuses `CALLS` and `GRANTS` with ARM's permissions API (`GET {scope}/providers/Microsoft.Authorization/
permissions`); the tests check offline that `GRANTS` covers `CALLS` with `covers()`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase

from infra.azure.desired import ROLE_BLOB_DATA_CONTRIBUTOR, ROLE_OPENAI_CONTRIBUTOR

Scope = str
"""`subscription`, `resource_group`, `account` (the OpenAI account) or `container` (the data container)."""
SCOPES = ("subscription", "resource_group", "account", "container")
_INSIDE = {"subscription": {"subscription", "resource_group", "account", "container"},
           "resource_group": {"resource_group", "account", "container"},
           "account": {"account"}, "container": {"container"}}
"""A role assigned at the key scope applies at these scopes (Azure RBAC inherits downwards)."""


@dataclass(frozen=True)
class Call:
    identity: str
    what: str
    permission: str
    scope: Scope
    data: bool = False
    """A data action (checked against the role's dataActions) rather than a control-plane action."""


_CS = "Microsoft.CognitiveServices"
_ST = "Microsoft.Storage/storageAccounts"
_OPENAI = f"{_CS}/accounts/OpenAI"

CALLS: tuple[Call, ...] = (
    # --- infra plan (reads; the three subscription-level reads are the ones resource-group roles cannot give) ---
    Call("apply", "models.list(location): fine-tune capabilities and SKUs", f"{_CS}/locations/models/read",
         "subscription"),
    Call("apply", "usages.list(location): quota next to each deployment", f"{_CS}/locations/usages/read",
         "subscription"),
    Call("apply", "deleted_accounts.get: a soft-deleted account holding the name",
         f"{_CS}/locations/resourceGroups/deletedAccounts/read", "subscription"),
    Call("apply", "resource_groups.get", "Microsoft.Resources/subscriptions/resourceGroups/read", "resource_group"),
    Call("apply", "storage_accounts.get_properties", f"{_ST}/read", "resource_group"),
    Call("apply", "blob_services.get_service_properties", f"{_ST}/blobServices/read", "resource_group"),
    Call("apply", "blob_containers.get", f"{_ST}/blobServices/containers/read", "resource_group"),
    Call("apply", "accounts.get", f"{_CS}/accounts/read", "resource_group"),
    Call("apply", "deployments.get", f"{_CS}/accounts/deployments/read", "resource_group"),
    Call("apply", "role_assignments.get", "Microsoft.Authorization/roleAssignments/read", "resource_group"),
    # --- infra apply ---
    Call("apply", "resource_groups.create_or_update (creating it needs the subscription scope)",
         "Microsoft.Resources/subscriptions/resourceGroups/write", "subscription"),
    Call("apply", "storage_accounts.begin_create / update", f"{_ST}/write", "resource_group"),
    Call("apply", "blob_services.set_service_properties", f"{_ST}/blobServices/write", "resource_group"),
    Call("apply", "blob_containers.create / update", f"{_ST}/blobServices/containers/write", "resource_group"),
    Call("apply", "accounts.begin_create / begin_update", f"{_CS}/accounts/write", "resource_group"),
    Call("apply", "deployments.begin_create_or_update (base models)", f"{_CS}/accounts/deployments/write",
         "resource_group"),
    Call("apply", "role_assignments.create (OpenAI Contributor, Blob Data Contributor)",
         "Microsoft.Authorization/roleAssignments/write", "resource_group"),
    # --- infra destroy ---
    Call("apply", "resources.list_by_resource_group", "Microsoft.Resources/subscriptions/resourceGroups/resources/read",
         "resource_group"),
    Call("apply", "deployments.begin_delete", f"{_CS}/accounts/deployments/delete", "resource_group"),
    Call("apply", "accounts.begin_delete", f"{_CS}/accounts/delete", "resource_group"),
    Call("apply", "deleted_accounts.begin_purge (outside production)",
         f"{_CS}/locations/resourceGroups/deletedAccounts/delete", "subscription"),
    Call("apply", "blob_containers.delete", f"{_ST}/blobServices/containers/delete", "resource_group"),
    Call("apply", "storage_accounts.delete", f"{_ST}/delete", "resource_group"),
    Call("apply", "role_assignments.delete", "Microsoft.Authorization/roleAssignments/delete", "resource_group"),
    Call("apply", "resource_groups.begin_delete", "Microsoft.Resources/subscriptions/resourceGroups/delete",
         "resource_group"),
    # --- the pipeline identity: data in blob storage ---
    Call("pipeline", "upload datasets and ledger entries (put_blob, conditional writes)",
         f"{_ST}/blobServices/containers/blobs/write", "container", data=True),
    Call("pipeline", "read the ledger and dataset blobs", f"{_ST}/blobServices/containers/blobs/read", "container",
         data=True),
    Call("pipeline", "list the container", f"{_ST}/blobServices/containers/blobs/read", "container", data=True),
    # --- the pipeline identity: Azure OpenAI data plane ---
    Call("pipeline", "files.create (training data)", f"{_OPENAI}/files/import/action", "account", data=True),
    Call("pipeline", "files.list / retrieve / content (results.csv)", f"{_OPENAI}/files/read", "account", data=True),
    Call("pipeline", "fine_tuning.jobs.create / cancel / pause / resume", f"{_OPENAI}/fine-tunes/write", "account",
         data=True),
    Call("pipeline", "fine_tuning.jobs.list / retrieve / list_events / checkpoints.list",
         f"{_OPENAI}/fine-tunes/read", "account", data=True),
    Call("pipeline", "chat.completions.create (ftops eval)", f"{_OPENAI}/deployments/chat/completions/action",
         "account", data=True),
    Call("pipeline", "batches.create / retrieve (ftops eval --batch, base-model GlobalBatch deployments)",
         f"{_OPENAI}/batches/write", "account", data=True),
    # --- the pipeline identity: ARM deployments of fine-tuned models (ftops deploy / undeploy) ---
    Call("pipeline", "deployments.get (deploy, undeploy, eval: what a deployment serves)", f"{_CS}/accounts/deployments/read",
         "account"),
    Call("pipeline", "deployments.begin_create_or_update (ftops deploy)", f"{_CS}/accounts/deployments/write",
         "account"),
    Call("pipeline", "deployments.begin_delete (ftops undeploy)", f"{_CS}/accounts/deployments/delete", "account"),
)
"""NOT VERIFIED against a live subscription: the data actions of files, fine-tunes and batches are the names in
Azure's resource-provider operations list as far as it could be read here; `Microsoft.CognitiveServices/accounts/
OpenAI/*` (the Contributor role's data actions) covers whatever their exact spelling is."""


@dataclass(frozen=True)
class Role:
    id: str
    name: str
    actions: tuple[str, ...]
    not_actions: tuple[str, ...] = ()
    data_actions: tuple[str, ...] = ()
    not_data_actions: tuple[str, ...] = ()


# Built-in role definitions, transcribed (only the permission lists) from Microsoft Learn, "Azure built-in roles"
# (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles and its per-category pages), read
# 2026-11-29. Contributor's notActions are abbreviated to the Microsoft.Authorization ones, the only ones that
# matter for the calls above. The role GUIDs are the same in every tenant.
BUILTIN: dict[str, Role] = {r.name: r for r in (
    Role("b24988ac-6180-42a0-ab88-20f7382dd24c", "Contributor", ("*",),
         not_actions=("Microsoft.Authorization/*/Delete", "Microsoft.Authorization/*/Write",
                      "Microsoft.Authorization/elevateAccess/Action")),
    Role("acdd72a7-3385-48ef-bd42-f606fba81ae7", "Reader", ("*/read",)),
    Role("f58310d9-a9f6-439a-9e8d-f62e7b41a168", "Role Based Access Control Administrator",
         ("Microsoft.Authorization/roleAssignments/write", "Microsoft.Authorization/roleAssignments/delete",
          "*/read", "Microsoft.Support/*")),
    Role("18d7d88d-d35e-4fb5-a5c3-7773c20a72d9", "User Access Administrator",
         ("*/read", "Microsoft.Authorization/*", "Microsoft.Support/*")),
    Role("bba48692-92b0-4667-a9ad-c31c7b334ac2", "Cognitive Services Usages Reader",
         ("Microsoft.CognitiveServices/locations/usages/read",)),
    Role(ROLE_OPENAI_CONTRIBUTOR, "Cognitive Services OpenAI Contributor",
         ("Microsoft.CognitiveServices/*/read", "Microsoft.CognitiveServices/accounts/deployments/write",
          "Microsoft.CognitiveServices/accounts/deployments/delete",
          "Microsoft.CognitiveServices/accounts/raiPolicies/read",
          "Microsoft.CognitiveServices/accounts/raiPolicies/write",
          "Microsoft.CognitiveServices/accounts/raiPolicies/delete",
          "Microsoft.CognitiveServices/accounts/commitmentplans/read",
          "Microsoft.CognitiveServices/accounts/commitmentplans/write",
          "Microsoft.CognitiveServices/accounts/commitmentplans/delete",
          "Microsoft.Authorization/roleAssignments/read", "Microsoft.Authorization/roleDefinitions/read"),
         data_actions=("Microsoft.CognitiveServices/accounts/OpenAI/*",)),
    Role(ROLE_BLOB_DATA_CONTRIBUTOR, "Storage Blob Data Contributor",
         ("Microsoft.Storage/storageAccounts/blobServices/containers/delete",
          "Microsoft.Storage/storageAccounts/blobServices/containers/read",
          "Microsoft.Storage/storageAccounts/blobServices/containers/write",
          "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action"),
         data_actions=("Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete",
                       "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
                       "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write",
                       "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/move/action",
                       "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action")),
)}

# The subscription-level reads (and the two writes) plan/apply/destroy need, as one custom role: no built-in role
# holds exactly these (Reader reads the whole subscription and cannot purge or create resource groups).
SUBSCRIPTION_ROLE = Role("", "ftops Azure subscription operator", (
    "Microsoft.CognitiveServices/locations/models/read",
    "Microsoft.CognitiveServices/locations/usages/read",
    "Microsoft.CognitiveServices/locations/resourceGroups/deletedAccounts/read",
    "Microsoft.CognitiveServices/locations/resourceGroups/deletedAccounts/delete",
    "Microsoft.Resources/subscriptions/resourceGroups/read",
    "Microsoft.Resources/subscriptions/resourceGroups/write",
))

ASSIGNED_ROLES = (ROLE_OPENAI_CONTRIBUTOR, ROLE_BLOB_DATA_CONTRIBUTOR)
"""The only roles ftops assigns (to `pipeline_principal_id`, see infra/azure/desired.py)."""


def _guids(ids: tuple[str, ...]) -> str:
    return ", ".join(ids)


# Azure ABAC condition (version 2.0) on Role Based Access Control Administrator: the apply identity may create and
# delete role assignments only of the two roles ftops assigns (the "constrain roles" template of Microsoft Learn,
# "Delegate Azure role assignment management to others with conditions").
ASSIGNMENT_CONDITION = (
    "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR "
    "(@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals "
    f"{{{_guids(ASSIGNED_ROLES)}}})) AND "
    "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})) OR "
    "(@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals "
    f"{{{_guids(ASSIGNED_ROLES)}}}))")


@dataclass(frozen=True)
class Grant:
    identity: str
    role: Role
    scope: Scope
    condition: str | None = None
    assigned_by_ftops: bool = False


GRANTS: tuple[Grant, ...] = (
    Grant("apply", SUBSCRIPTION_ROLE, "subscription"),
    Grant("apply", BUILTIN["Contributor"], "resource_group"),
    Grant("apply", BUILTIN["Role Based Access Control Administrator"], "resource_group", ASSIGNMENT_CONDITION),
    Grant("pipeline", BUILTIN["Cognitive Services OpenAI Contributor"], "account", assigned_by_ftops=True),
    Grant("pipeline", BUILTIN["Storage Blob Data Contributor"], "container", assigned_by_ftops=True),
)
"""What the README tells users to grant (apply identity) and what `ftops infra apply` assigns (pipeline).

Not here, because it crosses environments and ftops does not assign it: a promotion target's pipeline identity
needs Storage Blob Data Reader on the source's data container, conditioned to `ftops-models/<source>/`
(`ftops promote --from <source>` lists and reads the source's records with the target's credential,
jobs.models.lifecycle.source_approved); the README ("#### Azure") gives the assignment."""


def _matches(patterns: tuple[str, ...], permission: str) -> bool:
    # Azure compares operation names case-insensitively; `*` matches any run of characters.
    return any(fnmatchcase(permission.lower(), p.lower()) for p in patterns)


def allows(role: Role, permission: str, *, data: bool) -> bool:
    allowed, denied = (role.data_actions, role.not_data_actions) if data else (role.actions, role.not_actions)
    return _matches(allowed, permission) and not _matches(denied, permission)


def covering(call: Call, grants: tuple[Grant, ...] = GRANTS) -> list[Grant]:
    """The grants of the call's identity that allow it at its scope."""
    return [g for g in grants if g.identity == call.identity and call.scope in _INSIDE[g.scope]
            and allows(g.role, call.permission, data=call.data)]


def uncovered(grants: tuple[Grant, ...] = GRANTS) -> list[Call]:
    return [call for call in CALLS if not covering(call, grants)]


# --- a 403, explained ------------------------------------------------------------------------------------------

_DENIED = re.compile(r"does not have authorization to perform action '(?P<action>[^']+)' over scope "
                     r"'(?P<scope>[^']+)'", re.IGNORECASE)


def scope_kind(scope_id: str) -> Scope:
    parts = scope_id.strip("/").lower().split("/")
    if "containers" in parts:
        return "container"
    if "accounts" in parts:
        return "account"
    return "resource_group" if "resourcegroups" in parts and "locations" not in parts else "subscription"


def missing_role(permission: str, scope_id: str, *, data: bool = False, identity: str | None = None) -> str | None:
    """`grant <role> on <scope>`: the role ftops' plan expects to carry this permission at this scope (for the
    identity making the call, when known)."""
    kind = scope_kind(scope_id)
    for grant in GRANTS:
        if identity not in (None, grant.identity):
            continue
        if kind in _INSIDE[grant.scope] and allows(grant.role, permission, data=data):
            who = "the apply identity" if grant.identity == "apply" else "pipeline_principal_id"
            extra = " (with the role-assignment condition in the README)" if grant.condition else ""
            return f"grant {who} '{grant.role.name}'{extra} at {grant.scope} scope ({scope_id})"
    return None


def explain_denied(message: str, identity: str | None = "apply") -> str | None:
    """For ARM's AuthorizationFailed message: which role is missing at which scope, or None."""
    found = _DENIED.search(message)
    if not found:
        return None
    return missing_role(found["action"], found["scope"], identity=identity)


# --- for preflight: the concrete scopes of an environment ------------------------------------------------------

def scope_ids(env) -> dict[Scope, str]:
    """The ARM ids of the four scopes for an environment (what ARM's permissions API is asked about)."""
    azure = env.require_azure()
    group = f"/subscriptions/{azure.subscription_id}/resourceGroups/{azure.resource_group}"
    storage = f"{group}/providers/Microsoft.Storage/storageAccounts/{azure.storage_account}"
    return {"subscription": f"/subscriptions/{azure.subscription_id}", "resource_group": group,
            "account": f"{group}/providers/Microsoft.CognitiveServices/accounts/{azure.openai_account_name}",
            "container": f"{storage}/blobServices/default/containers/{env.data.blob_container}"}


def calls_for(identity: str) -> list[Call]:
    return [call for call in CALLS if call.identity == identity]
