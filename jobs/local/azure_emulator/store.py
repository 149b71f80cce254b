"""Emulator state on disk: one JSON document per namespace, changed under a lock and written atomically.

Usage from any Blueprint (the ARM one uses namespace "arm"; the OpenAI data plane uses its own):

    from jobs.local.azure_emulator.store import get_store
    with get_store("openai").transaction() as data:      # a dict; persisted when the block exits cleanly
        data.setdefault("files", {})[file_id] = {...}
    get_store("openai").blob_dir() / file_id              # a directory for large payloads (file contents)

A failed block (exception) leaves the document as it was on disk: nothing is half-changed.

The data plane keeps one store per Azure OpenAI account (`account_store(account_id, "openai")`), as Azure keeps
each account's files, jobs and batches apart: an id of one account is unknown to every other.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from flask import current_app

from jobs.fsutil import atomic_write


class Store:
    def __init__(self, state_dir: Path, namespace: str) -> None:
        self.path = Path(state_dir) / f"{namespace}.json"
        self.namespace = namespace
        self._lock = threading.RLock()
        self._data: dict[str, Any] = orjson.loads(self.path.read_bytes()) if self.path.exists() else {}

    @contextlib.contextmanager
    def transaction(self) -> Iterator[dict[str, Any]]:
        """Mutate a working copy; it replaces the state (memory and disk) only when the block succeeds."""
        with self._lock:
            work = copy.deepcopy(self._data)
            yield work
            if work != self._data:
                atomic_write(self.path, orjson.dumps(work, option=orjson.OPT_INDENT_2))
                self._data = work

    def lock(self) -> threading.RLock:
        """The store's (re-entrant) lock: hold it across several transactions that must see no other writer."""
        return self._lock

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._data)

    def blob_dir(self) -> Path:
        path = self.path.parent / f"{self.namespace}-blobs"
        path.mkdir(parents=True, exist_ok=True)
        return path


def get_store(namespace: str) -> Store:
    """The app's store for `namespace` (created on first use, loaded from disk if present)."""
    stores: dict[str, Store] = current_app.extensions["ftops_stores"]
    with current_app.extensions["ftops_stores_lock"]:
        if namespace not in stores:
            stores[namespace] = Store(current_app.config["FTOPS_STATE_DIR"], namespace)
        return stores[namespace]


def _account_dir(account_id: str) -> str:
    """Keyed by the account's ARM resource id (case-insensitive, as ARM ids are), hashed so that no name taken
    from a request ends up in a path."""
    return "accounts/" + hashlib.sha256(account_id.lower().rstrip("/").encode()).hexdigest()[:24]


def account_namespace(account_id: str, kind: str) -> str:
    """The namespace of one account's `kind` of data-plane state ("openai": files and fine-tuning jobs; "batch")."""
    return f"{_account_dir(account_id)}/{kind}"


def account_store(account_id: str, kind: str) -> Store:
    """The store of one account's data plane (see `account_namespace`)."""
    return get_store(account_namespace(account_id, kind))


def drop_account(account_id: str) -> None:
    """Erase an account's data plane, on disk and in memory (Azure erases it when the account is purged; a
    soft-deleted account keeps it for a restore). Call it once the ARM state no longer holds the account, so no
    request can reach these stores any more."""
    prefix = _account_dir(account_id) + "/"
    with current_app.extensions["ftops_stores_lock"]:
        stores: dict[str, Store] = current_app.extensions["ftops_stores"]
        for namespace in [n for n in stores if n.startswith(prefix)]:
            del stores[namespace]
        shutil.rmtree(Path(current_app.config["FTOPS_STATE_DIR"]) / prefix, ignore_errors=True)


def settings(namespace: str, defaults: dict[str, float], config_prefix: str) -> dict[str, float]:
    """Timings of a blueprint: what a test set over HTTP (kept across restarts), else the app's config
    (`<config_prefix><NAME>`), else the default."""
    stored = get_store(namespace).snapshot().get("settings", {})
    values = {}
    for name, default in defaults.items():
        configured = current_app.config.get(f"{config_prefix}{name.upper()}")
        values[name] = float(stored.get(name, configured if configured is not None else default))
    return values


def update_settings(namespace: str, defaults: dict[str, float], body: dict[str, Any]) -> list[str]:
    """Store the settings in `body`; returns the unknown names instead (and stores nothing) if there are any."""
    unknown = sorted(set(body) - set(defaults))
    if not unknown:
        with get_store(namespace).transaction() as data:
            data.setdefault("settings", {}).update({k: float(v) for k, v in body.items()})
    return unknown
