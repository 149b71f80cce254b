"""Fill the GitHub Actions workflow template from the environments (order, roles, regions, subscriptions)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

from jobs import paths
from jobs.config.environment import environment_names, load_environment
from jobs.config.resolved import resolved_aws
from jobs.errors import ConfigError
from jobs.render.definitions import definition_files
from jobs.render.templating import fill_template

TEMPLATE = "pipeline/github-actions.yml.j2"
DEFAULT_ORDER = ("dev", "staging", "prod")
WATCHED = ["definitions/**", "datasets/**", "environments/**", "templates/**", "jobs/**", "constraints.txt"]


def default_output() -> Path:
    return paths.project_root() / ".github" / "workflows" / "ftops.yml"


def _environment(name: str) -> dict[str, Any]:
    env = load_environment(name)
    if env.emulated:
        raise ConfigError(f"{name} is emulated; a pipeline applies to real clouds", field="--env",
                          hint="list real environments, e.g. dev staging prod")
    values: dict[str, Any] = {"name": name, "aws_role": None, "aws_region": None, "azure_subscription": None,
                              "production": env.is_production, "promote_to": None, "promote_from": None}
    if env.aws and env.aws.enabled:
        values.update(aws_role=resolved_aws(env).pipeline_role_arn, aws_region=env.aws.region)
    if env.azure and env.azure.enabled:
        values["azure_subscription"] = env.azure.subscription_id
    return values


def render_workflow(order: list[str] | None = None, *, branch: str = "main", python_version: str = "3.12",
                    data_glob: str = "datasets/**/*.jsonl", render_dir: str = "rendered",
                    concurrency: int = 8) -> str:
    names = order or [n for n in DEFAULT_ORDER if n in environment_names()]
    if not names:
        raise ConfigError("no environments to apply", hint="pass --env dev --env staging --env prod")
    environments = [_environment(n) for n in names]
    # The environment a production one promotes from (the one naming it in aws.promotion_targets, as the
    # rendered promotion.json does) runs the promotion gate and the approval with its own credentials, and must
    # run just before it: the production apply needs that job, so a refused gate stops it.
    from jobs.render.promotion import source_environment

    for current, following in zip(environments, environments[1:]):
        if following["production"] and not current["production"]:
            declared = source_environment(load_environment(following["name"])).name
            if declared != current["name"]:
                raise ConfigError(f"{following['name']} promotes from {declared} (aws.promotion_targets), but the "
                                  f"pipeline runs {current['name']} before it", field="--env",
                                  hint=f"order the environments so that {declared} comes just before "
                                       f"{following['name']}")
            current["promote_to"], following["promote_from"] = following["name"], current["name"]
    jobs, retrain = pipeline_jobs()
    gate_env = next((e["name"] for e in environments if e["promote_to"]), None)
    return fill_template(TEMPLATE, environments=environments, branch=branch, jobs=jobs, retrain_jobs=retrain,
                         python_version=python_version, data_glob=data_glob, render_dir=render_dir,
                         concurrency=concurrency, watched=WATCHED, gh=github_expression, sh=shlex.quote,
                         gate_env=gate_env)


def pipeline_jobs() -> tuple[list[str], list[str]]:
    """Every job definition's name (checked against the name pattern before it reaches a template, so a file
    name cannot smuggle shell into the workflow), and those that opt into `promotion: retrain`."""
    from jobs.config.job import JOB_NAME, JobDefinition
    from jobs.yamlio import load_model

    jobs, retrain = [], []
    for path in sorted(definition_files()):
        if not re.fullmatch(JOB_NAME.strip("^$"), path.stem):
            raise ConfigError(f"definition file name {path.stem!r} is not a job name", source=path,
                              hint="rename it: lowercase letters, digits and single hyphens, e.g. helpdesk-lora.yaml")
        jobs.append(path.stem)
        if load_model(path, JobDefinition).promotion == "retrain":
            retrain.append(path.stem)
    return jobs, retrain


def github_expression(expression: str) -> str:
    """`${{ expression }}`: GitHub's expression syntax would otherwise clash with Jinja's."""
    return "${{ " + expression + " }}"
