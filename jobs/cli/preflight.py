"""`ftops preflight`: quotas, capacity, permissions, deployed state, Azure models/quota/network and costs,
checked read-only before anything is submitted; exit 1 when anything blocks."""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from jobs.cli.output import EnvOption, JsonOption, console, emit, err_console, name_option, path_argument

STYLE = {"ok": "green", "warn": "yellow", "block": "bold red", "skip": "dim"}


def load_specs(env, directory: Path | None, only: list[str] | None):
    from jobs.preflight import needs

    return needs.from_directory(directory, env, only) if directory else needs.from_render(env, only)


def print_report(report) -> None:
    # A source column where the terminal is wide enough; otherwise the source follows the detail, dimmed.
    wide = console.width >= 140
    table = Table(title=f"preflight for {report.environment}", expand=True)
    table.add_column("check", no_wrap=True)
    table.add_column("job", overflow="fold", ratio=2)
    table.add_column("status", no_wrap=True)
    table.add_column("detail", ratio=5, overflow="fold")
    table.add_column("fix", ratio=3, overflow="fold")
    if wide:
        table.add_column("source", style="dim", ratio=2, overflow="fold")
    for row in report.rows:
        cells = [row.check, escape(row.job), f"[{STYLE[row.status]}]{row.status}[/]"]
        if wide:
            table.add_row(*cells, escape(row.detail), escape(row.fix), escape(row.source))
        else:
            table.add_row(*cells, escape(row.detail) + (f" [dim]({escape(row.source)})[/]" if row.source else ""),
                          escape(row.fix))
    console.print(table)
    counts = report.counts()
    console.print(f"Preflight for {report.environment}: {counts['block']} blocking, {counts['warn']} warnings, "
                  f"{counts['skip']} skipped, {counts['ok']} ok.")


def _check_ip(value: str | None) -> str | None:
    if value is not None and not value.strip():  # an unset variable: the network check would silently not run
        raise typer.BadParameter("an empty address; pass this runner's public egress IP, or leave --runner-ip out")
    if value:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise typer.BadParameter(f"{value!r} is not an IP address, e.g. 203.0.113.7") from None
    return value or None


def preflight(
    directory: Path | None = path_argument(None, help="A rendered tree (`ftops render --out`); default: render "
                                                        "the job definitions in memory."),
    env: str = EnvOption,
    job: list[str] | None = name_option(None, "--job", "-j", help="Only these rendered jobs (repeatable)."),
    runner_ip: str | None = typer.Option(None, "--runner-ip", envvar="FTOPS_RUNNER_IP", callback=_check_ip,
                                         help="This runner's public egress address, checked against Azure "
                                              "network rules (preflight never calls an IP lookup service)."),
    as_json: bool = JsonOption,
) -> None:
    """Find what would stop the jobs in ENV before anything is paid for: a table check | job | status | detail |
    fix. Only read calls are made. Exit 1 when any check blocks."""
    from jobs.config.environment import load_environment
    from jobs.preflight.run import Sources, run

    # A missing Azure credential becomes one `azure-identity` row; the SDK's multi-line warning adds nothing.
    logging.getLogger("azure.identity").setLevel(logging.ERROR)
    environment = load_environment(env)
    specs = load_specs(environment, directory, job)
    with err_console.status(f"preflight for {env}: {len(specs)} jobs..."):
        report = run(environment, specs, Sources.for_env(environment), runner_ip=runner_ip or None)
    emit(report.to_json(), as_json, lambda _: print_report(report))
    if report.blocked:
        raise typer.Exit(1)


def apply_gate(environment, directory: Path | None, only: list[str] | None, as_json: bool) -> None:
    """The cheap part `ftops apply` runs first (identity, permissions, quotas); raises Exit(1) when it blocks."""
    from jobs.apply.lookup import default_dir
    from jobs.preflight import needs
    from jobs.preflight.run import Sources, clouds_of, run

    specs = needs.from_directory(directory or default_dir(), environment, only)
    if not specs:
        return
    report = run(environment, specs, Sources.for_env(environment, clouds_of(specs)), cheap=True)
    if report.blocked:
        if as_json:
            emit({"environment": environment.name, "preflight": report.to_json()}, True)
        else:
            print_report(report)
            err_console.print("[bold red]Preflight blocks this apply[/]: fix the rows marked block, or pass "
                              "--skip-preflight to submit anyway.")
        raise typer.Exit(1)
