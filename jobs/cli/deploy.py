"""`ftops deploy` / `ftops undeploy`: serve a fine-tuned model (Azure OpenAI deployment, SageMaker endpoint)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from jobs.cli.output import EnvOption, JsonOption, console, emit, err_console

JobArgument = typer.Argument(..., help="The rendered job name (its deployment settings come from the rendering).")
DirOption = typer.Option(None, "--dir", "-d", help="The rendered tree (default: rendered/).")


def _resolve(env: str, job: str, directory: Path | None):
    from jobs.apply.lookup import resolve
    from jobs.config.environment import load_environment
    from jobs.errors import FtopsError

    environment = load_environment(env)
    ref = resolve(environment, job, directory)
    if ref.rendered is None:
        raise FtopsError(f"{job!r} is not a rendered job of {env}", field="job",
                         hint="deploy by the rendered job name; its deployment settings come from the definition")
    return environment, ref


def deploy(job: str = JobArgument, env: str = EnvOption, directory: Path | None = DirOption,
           checkpoint: str | None = typer.Option(None, "--checkpoint", help="Deploy this checkpoint instead of the "
                                                 "final model (Azure checkpoint id, or a SageMaker model S3 URI)."),
           gitops: Path | None = typer.Option(None, "--gitops", help="Azure: write the deployment's ASO manifest under "
                                              "DIR/<env>/ for a reviewed commit instead of creating it."),
           as_json: bool = JsonOption) -> None:
    """Create or update the deployment that serves the job's fine-tuned model."""
    from jobs import providers

    environment, ref = _resolve(env, job, directory)
    provider = providers.get(ref.provider)
    with err_console.status(f"deploying {ref.label}..."):
        current = provider.describe(environment, ref.job_id)
        if gitops is not None:
            from jobs.errors import FtopsError

            if not hasattr(provider, "gitops"):
                raise FtopsError(f"--gitops is not supported for {ref.provider}", field="--gitops")
            result = provider.gitops(environment, ref.rendered, current, gitops, checkpoint=checkpoint)
        else:
            result = provider.deploy(environment, ref.rendered, current, checkpoint=checkpoint)

    def human(_):
        where = result.get("deployment") or result.get("endpoint")
        if result.get("manifest"):
            console.print(f"[green]wrote[/] {escape(result['manifest'])} (commit it; ASO creates {escape(str(where))})")
        else:
            console.print(f"[green]deployed[/] {escape(ref.label)} as [bold]{escape(str(where))}[/] "
                          f"(model {escape(str(result.get('model')))})")
        for note in result.get("notes", []):
            console.print(f"[yellow]note[/]: {escape(note)}")

    emit(result, as_json, human)


def undeploy(job: str = JobArgument, env: str = EnvOption, directory: Path | None = DirOption,
             as_json: bool = JsonOption) -> None:
    """Remove what `ftops deploy` created for the job (nothing to remove is not an error)."""
    from jobs import providers

    environment, ref = _resolve(env, job, directory)
    result = providers.get(ref.provider).undeploy(environment, ref.rendered)
    emit(result, as_json, lambda _: console.print(
        f"removed {', '.join(result['removed']) or 'nothing (already gone)'} for {escape(ref.label)}"))
