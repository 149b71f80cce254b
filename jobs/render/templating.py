"""The one Jinja environment and `fill_template`. Values reach templates only through serialisation filters.

Templates lay out structure; every value goes through `json` (JSON and YAML scalars/flow) or `yaml` (block
YAML), so quoting and escaping are never hand-made. StrictUndefined turns a missing value into an error
instead of an empty string in a job spec.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import orjson
import yaml

from jobs import paths
from jobs.errors import FtopsError

_LINE_BREAKS = ("\n", "\r", "\x85", "\u2028", "\u2029")


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """Writes text with line breaks double-quoted with escapes, so every value stays on one line: rendered YAML
    then holds no blank line that belongs to a value (the engine drops the blank lines macros leave)."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = '"' if any(mark in value for mark in _LINE_BREAKS) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def to_json(value: Any) -> str:
    """A JSON literal; also a valid YAML flow scalar, so YAML templates use it for single values."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError as exc:
        # StrictUndefined raises only when read as text; a filter receives it as an object.
        if isinstance(value, jinja2.Undefined):
            str(value)
        raise jinja2.TemplateRuntimeError(f"a value the json filter cannot write ({exc})") from None


def to_yaml(value: Any, indent: int = 0) -> str:
    """Block YAML for a mapping or list, starting on a new line and indented by `indent` spaces.

    Written after a key (`key:{{ v | yaml(4) }}`); scalars and empty collections stay on the key's line.
    """
    if not isinstance(value, (dict, list)) or not value:
        return " " + to_json(value)
    text = yaml.dump(value, Dumper=_Dumper, default_flow_style=False, sort_keys=True, allow_unicode=True, width=10_000)
    pad = " " * indent
    return "".join("\n" + pad + line for line in text.rstrip("\n").split("\n"))


def _cache_dir() -> Path:
    directory = paths.state_dir() / "jinja-cache"
    directory.mkdir(mode=0o700, exist_ok=True)
    return directory


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(paths.templates_dir()),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        # Compiling the templates is a fifth of an interactive render; Jinja keys each cached module by the
        # template's source checksum, so an edited template is compiled afresh. The cache is the checkout's own
        # ignored state (.ftops/), as trusted as the templates beside it.
        bytecode_cache=jinja2.FileSystemBytecodeCache(str(_cache_dir())),
    )
    env.filters["json"] = to_json
    env.filters["yaml"] = to_yaml
    return env


def fill_template(name: str, **context: Any) -> str:
    """Render `templates/<name>` with `context`; a missing value or a broken template is an FtopsError."""
    return fill(load_template(name), **context)


def load_template(name: str) -> jinja2.Template:
    """`templates/<name>`, compiled; a missing or broken template is an FtopsError."""
    try:
        return environment().get_template(name)
    except jinja2.TemplateNotFound:
        raise FtopsError(f"template {name} not found", source=paths.templates_dir() / name,
                         hint="restore it from git; templates/ ships with the fork") from None
    except jinja2.TemplateSyntaxError as exc:
        raise _syntax_error(exc, name) from None


def fill(template: jinja2.Template, **context: Any) -> str:
    """`template` rendered with `context`; a missing value (or a broken template it imports) is an FtopsError."""
    name = template.name or "?"
    try:
        return template.render(**context)
    except jinja2.TemplateNotFound as exc:
        raise FtopsError(f"template {exc.name} not found (imported by {name})", source=paths.templates_dir() / name,
                         hint="restore it from git; templates/ ships with the fork") from None
    except jinja2.UndefinedError as exc:
        raise FtopsError(f"template uses an undefined value: {exc.message}", source=paths.templates_dir() / name,
                         hint="fix the template or the value it expects") from None
    except jinja2.TemplateSyntaxError as exc:
        raise _syntax_error(exc, name) from None
    except jinja2.TemplateRuntimeError as exc:
        raise FtopsError(f"template error: {exc.message}", source=paths.templates_dir() / name,
                         hint="fix the template or the value it expects") from None


def _syntax_error(exc: jinja2.TemplateSyntaxError, name: str) -> FtopsError:
    return FtopsError(f"template syntax error: {exc.message}", source=paths.templates_dir() / name,
                      line=exc.lineno, hint="fix the Jinja syntax")
