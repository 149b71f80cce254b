"""The base for every declaration model: unknown keys are errors, every field carries its description."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Declaration(BaseModel):
    """Fields are documented with attribute docstrings; they become descriptions in the JSON Schemas."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)
