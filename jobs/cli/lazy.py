"""Loaders the CLI modules share, imported on first use: the config models (pydantic classes built at import)
are a good part of a command's start-up, and a command that needs no environment (`ftops --version`, `--help`)
should not pay for them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jobs.config.environment import Environment


def load_environment(name: str) -> Environment:
    """`jobs.config.environment.load_environment`."""
    from jobs.config.environment import load_environment as load

    return load(name)
