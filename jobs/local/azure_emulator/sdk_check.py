"""ARM request bodies held to the installed azure-mgmt SDK models (the SDKs are generated from the same REST specs).

`problem(body, Model)` walks a JSON body against the msrest model's attribute map (nested and flattened
properties included) and returns the first thing ARM would refuse: a member the model does not have, a
read-only member, or a value outside the model's enum (compared case-insensitively, as ARM does). The ARM
Blueprint turns it into `400 InvalidRequestContent` with ARM's error body.
"""

from __future__ import annotations

import enum
import inspect
import re
from functools import cache
from types import ModuleType
from typing import Any

_MODEL_REF = re.compile(r"_models\.(\w+)")


@cache
def _layout(cls: type) -> dict[str, Any]:
    """REST key -> (attribute, type, readonly, enum values) or a nested dict for flattened keys."""
    tree: dict[str, Any] = {}
    validation = getattr(cls, "_validation", {}) or {}
    hints = _enum_hints(cls)
    for attr, spec in cls._attribute_map.items():  # type: ignore[attr-defined]
        parts = [p.replace("\0", ".") for p in spec["key"].replace("\\.", "\0").split(".")]
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = (attr, spec["type"], bool(validation.get(attr, {}).get("readonly")), hints.get(attr))
    return tree


def _enum_hints(cls: type) -> dict[str, frozenset[str]]:
    module = inspect.getmodule(cls)
    models = _models_of(module)
    out = {}
    try:
        parameters = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return out
    for name, parameter in parameters.items():
        for ref in _MODEL_REF.findall(str(parameter.annotation)):
            found = getattr(models, ref, None)
            if isinstance(found, type) and issubclass(found, enum.Enum):
                out[name] = frozenset(str(m.value).lower() for m in found)
    return out


def _models_of(module: ModuleType | None) -> ModuleType | None:
    if module is None:
        return None
    package = module.__name__.rsplit(".", 1)[0]
    import importlib

    return importlib.import_module(package)


def problem(body: Any, cls: type, path: str = "") -> str | None:
    if not isinstance(body, dict):
        return None
    return _walk(body, _layout(cls), cls, path)


def _walk(body: dict, layout: dict[str, Any], cls: type, path: str) -> str | None:
    models = _models_of(inspect.getmodule(cls))
    for key, value in body.items():
        where = f"{path}.{key}" if path else key
        entry = layout.get(key)
        if entry is None:
            return f"Could not find member '{key}' on object of type '{cls.__name__}'. Path '{where}'."
        if isinstance(entry, dict):
            if isinstance(value, dict):
                found = _walk(value, entry, cls, where)
                if found:
                    return found
            continue
        _attr, kind, readonly, values = entry
        if readonly:
            return f"The property '{where}' is read-only and cannot be set."
        if values is not None and isinstance(value, str) and value.lower() not in values:
            return f"The value '{value}' of '{where}' is not one of {sorted(values)}."
        found = _nested(value, kind, models, where)
        if found:
            return found
    return None


def _nested(value: Any, kind: str, models: ModuleType | None, where: str) -> str | None:
    if kind.startswith("[") and isinstance(value, list):
        for i, item in enumerate(value):
            found = _nested(item, kind[1:-1], models, f"{where}[{i}]")
            if found:
                return found
        return None
    if kind.startswith("{") and isinstance(value, dict):
        for name, item in value.items():
            found = _nested(item, kind[1:-1], models, f"{where}.{name}")
            if found:
                return found
        return None
    nested = getattr(models, kind, None) if models is not None else None
    if isinstance(nested, type) and hasattr(nested, "_attribute_map") and isinstance(value, dict):
        return problem(value, nested, where)
    return None
