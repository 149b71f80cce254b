"""YAML user files into pydantic models, with errors that name the file, the line and the field."""

from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from jobs.errors import ConfigError

M = TypeVar("M", bound=BaseModel)
Loc = tuple[str | int, ...]


_STR_TAG = "tag:yaml.org,2002:str"


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (PyYAML silently keeps the last one)."""


def _construct(node: yaml.Node, loader: Any, path: Loc, lines: dict[Loc, int], source: Path | str) -> Any:
    """The data of `node` (any PyYAML safe loader, C or Python), refusing duplicate keys, recording lines."""
    # A key's line is where the key is written (set by the parent); items and the root use their own.
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.ScalarNode) and node.tag == _STR_TAG:
        return node.value  # what PyYAML's string constructor returns, without its dispatch (render reads many)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            plain = isinstance(key_node, yaml.ScalarNode) and key_node.tag == _STR_TAG
            key = key_node.value if plain else loader.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):
                raise ConfigError(
                    "a key must be a single value, not a list or mapping", source=source,
                    line=key_node.start_mark.line + 1, field=".".join(map(str, path)) or None,
                    hint="write the key as plain text",
                )
            if key in result:
                raise ConfigError(
                    f"duplicate key {key!r}", source=source, line=key_node.start_mark.line + 1,
                    field=".".join(map(str, (*path, key))), hint="keep one of the two entries",
                )
            lines[(*path, key)] = key_node.start_mark.line + 1
            result[key] = _construct(value_node, loader, (*path, key), lines, source)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, loader, (*path, i), lines, source) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def load_yaml(path: Path) -> tuple[Any, dict[Loc, int]]:
    """Parse `path`; return the data and a map from key path to 1-based line."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError("file not found", source=path, hint="check the path") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 ({exc.reason})", source=path, hint="save the file as UTF-8") from None
    loader = _UniqueKeyLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise ConfigError(
            f"invalid YAML: {exc.problem}", source=path, line=mark.line + 1 if mark else None,
            hint="fix the YAML syntax (indentation, quotes, colons)",
        ) from None
    finally:
        loader.dispose()
    if node is None:
        return {}, {}
    lines: dict[Loc, int] = {}
    return _construct(node, loader, (), lines, path), lines


def line_for(loc: Loc, lines: dict[Loc, int]) -> int | None:
    """The line of the deepest key on `loc` that exists in the file (a missing key points at its parent)."""
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def validation_to_config_error(exc: ValidationError, source: Path, lines: dict[Loc, int]) -> ConfigError:
    """The first pydantic error as one ConfigError naming file, line and dotted field."""
    first = exc.errors()[0]
    loc = tuple(part for part in first["loc"] if not (isinstance(part, str) and part.startswith("function-")))
    field = ".".join(map(str, loc)) or None
    kind = first["type"]
    message = first["msg"].removeprefix("Value error, ")
    hint = {
        "extra_forbidden": "remove the key, or check its spelling against the JSON Schema (ftops schema)",
        "missing": "add the field",
    }.get(kind)
    more = len(exc.errors()) - 1
    if more:
        message += f" (+{more} more error{'s' if more > 1 else ''})"
    return ConfigError(message, source=source, line=line_for(loc, lines), field=field, hint=hint)


def load_model(path: Path, model: type[M], *, overlay: dict[str, Any] | None = None, **context: Any) -> M:
    """Load `path` as `model`; `overlay` keys replace top-level keys (resolved values, overrides)."""
    data, lines = load_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping at the top level", source=path, line=1)
    if overlay:
        data = {**data, **overlay}
    try:
        return model.model_validate(data, context={"source": path, **context})
    except ValidationError as exc:
        raise validation_to_config_error(exc, path, lines) from None
