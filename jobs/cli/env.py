"""`ftops env`: list and show the environments declared under environments/."""

from __future__ import annotations

import typer
from rich.table import Table

from jobs.cli.output import JsonOption, console, emit

app = typer.Typer(help="Inspect the environments declared under environments/.", no_args_is_help=True)


@app.command("list")
def list_(as_json: bool = JsonOption) -> None:
    """List the environments and where each one runs."""
    from jobs.config.environment import environment_names, load_environment

    rows = []
    for name in environment_names():
        env = load_environment(name)
        rows.append({"name": name, "emulated": env.emulated,
                     "aws": f"{env.aws.account}/{env.aws.region}" if env.aws else None,
                     "azure": f"{env.azure.location}/{env.azure.resource_group}" if env.azure else None,
                     "description": env.description})

    def human(rows: list[dict]) -> None:
        table = Table("environment", "AWS account/region", "Azure location/group", "description")
        for row in rows:
            name = row["name"] + (" (emulated)" if row["emulated"] else "")
            table.add_row(name, row["aws"] or "-", row["azure"] or "-", row["description"])
        console.print(table)

    emit(rows, as_json, human)


@app.command()
def show(name: str = typer.Argument("local", help="Environment name."), as_json: bool = JsonOption) -> None:
    """Show one environment, fully resolved with its defaults."""
    from jobs.config.environment import load_environment

    env = load_environment(name)
    emit(env.model_dump(mode="json"), as_json, lambda data: console.print_json(data=data))
