"""`ftops pipeline`: the GitOps workflow that reviews rendered diffs on pull requests and applies on merge."""

from __future__ import annotations

import shlex
from pathlib import Path

import typer

from jobs.cli.output import JsonOption, console, emit, path_option

app = typer.Typer(help="Generate the GitOps pipeline (GitHub Actions).", no_args_is_help=True)


@app.command()
def render(
    env: list[str] | None = typer.Option(None, "--env", "-e", help="Environments to apply, in order "
                                                                    "(repeatable; default: dev staging prod)."),
    out: Path | None = path_option(None, "--out", "-o", help="Workflow file (default: .github/workflows/ftops.yml)."),
    branch: str = typer.Option("main", "--branch", help="The branch merges land on."),
    check: bool = typer.Option(False, "--check", help="Write nothing; exit 1 if the workflow file is stale."),
    as_json: bool = JsonOption,
) -> None:
    """Write the GitHub Actions workflow: PR review (validate, render, diff in the job summary) and apply per
    environment in order, with OIDC to AWS and Azure and the prod environment behind required reviewers."""
    from jobs.fsutil import check_generated_file, write_generated_file
    from jobs.pipeline.render import default_output, is_generated, render_workflow

    text = render_workflow(env or None, branch=branch)
    target = (out or default_output()).resolve()
    # Only a workflow this command wrote is ever overwritten (or called stale): a user's file is refused.
    existing = check_generated_file(target, is_generated, field="--out",
                                    what="a workflow written by `ftops pipeline render`")
    # As text with newlines translated (as before): a checkout with CRLF line ends is not stale.
    changed = existing is None or existing.decode(errors="replace").replace("\r\n", "\n") != text
    if check:
        # The same options write the same workflow: the fix names them.
        rerun = shlex.join(["ftops", "pipeline", "render", *(a for e in env or [] for a in ("--env", e)),
                            *(["--branch", branch] if branch != "main" else []),
                            *(["--out", str(out)] if out else [])])
        state = "missing" if existing is None else "stale" if changed else "up to date"
        emit({"path": str(target), "stale": changed, "missing": existing is None}, as_json,
             lambda _: console.print(f"{target}: " + (f"{state}, run `{rerun}`" if changed else state),
                                     markup=False))
        raise typer.Exit(1 if changed else 0)
    if changed:
        write_generated_file(target, text, field="--out")
    emit({"path": str(target), "changed": changed}, as_json,
         lambda _: console.print(f"wrote {target}" if changed else f"{target} is up to date", markup=False))
