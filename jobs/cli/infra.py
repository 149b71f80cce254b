"""`ftops infra`: provision the clouds per environment (AWS through the CDK, Azure through the management SDKs)."""

from __future__ import annotations

import enum
import os
import shlex
import subprocess
import sys
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from jobs import paths
from jobs.cli.lazy import load_environment
from jobs.cli.output import EnvOption, JsonOption, console, emit, err_console, markup_free
from jobs.errors import CloudError, FtopsError
from jobs.fsutil import atomic_write

if TYPE_CHECKING:
    from jobs.config.environment import Environment

app = typer.Typer(help="Provision and inspect the cloud infrastructure of an environment.", no_args_is_help=True)


class Cloud(str, enum.Enum):
    aws = "aws"
    azure = "azure"


def cdk_outputs_file(env_name: str) -> Path:
    """Where `ftops infra deploy` asks `cdk deploy --outputs-file` to write (ignored state, per environment)."""
    return paths.state_dir() / "cdk" / f"{env_name}.outputs.json"


def cdk_command(env: Environment, *args: str) -> tuple[list[str], dict[str, str]]:
    """The CDK CLI call for one environment's stack, and its process environment (emulator routing for local)."""
    from infra.aws.outputs import stack_name

    root = paths.project_root()
    cdk = root / "node_modules" / ".bin" / "cdk"
    if not cdk.exists():
        raise FtopsError("the AWS CDK CLI is not installed", source=cdk, hint="run `make setup` (npm ci)")
    app_cmd = f"{shlex.quote(sys.executable)} {shlex.quote(str(root / 'app.py'))}"
    # --no-notices: the CLI would otherwise fetch notices from the internet on every call (slow or hanging offline).
    command = [str(cdk), *args, stack_name(env), "--app", app_cmd, "--context", f"env={env.name}",
               "--output", str(paths.state_dir() / "cdk" / f"{env.name}.out"), "--no-notices"]
    proc_env = dict(os.environ)
    proc_env.setdefault("JSII_RUNTIME_PACKAGE_CACHE_ROOT", str(paths.state_dir() / "jsii-cache"))
    proc_env.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    proc_env.setdefault("CDK_DISABLE_CLI_TELEMETRY", "true")
    if env.emulated:
        from jobs.clients import emulator_endpoint

        aws = env.require_aws()
        # moto needs the `localhost` form of the endpoint (loopback only), and credentials that cannot be real.
        proc_env.update({"AWS_ENDPOINT_URL": emulator_endpoint("moto"), "AWS_ACCESS_KEY_ID": "testing",
                         "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": aws.region,
                         "AWS_DEFAULT_REGION": aws.region, "AWS_EC2_METADATA_DISABLED": "true"})
        for leaked in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            proc_env.pop(leaked, None)
    return command, proc_env


def run_cdk(command: list[str], proc_env: dict[str, str]) -> None:
    """Run the CDK CLI with its progress on stderr; a failure is one line with the CLI's last error."""
    tail: deque[str] = deque(maxlen=40)
    with subprocess.Popen(command, cwd=paths.project_root(), env=proc_env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, errors="replace") as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stderr.write(line)
            if line.strip():
                tail.append(line.strip())
    if proc.returncode != 0:
        # A synth error's cause is on its `ERROR` line; later lines only say that synthesis failed.
        causes = [line.removeprefix("ERROR ") for line in tail if line.startswith("ERROR ")]
        errors = [line for line in tail if line.startswith(("error:", "❌")) or "Error" in line]
        reason = (causes or errors or list(tail) or ["no output"])[-1]
        raise CloudError(f"cdk {command[1]} failed (exit {proc.returncode}): {reason}",
                         hint="read the CDK output above; fix the environment file or the account, then retry")


def write_resolved(env: Environment, cloud: Cloud, outputs_file: Path | None = None) -> tuple[Path, dict]:
    """Resolve the deployed values and write `environments/resolved/<env>.<cloud>.json` atomically."""
    if cloud is Cloud.aws:
        from infra.aws.outputs import resolve_outputs

        resolved = resolve_outputs(env, outputs_file or cdk_outputs_file(env.name))
    else:
        try:
            from infra.azure.outputs import resolve_outputs as resolve_azure
        except ImportError as exc:
            raise FtopsError(f"Azure outputs are not available ({exc})", field="--cloud",
                             hint="this build has no infra.azure.outputs; use --cloud aws") from None
        resolved = resolve_azure(env)
    from jobs.config.resolved import resolved_file

    path = resolved_file(env.name, cloud.value)
    atomic_write(path, resolved.model_dump_json(indent=2) + "\n")
    return path, resolved.model_dump(mode="json")


def _show(payload: dict) -> None:
    table = Table("field", "value", title=f"{payload['environment']} ({payload['cloud']}) -> {markup_free(payload['file'])}")
    table.columns[1].overflow = "fold"
    for key, value in payload["resolved"].items():
        table.add_row(key, ", ".join(value) if isinstance(value, list) else str(value))
    console.print(table)


@app.command()
def deploy(
    env_name: str = EnvOption,
    yes: bool = typer.Option(False, "--yes", "-y",
                             help="Deploy without asking about security-sensitive changes (CI). Emulated "
                                  "environments never ask."),
    as_json: bool = JsonOption,
) -> None:
    """Deploy the environment's AWS stack with `cdk deploy`, then record its outputs for rendering."""
    env = load_environment(env_name)
    env.require_aws()
    outputs_file = cdk_outputs_file(env.name)
    outputs_file.parent.mkdir(parents=True, exist_ok=True)
    args = ["deploy", "--outputs-file", str(outputs_file),
            "--require-approval", "never" if (yes or env.emulated) else "broadening"]
    if env.emulated:
        args.append("--method=direct")  # moto has no change sets
    command, proc_env = cdk_command(env, *args)
    err_console.print(f"[bold]deploying[/] {env.name}: {shlex.join(command[:3])} ...")
    run_cdk(command, proc_env)
    path, resolved = write_resolved(env, Cloud.aws)
    emit({"environment": env.name, "cloud": "aws", "file": str(path), "resolved": resolved}, as_json, _show)


@app.command()
def outputs(
    env_name: str = EnvOption,
    cloud: Cloud = typer.Option(Cloud.aws, "--cloud", help="Which cloud's deployed values to resolve."),
    outputs_file: Path | None = typer.Option(
        None, "--outputs-file", dir_okay=False,
        help="A `cdk deploy --outputs-file` JSON (AWS; default: the one `ftops infra deploy` wrote)."),
    as_json: bool = JsonOption,
) -> None:
    """Turn the deployed stack outputs into environments/resolved/<env>.<cloud>.json (what rendering reads)."""
    env = load_environment(env_name)
    if cloud is Cloud.aws:
        env.require_aws()
    elif outputs_file is not None:
        raise FtopsError("--outputs-file applies to --cloud aws only", field="--outputs-file",
                         hint="drop it; Azure values are read from the subscription")
    path, resolved = write_resolved(env, cloud, outputs_file)
    emit({"environment": env.name, "cloud": cloud.value, "file": str(path), "resolved": resolved}, as_json, _show)
