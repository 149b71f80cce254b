"""What the CLI prints outside a terminal (CI logs, pipes): whole names, no glued lines, paths as written."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from jobs.cli import output

ROOT = Path(__file__).resolve().parents[2]


def test_tables_in_a_pipe_are_not_cut_to_80_columns(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    done = subprocess.run([sys.executable, "-m", "jobs.cli.main", "env", "list"], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "…" not in done.stdout
    # The description of `local` (longer than its 80-column cell would allow) is on one line, whole.
    assert any("Emulators on this machine; the default environment" in line for line in done.stdout.splitlines())


def test_columns_still_wins(monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    assert output._width(io.StringIO()) is None  # rich then reads COLUMNS


def test_the_live_view_ends_with_a_newline_outside_a_terminal(monkeypatch):
    buffer = io.StringIO()
    monkeypatch.setattr(output, "err_console", Console(file=buffer, width=200, force_terminal=False))
    table = Table("job", "state")
    with output.live(table) as view:
        done = Table("job", "state")
        done.add_row("helpdesk-gpt41mini", "succeeded")
        view.update(done)
    output.err_console.print("1 job(s) succeeded.")
    text = buffer.getvalue()
    assert "succeeded" in text and "┘\n1 job(s) succeeded." in text


def test_a_path_with_brackets_is_printed_as_written(ftops, tmp_path):
    out = tmp_path / "renders[/]x [bold]y"
    result = ftops("render", "--env", "local", "--out", out)
    assert result.exit_code == 0, result.stderr
    shown = (result.stdout + result.stderr).replace("\n", "")
    assert "renders[/]x [bold]y" in shown
    assert (out / "local").is_dir()


def _help(*command: str) -> str:
    """`ftops COMMAND --help` as a pipe gets it (rich's 80 columns), in this process."""
    from typer.testing import CliRunner

    from jobs.cli.main import app

    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": None, "TERMINAL_WIDTH": None})
    assert result.exit_code == 0, result.output
    assert max(map(len, result.output.splitlines())) == 80  # laid out as in a pipe, not wider
    return result.output


def test_help_shows_every_default_whole_at_80_columns():
    """Defaults written as `[default: ...]` inside help text were rich markup and vanished from `--help`."""
    from jobs.cli import data
    from jobs.data.tokens import DEFAULT_MODEL

    assert data.DEFAULT_MODEL_SHOWN == DEFAULT_MODEL
    shown = {command: " ".join(line.strip("│ ") for line in _help("data", command).splitlines())
             for command in ("validate", "prepare", "estimate", "upload")}
    assert f"Default: {DEFAULT_MODEL}." in shown["validate"] and f"Default: {DEFAULT_MODEL}." in shown["estimate"]
    assert "every core" in shown["validate"]
    assert "the environment's data.split" in shown["prepare"] and "the environment's data.seed" in shown["prepare"]
    assert "the provider's rule" in shown["estimate"]
    assert "every cloud the environment enables" in shown["upload"]


def test_help_texts_are_not_cut_at_80_columns():
    """Outside a terminal rich lays help out in 80 columns and cuts a word wider than its cell with an ellipsis;
    help texts keep their words short enough, and no option pairs a long name with its negation (Typer's second
    name column cut `apply`'s `--no-local-runner`)."""
    from typer.main import get_command

    from jobs.cli.main import app

    def commands(group, path):
        for name, command in group.commands.items():
            if hasattr(command, "commands"):
                yield from commands(command, (*path, name))
            else:
                yield (*path, name)

    cut = [" ".join(path) for path in commands(get_command(app), ()) if "…" in _help(*path)]
    assert not cut, f"help cut with an ellipsis at 80 columns: {cut}"
