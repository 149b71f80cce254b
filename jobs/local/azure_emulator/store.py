"""Emulator state on disk: one JSON document per namespace, changed under a lock and written atomically.

Usage from any Blueprint (the ARM one uses namespace "arm"; the OpenAI data plane uses its own):

    from jobs.local.azure_emulator.store import get_store
    with get_store("openai").transaction() as data:      # a dict; persisted when the block exits cleanly
        data.setdefault("files", {})[file_id] = {...}
    get_store("openai").blob_dir() / file_id              # a directory for large payloads (file contents)

A failed block (exception) leaves the document as it was on disk: nothing is half-changed.
"""

from __future__ import annotations

import contextlib
import copy
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
