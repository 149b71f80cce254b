"""Everything the CLI prints goes through here: rich for people, one JSON document for pipelines."""

from __future__ import annotations

import math

import sys
from collections.abc import Callable
from typing import Any

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import orjson
import typer
from rich.console import Console, RenderableType
from rich.markup import escape
from rich.text import Text

# Outside a terminal (CI logs, pipes, files) rich assumes 80 columns and cuts table cells ("helpdesk-g…"):
# there, lines are as wide as their content needs. COLUMNS still wins when set.
UNBOUNDED_WIDTH = 1_000


def _width(stream) -> int | None:
    if os.environ.get("COLUMNS"):
        return None  # rich reads it
    try:
        return None if stream.isatty() else UNBOUNDED_WIDTH
    except (AttributeError, ValueError):
        return UNBOUNDED_WIDTH


console = Console(highlight=False, width=_width(sys.stdout))
err_console = Console(stderr=True, highlight=False, width=_width(sys.stderr))


def plain(value: object) -> Text:
    """A value (a path, a name, a message) shown as is: `[` in it is text, never rich markup."""
    return Text(str(value))


def markup_free(value: object) -> str:
    """The same for places that take a markup string (f-strings mixed with intended markup)."""
    return escape(str(value))


@contextlib.contextmanager
def live(renderable: RenderableType, *, transient: bool = False, refresh_per_second: float = 4) -> Iterator:
    """A live-updating view on stderr in a terminal. Elsewhere rich's Live would print only its last frame and no
    newline after it (the next line was glued to the table border): there we print that frame once, whole."""
    from rich.live import Live

    if err_console.is_terminal:
        with Live(renderable, console=err_console, refresh_per_second=refresh_per_second,
                  transient=transient) as view:
            yield view
        return
    view = _Frame(renderable)
    try:
        yield view
    finally:
        if not transient:
            err_console.print(view.renderable)


class _Frame:
    def __init__(self, renderable: RenderableType) -> None:
        self.renderable = renderable

    def update(self, renderable: RenderableType, refresh: bool = False) -> None:
        self.renderable = renderable

JsonOption = typer.Option(False, "--json", help="Print one JSON document instead of the human format.")
EnvOption = typer.Option("local", "--env", "-e", help="Environment name (a file under environments/).")


def _path(value: str | Path) -> Path:
    """Path("") is the current directory: an empty value (often an unset shell variable, `--out "$DIR"`) would
    write or read wherever the command runs. `.` still names the current directory on purpose."""
    if isinstance(value, Path):
        return value
    if not value:
        raise typer.BadParameter("an empty path; pass a path ('.' for the current directory)")
    return Path(value)


def _name(value: str) -> str:
    """A name (a job, a definition): empty or blank is refused, since it is most often an unset shell variable
    (`--job "$JOB"`), which would otherwise mean every job or match none with an empty name in the message."""
    if not value.strip():
        raise typer.BadParameter("an empty name; pass the job's name (or leave the option out)")
    return value


def finite(value: float | None) -> float | None:
    """Callback for a float option: NaN passes click's min/max (it compares false), infinity an open max."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a finite number of seconds")
    return value


def name_option(default: Any, *names: str, **kwargs: Any) -> Any:
    """typer.Option for a name that refuses an empty value (a usage error, exit 2)."""
    return typer.Option(default, *names, parser=_name, **kwargs)


def path_option(default: Any, *names: str, **kwargs: Any) -> Any:
    """typer.Option for a path that refuses an empty value (a usage error, exit 2)."""
    kwargs.setdefault("metavar", "<path>")
    return typer.Option(default, *names, parser=_path, **kwargs)


def path_argument(default: Any, **kwargs: Any) -> Any:
    """typer.Argument for a path that refuses an empty value, as path_option does."""
    return typer.Argument(default, parser=_path, **kwargs)


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
