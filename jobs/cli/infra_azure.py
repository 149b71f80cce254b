"""`ftops infra plan|apply|destroy --cloud azure`: Azure provisioning through the management SDKs.

Registered on the `ftops infra` Typer app (jobs/cli/infra.py); AWS provisioning stays with the CDK there.
"""

from __future__ import annotations

import contextlib
import functools
import json
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from jobs.cli.infra import Cloud, app
from jobs.cli.lazy import load_environment
from jobs.cli.output import EnvOption, JsonOption, console, emit, err_console
from jobs.errors import FtopsError

if TYPE_CHECKING:
    from jobs.config.environment import Environment

CloudOption = typer.Option(..., "--cloud", help="Which cloud: azure (AWS is deployed with `ftops infra deploy`).")
YesOption = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation (pipelines).")
SYMBOL = {"create": "[green]+[/]", "update": "[yellow]~[/]", "replace": "[red]-/+[/]", "unchanged": "[dim]=[/]",
          "delete": "[red]-[/]", "keep": "[dim]·[/]", "absent": "[dim]·[/]"}


def _explained(command):
    """An AuthorizationFailed from ARM names the role (and scope) ftops' access model expects to carry it."""
    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except FtopsError as exc:
            from jobs.access.azure import explain_denied

            better = explain_denied(exc.message)
            if better:
                exc.hint = better
            elif "AuthorizationFailed" in exc.message:
                exc.hint = ("grant the roles of README '#### Azure', Permissions per scope (jobs/access/azure.py "
                            "lists every call with its permission and scope)")
            raise
    return run


def _azure_env(cloud: Cloud, env_name: str) -> Environment:
    if cloud is Cloud.aws:
        raise FtopsError("AWS is provisioned with the CDK", field="--cloud",
                         hint="use `ftops infra deploy --env ENV`; `cdk diff` previews it", exit_code=2)
    env = load_environment(env_name)
    env.require_azure()
    return env


def _value(value) -> str:
    return escape(json.dumps(value, sort_keys=True, default=str))


def show_plan(payload: dict) -> None:
    console.print(f"[bold]Azure plan[/] for [bold]{payload['environment']}[/] "
                  f"(subscription {payload['subscription_id']}, {payload['location']})", soft_wrap=True)
    for check in payload["checks"]:
        mark = "[green]ok[/]" if check["ok"] else "[red]FAIL[/]"
        console.print(f"  {mark} {escape(check['subject'])}: {escape(check['message'])} [dim]({check['source']})[/]",
                      soft_wrap=True)
    for line in payload["quota"]:
        mark = "[green]ok[/]" if line["ok"] else "[red]SHORT[/]"
        console.print(f"  {mark} quota {line['usage']}: {line['current']:g} of {line['limit']:g} used, "
                      f"this plan adds {line['requested']:g} ({', '.join(line['deployments'])})", soft_wrap=True)
    for change in payload["changes"]:
        note = f" [dim]({escape(change['note'])})[/]" if change["note"] else ""
        console.print(f"  {SYMBOL[change['action']]} {change['kind']} [bold]{escape(change['name'])}[/]: "
                      f"{change['action']}{note}", soft_wrap=True)
        for prop in change["changes"]:
            if change["action"] != "create":
                console.print(f"        {prop['path']}: {_value(prop['before'])} -> {_value(prop['after'])}",
                              soft_wrap=True)
    s = payload["summary"]
    verdict = "no changes" if not payload["has_changes"] else \
        f"{s['create']} to create, {s['update']} to update, {s['replace']} to replace"
    console.print(f"[bold]Plan:[/] {verdict}, {s['unchanged']} unchanged.")


def _events(as_json: bool):
    """Progress and retries go to stderr, so `--json` output on stdout stays one clean document."""
    return lambda message: err_console.print(f"[dim]{escape(message)}[/]", soft_wrap=True)


@app.command()
@_explained
def plan(
    env_name: str = EnvOption,
    cloud: Cloud = CloudOption,
    detailed_exitcode: bool = typer.Option(False, "--detailed-exitcode",
                                           help="Exit 2 when there are changes, 0 when there are none."),
    as_json: bool = JsonOption,
) -> None:
    """Show what `apply` would create or update: per resource, the properties that differ (read-only)."""
    env = _azure_env(cloud, env_name)
    from infra.azure.plan import make_plan

    events = _events(as_json)
    with err_console.status("reading Azure state...", spinner="dots") if not as_json else contextlib.nullcontext():
        result = make_plan(env, on_retry=lambda message, _wait: events(message))
    emit(result.to_json(), as_json, show_plan)
    if any(not c.ok for c in result.checks) or any(not q.ok for q in result.quota):
        raise typer.Exit(1)
    if detailed_exitcode and result.has_changes:
        raise typer.Exit(2)


@app.command()
@_explained
def apply(
    env_name: str = EnvOption,
    cloud: Cloud = CloudOption,
    yes: bool = YesOption,
    as_json: bool = JsonOption,
) -> None:
    """Create or update the environment's Azure resources to match its file, then record the outputs."""
    env = _azure_env(cloud, env_name)
    from infra.azure.apply import apply as run_apply
    from infra.azure.apply import check_plan
    from infra.azure.plan import make_plan

    events = _events(as_json)
    result = make_plan(env, on_retry=lambda message, _wait: events(message))
    if not as_json:
        show_plan(result.to_json())
    check_plan(env, result)
    if result.has_changes and not yes:
        typer.confirm(f"Apply these changes to {env.name}?", abort=True, err=True)
    result, resolved = run_apply(env, result, on_event=events)
    from jobs.config.resolved import resolved_file

    payload = {"environment": env.name, "cloud": "azure", "summary": result.summary(),
               "file": str(resolved_file(env.name, "azure")), "resolved": resolved.model_dump(mode="json")}
    emit(payload, as_json, lambda p: console.print(
        f"[bold green]Applied[/] {env.name}: {p['summary']['create']} created, {p['summary']['update']} updated; "
        f"outputs in {p['file']}\n  endpoint {p['resolved']['openai_endpoint']}\n"
        f"  container {p['resolved']['container_url']}"))


@app.command()
@_explained
def destroy(
    env_name: str = EnvOption,
    cloud: Cloud = CloudOption,
    yes: bool = YesOption,
    force: bool = typer.Option(False, "--force", help="Destroy a production environment without typing its name."),
    as_json: bool = JsonOption,
) -> None:
    """Delete the environment's Azure resources that ftops manages (tagged managed-by=ftops and the env)."""
    env = _azure_env(cloud, env_name)
    from infra.azure.apply import destroy as run_destroy
    from infra.azure.apply import is_production, plan_destroy

    events = _events(as_json)
    steps = plan_destroy(env, on_retry=lambda message, _wait: events(message))
    if not as_json:
        console.print(f"[bold]Azure destroy[/] for [bold]{env.name}[/]")
        for step in steps.steps:
            reason = f" [dim]({escape(step.reason)})[/]" if step.reason else ""
            console.print(f"  {SYMBOL[step.action]} {step.resource.kind} [bold]{escape(step.resource.name)}[/]: "
                          f"{step.action}{reason}", soft_wrap=True)
    if any(s.action == "delete" for s in steps.steps):
        if is_production(env) and not force:
            typed = typer.prompt(f"{env.name} is a production environment; type its name to destroy it",
                                 default="", show_default=False, err=True)
            if typed != env.name:
                raise FtopsError(f"refusing to destroy {env.name}", field="--env",
                                 hint=f"type {env.name!r} at the prompt, or pass --force")
        elif not yes and not is_production(env):
            typer.confirm(f"Delete these resources of {env.name}?", abort=True, err=True)
    done = run_destroy(env, steps, on_event=events)

    def human(p: dict) -> None:
        console.print(f"[bold]Destroyed[/] {p['delete']} resource(s) of {env.name}.")
        if p["outputs_removed"]:
            console.print(f"removed {escape(p['outputs_removed'])} "
                          f"(`ftops infra apply --cloud azure --env {env.name}` writes it again)")

    emit(done.to_json(), as_json, human)
