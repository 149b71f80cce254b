"""Targets by spec: `azure:DEPLOYMENT`, `sagemaker:ENDPOINT`, `local:PATH` (a model directory or model.tar.gz)
or `local:s3://bucket/key/model.tar.gz` (what the local runner uploads), built for an environment."""

from __future__ import annotations

import tempfile
from pathlib import Path

from jobs.config.environment import Environment
from jobs.errors import ConfigError
from jobs.eval.targets.base import Generation, Request, Target, Throttle

KINDS = ("azure", "sagemaker", "local")
__all__ = ["KINDS", "Generation", "Request", "Target", "Throttle", "build", "parse_spec"]


def parse_spec(spec: str, *, option: str = "--fine-tuned") -> tuple[str, str]:
    kind, sep, value = spec.partition(":")
    if not sep or kind not in KINDS or not value:
        raise ConfigError(f"{spec!r} is not a target", field=option,
                          hint="write azure:DEPLOYMENT, sagemaker:ENDPOINT or local:PATH (or local:s3://.../model.tar.gz)")
    return kind, value


def azure_client(env: Environment):
    """The openai client for the environment's Azure OpenAI account (the emulator's in `local`)."""
    from jobs.providers import azure_openai

    return azure_openai.client(env)


def build(spec: str, env: Environment, *, concurrency: int = 8, batch: bool = False, poll_interval_s: float = 5.0,
          option: str = "--fine-tuned", base_model_dir: Path | None = None) -> Target:
    kind, value = parse_spec(spec, option=option)
    if kind == "azure":
        from jobs.config.resolved import resolved_azure
        from jobs.eval.targets.azure_openai import AzureOpenAITarget, check_batch_deployment, served_model
        from jobs.providers.azure_openai import arm_deployment

        found = arm_deployment(env, value)  # what it serves keys the answers (and is checked against a record)
        if found is None:
            raise ConfigError(f"no deployment {value!r} on {resolved_azure(env).openai_account}", field=option,
                              hint="deploy it first (`ftops deploy JOB`), or name another deployment")
        if batch:
            check_batch_deployment(env, value, found)
        return AzureOpenAITarget(azure_client(env), value, concurrency=concurrency, batch=batch,
                                 poll_interval_s=poll_interval_s, served=served_model(found))
    if kind == "sagemaker":
        from jobs import clients
        from jobs.eval.targets.sagemaker import SageMakerEndpointTarget

        return SageMakerEndpointTarget(clients.aws_client(env, "sagemaker-runtime"), value, concurrency=concurrency,
                                       describe_client=clients.aws_client(env, "sagemaker"))
    from jobs.eval.targets.local_model import LocalModelTarget, fetch_s3_archive

    if value.startswith("s3://"):
        from jobs import clients

        archive = fetch_s3_archive(clients.aws_client(env, "s3"), value, Path(tempfile.mkdtemp(prefix="ftops-eval-")))
        return LocalModelTarget.from_archive(archive, base_model_dir=base_model_dir, name=value)
    path = Path(value).expanduser().resolve()
    if path.is_file() and path.name.endswith((".tar.gz", ".tgz")):
        return LocalModelTarget.from_archive(path, base_model_dir=base_model_dir)
    if not path.is_dir():
        raise ConfigError("no model here", source=path, field=option,
                          hint="give a model directory (config.json) or a model.tar.gz")
    return LocalModelTarget(path, base_model_dir=base_model_dir, name=str(path))
