"""The `ftops` command: one Typer sub-app per noun; commands stay thin and call into the library."""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

from jobs import __version__
from jobs.cli import apply as apply_cli
from jobs.cli import data, deploy, env, infra, local, models, pipeline, preflight, render, run_local
from jobs.cli import eval as eval_cli
from jobs.cli import infra_azure  # noqa: F401  (adds the Azure plan/apply/destroy commands to `infra`)
from jobs.cli import jobs as jobs_cli
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

# Registered in the order of the workflow; the panels group them in `ftops --help`.
SETUP, DATA, JOBS, SERVE = "Set up", "Data", "Jobs", "Serve and promote"
app.add_typer(env.app, name="env", rich_help_panel=SETUP)
app.add_typer(local.app, name="local", rich_help_panel=SETUP)
app.add_typer(infra.app, name="infra", rich_help_panel=SETUP)
app.add_typer(data.app, name="data", rich_help_panel=DATA)
app.command("render", rich_help_panel=JOBS)(render.render)
app.command("diff", rich_help_panel=JOBS)(render.diff)
app.command("schema", rich_help_panel=JOBS)(render.schema)
app.command("preflight", rich_help_panel=JOBS)(preflight.preflight)
app.command("plan", rich_help_panel=JOBS)(apply_cli.plan)
app.command("apply", rich_help_panel=JOBS)(apply_cli.apply)
app.add_typer(jobs_cli.app, name="jobs", rich_help_panel=JOBS)
app.command("run-local", rich_help_panel=JOBS)(run_local.run_local)
app.add_typer(pipeline.app, name="pipeline", rich_help_panel=JOBS)
app.command("deploy", rich_help_panel=SERVE)(deploy.deploy)
app.command("undeploy", rich_help_panel=SERVE)(deploy.undeploy)
app.command("eval", rich_help_panel=SERVE)(eval_cli.eval_job)
app.command("promote", rich_help_panel=SERVE)(eval_cli.promote)
app.add_typer(models.app, name="models", rich_help_panel=SERVE)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ftops {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """ftops: fine-tuning on AWS SageMaker and Azure OpenAI, run as a platform."""


def user_error(exc: BaseException) -> FtopsError | None:
    """What the user sees for `exc`: an FtopsError as it is; a cloud SDK's missing, expired or refused login
    as one line naming the cloud, environment and fix (mapped here, at the root, so every command gets it);
    None for anything else (a bug: its traceback is the report)."""
    if isinstance(exc, FtopsError):
        return exc
    if not isinstance(exc, Exception):
        return None
    # Imported on the error path only: start-up imports no SDK just to catch its errors.
    from jobs.clients import credential_error

    return credential_error(exc)


def run() -> None:
    """Console-script entry: user mistakes become one line on stderr and exit 1, never a traceback."""
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except Exception as exc:
        err = user_error(exc)
        if err is None:
            raise
        err_console.print(f"[bold red]error:[/] {escape(str(err))}", soft_wrap=True)
        sys.exit(err.exit_code)


if __name__ == "__main__":
    run()
