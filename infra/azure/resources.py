"""How each resource kind is read, created, updated and deleted with the management SDKs.

Every call goes through `errors.call`, which names the resource in errors. Reads return ARM's JSON shape
(`None` when the resource does not exist) so the diff compares like with like.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from infra.azure.clients import AzureClients
from infra.azure.desired import Resource
from infra.azure.errors import call

Body = dict[str, Any]


def to_rest(model: Any) -> Body | None:
    """An SDK model as ARM JSON: msrest models serialize, the newer typespec models are already mappings."""
    if model is None:
        return None
    if hasattr(model, "serialize"):
        return model.serialize(keep_readonly=True)
    return dict(model.as_dict())


def _read(what: str, fn: Callable[[], Any], on_retry=None) -> Body | None:
    from azure.core.exceptions import ResourceNotFoundError

    def get() -> Any:
        try:
            return fn()
        except ResourceNotFoundError:
            return None

    return to_rest(call(f"read {what}", get, on_retry=on_retry))


class Handler:
    """One resource kind. `update` defaults to `create` (PUT is idempotent for most ARM resources)."""

    def __init__(self, clients: AzureClients, on_retry: Callable[[str, float], None] | None = None) -> None:
        self.c = clients
        self.azure = clients.env.require_azure()
        self.on_retry = on_retry

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        return call(what, fn, on_retry=self.on_retry)

    def read(self, res: Resource) -> Body | None:
        raise NotImplementedError

    def create(self, res: Resource, actual: Body | None = None) -> None:
        raise NotImplementedError

    def update(self, res: Resource, actual: Body | None = None) -> None:
        self.create(res, actual)

    def delete(self, res: Resource) -> None:
        raise NotImplementedError


class ResourceGroupHandler(Handler):
    def read(self, res):
        return _read(res.label, lambda: self.c.resources.resource_groups.get(res.name), self.on_retry)

    def create(self, res, actual=None):
        from azure.mgmt.resource.resources.models import ResourceGroup

        self._call(f"create {res.label}",
                   lambda: self.c.resources.resource_groups.create_or_update(res.name, ResourceGroup(res.body)))

    def delete(self, res):
        self._call(f"delete {res.label}", lambda: self.c.resources.resource_groups.begin_delete(res.name).result())

    def remaining(self, res: Resource) -> list[str]:
        """Ids of resources still in the group (destroy keeps a group that holds anything it did not create)."""
        return self._call(f"list resources in {res.label}",
                          lambda: [r.id for r in self.c.resources.resources.list_by_resource_group(res.name)])


class StorageAccountHandler(Handler):
    def read(self, res):
        return _read(res.label, lambda: self.c.storage.storage_accounts.get_properties(
            self.azure.resource_group, res.name), self.on_retry)

    def create(self, res, actual=None):
        from azure.mgmt.storage.models import StorageAccountCreateParameters

        self._call(f"create {res.label}", lambda: self.c.storage.storage_accounts.begin_create(
            self.azure.resource_group, res.name, StorageAccountCreateParameters(res.body)).result())

    def update(self, res, actual=None):
        from azure.mgmt.storage.models import StorageAccountUpdateParameters

        body = {k: v for k, v in res.body.items() if k != "location"}
        self._call(f"update {res.label}", lambda: self.c.storage.storage_accounts.update(
            self.azure.resource_group, res.name, StorageAccountUpdateParameters(body)))

    def delete(self, res):
        self._call(f"delete {res.label}", lambda: self.c.storage.storage_accounts.delete(
            self.azure.resource_group, res.name))


class BlobServiceHandler(Handler):
    def read(self, res):
        return _read(res.label, lambda: self.c.storage.blob_services.get_service_properties(
            self.azure.resource_group, self.azure.storage_account), self.on_retry)

    def create(self, res, actual=None):
        from azure.mgmt.storage.models import BlobServiceProperties

        self._call(f"configure {res.label}", lambda: self.c.storage.blob_services.set_service_properties(
            self.azure.resource_group, self.azure.storage_account, BlobServiceProperties(res.body)))

    def delete(self, res):  # goes with its storage account
        return None


class ContainerHandler(Handler):
    """The data container. On Azure one ARM PUT makes it on the blob endpoint too; on the emulators ARM (ftops'
    emulator) and Blob (Azurite) are separate processes, so in an emulated environment the container exists only
    when both hold it, and apply makes it on Azurite as well. This is the only place ftops creates a container:
    every other command refuses a missing one (jobs.buckets)."""

    def _name(self, res: Resource) -> str:
        return res.name.split("/", 1)[1]

    def _arm_read(self, res: Resource) -> Body | None:
        return _read(res.label, lambda: self.c.storage.blob_containers.get(
            self.azure.resource_group, self.azure.storage_account, self._name(res)), self.on_retry)

    def read(self, res):
        actual = self._arm_read(res)
        if actual is not None and self.c.env.emulated and not self._on_azurite(res):
            return None  # ARM has it, Azurite lost it (an emulator restarted empty): apply makes it there
        return actual

    def create(self, res, actual=None):
        from azure.mgmt.storage.models import BlobContainer

        if not (self.c.env.emulated and self._arm_read(res) is not None):
            self._call(f"create {res.label}", lambda: self.c.storage.blob_containers.create(
                self.azure.resource_group, self.azure.storage_account, self._name(res), BlobContainer(res.body)))
        self._make_on_azurite(res)

    def update(self, res, actual=None):
        from azure.mgmt.storage.models import BlobContainer

        self._call(f"update {res.label}", lambda: self.c.storage.blob_containers.update(
            self.azure.resource_group, self.azure.storage_account, self._name(res), BlobContainer(res.body)))
        self._make_on_azurite(res)

    def delete(self, res):  # goes with its storage account
        return None

    def _on_azurite(self, res: Resource) -> bool:
        from jobs.buckets import container_exists
        from jobs.clients import blob_service

        return container_exists(self.c.env, blob_service(self.c.env).get_container_client(self._name(res)))

    def _make_on_azurite(self, res: Resource) -> None:
        if not self.c.env.emulated:
            return
        self._call(f"create {res.label} on Azurite", lambda: make_on_azurite(self.c.env, self._name(res)))


def make_on_azurite(env: Any, name: str) -> None:
    """An emulated environment's container on Azurite, as ContainerHandler makes it (test fixtures reuse it)."""
    from azure.core.exceptions import ResourceExistsError

    from jobs.clients import blob_service

    try:
        blob_service(env).get_container_client(name).create_container()
    except ResourceExistsError:
        pass


class OpenAIAccountHandler(Handler):
    def read(self, res):
        return _read(res.label, lambda: self.c.cognitive.accounts.get(self.azure.resource_group, res.name),
                     self.on_retry)

    def soft_deleted(self, res: Resource) -> bool:
        """Azure keeps deleted accounts (and their subdomain) for 48 hours unless purged."""
        return _read(f"deleted {res.label}", lambda: self.c.cognitive.deleted_accounts.get(
            self.azure.location, self.azure.resource_group, res.name), self.on_retry) is not None

    def create(self, res, actual=None):
        from azure.mgmt.cognitiveservices.models import Account

        body = res.body
        if self.soft_deleted(res):
            body = {**body, "properties": {**body["properties"], "restore": True}}
        self._call(f"create {res.label}", lambda: self.c.cognitive.accounts.begin_create(
            self.azure.resource_group, res.name, Account.deserialize(body)).result())

    def update(self, res, actual=None):
        from azure.mgmt.cognitiveservices.models import Account

        self._call(f"update {res.label}", lambda: self.c.cognitive.accounts.begin_update(
            self.azure.resource_group, res.name, Account.deserialize(res.body)).result())

    def delete(self, res, *, purge: bool = False):
        self._call(f"delete {res.label}", lambda: self.c.cognitive.accounts.begin_delete(
            self.azure.resource_group, res.name).result())
        if purge:
            self._call(f"purge {res.label}", lambda: self.c.cognitive.deleted_accounts.begin_purge(
                self.azure.location, self.azure.resource_group, res.name).result())


class DeploymentHandler(Handler):
    def _names(self, res: Resource) -> tuple[str, str]:
        account, name = res.name.split("/", 1)
        return account, name

    def read(self, res):
        account, name = self._names(res)
        return _read(res.label, lambda: self.c.cognitive.deployments.get(self.azure.resource_group, account, name),
                     self.on_retry)

    def create(self, res, actual=None):
        from azure.mgmt.cognitiveservices.models import Deployment

        account, name = self._names(res)
        self._call(f"deploy {res.label}", lambda: self.c.cognitive.deployments.begin_create_or_update(
            self.azure.resource_group, account, name, Deployment.deserialize(res.body)).result())

    def delete(self, res):
        account, name = self._names(res)
        self._call(f"delete {res.label}", lambda: self.c.cognitive.deployments.begin_delete(
            self.azure.resource_group, account, name).result())


class RoleAssignmentHandler(Handler):
    def read(self, res):
        return _read(res.label, lambda: self.c.authorization.role_assignments.get(
            res.extra["scope"], res.extra["assignment_name"]), self.on_retry)

    def create(self, res, actual=None):
        from azure.mgmt.authorization.models import RoleAssignmentCreateParameters

        self._call(f"assign {res.label}", lambda: self.c.authorization.role_assignments.create(
            res.extra["scope"], res.extra["assignment_name"], RoleAssignmentCreateParameters.deserialize(res.body)))

    def delete(self, res):
        self._call(f"remove {res.label}", lambda: self.c.authorization.role_assignments.delete(
            res.extra["scope"], res.extra["assignment_name"]))


HANDLERS: dict[str, type[Handler]] = {
    "resource_group": ResourceGroupHandler, "storage_account": StorageAccountHandler,
    "blob_service": BlobServiceHandler, "container": ContainerHandler, "openai_account": OpenAIAccountHandler,
    "deployment": DeploymentHandler, "role_assignment": RoleAssignmentHandler,
}


def handler(clients: AzureClients, kind: str, on_retry=None) -> Handler:
    return HANDLERS[kind](clients, on_retry)
