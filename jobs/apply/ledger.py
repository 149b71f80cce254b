"""The ledger: idempotency key -> provider job id, kept in the environment's own cloud storage.

One object per key. Creating it is a conditional write (S3 `If-None-Match: *`, Blob `If-None-Match: *`), so of
two appliers racing for a key exactly one wins the claim; every later change is conditional on the ETag the
writer last saw (`If-Match`), so a stale claim is taken over by exactly one rerun. The pipeline runner keeps
no local state: a fresh runner, a retried pipeline and a concurrent pipeline all read the same ledger.

An entry moves claimed -> submitted (or claimed -> failed, which a rerun may claim again).
"""

from __future__ import annotations

import os
import re
import socket
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import orjson

from jobs.buckets import container_checked, is_container_not_found
from jobs.errors import FtopsError
from jobs.processes import pid_alive

EntryState = Literal["claimed", "submitted", "failed"]
KEY = re.compile(r"^[0-9a-f]{64}$")
"""An idempotency key (sha256 hex): the only thing that may name a ledger object."""


def object_name(prefix: str, key: str) -> str:
    """`prefix<key>.json`; a key that is not a sha256 never becomes a path (`../../evil` is refused)."""
    if not KEY.match(key):
        raise FtopsError(f"{key[:80]!r} is not an idempotency key (64 hex digits)", field="idempotency_key",
                         hint="re-run `ftops render`; keys are computed, never edited")
    return f"{prefix}{key}.json"


class LedgerCorrupt(FtopsError):
    """A ledger object that is not an entry ftops wrote (named with its location)."""
DEFAULT_LEASE_S = 900.0


@dataclass
class LedgerEntry:
    key: str
    job_name: str
    provider: str
    state: EntryState
    run_id: str
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    updated_at: float = field(default_factory=time.time)
    job_id: str | None = None
    error: str | None = None
    etag: str | None = None
    """The version this entry was read or written at (not stored in the object)."""

    def to_bytes(self) -> bytes:
        data = asdict(self)
        data.pop("etag")
        return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)

    @classmethod
    def from_bytes(cls, raw: bytes, etag: str | None, location: str = "ledger") -> LedgerEntry:
        """Parse a stored entry; anything else raises LedgerCorrupt naming `location` (one line, no traceback)."""
        hint = "delete the object (the next apply looks the job up in the cloud and records it again)"
        try:
            data: Any = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise LedgerCorrupt(f"corrupt ledger entry: not JSON ({exc})", source=location, hint=hint) from None
        if not isinstance(data, dict):
            raise LedgerCorrupt("corrupt ledger entry: not a JSON object", source=location, hint=hint)
        known = set(cls.__dataclass_fields__) - {"etag"}
        missing = {"key", "job_name", "provider", "state", "run_id"} - set(data)
        if missing:
            raise LedgerCorrupt(f"corrupt ledger entry: no {', '.join(sorted(missing))}", source=location, hint=hint)
        entry = cls(**{k: v for k, v in data.items() if k in known}, etag=etag)
        kinds = {"key": str, "job_name": str, "provider": str, "run_id": str, "host": str, "pid": int,
                 "updated_at": (int, float), "job_id": (str, type(None)), "error": (str, type(None))}
        for name, kind in kinds.items():
            if not isinstance(getattr(entry, name), kind):
                raise LedgerCorrupt(f"corrupt ledger entry: {name} has the wrong type", source=location,
                                    field=name, hint=hint)
        if entry.state not in ("claimed", "submitted", "failed"):
            raise LedgerCorrupt(f"corrupt ledger entry: unknown state {str(entry.state)[:40]!r}", source=location,
                                field="state", hint=hint)
        return entry

    def problem(self, key: str, job_name: str) -> str | None:
        """Why this entry, read from the object for `key`, cannot be trusted for job `job_name` (None: it can).
        An entry copied or edited into another job's object names another key or job."""
        if self.key != key:
            return f"the ledger entry for key {key[:12]} carries key {self.key[:12]!r}"
        if self.job_name != job_name:
            return f"the ledger entry for {job_name} names job {self.job_name[:80]!r}"
        return None

    def is_stale(self, lease_s: float = DEFAULT_LEASE_S, now: float | None = None) -> bool:
        """A claim whose owner is gone: a dead process on this host, or silent for longer than the lease."""
        if self.state != "claimed":
            return self.state == "failed"
        if self.host == socket.gethostname() and not pid_alive(self.pid):
            return True
        return (now or time.time()) - self.updated_at > lease_s


class Ledger(ABC):
    location: str
    """Where the entries live, for messages (an s3:// or https:// URL prefix)."""

    @abstractmethod
    def get(self, key: str) -> LedgerEntry | None: ...

    @abstractmethod
    def create(self, entry: LedgerEntry) -> LedgerEntry | None:
        """Write `entry` only if no entry exists for its key; None when another writer got there first."""

    @abstractmethod
    def replace(self, entry: LedgerEntry, etag: str) -> LedgerEntry | None:
        """Overwrite only if the stored entry still has `etag`; None when it changed meanwhile."""

    @abstractmethod
    def keys(self) -> list[str]: ...


class S3Ledger(Ledger):
    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self.client, self.bucket, self.prefix = client, bucket, prefix
        self.location = f"s3://{bucket}/{prefix}"

    def _key(self, key: str) -> str:
        return object_name(self.prefix, key)

    @staticmethod
    def _precondition_failed(exc: Exception) -> bool:
        response = getattr(exc, "response", {}) or {}
        code = response.get("Error", {}).get("Code")
        # 409 ConditionalRequestConflict: a concurrent conditional write to the same key is in flight.
        return code in {"PreconditionFailed", "ConditionalRequestConflict"} or \
            response.get("ResponseMetadata", {}).get("HTTPStatusCode") in {409, 412}

    def get(self, key: str) -> LedgerEntry | None:
        try:
            got = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except self.client.exceptions.NoSuchKey:
            return None
        return LedgerEntry.from_bytes(got["Body"].read(), got["ETag"], f"s3://{self.bucket}/{self._key(key)}")

    def create(self, entry: LedgerEntry) -> LedgerEntry | None:
        try:
            put = self.client.put_object(Bucket=self.bucket, Key=self._key(entry.key), Body=entry.to_bytes(),
                                         ContentType="application/json", IfNoneMatch="*")
        except Exception as exc:
            if self._precondition_failed(exc):
                return None
            raise
        entry.etag = put["ETag"]
        return entry

    def replace(self, entry: LedgerEntry, etag: str) -> LedgerEntry | None:
        try:
            put = self.client.put_object(Bucket=self.bucket, Key=self._key(entry.key), Body=entry.to_bytes(),
                                         ContentType="application/json", IfMatch=etag)
        except Exception as exc:
            if self._precondition_failed(exc) or getattr(exc, "response", {}).get("Error", {}).get("Code") == "NoSuchKey":
                return None
            raise
        entry.etag = put["ETag"]
        return entry

    def keys(self) -> list[str]:
        found = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
            found += [obj["Key"][len(self.prefix):].removesuffix(".json") for obj in page.get("Contents", [])]
        return found


class BlobLedger(Ledger):
    def __init__(self, container: Any, prefix: str, missing_container: Callable[[], Exception] | None = None) -> None:
        """`missing_container` makes the error for a container that does not exist (one line naming it and the
        provisioning step): without it ContainerNotFound would read as "no entry" and a plan say "create"."""
        self.container, self.prefix = container, prefix
        self.location = f"{container.url}/{prefix}"
        self.missing_container = missing_container or (lambda: FtopsError(
            f"container {container.container_name} does not exist", source=container.url))

    def _name(self, key: str) -> str:
        return object_name(self.prefix, key)

    def get(self, key: str) -> LedgerEntry | None:
        from azure.core.exceptions import ResourceNotFoundError

        with container_checked(self.missing_container):
            try:
                download = self.container.download_blob(self._name(key))
            except ResourceNotFoundError as exc:
                if is_container_not_found(exc):
                    raise
                return None
            return LedgerEntry.from_bytes(download.readall(), download.properties.etag,
                                          f"{self.container.url}/{self._name(key)}")

    def create(self, entry: LedgerEntry) -> LedgerEntry | None:
        from azure.core.exceptions import ResourceExistsError

        with container_checked(self.missing_container):
            try:
                # overwrite=False sends If-None-Match: *.
                result = self.container.get_blob_client(self._name(entry.key)).upload_blob(entry.to_bytes(),
                                                                                           overwrite=False)
            except ResourceExistsError:
                return None
        entry.etag = result["etag"]
        return entry

    def replace(self, entry: LedgerEntry, etag: str) -> LedgerEntry | None:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        with container_checked(self.missing_container):
            try:
                result = self.container.get_blob_client(self._name(entry.key)).upload_blob(
                    entry.to_bytes(), overwrite=True, etag=etag, match_condition=MatchConditions.IfNotModified)
            except ResourceModifiedError:
                return None
            except ResourceNotFoundError as exc:
                if is_container_not_found(exc):
                    raise
                return None
        entry.etag = result["etag"]
        return entry

    def keys(self) -> list[str]:
        with container_checked(self.missing_container):
            return [blob.name[len(self.prefix):].removesuffix(".json")
                    for blob in self.container.list_blobs(name_starts_with=self.prefix)]
