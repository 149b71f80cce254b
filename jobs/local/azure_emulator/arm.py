"""The ARM subset ftops provisions, with the behaviour Azure's SDKs rely on.

Resource groups; Microsoft.CognitiveServices accounts, deployments, models, usages, domain checks and
soft-deleted accounts; Microsoft.Storage accounts, blob service properties and containers;
Microsoft.Authorization role assignments at any scope. Paths are matched case-insensitively (as ARM does),
`api-version` is required, PUT is idempotent, PATCH merges, errors use ARM's `{"error": {code, message}}`.

Long-running operations (account/deployment PUT, PATCH and DELETE; storage account creation; resource group
deletion) answer 201/202 with `Azure-AsyncOperation` (and `Location`) headers; the resource shows
`Creating`/`Accepted`/`Deleting` (ARM's ProvisioningState has no `Updating`: an update shows `Accepted`) until
`op_delay_s` has passed, then `Succeeded` (or `Failed` when a fault
rule says so). Transitions are computed lazily on each request, so no thread and no timer survive a restart
incorrectly: the deadline is stored with the operation.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, after_this_request, current_app, jsonify, request

from jobs.local.azure_emulator import catalog
from jobs.local.azure_emulator.faults import pending_operation_delay, pending_operation_failure
from jobs.local.azure_emulator.store import get_store

bp = Blueprint("arm", __name__)

Data = dict[str, Any]
TRANSITIONAL = {"Accepted", "Creating", "Deleting", "ResolvingDNS", "Moving"}
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)


class ArmError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error(status: int, code: str, message: str) -> Response:
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    response.headers["x-ms-failure-cause"] = "gateway" if status == 429 else "service"
    return response


# --- state helpers ---------------------------------------------------------------------------------

def _key(resource_id: str) -> str:
    return resource_id.lower().rstrip("/")


def _get(data: Data, resource_id: str) -> dict | None:
    return data.setdefault("resources", {}).get(_key(resource_id))


def _put(data: Data, resource: dict) -> None:
    data.setdefault("resources", {})[_key(resource["id"])] = resource


def _remove_tree(data: Data, resource_id: str) -> None:
    prefix = _key(resource_id)
    for key in [k for k in data.get("resources", {}) if k == prefix or k.startswith(prefix + "/")]:
        del data["resources"][key]


def _state(resource: dict) -> str:
    return resource.get("properties", {}).get("provisioningState", "Succeeded")


def settle(data: Data, now: float | None = None) -> None:
    """Finish every operation whose deadline has passed (the provisioningState transitions)."""
    now = time.time() if now is None else now
    for op in data.setdefault("operations", {}).values():
        if op["status"] != "InProgress" or op["ready_at"] > now:
            continue
        op["status"] = "Failed" if op.get("error") else "Succeeded"
        op["end_time"] = now
        resource = _get(data, op["resource_id"])
        if op["action"] == "delete":
            if resource is not None and op["status"] == "Succeeded":
                if resource["type"].lower() == "microsoft.cognitiveservices/accounts":
                    data.setdefault("deleted_accounts", {})[_key(resource["id"])] = {**resource, "deleted_at": now}
                _remove_tree(data, op["resource_id"])
            elif resource is not None:
                resource["properties"]["provisioningState"] = "Failed"
        elif resource is not None:
            resource.setdefault("properties", {})["provisioningState"] = op["status"]


def _start_operation(data: Data, resource_id: str, action: str, location: str) -> dict:
    op_id = str(uuid.uuid4())
    op = {"id": op_id, "resource_id": resource_id, "action": action, "status": "InProgress",
          "start_time": time.time(),
          "ready_at": time.time() + pending_operation_delay(current_app.config["FTOPS_OP_DELAY_S"]),
          "location": location, "error": pending_operation_failure()}
    data.setdefault("operations", {})[op_id] = op
    return op


def _operation_headers(op: dict, sub: str, namespace: str, *, location_header: bool = True,
                       async_header: bool = True) -> dict[str, str]:
    base = request.host_url.rstrip("/")
    api = request.args["api-version"]
    prefix = f"{base}/subscriptions/{sub}/providers/{namespace}/locations/{op['location']}"
    headers = {}
    if async_header:
        headers["Azure-AsyncOperation"] = f"{prefix}/operationStatuses/{op['id']}?api-version={api}"
    if location_header:
        headers["Location"] = f"{prefix}/operationResults/{op['id']}?api-version={api}"
    return headers


def _json(resource: dict | list | None, status: int = 200, headers: dict | None = None) -> Response:
    response = jsonify(resource) if resource is not None else Response(status=status)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _body() -> dict:
    body = request.get_json(force=True, silent=True)
    if body is None and request.method in ("PUT", "PATCH", "POST") and request.data:
        raise ArmError(400, "InvalidRequestContent", "The request content was invalid and could not be deserialized.")
    return body or {}


def _sdk_checked(body: dict, model: str) -> dict:
    """Refuse what ARM would: unknown members, read-only members and enum values outside the SDK model's."""
    from jobs.local.azure_emulator.sdk_check import problem

    module, _, name = model.rpartition(".")
    import importlib

    found = problem(body, getattr(importlib.import_module(module), name))
    if found:
        raise ArmError(400, "InvalidRequestContent", f"The request content was invalid and could not be deserialized: "
                                                     f"{found}")
    return body


def _merge(base: dict, patch: dict) -> dict:
    """PATCH semantics: nested objects merge, everything else (including `tags` and lists) replaces."""
    merged = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict) and key != "tags":
            merged[key] = _merge(base[key], value)
        else:
            merged[key] = value
    return merged


def _strip_readonly(resource: dict, readonly: set[str]) -> dict:
    props = {k: v for k, v in resource.get("properties", {}).items() if k not in readonly}
    identity = {k: v for k, v in (resource.get("identity") or {}).items() if k not in ("principalId", "tenantId")}
    return {**{k: v for k, v in resource.items() if k not in ("etag", "systemData")},
            "properties": props, "identity": identity or None}


def _not_found(kind: str, name: str, rg: str | None = None) -> ArmError:
    where = f" under resource group '{rg}'" if rg else ""
    return ArmError(404, "ResourceNotFound", f"The Resource '{kind}/{name}'{where} was not found. "
                                             "For more details please go to https://aka.ms/ARMResourceNotFoundFix")


# --- resource groups ---------------------------------------------------------------------------------

def _rg_id(sub: str, rg: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}"


def _require_rg(data: Data, sub: str, rg: str) -> dict:
    group = _get(data, _rg_id(sub, rg))
    if group is None:
        raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
    if _state(group) == "Deleting":
        raise ArmError(409, "ResourceGroupBeingDeleted",
                       f"The resource group '{rg}' is in deprovisioning state and cannot perform this operation.")
    return group


def resource_group(data: Data, sub: str, rg: str) -> Response:
    rid = _rg_id(sub, rg)
    current = _get(data, rid)
    if request.method in ("GET", "HEAD"):
        if current is None:
            if request.method == "HEAD":
                return Response(status=404)
            raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
        return Response(status=204) if request.method == "HEAD" else _json(current)
    if request.method == "DELETE":
        if current is None:
            return Response(status=204)
        current["properties"]["provisioningState"] = "Deleting"
        op = _start_operation(data, rid, "delete", current["location"])
        return _json(None, 202, _operation_headers(op, sub, "Microsoft.Resources", async_header=False))
    body = _body()
    if request.method == "PATCH":
        if current is None:
            raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
        body = _merge({"location": current["location"], "tags": current.get("tags", {})}, body)
    location = body.get("location")
    if not location:
        raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
    if current is not None and _state(current) == "Deleting":
        raise ArmError(409, "ResourceGroupBeingDeleted",
                       f"The resource group '{rg}' is in deprovisioning state and cannot perform this operation.")
    if current is not None and current["location"] != location.lower().replace(" ", ""):
        raise ArmError(409, "InvalidResourceGroupLocation",
                       f"Invalid resource group location '{location}'. The Resource group already exists in "
                       f"location '{current['location']}'.")
    group = {"id": rid, "name": current["name"] if current else rg, "type": "Microsoft.Resources/resourceGroups",
             "location": location.lower().replace(" ", ""), "tags": body.get("tags") or {},
             "properties": {"provisioningState": "Succeeded"}}
    _put(data, group)
    return _json(group, 200 if current else 201)


def group_resources(data: Data, sub: str, rg: str) -> Response:
    _require_rg(data, sub, rg)
    prefix = _key(_rg_id(sub, rg)) + "/providers/"
    items = []
    for key, res in sorted(data.get("resources", {}).items()):
        # Top-level resources only (type has one '/'); ARM does not list child resources or role assignments.
        if key.startswith(prefix) and res["type"].count("/") == 1 and "microsoft.authorization" not in key:
            items.append({k: res[k] for k in ("id", "name", "type", "location", "tags", "kind", "sku") if k in res})
    return _json({"value": items})


# --- Cognitive Services ------------------------------------------------------------------------------

ACCOUNT_READONLY = {"provisioningState", "endpoint", "endpoints", "internalId", "dateCreated", "capabilities",
                    "restore"}


def _account_id(sub: str, rg: str, name: str) -> str:
    return f"{_rg_id(sub, rg)}/providers/Microsoft.CognitiveServices/accounts/{name}"


def _busy(resource: dict, kind: str) -> ArmError:
    return ArmError(409, f"{kind}ProvisioningStateInvalid",
                    f"Call to Microsoft.CognitiveServices/accounts failed. Error message: {kind} "
                    f"{resource['name']} in state {_state(resource)}.")


def account(data: Data, sub: str, rg: str, name: str) -> Response:
    rid = _account_id(sub, rg, name)
    current = _get(data, rid)
    kind_name = "Microsoft.CognitiveServices/accounts"
    if request.method == "GET":
        if current is None:
            raise _not_found(kind_name, name, rg)
        return _json(current)
    if request.method == "DELETE":
        if current is None:
            return Response(status=204)
        if _state(current) in TRANSITIONAL:
            raise _busy(current, "Account")
        current["properties"]["provisioningState"] = "Deleting"
        op = _start_operation(data, rid, "delete", current["location"])
        return _json(None, 202, _operation_headers(op, sub, "Microsoft.CognitiveServices"))
    _require_rg(data, sub, rg)
    body = _sdk_checked(_body(), "azure.mgmt.cognitiveservices.models.Account")
    if request.method == "PATCH":
        if current is None:
            raise _not_found(kind_name, name, rg)
        body = _merge(_strip_readonly(current, ACCOUNT_READONLY), body)
    if current is not None and _state(current) in TRANSITIONAL:
        raise _busy(current, "Account")
    for field in ("kind", "sku", "location"):
        if not body.get(field):
            raise ArmError(400, "InvalidRequestContent", f"The request is missing the required property '{field}'.")
    location = body["location"].lower().replace(" ", "")
    props = dict(body.get("properties") or {})
    if body["kind"] == "OpenAI" and location not in catalog.openai_locations():
        raise ArmError(400, "LocationNotAvailableForResourceType",
                       f"The provided location '{location}' is not available for resource type "
                       f"'Microsoft.CognitiveServices/accounts' with kind 'OpenAI'. "
                       f"List of available regions: '{','.join(sorted(catalog.openai_locations()))}'.")
    subdomain = props.get("customSubDomainName")
    if current is not None:
        if current["location"] != location:
            raise ArmError(409, "InvalidResourceLocation", f"The resource '{name}' already exists in location "
                                                           f"'{current['location']}'.")
        if (current["properties"].get("customSubDomainName") or "").lower() != (subdomain or "").lower():
            raise ArmError(400, "CustomSubDomainNameImmutable",
                           "The custom sub domain name of an account cannot be changed once set.")
    else:
        deleted = data.setdefault("deleted_accounts", {}).get(_key(rid))
        if deleted and not props.get("restore"):
            raise ArmError(409, "FlagMustBeSetForRestore",
                           f"An existing resource with ID '{rid}' has been soft-deleted. To restore the resource, "
                           "you must specify 'restore' to be 'true' in the property. If you don't want to restore "
                           "existing resource, please purge it first.")
        if subdomain:
            # The subdomain is the account's data-plane host (`<subdomain>.openai.azure.com`), so it is global:
            # taken by an account of any subscription or resource group, a soft-deleted one included (its name is
            # held until purged). The code is the one infra/azure/errors.py knows from Azure; the REST specs in
            # shared/contracts list no error codes, so it is not verified against them.
            taken = [r for r in [*data.get("resources", {}).values(), *data["deleted_accounts"].values()]
                     if r["type"] == kind_name and _key(r["id"]) != _key(rid)
                     and (r["properties"].get("customSubDomainName") or "").lower() == subdomain.lower()]
            if taken:
                raise ArmError(400, "CustomDomainInUse",
                               f"Custom domain name '{subdomain}' not available. Please pick another name.")
        if deleted:
            data["deleted_accounts"].pop(_key(rid))
    props.pop("restore", None)
    identity = body.get("identity")
    if identity and identity.get("type") in ("SystemAssigned", "SystemAssigned, UserAssigned"):
        previous = (current or {}).get("identity") or {}
        identity = {**identity, "principalId": previous.get("principalId") or str(uuid.uuid4()),
                    "tenantId": previous.get("tenantId") or "00000000-0000-4000-8000-0000000000aa"}
    endpoint = (f"https://{subdomain}.openai.azure.com/" if subdomain
                else f"https://{location}.api.cognitive.microsoft.com/")
    resource = {
        "id": rid, "name": current["name"] if current else name, "type": kind_name, "location": location,
        "kind": body["kind"], "sku": body["sku"], "tags": body.get("tags") or {},
        **({"identity": identity} if identity else {}),
        "properties": {**props, "endpoint": endpoint, "endpoints": {"OpenAI Language Model Instance API": endpoint},
                       "internalId": (current or {}).get("properties", {}).get("internalId") or uuid.uuid4().hex,
                       "dateCreated": (current or {}).get("properties", {}).get("dateCreated")
                       or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                       "provisioningState": _state(current) if current else "Creating"},
        "etag": f'"{uuid.uuid4()}"',
    }
    if current is not None and _strip_readonly(current, ACCOUNT_READONLY) == _strip_readonly(resource, ACCOUNT_READONLY) \
            and _state(current) == "Succeeded":
        return _json(current)  # idempotent PUT: nothing changes, nothing to wait for
    resource["properties"]["provisioningState"] = "Accepted" if current else "Creating"
    _put(data, resource)
    op = _start_operation(data, rid, "update" if current else "create", location)
    return _json(resource, 200 if current else 201, _operation_headers(op, sub, "Microsoft.CognitiveServices",
                                                                      location_header=False))


def _require_account(data: Data, sub: str, rg: str, name: str, *, settled: bool) -> dict:
    _require_rg(data, sub, rg)
    parent = _get(data, _account_id(sub, rg, name))
    if parent is None:
        raise ArmError(404, "ParentResourceNotFound",
                       f"Can not perform requested operation on nested resource. Parent resource '{name}' not found.")
    if settled and _state(parent) != "Succeeded":
        raise _busy(parent, "Account")
    return parent


def deployment(data: Data, sub: str, rg: str, account_name: str, name: str) -> Response:
    rid = f"{_account_id(sub, rg, account_name)}/deployments/{name}"
    if request.method == "GET":
        _require_account(data, sub, rg, account_name, settled=False)
        current = _get(data, rid)
        if current is None:
            raise _not_found("Microsoft.CognitiveServices/accounts/deployments", name, rg)
        return _json(current)
    parent = _require_account(data, sub, rg, account_name, settled=True)
    current = _get(data, rid)
    if current is not None and _state(current) in TRANSITIONAL:
        raise ArmError(409, "DeploymentProvisioningStateInvalid",
                       f"Deployment {name} is in state {_state(current)}; retry when the operation finishes.")
    if request.method == "DELETE":
        if current is None:
            return Response(status=204)
        current["properties"]["provisioningState"] = "Deleting"
        op = _start_operation(data, rid, "delete", parent["location"])
        return _json(None, 202, _operation_headers(op, sub, "Microsoft.CognitiveServices"))
    body = _sdk_checked(_body(), "azure.mgmt.cognitiveservices.models.Deployment")
    if request.method == "PATCH":
        if current is None:
            raise _not_found("Microsoft.CognitiveServices/accounts/deployments", name, rg)
        body = _merge({k: current[k] for k in ("sku", "tags", "properties") if k in current}, body)
    model = (body.get("properties") or {}).get("model") or {}
    sku = body.get("sku") or {}
    if not model.get("name") or not sku.get("name"):
        raise ArmError(400, "InvalidResourceProperties", "The deployment needs sku.name and properties.model.name.")
    capacity = int(sku.get("capacity") or 1)
    fine_tuned = ".ft-" in model["name"] or model["name"].startswith("ftchkpt-")
    if fine_tuned:
        _check_fine_tuned(data, model["name"], sku["name"], parent, model.get("source"))
    else:
        known = catalog.find(parent["location"], model["name"], model.get("version") or "")
        if known is None:
            raise ArmError(400, "DeploymentModelNotSupported",
                           f"Creating account deployment is not supported by the model '{model['name']}' version "
                           f"'{model.get('version')}' in region '{parent['location']}'.")
        if sku["name"] not in {s["name"] for s in known["skus"]}:
            raise ArmError(400, "InvalidResourceProperties",
                           f"The specified SKU '{sku['name']}' for model '{model['name']} {model.get('version')}' is "
                           f"not supported in this region '{parent['location']}'.")
        used = _usage(data, sub, parent["location"]).get(catalog.usage_name(sku["name"], model["name"]), 0)
        used -= int((current or {}).get("sku", {}).get("capacity") or 0) if current else 0
        limit = catalog.SKU_QUOTA[sku["name"]]
        if used + capacity > limit:
            raise ArmError(400, "InsufficientQuota",
                           f"This operation require {capacity} new capacity in quota "
                           f"{catalog.usage_name(sku['name'], model['name'])}, which is bigger than the current "
                           f"available capacity {limit - used}.")
    resource = {"id": rid, "name": name, "type": "Microsoft.CognitiveServices/accounts/deployments",
                "sku": {**sku, "capacity": capacity}, "tags": body.get("tags") or {},
                "properties": {**(body.get("properties") or {}), "provisioningState": "Creating"}}
    if current is not None and {**current, "properties": {**current["properties"], "provisioningState": "x"}} == \
            {**resource, "properties": {**resource["properties"], "provisioningState": "x"}} \
            and _state(current) == "Succeeded":
        return _json(current)
    resource["properties"]["provisioningState"] = "Accepted" if current else "Creating"
    _put(data, resource)
    op = _start_operation(data, rid, "update" if current else "create", parent["location"])
    return _json(resource, 200 if current else 201, _operation_headers(op, sub, "Microsoft.CognitiveServices",
                                                                      location_header=False))


FINE_TUNED_SKUS = {"Standard", "GlobalStandard", "DeveloperTier"}


def _check_fine_tuned(data: Data, name: str, sku: str, parent: dict, source: str | None) -> None:
    """The fine-tuned model (or checkpoint id) must exist in the data plane of the account that trained it, with a
    SKU fine-tuned models take. That account is the deploying one, or the one `properties.model.source` names (a
    deployment of another account's model: Azure's cross-resource deployment of a fine-tuned model, which ftops
    uses to serve in prod what staging trained). Each account's data plane is its own, so a model of one account
    is unknown to every other unless named as the source.

    Azure's error codes for a model it cannot find, or a source that is no account, are not in the ARM spec (it
    lists no error codes); `DeploymentModelNotSupported` is the code this emulator uses for a model it cannot
    deploy, not a verified one."""
    from jobs.local.azure_emulator.store import account_store

    holder = parent
    if source:
        holder = _get(data, source)
        if holder is None or str(holder.get("type", "")).lower() != "microsoft.cognitiveservices/accounts":
            raise ArmError(400, "DeploymentModelNotSupported",
                           f"The source '{source}' of model '{name}' is not an existing Cognitive Services account.")
    jobs = account_store(holder["id"], "openai").snapshot().get("jobs", {}).values()
    job = next((j for j in jobs if j.get("fine_tuned_model") == name
                or any(c["id"] == name for c in j.get("_checkpoints", []))), None)
    if job is None:
        where = f"source account '{holder['name']}'" if source else f"account '{holder['name']}'"
        raise ArmError(400, "DeploymentModelNotSupported", f"The model '{name}' was not found in {where}. A "
                                                           "fine-tuned model is deployed by its fine_tuned_model name "
                                                           "or checkpoint id, from the account that trained it or with "
                                                           "that account as properties.model.source.")
    location = parent["location"]
    if sku not in FINE_TUNED_SKUS:
        raise ArmError(400, "InvalidResourceProperties", f"The specified SKU '{sku}' is not supported for "
                                                         f"fine-tuned models; supported: {sorted(FINE_TUNED_SKUS)}.")
    base = catalog.find_fine_tunable(job["model"]) or {}
    if sku == "Standard" and location not in base.get("training", {}).get("standard", ()):
        raise ArmError(400, "InvalidResourceProperties", f"The specified SKU 'Standard' for fine-tuned model "
                                                         f"'{name}' is not supported in this region '{location}'.")


def list_deployments(data: Data, sub: str, rg: str, account_name: str) -> Response:
    _require_account(data, sub, rg, account_name, settled=False)
    prefix = _key(_account_id(sub, rg, account_name)) + "/deployments/"
    return _json({"value": [r for k, r in sorted(data.get("resources", {}).items()) if k.startswith(prefix)]})


def _usage(data: Data, sub: str, location: str) -> dict[str, int]:
    used: dict[str, int] = {}
    for res in data.get("resources", {}).values():
        if res["type"] != "Microsoft.CognitiveServices/accounts/deployments" or \
                not _key(res["id"]).startswith(f"/subscriptions/{sub.lower()}/"):
            continue
        parent = _get(data, res["id"].rsplit("/deployments/", 1)[0])
        if parent is None or parent["location"] != location:
            continue
        name = catalog.usage_name(res["sku"]["name"], res["properties"]["model"]["name"])
        used[name] = used.get(name, 0) + int(res["sku"].get("capacity") or 0)
    return used


def models_list(data: Data, sub: str, location: str) -> Response:
    return _json({"value": catalog.models(location.lower())})


def usages_list(data: Data, sub: str, location: str) -> Response:
    location = location.lower()
    used = _usage(data, sub, location)
    items = []
    for model in catalog.models(location):
        if model["kind"] != "OpenAI":
            continue
        for sku in model["model"]["skus"]:
            items.append({"name": {"value": sku["usageName"], "localizedValue": sku["usageName"]}, "unit": "Count",
                          "currentValue": used.get(sku["usageName"], 0), "limit": catalog.SKU_QUOTA[sku["name"]],
                          "status": "Included"})
    return _json({"value": items})


def check_domain(data: Data, sub: str) -> Response:
    body = _body()
    wanted = (body.get("subdomainName") or "").lower()
    taken = any((r["properties"].get("customSubDomainName") or "").lower() == wanted
                for r in [*data.get("resources", {}).values(), *data.get("deleted_accounts", {}).values()]
                if r["type"] == "Microsoft.CognitiveServices/accounts")
    return _json({"subdomainName": wanted, "type": body.get("type"), "isSubdomainAvailable": not taken,
                  "reason": "Sub domain name is already in use." if taken else None})


def deleted_account(data: Data, sub: str, location: str, rg: str, name: str) -> Response:
    key = _key(_account_id(sub, rg, name))
    deleted = data.setdefault("deleted_accounts", {}).get(key)
    if deleted is None or deleted["location"] != location.lower():
        raise _not_found("Microsoft.CognitiveServices/locations/resourceGroups/deletedAccounts", name)
    if request.method == "DELETE":  # purge: the account's data plane (files, jobs, batches) goes with it
        del data["deleted_accounts"][key]
        account_id = deleted["id"]

        @after_this_request
        def erase_data_plane(response: Response) -> Response:  # once the purge is stored (this transaction)
            from jobs.local.azure_emulator.store import drop_account

            drop_account(account_id)
            return response

        return Response(status=200)
    return _json(deleted)


# --- Storage -----------------------------------------------------------------------------------------

STORAGE_READONLY = {"provisioningState", "primaryEndpoints", "primaryLocation", "statusOfPrimary", "creationTime"}


def _storage_id(sub: str, rg: str, name: str) -> str:
    return f"{_rg_id(sub, rg)}/providers/Microsoft.Storage/storageAccounts/{name}"


def storage_account(data: Data, sub: str, rg: str, name: str) -> Response:
    rid = _storage_id(sub, rg, name)
    current = _get(data, rid)
    kind_name = "Microsoft.Storage/storageAccounts"
    if request.method == "GET":
        if current is None:
            raise _not_found(kind_name, name, rg)
        return _json(current)
    if request.method == "DELETE":
        if current is None:
            return Response(status=204)
        _remove_tree(data, rid)
        return Response(status=200)
    _require_rg(data, sub, rg)
    body = _body()
    if request.method == "PATCH":
        if current is None:
            raise _not_found(kind_name, name, rg)
        body = _merge(_strip_readonly(current, STORAGE_READONLY), body)
    if current is not None and _state(current) in TRANSITIONAL:
        raise ArmError(409, "StorageAccountOperationInProgress",
                       f"An operation is currently performing on this storage account '{name}' that requires "
                       "exclusive access.")
    if not re.fullmatch(r"[a-z0-9]{3,24}", name):
        raise ArmError(400, "AccountNameInvalid", f"{name} is not a valid storage account name. Storage account name "
                                                  "must be between 3 and 24 characters in length and use numbers "
                                                  "and lower-case letters only.")
    if current is None and any(r["type"] == kind_name and r["name"] == name for r in data.get("resources", {}).values()):
        raise ArmError(409, "StorageAccountAlreadyTaken", f"The storage account named {name} is already taken.")
    for field in ("kind", "sku", "location"):
        if not body.get(field):
            raise ArmError(400, "InvalidRequestContent", f"The request is missing the required property '{field}'.")
    location = body["location"].lower().replace(" ", "")
    if current is not None and current["location"] != location:
        raise ArmError(409, "InvalidResourceLocation", f"The resource '{name}' already exists in location "
                                                       f"'{current['location']}'.")
    props = {k: v for k, v in (body.get("properties") or {}).items() if k not in STORAGE_READONLY}
    resource = {"id": rid, "name": name, "type": kind_name, "location": location, "kind": body["kind"],
                "sku": body["sku"], "tags": body.get("tags") or {}, "identity": body.get("identity"),
                "properties": {**props, "primaryLocation": location, "statusOfPrimary": "available",
                               "primaryEndpoints": {"blob": f"https://{name}.blob.core.windows.net/",
                                                    "dfs": f"https://{name}.dfs.core.windows.net/"},
                               "creationTime": (current or {}).get("properties", {}).get("creationTime")
                               or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                               "provisioningState": "Succeeded"}}
    if current is not None:
        _put(data, resource)  # updates of an existing account are synchronous
        return _json(resource)
    resource["properties"]["provisioningState"] = "Creating"
    _put(data, resource)
    op = _start_operation(data, rid, "create", location)
    return _json(None, 202, {**_operation_headers(op, sub, "Microsoft.Storage", async_header=False)})


def _require_storage(data: Data, sub: str, rg: str, name: str) -> dict:
    _require_rg(data, sub, rg)
    parent = _get(data, _storage_id(sub, rg, name))
    if parent is None:
        raise ArmError(404, "ParentResourceNotFound",
                       f"Can not perform requested operation on nested resource. Parent resource '{name}' not found.")
    if _state(parent) != "Succeeded":
        raise ArmError(409, "StorageAccountOperationInProgress",
                       f"The storage account '{name}' is still being provisioned.")
    return parent


def blob_service(data: Data, sub: str, rg: str, name: str) -> Response:
    _require_storage(data, sub, rg, name)
    rid = f"{_storage_id(sub, rg, name)}/blobServices/default"
    current = _get(data, rid) or {"id": rid, "name": "default", "type": "Microsoft.Storage/storageAccounts/blobServices",
                                  "properties": {"deleteRetentionPolicy": {"enabled": False},
                                                 "containerDeleteRetentionPolicy": {"enabled": False}}}
    if request.method == "GET":
        return _json(current)
    resource = {**current, "properties": _merge(current["properties"], _body().get("properties") or {})}
    _put(data, resource)
    return _json(resource)


def container(data: Data, sub: str, rg: str, account_name: str, name: str) -> Response:
    _require_storage(data, sub, rg, account_name)
    rid = f"{_storage_id(sub, rg, account_name)}/blobServices/default/containers/{name}"
    current = _get(data, rid)
    kind_name = "Microsoft.Storage/storageAccounts/blobServices/containers"
    if request.method == "GET":
        if current is None:
            raise ArmError(404, "ContainerNotFound", "The specified container does not exist.")
        return _json(current)
    if request.method == "DELETE":
        if current is None:
            return Response(status=204)
        _remove_tree(data, rid)
        return Response(status=200)
    if not re.fullmatch(r"[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]", name):
        raise ArmError(400, "ContainerOperationFailure", "The specified resource name contains invalid characters.")
    body = _body()
    if request.method == "PUT" and current is not None:
        raise ArmError(409, "ContainerAlreadyExists", "The specified container already exists.")
    if request.method == "PATCH" and current is None:
        raise ArmError(404, "ContainerNotFound", "The specified container does not exist.")
    props = _merge((current or {}).get("properties", {}), body.get("properties") or {})
    props.setdefault("publicAccess", "None")
    resource = {"id": rid, "name": name, "type": kind_name, "etag": f'"{uuid.uuid4().hex}"',
                "properties": {**props, "lastModifiedTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                               "leaseState": "Available", "hasImmutabilityPolicy": False, "hasLegalHold": False}}
    _put(data, resource)
    return _json(resource, 201 if current is None else 200)


# --- Authorization -------------------------------------------------------------------------------------

def role_assignment(data: Data, scope: str, name: str) -> Response:
    rid = f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"
    current = _get(data, rid)
    if request.method == "GET":
        if current is None:
            raise ArmError(404, "RoleAssignmentNotFound", f"The role assignment '{name}' is not found.")
        return _json(current)
    if request.method == "DELETE":
        if current is None:
            return Response(status=204)
        _remove_tree(data, rid)
        return _json(current)
    if not GUID.match(name):
        raise ArmError(400, "InvalidRoleAssignmentId",
                       f"The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID.")
    props = _sdk_checked(_body(), "azure.mgmt.authorization.models.RoleAssignmentCreateParameters").get(
        "properties") or {}
    if not GUID.match(props.get("principalId") or ""):
        raise ArmError(400, "InvalidPrincipalId", "A valid principal ID must be provided for role assignment.")
    if not (props.get("roleDefinitionId") or "").lower().startswith("/subscriptions/") or \
            "/providers/microsoft.authorization/roledefinitions/" not in props["roleDefinitionId"].lower():
        raise ArmError(400, "InvalidRoleDefinitionId", "The role definition ID is not valid.")
    scope_parts = scope.strip("/").split("/")
    if len(scope_parts) > 2 and _get(data, scope) is None:
        # Assigning at a scope that does not exist is refused: the provisioning order must be right.
        raise ArmError(400, "InvalidResourceScope" if len(scope_parts) > 4 else "ResourceGroupNotFound",
                       f"The scope '{scope}' is not valid or does not exist.")
    wanted = {"roleDefinitionId": props["roleDefinitionId"], "principalId": props["principalId"],
              "principalType": props.get("principalType") or "ServicePrincipal", "scope": scope,
              **{k: props[k] for k in ("condition", "conditionVersion", "description") if props.get(k)}}
    if wanted.get("condition") and wanted.get("conditionVersion") != "2.0":
        raise ArmError(400, "InvalidConditionVersion", "A role assignment condition requires conditionVersion 2.0.")
    if current is not None:
        if {k: current["properties"].get(k) for k in ("roleDefinitionId", "principalId")} != \
                {k: wanted[k] for k in ("roleDefinitionId", "principalId")}:
            raise ArmError(409, "RoleAssignmentUpdateNotPermitted",
                           "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.")
        return _json(current, 201)
    for other in data.get("resources", {}).values():
        if other["type"] == "Microsoft.Authorization/roleAssignments" and \
                _key(other["properties"]["scope"]) == _key(scope) and \
                other["properties"]["principalId"] == wanted["principalId"] and \
                other["properties"]["roleDefinitionId"].lower() == wanted["roleDefinitionId"].lower():
            raise ArmError(409, "RoleAssignmentExists", "The role assignment already exists.")
    resource = {"id": rid, "name": name, "type": "Microsoft.Authorization/roleAssignments", "properties": wanted}
    _put(data, resource)
    return _json(resource, 201)


# --- operations ------------------------------------------------------------------------------------------

def operation_status(data: Data, sub: str, namespace: str, location: str, op_id: str) -> Response:
    op = data.get("operations", {}).get(op_id)
    if op is None:
        raise ArmError(404, "OperationNotFound", f"The operation '{op_id}' was not found.")
    body = {"id": request.path, "name": op_id, "status": op["status"],
            "startTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(op["start_time"]))}
    if op.get("end_time") is not None:  # ARM's operation status has endTime once the operation is over
        body["endTime"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(op["end_time"]))
    if op["status"] == "Failed":
        body["error"] = op["error"]
    return _json(body)


def operation_result(data: Data, sub: str, namespace: str, location: str, op_id: str) -> Response:
    op = data.get("operations", {}).get(op_id)
    if op is None:
        raise ArmError(404, "OperationNotFound", f"The operation '{op_id}' was not found.")
    if op["status"] == "InProgress":
        return _json(None, 202, {"Location": request.url})
    if op["status"] == "Failed":
        raise ArmError(400, op["error"]["code"], op["error"]["message"])
    resource = _get(data, op["resource_id"])
    if op["action"] != "delete" and resource is not None:
        return _json(resource)
    return Response(status=204)


# --- routing -------------------------------------------------------------------------------------------------

_SEG = r"([^/]+)"
_SUB = rf"/subscriptions/{_SEG}"
_RG = rf"{_SUB}/resourcegroups/{_SEG}"
_CS = rf"{_RG}/providers/microsoft\.cognitiveservices/accounts/{_SEG}"
_ST = rf"{_RG}/providers/microsoft\.storage/storageaccounts/{_SEG}"
ROUTES: list[tuple[re.Pattern, Callable[..., Response]]] = [(re.compile(p + "$", re.IGNORECASE), h) for p, h in [
    (rf"(/subscriptions/.+?)/providers/microsoft\.authorization/roleassignments/{_SEG}", role_assignment),
    (rf"{_SUB}/providers/{_SEG}/locations/{_SEG}/operationstatuses/{_SEG}", operation_status),
    (rf"{_SUB}/providers/{_SEG}/locations/{_SEG}/operationresults/{_SEG}", operation_result),
    (rf"{_SUB}/providers/microsoft\.cognitiveservices/locations/{_SEG}/models", models_list),
    (rf"{_SUB}/providers/microsoft\.cognitiveservices/locations/{_SEG}/usages", usages_list),
    (rf"{_SUB}/providers/microsoft\.cognitiveservices/checkdomainavailability", check_domain),
    (rf"{_SUB}/providers/microsoft\.cognitiveservices/locations/{_SEG}/resourcegroups/{_SEG}/deletedaccounts/{_SEG}",
     deleted_account),
    (_RG, resource_group),
    (rf"{_RG}/resources", group_resources),
    (_CS, account),
    (rf"{_CS}/deployments", list_deployments),
    (rf"{_CS}/deployments/{_SEG}", deployment),
    (_ST, storage_account),
    (rf"{_ST}/blobservices/default", blob_service),
    (rf"{_ST}/blobservices/default/containers/{_SEG}", container),
]]


@bp.route("/subscriptions/<path:_rest>", methods=["GET", "HEAD", "PUT", "PATCH", "DELETE", "POST"])
def dispatch(_rest: str) -> Response:
    if not request.args.get("api-version"):
        return error(400, "MissingApiVersionParameter",
                     "The api-version query parameter (?api-version=) is required for all requests.")
    if not request.headers.get("Authorization", "").startswith("Bearer "):
        return error(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
    path = request.path.rstrip("/")
    for pattern, handler in ROUTES:
        match = pattern.match(path)
        if match:
            arm = get_store("arm")
            with arm.lock():  # one request at a time sees and changes the state
                # Settling is a fact about time, not part of this request: its own transaction, kept whatever the
                # request answers (an error rolls back the request's changes only, never a finished operation).
                with arm.transaction() as data:
                    settle(data)
                try:
                    with arm.transaction() as data:
                        return handler(data, *match.groups())
                except ArmError as exc:
                    return error(exc.status, exc.code, exc.message)
    return error(404, "InvalidResourceType", f"The resource type could not be found for path '{path}'.")
