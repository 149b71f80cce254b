"""`ftops plan` and `ftops apply`: what the GitOps pipeline runs after a merge (top-level commands)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from jobs.cli.output import EnvOption, JsonOption, console, emit, err_console, finite, name_option, path_argument

DirArgument = path_argument(None, help="The rendered tree (`ftops render --out`); default: rendered/.")
JobsOption = name_option(None, "--job", "-j", help="Only these rendered jobs (repeatable).")
STYLE = {"create": "green", "created": "green", "would-create": "green", "adopted": "cyan", "submitted": "dim",
         "already-submitted": "dim", "in-progress": "yellow", "conflict": "red", "failed": "bold red"}


def _load(env_name: str, directory: Path | None, only: list[str] | None):
    from jobs.apply.lookup import default_dir
    from jobs.apply.rendered import load_rendered
    from jobs.apply.verify import verified
    from jobs.config.environment import load_environment

    env = load_environment(env_name)
    # Only what review saw is applied: the tree must be what the definitions render now (jobs/apply/verify.py).
    jobs = verified(env, load_rendered(directory or default_dir(), env.name, only))
    # A job with promotion.json (a production environment) serves a model promoted from its source
    # environment: it is never trained here (`ftops promote`, then `ftops deploy`).
    promoted = [job.name for job in jobs if job.promotion]
    if promoted:
        err_console.print(f"{len(promoted)} job(s) serve a promoted model (promotion.json), nothing to train: "
                          + escape(", ".join(promoted)))
    return env, [job for job in jobs if not job.promotion], promoted


def plan(
    directory: Path | None = DirArgument,
    env: str = EnvOption,
    job: list[str] | None = JobsOption,
    as_json: bool = JsonOption,
) -> None:
    """Compare the rendered jobs with the cloud: create / already submitted / in progress / conflict per job."""
    from jobs.apply import engine

    environment, jobs, promoted = _load(env, directory, job)
    with err_console.status(f"reading the ledger and the cloud for {len(jobs)} jobs..."):
        items = engine.plan(environment, jobs)
    counts = {a: sum(i.action == a for i in items) for a in ("create", "submitted", "in-progress", "conflict")}

    def human(_):
        table = Table("job", "provider", "action", "job id / detail")
        for item in items:
            table.add_row(item.job, item.provider, f"[{STYLE[item.action]}]{item.action}[/]",
                          escape(" ".join(filter(None, [item.job_id, item.detail]))))
        console.print(table)
        console.print(f"Plan for {env}: {counts['create']} to create, {counts['submitted']} already submitted, "
                      f"{counts['in-progress']} in progress elsewhere, {counts['conflict']} in conflict.")

    emit({"environment": env, "summary": counts, "jobs": engine.as_json(items), "promoted": promoted}, as_json, human)
    if counts["conflict"]:
        raise typer.Exit(1)


def apply(
    directory: Path | None = DirArgument,
    env: str = EnvOption,
    job: list[str] | None = JobsOption,
    concurrency: int = typer.Option(8, "--concurrency", "-c", min=1, max=64, help="Jobs submitted in parallel."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Upload and check everything, but submit nothing."),
    # Only the flag that changes something: a `--local-runner/--no-local-runner` pair cut the second name at 80
    # columns in --help, and running the jobs is already the default.
    no_local_runner: bool = typer.Option(False, "--no-local-runner",
                                         help="Emulated environments: do not run SageMaker jobs on this machine "
                                              "(moto alone then completes them at once without training)."),
    local_max_steps: int | None = typer.Option(None, "--local-max-steps", min=1, metavar="N",
                                               help="With the local runner: stop each SageMaker job after N steps "
                                                    "(a loss every step, evaluations every N/3) for a quick demo."),
    lease: float = typer.Option(900.0, "--lease", min=1, callback=finite,
                                help="Seconds after which another applier's silent claim on a job counts as abandoned."),
    skip_preflight: bool = typer.Option(False, "--skip-preflight",
                                        help="Do not run the cheap preflight (identity, permissions, quotas) first."),
    as_json: bool = JsonOption,
) -> None:
    """Submit every rendered job that is not yet submitted: exactly once per idempotency key, even when
    applies run at the same time. Exit 1 if any job failed; a rerun finishes the rest."""
    from jobs.apply import engine
    from jobs.cli.output import progress

    environment, jobs, promoted = _load(env, directory, job)
    if not skip_preflight:
        from jobs.cli.preflight import apply_gate

        apply_gate(environment, directory, job, as_json)
    options = engine.ApplyOptions(concurrency=concurrency, dry_run=dry_run, lease_s=lease,
                                  extra={"local_runner": not no_local_runner, "local_max_steps": local_max_steps})
    with progress(disable=as_json) as bar:
        task = bar.add_task(f"applying {len(jobs)} jobs to {env}", total=len(jobs))
        items = engine.apply(environment, jobs, options, on_done=lambda _: bar.advance(task))
    counts = engine.summary(items)

    def human(_):
        table = Table("job", "provider", "result", "job id / detail")
        for item in items:
            table.add_row(item.job, item.provider, f"[{STYLE[item.result]}]{item.result}[/]",
                          escape(" ".join(filter(None, [item.job_id, item.detail]))))
        console.print(table)
        console.print(f"Apply to {env}" + (" (dry run)" if dry_run else "") + ": " +
                      ", ".join(f"{n} {r}" for r, n in sorted(counts.items())))
        if counts.get("failed"):
            err_console.print("[bold red]Some jobs failed[/]: fix what the detail says, then rerun "
                              "`ftops apply`; submitted jobs are not submitted again.")

    emit({"environment": env, "dry_run": dry_run, "summary": counts, "jobs": engine.as_json(items),
          "promoted": promoted}, as_json, human)
    if counts.get("failed") or counts.get("conflict"):
        raise typer.Exit(1)
