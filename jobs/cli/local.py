"""`ftops local`: the emulators the `local` environment runs against."""

from __future__ import annotations

import typer
from rich.table import Table

from jobs.cli.output import EnvOption, JsonOption, console, emit, err_console, name_option

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
    from jobs.local import emulators  # lazily: every other command pays for what it imports at start

    restored: dict[str, dict] = {}
    with err_console.status("starting emulators...", spinner="dots") as spinner:
        emulators.up(on_started=lambda emu: spinner.update(f"{emu.name} answers on {emu.endpoint}"),
                     restored=restored)
    report = emulators.status()
    for name, restore in restored.items():
        report[name]["restored"] = restore

    def human(data: dict[str, dict]) -> None:
        _table(data)
        for name, restore in restored.items():
            if restore["replayed"]:
                console.print(f"{name}: replayed {restore['replayed']} recorded requests", markup=False)
            for kind, names in (restore.get("lost") or {}).items():
                shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
                err_console.print(f"{name}: NOT restored ({kind}): {shown}", markup=False, highlight=False)

    emit(report, as_json, human)


@app.command()
def down(as_json: bool = JsonOption) -> None:
    """Stop the emulators that `ftops local up` started."""
    from jobs.local import emulators

    result = emulators.down()

    def human(data: dict[str, list[str]]) -> None:
        console.print(f"stopped: {', '.join(data['stopped']) or 'nothing was running'}", markup=False)
        if data["skipped"]:
            console.print(f"left alone (the recorded pid is now another process): {', '.join(data['skipped'])}",
                          markup=False)

    emit(result, as_json, human)


@app.command()
def status(as_json: bool = JsonOption) -> None:
    """Show which emulators run and their endpoints (exit 1 if any is down)."""
    from jobs.local import emulators

    report = emulators.status()
    emit(report, as_json, _table)
    if not all(row["running"] for row in report.values()):
        raise typer.Exit(1)


@app.command("seed-model")
def seed_model(
    env: str = EnvOption,
    job: str | None = name_option(None, "--job", "-j", help="Only this SageMaker job definition's base model."),
    s3_uri: str | None = typer.Option(None, "--s3-uri", help="Seed this S3 prefix instead (a key prefix is taken "
                                                             "relative to the artifacts bucket, as in definitions)."),
    force: bool = typer.Option(False, "--force", help="Replace a model that is already there."),
    as_json: bool = JsonOption,
) -> None:
    """Emulated environments only: upload a tiny random-weight stand-in base model (tokenizer trained on the job's
    data) to each SageMaker definition's base_model.s3_uri, so the local runner can really train."""
    from jobs.config.environment import load_environment
    from jobs.runlocal import seed

    environment = load_environment(env)
    chosen = seed.targets(environment, job, s3_uri)
    with err_console.status("building the tiny stand-in model...", spinner="dots"):
        rows = seed.seed(environment, chosen, force=force)

    def human(_):
        table = Table("job", "base model URI", "result", "files")
        for row in rows:
            table.add_row(row.job or "-", row.uri, row.state, str(row.files) if row.files else "-")
        console.print(table)

    emit({"environment": env, "models": seed.as_json(rows)}, as_json, human)
