"""Build the CDK app from the environment files: one platform stack per environment with AWS settings."""

from __future__ import annotations

from pathlib import Path

import orjson

from jobs import paths
from jobs.config.environment import Environment, environment_names, load_environment
from jobs.errors import ConfigError


def select_environments(selected: str | None) -> list[Environment]:
    """Every environment with AWS enabled, or the one named by `-c env=NAME` (loading validates each file)."""
    if selected:
        env = load_environment(selected)
        env.require_aws()
        return [env]
    envs = [load_environment(name) for name in environment_names()]
    chosen = [env for env in envs if env.aws is not None and env.aws.enabled]
    if not chosen:
        raise ConfigError("no environment has AWS settings", source=paths.environments_dir(),
                          hint="add an aws: block to an environment file")
    return chosen


def feature_flags() -> dict:
    """The `context` of cdk.json, so synthesizing in-process (tests, benchmark) equals `cdk synth`."""
    path = paths.project_root() / "cdk.json"
    try:
        return orjson.loads(path.read_bytes()).get("context", {})
    except FileNotFoundError:
        return {}


def build_app(envs: list[Environment], outdir: Path | None = None, context: dict | None = None):
    """The app with a stack per environment, cdk-nag's AwsSolutions checks and the acknowledgements."""
    from aws_cdk import App, Validations

    from infra.aws.nag import acknowledge
    from infra.aws.stacks import PlatformStack

    # The built-in CloudFormation schema validation takes ~10 s for four stacks on two cores; cfn-lint checks
    # every template in the test suite instead (tests/unit/test_infra_aws_templates.py).
    app = App(outdir=str(outdir) if outdir else None, context={**feature_flags(), **(context or {})},
              builtin_cloud_formation_validation=False)
    for env in envs:
        acknowledge(PlatformStack(app, env=env))
    from cdk_nag import AwsSolutionsChecks

    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app
