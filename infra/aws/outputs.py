"""Stack outputs <-> resolved values. Pure Python (no aws_cdk): the CLI reads `cdk deploy --outputs-file` with it."""

from __future__ import annotations

from pathlib import Path

import orjson

from jobs.config.environment import Environment
from jobs.config.resolved import ResolvedAws
from jobs.errors import ConfigError

LIST_FIELDS = ("subnet_ids", "security_group_ids")
"""Lists travel as comma-joined strings (CloudFormation outputs are strings)."""
NO_ITEMS = "none"
"""An empty list (an output value cannot be empty)."""


def output_key(field: str) -> str:
    """`datasets_bucket` -> `DatasetsBucket` (output keys are alphanumeric)."""
    return "".join(part.capitalize() for part in field.split("_"))


def resolved_fields() -> list[str]:
    return [name for name in ResolvedAws.model_fields if name != "source"]


def stack_name(env: Environment) -> str:
    return f"{env.require_aws().resource_prefix}-{env.name}"


def resolve_outputs(env: Environment, outputs_file: Path) -> ResolvedAws:
    """The environment's stack outputs from a `cdk deploy --outputs-file` JSON, as deployed ResolvedAws values."""
    try:
        document = orjson.loads(outputs_file.read_bytes())
    except FileNotFoundError:
        raise ConfigError("no CDK outputs file", source=outputs_file,
                          hint=f"run `ftops infra deploy --env {env.name}` (or cdk deploy --outputs-file) first") from None
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"not JSON ({exc})", source=outputs_file, hint="re-run the deploy") from None
    stack = stack_name(env)
    outputs = document.get(stack) if isinstance(document, dict) else None
    if not isinstance(outputs, dict):
        raise ConfigError(f"no outputs for stack {stack!r}", source=outputs_file, field=stack,
                          hint=f"deploy the stack with `ftops infra deploy --env {env.name}`")
    return resolved_from_outputs(env, outputs, source=outputs_file)


def resolved_from_outputs(env: Environment, outputs: dict[str, object], source: Path | str | None = None) -> ResolvedAws:
    """Stack outputs (key -> value, from the outputs file or `describe_stacks`) as deployed ResolvedAws values."""
    stack = stack_name(env)
    values: dict[str, object] = {"source": "deployed"}
    for field in resolved_fields():
        key = output_key(field)
        if key not in outputs:
            raise ConfigError(f"output {key} is missing", source=source, field=f"{stack}.{key}",
                              hint="the stack predates this ftops version; deploy it again")
        raw = str(outputs[key])
        values[field] = ([] if raw == NO_ITEMS else raw.split(",")) if field in LIST_FIELDS else raw
    return ResolvedAws.model_validate(values)
