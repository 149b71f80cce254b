"""YAML user files into pydantic models, with errors that name the file, the line and the field.

Hostile or careless YAML gets one line, never a traceback, a hang or a memory blow-up: files are bounded in size,
nesting is bounded before anything recursive runs (checked on the parser's event stream), aliases are sized
before they are expanded (a few hundred bytes of nested aliases would otherwise expand to millions of values),
recursive aliases and tags outside YAML's plain types (`!!python/name:...`) are refused with their line, and
integers are bounded in length (Python refuses int() over 4,300 digits with a ValueError).
"""

from __future__ import annotations

import os
from collections.abc import Hashable
from datetime import date
from pathlib import Path
from stat import S_ISREG
from types import UnionType
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from jobs.errors import ConfigError, FieldValueError, FtopsError

M = TypeVar("M", bound=BaseModel)
Loc = tuple[str | int, ...]


_STR_TAG = "tag:yaml.org,2002:str"
_INT_TAG = "tag:yaml.org,2002:int"
_MERGE_TAG = "tag:yaml.org,2002:merge"

MAX_YAML_BYTES = 1 << 20
"""Largest declaration file read (1 MiB; the shipped ones are a few KiB)."""
MAX_DEPTH = 64
"""Deepest nesting of mappings and lists, counted after aliases are expanded."""
MAX_VALUES = 20_000
"""Most values (scalars, mappings, lists) a file may hold after aliases and merge keys are expanded (the shipped
files hold under 200; building 20,000 with their line marks takes about 0.2 s)."""
MAX_INT_CHARS = 40
"""Longest integer literal (no setting of ftops needs more than 20 digits)."""
ALLOWED_TAGS = frozenset(f"tag:yaml.org,2002:{name}" for name in
                         ("str", "int", "float", "bool", "null", "seq", "map", "merge", "value", "timestamp"))
"""Tags a declaration may carry, implicit or written out: YAML's plain types (no binary, sets or python/*)."""

_CParser = getattr(getattr(yaml, "cyaml", None), "CParser", None)  # libyaml's parser, when PyYAML has it


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (PyYAML silently keeps the last one)."""


# Composes the node graph: libyaml's loader when PyYAML has it (the same nodes and start marks, a few times
# faster than the pure-Python composer), else the pure-Python one. Either way `build` sizes the graph, refuses
# duplicate keys and records lines, so the limits and messages are the same.
_DEFAULT_LOADER: Any = getattr(yaml, "CSafeLoader", None) or _UniqueKeyLoader


def _limit_error(message: str, source: Path | str, mark: Any, hint: str) -> ConfigError:
    return ConfigError(message, source=source, line=mark.line + 1 if mark is not None else None, hint=hint)


def scan(text: str, source: Path | str) -> None:
    """Check nesting depth and tags on the event stream (iterative: nothing recurses on hostile nesting)."""
    events = _CParser(text) if _CParser is not None else None
    stream = iter(events.get_event, None) if events is not None else yaml.parse(text, Loader=yaml.SafeLoader)
    depth = 0
    try:
        for event in stream:
            kind = type(event)
            if kind is yaml.StreamEndEvent:
                break
            tag = getattr(event, "tag", None)
            if tag not in (None, "!") and tag not in ALLOWED_TAGS:
                raise _limit_error(f"the tag {tag.replace('tag:yaml.org,2002:', '!!')} is not allowed",
                                   source, event.start_mark, "declarations hold plain values; remove the tag")
            if kind in (yaml.MappingStartEvent, yaml.SequenceStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise _limit_error(f"nested more than {MAX_DEPTH} levels deep", source, event.start_mark,
                                       "flatten the structure")
            elif kind in (yaml.MappingEndEvent, yaml.SequenceEndEvent):
                depth -= 1
    finally:
        if events is not None:
            events.dispose()


def check_graph(root: yaml.Node, source: Path | str) -> None:
    """Size the composed node graph as the loader would expand it (aliases and merge keys included), refusing
    recursive aliases, expansions over MAX_VALUES or MAX_DEPTH, and over-long integers. Memoised per node, so
    an alias bomb is sized in time linear in its text."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node, depth: int) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise _limit_error("an alias refers to a value that contains it (a recursive alias)", source,
                               node.start_mark, "write the value out instead of the alias")
        if depth > MAX_DEPTH:
            raise _limit_error(f"nested more than {MAX_DEPTH} levels deep once aliases are expanded", source,
                               node.start_mark, "flatten the structure, or use fewer nested aliases")
        if node.tag not in ALLOWED_TAGS:
            raise _limit_error(f"the tag {node.tag.replace('tag:yaml.org,2002:', '!!')} is not allowed", source,
                               node.start_mark, "declarations hold plain values; remove the tag")
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _INT_TAG and len(node.value) > MAX_INT_CHARS:
                raise _limit_error(f"a number of {len(node.value)} characters is too large (at most "
                                   f"{MAX_INT_CHARS})", source, node.start_mark, "write a smaller number")
            total = 1
        else:
            active.add(key)
            children = (node.value if isinstance(node, yaml.SequenceNode)
                        else [part for pair in node.value for part in pair])
            total = 1
            for child in children:
                total += size(child, depth + 1)
                if total > MAX_VALUES:
                    raise _limit_error(f"expands to more than {MAX_VALUES:,} values (aliases are copied where "
                                       "they are used)", source, node.start_mark,
                                       "write the values out, or use fewer nested aliases")
            active.discard(key)
        sizes[key] = total
        return total

    size(root, 0)


def build(node: yaml.Node | None, loader: Any, source: Path | str) -> tuple[Any, dict[Loc, int]]:
    """The data and line map of a composed document, after `check_graph` has sized it."""
    if node is None:
        return {}, {}
    check_graph(node, source)
    lines: dict[Loc, int] = {}
    return _construct(node, loader, (), lines, source), lines


def _construct(node: yaml.Node, loader: Any, path: Loc, lines: dict[Loc, int], source: Path | str) -> Any:
    """The data of `node` (any PyYAML safe loader, C or Python), refusing duplicate keys, recording lines.
    Call through `build`, which bounds the work first."""
    # A key's line is where the key is written (set by the parent); items and the root use their own.
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.ScalarNode) and node.tag == _STR_TAG:
        return node.value  # what PyYAML's string constructor returns, without its dispatch (render reads many)
    if isinstance(node, yaml.MappingNode):
        merged = getattr(node, "_ftops_merged", None)
        if merged is None:  # the first visit (an aliased node is visited again, already flattened)
            own = sum(1 for key_node, _ in node.value if key_node.tag != _MERGE_TAG)
            loader.flatten_mapping(node)  # merged pairs first, then the node's own
            merged = node._ftops_merged = len(node.value) - own
        result: dict[Any, Any] = {}
        own_keys: set[Any] = set()
        for index, (key_node, value_node) in enumerate(node.value):
            plain = isinstance(key_node, yaml.ScalarNode) and key_node.tag == _STR_TAG
            key = key_node.value if plain else loader.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):
                raise ConfigError(
                    "a key must be a single value, not a list or mapping", source=source,
                    line=key_node.start_mark.line + 1, field=".".join(map(str, path)) or None,
                    hint="write the key as plain text",
                )
            # YAML merge keys: a key of the mapping itself overrides a merged one, and an earlier merged mapping
            # one of a later (PyYAML's order); only a key written twice in the mapping itself is a mistake.
            if index >= merged and key in own_keys:
                raise ConfigError(
                    f"duplicate key {key!r}", source=source, line=key_node.start_mark.line + 1,
                    field=".".join(map(str, (*path, key))), hint="keep one of the two entries",
                )
            lines[(*path, key)] = key_node.start_mark.line + 1
            if index >= merged:
                own_keys.add(key)
            result[key] = _construct(value_node, loader, (*path, key), lines, source)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, loader, (*path, i), lines, source) for i, item in enumerate(node.value)]
    try:
        return loader.construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError, OverflowError) as exc:  # e.g. a timestamp with month 13
        raise ConfigError(f"cannot read the value {node.value!r:.40} ({str(exc).splitlines()[0]})", source=source,
                          line=node.start_mark.line + 1, field=".".join(map(str, path)) or None,
                          hint="quote it to make it text") from None


def read_text(path: Path, stat: os.stat_result | None = None) -> str:
    """A declaration file's text: a regular file of at most MAX_YAML_BYTES, UTF-8. `stat`: the caller's
    `os.stat(path)`, when it has one."""
    from jobs.fsutil import regular_file

    if stat is None or not S_ISREG(stat.st_mode):
        try:
            regular_file(path, what="YAML file")
        except FtopsError as exc:
            raise ConfigError(exc.message, source=path, hint=exc.hint) from None
        stat = path.stat()
    data = b"" if stat.st_size > MAX_YAML_BYTES else _read_at_most(path, MAX_YAML_BYTES + 1)
    if stat.st_size > MAX_YAML_BYTES or len(data) > MAX_YAML_BYTES:  # or it grew since
        raise ConfigError(f"larger than {MAX_YAML_BYTES >> 20} MiB", source=path,
                          hint="a declaration is a few KiB; is this the right file?")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 ({exc.reason})", source=path, hint="save the file as UTF-8") from None
    # Line breaks as text mode reads them (universal newlines): \r\n and \r become \n.
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def _read_at_most(path: Path, limit: int) -> bytes:
    """Up to `limit` bytes of the file, read without a file object (a render reads hundreds of small files: a
    text-mode file object was most of the cost)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        chunks, size = [], 0
        while size < limit and (chunk := os.read(fd, limit - size)):
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def yaml_error(exc: yaml.YAMLError, source: Path | str) -> ConfigError:
    """A parser error (marked or not, C or Python) as one line with the line number."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if isinstance(exc, yaml.reader.ReaderError):
        problem, mark = f"a character YAML does not allow ({exc.reason})", None
    return ConfigError(f"invalid YAML: {problem}", source=source, line=mark.line + 1 if mark else None,
                       hint="fix the YAML syntax (indentation, quotes, colons)")


def parse_text(text: str, source: Path | str, loader_class: Any = None) -> tuple[Any, dict[Loc, int]]:
    """Parse `text` within the limits above; return the data and a map from key path to 1-based line."""
    try:
        scan(text, source)
        loader = (loader_class or _DEFAULT_LOADER)(text)
        try:
            return build(loader.get_single_node(), loader, source)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise yaml_error(exc, source) from None


def load_shipped(path: Path) -> Any:
    """Reference data shipped with the code (versioned, reviewed; not a user file): a plain safe load, by libyaml
    when PyYAML has it (the pure-Python loader took tens of milliseconds of every render for these files)."""
    return yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def load_yaml(path: Path) -> tuple[Any, dict[Loc, int]]:
    """Parse `path`; return the data and a map from key path to 1-based line."""
    return parse_text(read_text(path), path)


def line_for(loc: Loc, lines: dict[Loc, int]) -> int | None:
    """The line of the deepest key on `loc` that exists in the file (a missing key points at its parent)."""
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _fields_at(model: Any, loc: Loc) -> list[str]:
    """The field names the model accepts at `loc` (a path of keys and list indexes), or [] when unknown."""
    current: Any = model
    for part in loc:
        current = _descend(current, part)
        if current is None:
            return []
    return _field_names(current)


def _field_names(annotation: Any) -> list[str]:
    for candidate in _candidates(annotation):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return list(candidate.model_fields)
    return []


def _candidates(annotation: Any) -> list[Any]:
    """`annotation` with Optional, unions and Annotated unwrapped into the types they allow."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _candidates(get_args(annotation)[0])
    if origin in (Union, UnionType):
        return [inner for arg in get_args(annotation) for inner in _candidates(arg)]
    return [annotation]


def _descend(annotation: Any, part: str | int) -> Any:
    for candidate in _candidates(annotation):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            field = candidate.model_fields.get(part) if isinstance(part, str) else None
            if field is not None:
                return field.annotation
            continue
        origin, args = get_origin(candidate), get_args(candidate)
        if origin in (list, tuple, set, frozenset) and isinstance(part, int) and args:
            return args[0]
        if origin is dict and len(args) == 2:
            return args[1]
    return None


def _field_description(model: Any, loc: Loc) -> str | None:
    """The first sentence of the documented field at `loc` (what the schema shows), or None."""
    if model is None or not loc or not isinstance(loc[-1], str):
        return None
    parent: Any = model
    for part in loc[:-1]:
        parent = _descend(parent, part)
        if parent is None:
            return None
    for candidate in _candidates(parent):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel) and loc[-1] in candidate.model_fields:
            text = (candidate.model_fields[loc[-1]].description or "").strip()
            return text.split(". ")[0].split("\n\n")[0].replace("\n", " ").rstrip(".") or None
    return None


def _plain_wording(error: dict[str, Any], loc: Loc, model: Any) -> tuple[str, str | None] | None:
    """Pydantic's wording where it would leave a user guessing: a raw regular expression, or a value the file holds
    as a number or a date where text was meant."""
    value = error.get("input")
    if error["type"] == "string_pattern_mismatch":
        about = _field_description(model, loc)
        return (f"{value!r} is not a valid value here (it must match {error['ctx']['pattern']})",
                f"expected: {about}" if about else "see the field in the JSON Schema (ftops schema)")
    if error["type"] == "finite_number":
        return (f"{value!r} is not a finite number (NaN, infinity and numbers beyond a float's range are refused)",
                "write a number such as 0.5, or leave the field out for its default")
    if error["type"] == "string_type" and isinstance(value, (bool, int, float, date)):
        kind = {bool: "a boolean", int: "a number", float: "a number"}.get(type(value), "a date")
        shown = value.isoformat() if isinstance(value, date) else repr(value)
        return f"expected text, but the file has {kind} here ({shown})", f'quote the value as written, e.g. "{value}"'
    return None


def describe_validation_error(exc: ValidationError, model: Any = None) -> tuple[Loc, str, str | None]:
    """(location, message, hint) of the error to show: an unknown key first (a misspelt key also makes the field
    it meant "missing", and the typo is the thing to fix), named with the closest known key."""
    errors = exc.errors()
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(part for part in first["loc"] if not (isinstance(part, str) and part.startswith("function-")))
    raised = (first.get("ctx") or {}).get("error")
    if isinstance(raised, FieldValueError):  # a model validator's error about one of its fields
        loc += raised.loc
    kind = first["type"]
    message = first["msg"].removeprefix("Value error, ")
    hint = {"missing": "add the field"}.get(kind)
    plain = _plain_wording(first, loc, model)
    if plain:
        message, hint = plain
    if kind == "extra_forbidden" and loc:
        key = loc[-1]
        known = _fields_at(model, loc[:-1]) if model is not None else []
        from jobs.config.regions import closest

        close = closest(str(key), known)
        message = f"unknown key {key}" + (f", did you mean {close}?" if close else "")
        hint = ("fix the spelling" if close else
                f"known keys here: {', '.join(known)}" if known else
                "remove the key, or check its spelling against the JSON Schema (ftops schema)")
    more = len(errors) - 1
    if more:
        others = [".".join(str(part) for part in e["loc"] if not str(part).startswith("function-")) or "(top level)"
                  for e in errors if e is not first]
        named = ", ".join(others[:3]) + (", ..." if more > 3 else "")
        message += f" (+{more} more error{'s' if more > 1 else ''}, at {named})"
    return loc, message, hint


def validation_to_config_error(exc: ValidationError, source: Path, lines: dict[Loc, int],
                               model: Any = None) -> ConfigError:
    """The most useful pydantic error as one ConfigError naming file, line and dotted field."""
    loc, message, hint = describe_validation_error(exc, model)
    return ConfigError(message, source=source, line=line_for(loc, lines), field=".".join(map(str, loc)) or None,
                       hint=hint)


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
        raise validation_to_config_error(exc, path, lines, model) from None
