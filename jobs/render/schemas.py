"""`ftops schema`: JSON Schemas for job definitions and environment files, committed under schemas/.

Editors use them through the `# yaml-language-server: $schema=...` line at the top of each YAML file, so keys
complete and mistakes are underlined before ftops ever runs. A test keeps the committed files current.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from jobs import paths
from jobs.config.environment import Environment
from jobs.config.job import JobDefinition
from jobs.fsutil import atomic_write

MODELS = {"job.schema.json": JobDefinition, "environment.schema.json": Environment}


def schemas_dir() -> Path:
    return paths.project_root() / "schemas"


def schema_documents() -> dict[str, bytes]:
    documents = {}
    for name, model in MODELS.items():
        schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **model.model_json_schema()}
        documents[name] = orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    return documents


def stale(directory: Path) -> list[str]:
    """Schema files under `directory` that are missing or differ from the models."""
    return [name for name, data in schema_documents().items()
            if not (directory / name).is_file() or (directory / name).read_bytes() != data]


def write(directory: Path) -> list[Path]:
    written = []
    for name, data in schema_documents().items():
        path = directory / name
        if not path.is_file() or path.read_bytes() != data:
            atomic_write(path, data)
        written.append(path)
    return written
