"""`ftops local`: the emulators the `local` environment runs against."""

from __future__ import annotations

import typer
from rich.table import Table

from jobs.cli.output import JsonOption, console, emit, err_console
from jobs.local import emulators

app = typer.Typer(help="Start, stop and inspect the local emulators (moto, Azurite, the Azure emulator).",
                  no_args_is_help=True)


def _table(report: dict[str, dict]) -> None:
    table = Table("emulator", "for", "state", "endpoint", "pid")
    for name, row in report.items():
        state = "[green]running[/]" if row["running"] else "[dim]stopped[/]"
        table.add_row(name, row["purpose"], state, row["endpoint"] or "-", str(row["pid"] or "-"))
    console.print(table)


@app.command()
def up(as_json: bool = JsonOption) -> None:
    """Start the emulators in the background on loopback ports and wait until each answers."""
    with err_console.status("starting emulators...", spinner="dots") as spinner:
        emulators.up(on_started=lambda emu: spinner.update(f"{emu.name} answers on {emu.endpoint}"))
    emit(emulators.status(), as_json, _table)


@app.command()
def down(as_json: bool = JsonOption) -> None:
    """Stop the emulators that `ftops local up` started."""
    stopped = emulators.down()
    emit({"stopped": stopped}, as_json,
         lambda data: console.print(f"stopped: {', '.join(data['stopped']) or 'nothing was running'}"))


@app.command()
def status(as_json: bool = JsonOption) -> None:
    """Show which emulators run and their endpoints (exit 1 if any is down)."""
    report = emulators.status()
    emit(report, as_json, _table)
    if not all(row["running"] for row in report.values()):
        raise typer.Exit(1)
