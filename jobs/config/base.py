"""The base for every declaration model: unknown keys are errors, every field carries its description."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

TAG_KEY = re.compile(r"^[A-Za-z0-9 _.:/=+\-@]{1,128}$")
RESERVED_TAG_PREFIXES = ("aws:", "ftops:")


class Declaration(BaseModel):
    """Fields are documented with attribute docstrings; they become descriptions in the JSON Schemas."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


def check_named_like_file(name: str, context: dict[str, Any] | None) -> str:
    """A declaration's `name` must equal its file's stem, so a file and what it declares cannot drift apart."""
    source = (context or {}).get("source")
    if source is not None and Path(source).stem != name:
        raise ValueError(f"name {name!r} differs from the file name {Path(source).name!r}; make them equal")
    return name


def check_cloud_tags(tags: dict[str, str], *, reserved: tuple[str, ...] = ()) -> dict[str, str]:
    """Tags valid on both clouds: keys 1-128 of letters, digits, spaces and _.:/=+-@, values up to 256."""
    for key, value in tags.items():
        if not TAG_KEY.match(key) or len(value) > 256 or key.lower().startswith(reserved):
            extra = f"; the {' and '.join(reserved)} prefixes are reserved" if reserved else ""
            raise ValueError(f"tag {key!r} is not a valid tag (1-128 of letters, digits, spaces, _.:/=+-@; "
                             f"values up to 256{extra})")
    return tags
