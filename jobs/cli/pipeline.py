"""`ftops pipeline`: the GitOps workflow that reviews rendered diffs on pull requests and applies on merge."""

from __future__ import annotations

from pathlib import Path

import typer

from jobs.cli.output import JsonOption, console, emit

app = typer.Typer(help="Generate the GitOps pipeline (GitHub Actions).", no_args_is_help=True)


@app.command()
def render(
    env: list[str] | None = typer.Option(None, "--env", "-e", help="Environments to apply, in order "
                                                                    "(repeatable; default: dev staging prod)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Workflow file (default: .github/workflows/ftops.yml)."),
    branch: str = typer.Option("main", "--branch", help="The branch merges land on."),
    check: bool = typer.Option(False, "--check", help="Write nothing; exit 1 if the workflow file is stale."),
    as_json: bool = JsonOption,
) -> None:
    """Write the GitHub Actions workflow: PR review (validate, render, diff in the job summary) and apply per
    environment in order, with OIDC to AWS and Azure and the prod environment behind required reviewers."""
    from jobs.fsutil import atomic_write
    from jobs.pipeline.render import default_output, render_workflow

    text = render_workflow(env or None, branch=branch)
    target = (out or default_output()).resolve()
    current = target.read_text() if target.exists() else None
    if check:
        stale = current != text
        emit({"path": str(target), "stale": stale}, as_json,
             lambda _: console.print(f"{target}: {'stale, run `ftops pipeline render`' if stale else 'up to date'}",
                                   markup=False))
        raise typer.Exit(1 if stale else 0)
    if current != text:
        atomic_write(target, text)
    emit({"path": str(target), "changed": current != text}, as_json,
         lambda _: console.print(f"wrote {target}" if current != text else f"{target} is up to date",
                                   markup=False))
