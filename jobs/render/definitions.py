"""Job definition files -> the jobs to render for one environment (overrides applied, grid sweeps expanded).

Errors name the place the user has to edit: a bad value that came from `overrides.<env>` points at that
override's line, a bad grid value at `sweep.grid.<key>`.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
import yaml.events as _events
from pydantic import ValidationError

from jobs import paths
from jobs.config.job import JobDefinition
from jobs.errors import ConfigError
from jobs.render.secrets import first_secret
from jobs.yamlio import (_STR_TAG, MAX_DEPTH, MAX_INT_CHARS, Loc, describe_validation_error, line_for, load_yaml,
                         parse_text, read_text)

_CLoader = getattr(yaml, "CSafeLoader", None)
_CParser = getattr(getattr(yaml, "cyaml", None), "CParser", None)  # libyaml's parser, when PyYAML has it


def definitions_dir() -> Path:
    return paths.project_root() / "definitions"


def definition_files() -> list[Path]:
    """Every definition file; a `.yml` one is refused rather than skipped (its jobs would silently not render)."""
    directory = definitions_dir()
    try:
        names = sorted(os.listdir(directory))  # one listing, not a glob per suffix (as glob: case-sensitive)
    except (FileNotFoundError, NotADirectoryError):
        return []
    stray = [name for name in names if name.endswith(".yml")]
    if stray:
        raise ConfigError("job definitions end in .yaml; this one would not be rendered", source=directory / stray[0],
                          hint=f"rename it to definitions/{Path(stray[0]).stem}.yaml")
    return [directory / name for name in names if name.endswith(".yaml")]


def find_definition(name: str) -> Path:
    """A definition by job name, or by path (relative to the project root or absolute)."""
    for candidate in (definitions_dir() / f"{name}.yaml", Path(name), paths.project_root() / name):
        if candidate.suffix == ".yaml" and candidate.is_file():
            return candidate.resolve()
    known = ", ".join(p.stem for p in definition_files()) or "none"
    stem = Path(name).stem if Path(name).suffix in (".yaml", ".yml") else Path(name).name
    # Only a plain name can become definitions/<name>.yaml; a path or a file name is answered with the jobs known.
    add = f"; add definitions/{name}.yaml" if name == stem and "/" not in name else ""
    raise ConfigError(f"no job definition {name!r}", source=definitions_dir(), hint=f"known jobs: {known}{add}")


def deep_merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _leaves(data: dict[str, Any], prefix: Loc = ()) -> set[Loc]:
    out: set[Loc] = set()
    for key, value in data.items():
        loc = (*prefix, key)
        out.add(loc)
        if isinstance(value, dict):
            out |= _leaves(value, loc)
    return out


@lru_cache(maxsize=4096)  # asked for several times per job, and a file's jobs are rendered for every environment
def relative_path(path: Path, root: Path) -> str:
    """`path` relative to the project `root`, as files name their definition (or as given, outside it)."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class JobVariant:
    """One job to render: the definition as it applies to `env`, and where its values came from."""

    definition: JobDefinition
    path: Path
    env: str
    name: str
    """The definition name, or `<name>-g<N>` for a grid trial."""
    trial: dict[str, Any] = field(default_factory=dict)
    overridden: frozenset[Loc] = frozenset()
    lines: Mapping[Loc, int] = field(default_factory=dict, repr=False)
    """Line of each key path; for a parsed file, worked out only when an error asks for a line."""
    relpath: str = field(default="", compare=False)
    """`path` relative to the project root (worked out here when not given)."""

    def __post_init__(self) -> None:
        if not self.relpath:
            object.__setattr__(self, "relpath", relative_path(self.path, paths.project_root()))

    def where(self, dotted: str) -> tuple[str, int | None]:
        """The field name to show the user for `dotted`, and its line (override > grid > definition)."""
        loc: Loc = tuple(dotted.split("."))
        for end in range(len(loc), 0, -1):
            if loc[:end] in self.overridden:
                over = ("overrides", self.env, *loc)
                return ".".join(map(str, over)), line_for(over, self.lines)
        if len(loc) > 1 and loc[0] == "hyperparameters" and loc[1] in self.trial:
            grid = ("sweep", "grid", loc[1])
            return ".".join(grid), line_for(grid, self.lines)
        return dotted, line_for(loc, self.lines)

    def error(self, message: str, dotted: str, hint: str | None = None) -> ConfigError:
        """A policy or rendering error naming this job's file, the field and the environment."""
        name, line = self.where(dotted)
        return ConfigError(f"{message} [environment {self.env}]", source=self.relpath, line=line, field=name, hint=hint)


def _validate(data: dict[str, Any], path: Path, lines: Mapping[Loc, int], remap) -> JobDefinition:
    try:
        return JobDefinition.model_validate(data, context={"source": path})
    except ValidationError as exc:
        loc, message, hint = describe_validation_error(exc, JobDefinition)
        shown = remap(loc)
        raise ConfigError(message, source=path, line=line_for(shown, lines),
                          field=".".join(map(str, shown)) or None, hint=hint) from None


class LazyLines(Mapping[Loc, int]):
    """A file's key-path -> line map, computed on first use (only error messages need lines, and recording
    them while parsing costs as much as the parse)."""

    def __init__(self, compute: Callable[[], dict[Loc, int]]) -> None:
        self._compute: Callable[[], dict[Loc, int]] | None = compute
        self._lines: dict[Loc, int] = {}

    def _get(self) -> dict[Loc, int]:
        if self._compute is not None:
            self._lines, self._compute = self._compute(), None
        return self._lines

    def __getitem__(self, loc: Loc) -> int:
        return self._get()[loc]

    def __contains__(self, loc: object) -> bool:
        return loc in self._get()

    def __iter__(self) -> Iterator[Loc]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())


@dataclass
class _Parsed:
    """One definition file's content, line marks and validated models (reused across environments)."""

    stamp: tuple[int, int]
    data: dict[str, Any]
    lines: Mapping[Loc, int]
    # Validated JobDefinitions by (environment with overrides or None, grid trial index or None). Models are
    # frozen, and validation depends only on the data and the file name, so one result serves every render.
    models: dict[tuple[str | None, int | None], JobDefinition] = field(default_factory=dict)
    # The jobs it defines, by (environment, project root): a production environment's promotions read its
    # source environment's jobs again.
    variants: dict[tuple[str, Path], list[JobVariant]] = field(default_factory=dict)


_parsed: dict[Path, _Parsed] = {}


def clear_cache() -> None:
    """Forget parsed and validated definitions (a long-lived process, or a benchmark's cold run)."""
    _parsed.clear()
    _SCALARS.clear()
    relative_path.cache_clear()


# Within one render a file is read as it was when the render first read it: its stamp is checked once, not
# again for every environment. Outside a render every read checks it.
_NO_RENDER: set[Path] = set()
_checked_this_render: set[Path] = _NO_RENDER


@contextmanager
def one_render() -> Iterator[None]:
    global _checked_this_render
    outer, _checked_this_render = _checked_this_render, set()
    try:
        yield
    finally:
        _checked_this_render = outer


def _read(path: Path) -> _Parsed:
    """Parse a definition once per content (render reads each file for every environment).

    Builds the data straight from libyaml's events when PyYAML has libyaml (composing nodes first dominates
    render time). Line marks are recorded only when an error needs one: the text is parsed again then, with
    the same key-path construction as `jobs.yamlio`, so duplicate keys and line numbers behave identically;
    so is anything the event reader leaves to the full loader (anchors, tags, merge keys, several documents).
    """
    cached = _parsed.get(path)
    if cached is not None and path in _checked_this_render:
        return cached
    stat = path.stat()
    stamp = (stat.st_mtime_ns, stat.st_size)
    if _checked_this_render is not _NO_RENDER:
        _checked_this_render.add(path)
    if cached and cached.stamp == stamp:
        return cached
    data: Any
    lines: Mapping[Loc, int]
    if _CParser is None:
        _refuse_placeholders(read_text(path), path)
        data, lines = load_yaml(path)
    else:
        text = read_text(path, stat)  # a regular file within the size limit, UTF-8 (one-line errors)
        _refuse_placeholders(text, path)
        try:
            data = _load_plain(text)
        except _NeedsFullLoader:
            data, _ = _parse_with_lines(text, path)  # the limits of jobs.yamlio apply (aliases, tags, numbers)
        except yaml.YAMLError:
            data, _ = _parse_with_lines(text, path)  # words the syntax error with file and line
        lines = LazyLines(lambda: _parse_with_lines(text, path)[1])
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping at the top level", source=path, line=1)
    found = first_secret(data)
    if found:
        raise ConfigError(f"looks like a secret: {found[1]}", source=path, line=line_for(_loc(found[0]), lines),
                          field=found[0], hint="never put secrets in job definitions; jobs authenticate with "
                          "their execution role / managed identity")
    parsed = _parsed[path] = _Parsed(stamp, data, lines)
    return parsed


PLACEHOLDER_MARK = "0placeholder"
"""What every placeholder for a generated name ends with (jobs.render.context.PLACEHOLDERS)."""


def _refuse_placeholders(text: str, path: Path) -> None:
    """The engine puts the generated names where their placeholders stand in the rendered text, so a
    definition that spells one would have its own value replaced."""
    at = text.find(PLACEHOLDER_MARK)
    if at != -1:
        start = text.rfind("ftops0", 0, at)
        word = text[start:at + len(PLACEHOLDER_MARK)] if start != -1 else PLACEHOLDER_MARK
        raise ConfigError(f"{word!r} is reserved: ftops writes the generated job names where such words stand",
                          source=path, line=text.count("\n", 0, at) + 1, hint="use another name or value")


def _parse_with_lines(text: str, path: Path) -> tuple[Any, dict[Loc, int]]:
    return parse_text(text, path, _CLoader)


class _NeedsFullLoader(Exception):
    """Raised by `_load_plain` for what it leaves to the full loader: anchors and aliases, explicit tags, merge
    and value keys, non-scalar keys, duplicate keys, several documents, a scalar its constructors reject."""


_INT_TAG, _FLOAT_TAG = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
_BOOL_TAG, _NULL_TAG = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null"
_MERGE_TAG, _VALUE_TAG = "tag:yaml.org,2002:merge", "tag:yaml.org,2002:value"
# Plain decimal forms for which SafeConstructor's int/float constructors reduce to int()/float() (no
# underscores, sexagesimal, octal, hex or binary, infinities or NaN): anything else goes through the constructor.
_PLAIN_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")
_PLAIN_FLOAT = re.compile(r"[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
# Resolves plain scalars' tags exactly as the composer does (SafeLoader's implicit resolvers), and constructs
# the rare scalar the fast paths below do not (timestamps, hex, sexagesimal, ...).
_SAFE = yaml.SafeLoader("")


def _load_plain(text: str) -> Any:
    """The data `yaml.safe_load(text)` gives, built from libyaml's parse events without nodes or marks, or
    `_NeedsFullLoader`. Syntax errors raise yaml.YAMLError as the loaders do."""
    parser = _CParser(text)
    try:
        get = parser.get_event
        get()  # stream start
        if type(get()) is _STREAM_END:
            return None
        data = _event_value(get, get(), 0)
        get()  # document end
        if type(get()) is not _STREAM_END:
            raise _NeedsFullLoader  # several documents: the full loader words that error
        return data
    finally:
        parser.dispose()


_SCALAR, _ALIAS, _STREAM_END = _events.ScalarEvent, _events.AliasEvent, _events.StreamEndEvent
_MAPPING_START, _MAPPING_END = _events.MappingStartEvent, _events.MappingEndEvent
_SEQUENCE_START, _SEQUENCE_END = _events.SequenceStartEvent, _events.SequenceEndEvent
_UNTAGGED = (None, "!")


def _event_value(get: Callable[[], Any], event: Any, depth: int) -> Any:
    """The value that starts with `event`; `get` reads the next event. A mapping's keys (plain scalars) are
    read in its own loop: a call per key was a third of the parse."""
    kind = type(event)
    if kind is _ALIAS or event.anchor is not None or event.tag not in _UNTAGGED or depth > MAX_DEPTH:
        raise _NeedsFullLoader  # the full loader refuses what is too deep, with its line
    if kind is _SCALAR:
        return _scalar_of(event)
    depth += 1
    if kind is _MAPPING_START:
        result: dict[Any, Any] = {}
        while True:
            event = get()
            kind = type(event)
            if kind is _MAPPING_END:
                return result
            if kind is not _SCALAR or event.anchor is not None or event.tag not in _UNTAGGED or depth > MAX_DEPTH:
                raise _NeedsFullLoader
            key = _SCALARS.get((event.value, event.implicit), _SCALARS)
            if key is _SCALARS:
                key = _scalar_of(event)
            if key in result:
                raise _NeedsFullLoader  # the full loader names the duplicate key and its line
            event = get()
            # A plain scalar value (most are) is read here too, seen ones from the cache, without two more calls.
            if type(event) is _SCALAR and event.anchor is None and event.tag in _UNTAGGED and depth <= MAX_DEPTH:
                value = _SCALARS.get((event.value, event.implicit), _SCALARS)
                result[key] = _scalar_of(event) if value is _SCALARS else value
            else:
                result[key] = _event_value(get, event, depth)
    if kind is _SEQUENCE_START:
        items = []
        while True:
            event = get()
            if type(event) is _SEQUENCE_END:
                return items
            items.append(_event_value(get, event, depth))
    raise _NeedsFullLoader


def _scalar_of(event: Any) -> Any:
    """The value of a plain scalar's event, remembered by its text and implicit flags."""
    key = (event.value, event.implicit)
    scalar = _SCALARS.get(key, _SCALARS)  # the dict itself marks "not seen" (no scalar is that dict)
    if scalar is _SCALARS:
        scalar = _scalar(*key)
        if len(_SCALARS) < _MAX_SCALARS:
            _SCALARS[key] = scalar
    return scalar


# Scalars by (text, implicit flags): definitions repeat the same keys and values, and a scalar's value depends
# on nothing else (resolving its tag runs SafeLoader's regexes). All constructed values here are immutable.
_SCALARS: dict[tuple[str, tuple[bool, bool]], Any] = {}
_MAX_SCALARS = 100_000


def _scalar(value: str, implicit: tuple[bool, bool]) -> Any:
    """The value SafeLoader constructs for a scalar, or `_NeedsFullLoader`."""
    tag = _SAFE.resolve(yaml.ScalarNode, value, implicit)
    if tag == _STR_TAG:
        return value
    if tag == _INT_TAG and len(value) > MAX_INT_CHARS:
        raise _NeedsFullLoader  # the full loader refuses it with its line (int() refuses over 4,300 digits)
    if tag == _INT_TAG and _PLAIN_INT.fullmatch(value):
        return int(value)
    if tag == _FLOAT_TAG and _PLAIN_FLOAT.fullmatch(value):
        return float(value)
    if tag == _BOOL_TAG:
        return _SAFE.bool_values[value.lower()]
    if tag == _NULL_TAG:
        return None
    # The constructor itself: construct_object would keep every node it builds in the shared loader.
    constructor = _SAFE.yaml_constructors.get(tag) if tag not in (_MERGE_TAG, _VALUE_TAG) else None
    if constructor is None:
        raise _NeedsFullLoader
    try:
        return constructor(_SAFE, yaml.ScalarNode(tag, value))
    except (yaml.YAMLError, ValueError, TypeError):
        raise _NeedsFullLoader from None


def _loc(dotted: str) -> Loc:
    return tuple(dotted.replace("[", ".").replace("]", "").split("."))


def _model(parsed: _Parsed, key: tuple[str | None, int | None], data: dict[str, Any], path: Path,
           remap) -> JobDefinition:
    model = parsed.models.get(key)
    if model is None:
        model = parsed.models[key] = _validate(data, path, parsed.lines, remap)
    return model


def _check_other_overrides(parsed: _Parsed, base: JobDefinition, env: str, path: Path) -> None:
    """Validate the definition as every other environment's overrides make it, so a mistake in `overrides.prod`
    fails `ftops render --env dev` on the pull request too, not only the prod render. Each result is kept (a
    render of those environments reuses it), so rendering every environment validates nothing twice."""
    for other, changes in base.overrides.items():
        if other != env and changes and (other, None) not in parsed.models:
            overridden = _leaves(changes)

            def from_override(loc: Loc, other: str = other, overridden: set[Loc] = overridden) -> Loc:
                hit = any(loc[:n] in overridden for n in range(1, len(loc) + 1))
                return ("overrides", other, *loc) if hit else loc

            _model(parsed, (other, None), deep_merge(parsed.data, changes), path, from_override)


def load_variants(path: Path, env: str) -> list[JobVariant]:
    """The jobs `path` defines for `env`: one, or one per grid combination (a tuning sweep stays one job)."""
    parsed = _read(path)
    key = (env, paths.project_root())
    if key not in parsed.variants:
        parsed.variants[key] = _variants(parsed, path, env)
    return list(parsed.variants[key])


def _variants(parsed: _Parsed, path: Path, env: str) -> list[JobVariant]:
    data, lines = parsed.data, parsed.lines
    base = _model(parsed, (None, None), data, path, lambda loc: loc)
    changes = base.overrides.get(env, {})
    overridden = frozenset(_leaves(changes))
    merged_data = deep_merge(data, changes) if changes else data
    # Without overrides every environment sees the same data, so validated models are shared between them.
    scope = env if changes else None

    def from_override(loc: Loc) -> Loc:
        return ("overrides", env, *loc) if any(loc[:n] in overridden for n in range(1, len(loc) + 1)) else loc

    merged = _model(parsed, (env, None), merged_data, path, from_override) if changes else base
    _check_other_overrides(parsed, base, env, path)
    grid = merged.sweep.grid if merged.sweep and merged.sweep.grid else None
    relpath = relative_path(path, paths.project_root())
    if not grid:
        return [JobVariant(merged, path, env, merged.name, {}, overridden, lines, relpath)]
    keys = sorted(grid)
    variants = []
    for index, combo in enumerate(itertools.product(*(grid[k] for k in keys))):
        trial = dict(zip(keys, combo))
        trial_data = deep_merge(merged_data, {"hyperparameters": trial})
        definition = _model(parsed, (scope, index), trial_data, path,
                            lambda loc: ("sweep", "grid", loc[1]) if loc[:1] == ("hyperparameters",)
                            and len(loc) > 1 and loc[1] in trial else from_override(loc))
        variants.append(JobVariant(definition, path, env, f"{merged.name}-g{index}", trial, overridden, lines,
                                   relpath))
    return variants
