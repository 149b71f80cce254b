"""`ftops schema`: the committed JSON Schemas are current, and the shipped files validate against them."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

from jobs.config.job import JobDefinition
from jobs.render import schemas

REPO = Path(__file__).resolve().parents[2]


def test_committed_schemas_are_current():
    assert schemas.stale(REPO / "schemas") == [], "run `ftops schema` and commit schemas/"


def test_shipped_definitions_and_environments_validate_against_the_schemas():
    for schema_name, pattern in (("job.schema.json", "definitions/*.yaml"),
                                 ("environment.schema.json", "environments/*.yaml")):
        schema = json.loads((REPO / "schemas" / schema_name).read_text())
        files = sorted(REPO.glob(pattern))
        assert files
        for path in files:
            jsonschema.validate(yaml.safe_load(path.read_text()), schema)
            assert f"$schema=../schemas/{schema_name}" in path.read_text().splitlines()[0]


def test_the_schema_catches_what_the_model_refuses():
    schema = json.loads((REPO / "schemas" / "job.schema.json").read_text())
    data = yaml.safe_load((REPO / "definitions" / "helpdesk-qwen-lora.yaml").read_text())
    data["compute"]["instance_typo"] = "ml.g5.xlarge"
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(data))
    assert any("instance_typo" in e.message for e in errors)


def test_every_job_field_is_described():
    schema = JobDefinition.model_json_schema()
    for name, definition in [("JobDefinition", schema), *schema["$defs"].items()]:
        for key, prop in definition.get("properties", {}).items():
            assert prop.get("description"), f"{name}.{key} has no description"


def test_schema_command_writes_and_checks(ftops, tmp_path):
    assert ftops("schema", "--check", "--out", tmp_path).exit_code == 1
    assert ftops("schema", "--out", tmp_path).exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["environment.schema.json", "job.schema.json"]
    assert ftops("schema", "--check", "--out", tmp_path).exit_code == 0


def test_field_descriptions_are_pydantics_attribute_docstrings():
    """Declaration reads attribute docstrings itself (pydantic's way costs ~25 ms a process on Python < 3.13):
    every declaration field ends up with the description `use_attribute_docstrings` would give it."""
    import importlib
    import pkgutil

    from pydantic._internal._docs_extraction import extract_docstrings_from_cls

    import jobs.config
    from jobs.config.base import Declaration

    for info in pkgutil.iter_modules(jobs.config.__path__):
        importlib.import_module(f"jobs.config.{info.name}")
    pending, seen = [Declaration], []
    while pending:
        for sub in pending.pop().__subclasses__():
            pending.append(sub)
            seen.append(sub)
    assert len(seen) > 20
    checked = 0
    for cls in seen:
        if not cls.__module__.startswith("jobs."):
            continue
        expected = extract_docstrings_from_cls(cls, use_inspect=True)
        for name in cls.__dict__.get("__annotations__", {}):
            if name in cls.model_fields:
                assert cls.model_fields[name].description == expected.get(name), f"{cls.__name__}.{name}"
                checked += expected.get(name) is not None
    assert checked > 100
