"""The base for every declaration model: unknown keys are errors, every field carries its description."""

from __future__ import annotations

import ast
import copy
import inspect
import re
import sys
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, Strict
from pydantic.fields import FieldInfo

Int = Annotated[int, Strict()]
"""An integer in a declaration: as YAML writes one. `true`, `2.0` or "2" is refused (pydantic's lax mode reads
them as 1, 2 and 2: `epochs: true` trained one epoch). Numbers (floats) stay lax: PyYAML reads `1e-4`, with no
dot, as text, which lax mode converts."""

TAG_KEY = re.compile(r"^[A-Za-z0-9 _.:/=+\-@]{1,128}$")
RESERVED_TAG_PREFIXES = ("aws:", "ftops:")


class Declaration(BaseModel):
    """Fields are documented with attribute docstrings; they become descriptions in the JSON Schemas."""

    # Not pydantic's `use_attribute_docstrings`: on Python < 3.13 it finds each class's source by walking the
    # interpreter's frames and tokenizing the class again, about 25 ms of every ftops process for these models.
    # `__init_subclass__` (run before pydantic collects the fields) gives the same descriptions from one parse
    # per module; tests/unit/test_render_schema.py holds the committed JSON Schemas to them.
    # allow_inf_nan=False: YAML reads `.nan` and `.inf` (and a number too large for a float) as floats, and NaN
    # compares false with everything, so a NaN ceiling or gate threshold would silently never (or always) hold.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _describe_fields(cls)


def _describe_fields(cls: type) -> None:
    """Give each field of `cls`'s own body the attribute docstring written under it as its description, as
    pydantic's `use_attribute_docstrings` does (a description set with Field() is kept)."""
    docs = _attribute_docstrings(cls)
    annotations = cls.__dict__.get("__annotations__", {})
    for name, doc in docs.items():
        annotation = annotations.get(name)
        if annotation is None or name.startswith("_") or "ClassVar" in str(annotation):
            continue  # not a field: pydantic ignores these docstrings too
        value = cls.__dict__.get(name, _MISSING)
        if isinstance(value, FieldInfo):
            if value.description is not None:
                continue
            value = copy.copy(value)  # a Field() object may be shared between classes
            value.description = doc
            # pydantic rebuilds an assigned Field() from the arguments it was given (`_attributes_set`; pinned
            # pydantic, and the schema test fails if this stops carrying the description)
            value._attributes_set = {**value._attributes_set, "description": doc}
        elif value is _MISSING:
            value = Field(description=doc)
        else:
            value = Field(value, description=doc)
        setattr(cls, name, value)


_MISSING = object()


def _attribute_docstrings(cls: type) -> dict[str, str]:
    """{field: docstring} from the class body in its module's source; {} when the source cannot be found or
    the class's name is not unique in it (a class defined in a function body, say): such a class gets its
    descriptions from Field() only."""
    module = sys.modules.get(cls.__module__)
    source_file = getattr(module, "__file__", None)
    if not source_file:
        return {}
    matches = _class_nodes(source_file).get(cls.__name__, [])
    if len(matches) != 1:
        return {}
    return _docstrings_of(matches[0])


@cache
def _class_nodes(source_file: str) -> dict[str, list[ast.ClassDef]]:
    try:
        tree = ast.parse(Path(source_file).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return {}
    found: dict[str, list[ast.ClassDef]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            found.setdefault(node.name, []).append(node)
    return found


def _docstrings_of(node: ast.ClassDef) -> dict[str, str]:
    """A string expression right after an annotated assignment to a name documents that name (pydantic's rule;
    statements nested in `if`/`try` blocks of the body count, nested classes and functions do not)."""
    docs: dict[str, str] = {}

    def walk(body: list[ast.stmt]) -> None:
        target: str | None = None
        previous: ast.stmt | None = None
        for stmt in body:
            if isinstance(stmt, ast.AnnAssign):
                target = stmt.target.id if isinstance(stmt.target, ast.Name) else None
            elif (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
                  and isinstance(stmt.value.value, str) and isinstance(previous, ast.AnnAssign)):
                if target:
                    docs[target] = inspect.cleandoc(stmt.value.value)
                target = None
            elif not isinstance(stmt, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                for field in ("body", "orelse", "finalbody"):
                    walk(getattr(stmt, field, None) or [])
                for handler in getattr(stmt, "handlers", None) or []:
                    walk(handler.body)
            previous = stmt

    walk(node.body)
    return docs


def check_named_like_file(name: str, context: dict[str, Any] | None) -> str:
    """A declaration's `name` must equal its file's stem, so a file and what it declares cannot drift apart."""
    source = (context or {}).get("source")
    if source is None:
        return name
    source = source if isinstance(source, Path) else Path(source)  # a render validates many: no copy each time
    if source.stem != name:
        raise ValueError(f"name {name!r} differs from the file name {source.name!r}; make them equal")
    return name


def empty(kind: type[dict] | type[list]) -> Any:
    """An empty dict or list default made afresh for each model, as the schema documents it: a `{}` or `[]`
    default is deep-copied by pydantic on every validation (a job definition has several)."""
    return Field(default_factory=kind, json_schema_extra={"default": kind()})


def check_cloud_tags(tags: dict[str, str], *, reserved: tuple[str, ...] = ()) -> dict[str, str]:
    """Tags valid on both clouds: keys 1-128 of letters, digits, spaces and _.:/=+-@, values up to 256."""
    for key, value in tags.items():
        if not TAG_KEY.match(key) or len(value) > 256 or key.lower().startswith(reserved):
            extra = f"; the {' and '.join(reserved)} prefixes are reserved" if reserved else ""
            raise ValueError(f"tag {key!r} is not a valid tag (1-128 of letters, digits, spaces, _.:/=+-@; "
                             f"values up to 256{extra})")
    return tags
