"""`ftops jobs`: list, status, wait (live), events, cancel and results of submitted fine-tuning jobs."""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from jobs.cli.output import EnvOption, JsonOption, console, emit, err_console, finite, path_option

app = typer.Typer(help="Watch submitted jobs: status, live progress, events, cancel, loss plots and results.",
                  no_args_is_help=True)
DirOption = path_option(None, "--dir", "-d", help="The rendered tree, to find jobs by name (default: rendered/).")
JobArgument = typer.Argument(..., help="A rendered job name, an Azure job id (ftjob-...) or a SageMaker job name.")
STATE_STYLE = {"pending": "yellow", "running": "cyan", "succeeded": "green", "failed": "bold red",
               "cancelled": "magenta", "paused": "bold yellow"}


def _env(name: str):
    from jobs.config.environment import load_environment

    return load_environment(name)


def _status_row(label: str, status) -> list[str]:
    losses = ", ".join(f"{k} {v:.4f}" for k, v in sorted(status.metrics.items()))
    progress = status.secondary_status or ""
    if status.step is not None and str(status.step) not in progress:
        progress += f" step {status.step}"
    if status.epoch is not None:
        progress += f" epoch {status.epoch:g}"
    return [escape(label), status.provider, f"[{STATE_STYLE[status.state]}]{status.state}[/]",
            escape(progress.strip() or status.provider_status), losses, escape(status.failure_reason or "")]


def _table(rows: list[list[str]]) -> Table:
    table = Table("job", "provider", "state", "progress", "latest losses", "failure")
    for row in rows:
        table.add_row(*row)
    return table


@app.command("list")
def list_(env: str = EnvOption, limit: int = typer.Option(50, "--limit", min=1, max=1000),
          as_json: bool = JsonOption) -> None:
    """The environment's fine-tuning jobs on every cloud it uses, newest first."""
    from jobs import providers

    environment = _env(env)
    statuses = []
    if environment.aws and environment.aws.enabled:
        statuses += providers.get("sagemaker").list(environment, limit)
        statuses += providers.get("sagemaker-tuning").list(environment, limit)
    if environment.azure and environment.azure.enabled:
        statuses += providers.get("azure-openai").list(environment, limit)
    statuses.sort(key=lambda s: s.created_at or "", reverse=True)
    emit([s.to_json() for s in statuses[:limit]], as_json,
         lambda _: console.print(_table([_status_row(s.job_id, s) for s in statuses[:limit]])))


@app.command()
def status(job: str = JobArgument, env: str = EnvOption, directory: Path | None = DirOption,
           as_json: bool = JsonOption) -> None:
    """One job's state, progress, latest losses and failure reason (exit 1 if it failed)."""
    from jobs import providers
    from jobs.apply.lookup import resolve

    environment = _env(env)
    ref = resolve(environment, job, directory)
    current = providers.get(ref.provider).describe(environment, ref.job_id)
    emit({"job": ref.label, **current.to_json()}, as_json,
         lambda _: console.print(_table([_status_row(ref.label, current)])))
    if current.state == "failed":
        raise typer.Exit(1)


@app.command()
def wait(
    jobs: list[str] | None = typer.Argument(None, help="Jobs to wait for; default: every submitted rendered job."),
    env: str = EnvOption,
    directory: Path | None = DirOption,
    timeout: float = typer.Option(24 * 3600, "--timeout", min=1, callback=finite, help="Give up after this many seconds (exit 2)."),
    interval: float = typer.Option(5.0, "--interval", min=0.05, max=3600, callback=finite, help="Seconds between polls."),
    as_json: bool = JsonOption,
) -> None:
    """Follow jobs live until each one ends. Exit 1 if any failed or was cancelled (the reason is shown), 2 on
    timeout, 3 if one is paused (Azure OpenAI: it moves again only when resumed, so the wait ends on it)."""
    from jobs.cli.output import live as output_live

    from jobs import providers
    from jobs import retry
    from jobs.apply.lookup import resolve, submitted

    environment = _env(env)
    refs = [resolve(environment, j, directory) for j in jobs] if jobs else submitted(environment, directory)
    if not refs:
        err_console.print(f"nothing to wait for in {env}: no submitted jobs (run `ftops apply --env {env}`)")
        emit([], as_json, lambda _: None)
        return
    deadline = time.monotonic() + timeout
    latest: dict[str, object] = {}
    # A restarted or briefly unreachable emulator/cloud must not end the wait: transient errors are retried.
    policy = retry.RetryPolicy(attempts=30, base_s=0.5, max_delay_s=10)

    def poll() -> None:
        for ref in refs:
            if ref.label in latest and latest[ref.label].done:
                continue
            latest[ref.label] = retry.call(lambda: providers.get(ref.provider).describe(environment, ref.job_id),
                                           policy)

    def render() -> Table:
        return _table([_status_row(label, s) for label, s in latest.items()])

    with output_live(render(), transient=as_json) as live:
        while True:
            poll()
            live.update(render())
            # A paused job (Azure OpenAI) moves again only when a person resumes it: the wait ends on it.
            if all(s.done or s.state == "paused" for s in latest.values()):
                break
            if time.monotonic() > deadline:
                emit([{"job": k, **v.to_json()} for k, v in latest.items()], as_json, lambda _: None)
                err_console.print(f"[yellow]timed out after {timeout:.0f}s[/]; the jobs keep running")
                raise typer.Exit(2)
            time.sleep(interval)
    bad = {label: s for label, s in latest.items() if s.state in {"failed", "cancelled"}}
    paused = [label for label, s in latest.items() if s.state == "paused"]

    def human(_):
        for label, s in bad.items():
            err_console.print(f"[bold red]{escape(label)} {s.state}[/]: {escape(s.failure_reason or 'no reason given')}")
        for label in paused:
            err_console.print(f"[yellow]{escape(label)} paused[/]: it stays paused until resumed (Azure OpenAI "
                              "resume: Foundry portal or POST .../fine_tuning/jobs/<id>/resume); then wait again")
        if not bad and not paused:
            console.print(f"{len(latest)} job(s) succeeded.")

    emit([{"job": k, **v.to_json()} for k, v in latest.items()], as_json, human)
    if bad:
        raise typer.Exit(1)
    if paused:
        raise typer.Exit(3)


@app.command()
def events(job: str = JobArgument, env: str = EnvOption, directory: Path | None = DirOption,
           limit: int = typer.Option(100, "--limit", min=1, max=1000), as_json: bool = JsonOption) -> None:
    """The job's event log (status changes, steps and losses, failures), oldest first."""
    from jobs import providers
    from jobs.apply.lookup import resolve

    environment = _env(env)
    ref = resolve(environment, job, directory)
    found = providers.get(ref.provider).events(environment, ref.job_id, limit)

    def human(_):
        for event in found:
            style = "red" if event.level == "error" else "default"
            console.print(f"[dim]{event.at}[/] [{style}]{escape(event.message)}[/]")

    emit([vars(e) for e in found], as_json, human)


@app.command()
def cancel(job: str = JobArgument, env: str = EnvOption, directory: Path | None = DirOption,
           as_json: bool = JsonOption) -> None:
    """Stop a running job (SageMaker StopTrainingJob, Azure OpenAI cancel)."""
    from jobs import providers
    from jobs.apply.lookup import resolve

    environment = _env(env)
    ref = resolve(environment, job, directory)
    current = providers.get(ref.provider).cancel(environment, ref.job_id)
    emit({"job": ref.label, **current.to_json()}, as_json,
         lambda _: console.print(f"{escape(ref.label)}: {current.state} ({current.provider_status})"))


@app.command()
def results(
    job: str = JobArgument,
    env: str = EnvOption,
    directory: Path | None = DirOption,
    out: Path | None = path_option(None, "--out", "-o", help="Directory for metrics.csv, loss.png and summary.json "
                                                             "(default: .ftops/results/<env>/<job>/)."),
    as_json: bool = JsonOption,
) -> None:
    """Fetch the training metrics; write a CSV and a loss plot; flag overfitting; name the best checkpoint;
    report what managed spot saved (SageMaker)."""
    from jobs import paths, providers
    from jobs.apply.lookup import resolve
    from jobs.fsutil import resolve_under
    from jobs.results.report import write_results

    environment = _env(env)
    ref = resolve(environment, job, directory)
    provider = providers.get(ref.provider)
    current = provider.describe(environment, ref.job_id)
    metrics = provider.metrics(environment, ref.job_id)
    target = (out or resolve_under(paths.state_dir() / "results" / env, ref.label, what="job name")).resolve()
    summary = write_results(current, metrics, target, ref.label)
    if hasattr(provider, "best"):  # a tuning job: name its best training job and every trial
        import orjson

        from jobs.fsutil import atomic_write

        summary["best_training_job"] = provider.best(environment, ref.job_id)
        summary["trials"] = provider.trials(environment, ref.job_id)
        atomic_write(Path(summary["files"]["summary"]), orjson.dumps(summary, option=orjson.OPT_INDENT_2) + b"\n")

    def human(_):
        console.print(f"[bold]{escape(ref.label)}[/] ({current.provider} {current.job_id}): {current.state}, "
                      f"{summary['steps']} steps from {escape(metrics.source)}")
        if "trials" in summary:
            best = summary["best_training_job"]
            for trial in summary["trials"]:
                tuned = ", ".join(f"{k}={v}" for k, v in sorted(trial["hyperparameters"].items()))
                value = "-" if trial["objective"] is None else f"{trial['objective']:.4f}"
                console.print(f"  trial {escape(trial['training_job'])}: {trial['status']}, objective {value} "
                              f"({escape(tuned)})")
            if best:
                console.print(f"  [bold]best training job[/]: {escape(best['training_job'])} "
                              f"({best['metric']} {best['value']}, {best['goal']})")
            else:
                console.print("  no best training job yet")
        final = ", ".join(f"{k} {v:.4f}" for k, v in summary["final"].items() if isinstance(v, float))
        if final:
            console.print(f"  final: {final}")
        flag = summary["overfitting"]
        console.print(("  [bold red]overfitting[/]: " if flag["flagged"] else "  no overfitting: ") + flag["reason"])
        if summary["best_checkpoint"]:
            best = summary["best_checkpoint"]
            # The deploy that serves it: same environment (and tree) as these results.
            tree = ["--dir", str(directory)] if directory else []
            deploy = shlex.join(["ftops", "deploy", ref.label, "--env", env, *tree, "--checkpoint", str(best.get("id"))])
            console.print(f"  best checkpoint: {escape(str(best.get('id')))} (step {best.get('step')}) "
                          f"-> `{escape(deploy)}`")
        if summary["spot"]:
            spot = summary["spot"]
            console.print(f"  spot: {spot['training_seconds']} s trained, {spot['billable_seconds']} s billed, "
                          f"{spot['savings']:.0%} saved")
        for kind, path in summary["files"].items():
            console.print(f"  {kind}: {path}", markup=False)

    emit(summary, as_json, human)
