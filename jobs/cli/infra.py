"""`ftops infra`: provision the clouds per environment (AWS through the CDK, Azure through the management SDKs)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Provision and inspect the cloud infrastructure of an environment.", no_args_is_help=True)
