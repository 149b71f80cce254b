"""The `ftops` command: one Typer sub-app per noun; commands stay thin and call into the library."""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

from jobs import __version__
from jobs.cli import data, env, infra, infra_azure, local, run_local  # noqa: F401 (infra_azure adds commands to infra)
from jobs.cli import render
from jobs.cli import apply as apply_cli, deploy as deploy_cli, jobs as jobs_cli, pipeline as pipeline_cli
from jobs.cli import eval as eval_cli
from jobs.cli.output import err_console
from jobs.errors import FtopsError

app = typer.Typer(
    name="ftops",
    help="Fine-tuning as a platform: provision, prepare data, render, apply, watch, deploy, evaluate.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)
app.add_typer(data.app, name="data")
app.add_typer(env.app, name="env")
app.add_typer(local.app, name="local")
app.add_typer(infra.app, name="infra")
app.command("run-local")(run_local.run_local)
app.command("render")(render.render)
app.command("diff")(render.diff)
app.command("schema")(render.schema)
apply_cli.register(app)
app.add_typer(jobs_cli.app, name="jobs")
deploy_cli.register(app)
app.add_typer(pipeline_cli.app, name="pipeline")
app.command("eval")(eval_cli.eval_job)
app.command("promote")(eval_cli.promote)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ftops {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """ftops: fine-tuning on AWS SageMaker and Azure OpenAI, run as a platform."""


def run() -> None:
    """Console-script entry: user mistakes become one line on stderr and exit 1, never a traceback."""
    try:
        app()
    except FtopsError as err:
        err_console.print(f"[bold red]error:[/] {escape(str(err))}", soft_wrap=True)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    run()
