"""Where model records live: the environment's own storage, beside the ledger.

SageMaker environments keep them in the artifacts bucket, Azure environments in the data container, under
`ftops-models/<env>/<job>/<artifact digest>.json` (a sibling of `ftops-ledger/<env>/`, so a listing of the
ledger never meets a record). One object per artifact: a retrained model gets a record of its own and the
history stays. Creation is conditional (`If-None-Match: *`) and every update is conditional on the ETag read
(`If-Match`), so two writers never silently overwrite each other's approval.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

from jobs.buckets import container_checked, is_container_not_found
from jobs.errors import CloudError
from jobs.models.record import ModelRecord

if TYPE_CHECKING:
    from jobs.config.environment import Environment

PREFIX = "ftops-models/"


def record_key(env_name: str, job: str, digest: str) -> str:
    return f"{PREFIX}{env_name}/{job}/{digest}.json"


class Conflict(CloudError):
    """Another writer changed the record since it was read."""


class RecordStore(ABC):
    location: str

    def __init__(self, env_name: str) -> None:
        self.env_name = env_name

    @abstractmethod
    def _read(self, key: str) -> tuple[bytes, str] | None: ...

    @abstractmethod
    def _write(self, key: str, data: bytes, etag: str | None) -> str:
        """Create (etag None: only if absent) or replace (only if unchanged); raises Conflict otherwise."""

    @abstractmethod
    def _list(self, prefix: str) -> list[str]: ...

    def url(self, record: ModelRecord) -> str:
        return f"{self.location}{record_key(self.env_name, record.job, record.artifact.digest)}"

    def get(self, job: str, digest: str) -> tuple[ModelRecord, str] | None:
        key = record_key(self.env_name, job, digest)
        found = self._read(key)
        if found is None:
            return None
        raw, etag = found
        try:
            return ModelRecord.model_validate_json(raw), etag
        except ValueError as exc:
            raise CloudError(f"corrupt model record: {str(exc).splitlines()[0]}", source=f"{self.location}{key}",
                             hint="restore it from the bucket's version history") from None

    def put(self, record: ModelRecord, etag: str | None = None) -> str:
        import time

        record.updated_at = time.time()
        key = record_key(self.env_name, record.job, record.artifact.digest)
        return self._write(key, record.model_dump_json(indent=2).encode(), etag)

    def records(self, job: str | None = None) -> list[ModelRecord]:
        """Every record (of one job), newest first."""
        root = f"{PREFIX}{self.env_name}/"
        prefix = root + (f"{job}/" if job else "")
        found = []
        for key in self._list(prefix):
            # `<job>/<digest>.json`; deeper keys are the records' attachments (the registry's metrics file).
            if key.endswith(".json") and key[len(root):].count("/") == 1:
                hit = self._read(key)
                if hit is not None:
                    found.append(ModelRecord.model_validate_json(hit[0]))
        return sorted(found, key=lambda r: r.created_at, reverse=True)


class S3Records(RecordStore):
    def __init__(self, env_name: str, client: Any, bucket: str) -> None:
        super().__init__(env_name)
        self.client, self.bucket = client, bucket
        self.location = f"s3://{bucket}/"

    def _read(self, key: str) -> tuple[bytes, str] | None:
        try:
            got = self.client.get_object(Bucket=self.bucket, Key=key)
        except self.client.exceptions.NoSuchKey:
            return None
        return got["Body"].read(), got["ETag"]

    def _write(self, key: str, data: bytes, etag: str | None) -> str:
        condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        try:
            put = self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType="application/json",
                                         **condition)
        except Exception as exc:
            code = (getattr(exc, "response", {}) or {}).get("Error", {}).get("Code")
            if code in {"PreconditionFailed", "ConditionalRequestConflict"}:
                raise Conflict("the model record changed while this command ran", source=f"{self.location}{key}",
                               hint="run the command again") from None
            raise
        return put["ETag"]

    def _list(self, prefix: str) -> list[str]:
        keys = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys += [obj["Key"] for obj in page.get("Contents", [])]
        return keys


class BlobRecords(RecordStore):
    def __init__(self, env_name: str, container: Any, missing_container: Any = None) -> None:
        super().__init__(env_name)
        self.container = container
        self.location = f"{container.url}/"
        self.missing_container = missing_container
        """Makes the one-line error for a container that does not exist (the ledger's)."""

    def _read(self, key: str) -> tuple[bytes, str] | None:
        from azure.core.exceptions import ResourceNotFoundError

        with container_checked(self.missing_container):
            try:
                download = self.container.download_blob(key)
            except ResourceNotFoundError as exc:
                if is_container_not_found(exc):
                    raise
                return None
            return download.readall(), download.properties.etag

    def _write(self, key: str, data: bytes, etag: str | None) -> str:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError

        blob = self.container.get_blob_client(key)
        with container_checked(self.missing_container):
            try:
                if etag is None:
                    result = blob.upload_blob(data, overwrite=False)
                else:
                    result = blob.upload_blob(data, overwrite=True, etag=etag,
                                              match_condition=MatchConditions.IfNotModified)
            except (ResourceExistsError, ResourceModifiedError):
                raise Conflict("the model record changed while this command ran", source=f"{self.location}{key}",
                               hint="run the command again") from None
        return result["etag"]

    def _list(self, prefix: str) -> list[str]:
        with container_checked(self.missing_container):
            return [blob.name for blob in self.container.list_blobs(name_starts_with=prefix)]


def store_for(env: Environment, provider: str) -> RecordStore:
    """The record store of `env` for jobs of `provider` (the storage that provider's ledger uses)."""
    from jobs import providers

    ledger = providers.get(provider).ledger(env)  # checks the bucket/container in emulated environments
    if provider == "sagemaker":
        return S3Records(env.name, ledger.client, ledger.bucket)
    return BlobRecords(env.name, ledger.container, ledger.missing_container)
