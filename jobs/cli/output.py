"""Everything the CLI prints goes through here: rich for people, one JSON document for pipelines."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import orjson
import typer
from rich.console import Console

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

JsonOption = typer.Option(False, "--json", help="Print one JSON document instead of the human format.")
EnvOption = typer.Option("local", "--env", "-e", help="Environment name (a file under environments/).")


def emit(payload: Any, as_json: bool, human: Callable[[Any], None] | None = None) -> None:
    """Print `payload` as JSON, or call `human(payload)` to render it for people."""
    if as_json or human is None:
        sys.stdout.buffer.write(orjson.dumps(payload, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS, default=str))
        sys.stdout.buffer.write(b"\n")
        sys.stdout.flush()
    else:
        human(payload)


def progress(transient: bool = True, disable: bool = False):
    """A progress bar on stderr (so `--json` output on stdout stays clean)."""
    from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                               TransferSpeedColumn)

    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                    TimeRemainingColumn(), console=err_console, transient=transient, disable=disable)
