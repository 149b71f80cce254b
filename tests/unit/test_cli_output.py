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
