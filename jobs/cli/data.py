"""`ftops data`: validate, prepare, estimate and upload fine-tuning datasets."""

from __future__ import annotations

import typer

app = typer.Typer(help="Validate, clean, split, count, estimate and upload fine-tuning datasets.", no_args_is_help=True)
