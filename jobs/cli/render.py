"""`ftops render`, `ftops diff`, `ftops schema`: job definitions -> per-environment job specs, for review."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from jobs import paths
from jobs.cli.lazy import load_environment
from jobs.cli.output import EnvOption, JsonOption, console, emit, err_console, name_option, path_option, plain
from jobs.errors import FtopsError

JobOption = name_option(None, "--job", "-j", help="Render one definition (its name or path); default: all.")


def _one_job(jobs: list[str] | None) -> str | None:
    """`--job` once (a second one used to win silently over the first)."""
    if jobs and len(jobs) > 1:
        raise typer.BadParameter("one definition at a time; leave --job out to render every definition",
                                 param_hint="--job")
    return jobs[0] if jobs else None


def _default_out() -> Path:
    return paths.project_root() / "rendered"


def render(
    envs: list[str] = typer.Option(["local"], "--env", "-e", metavar="ENV",
                                   help="Environment name; repeat it to render several environments in one run."),
    jobs: list[str] | None = JobOption,
    out: Path | None = path_option(None, "--out", "-o", help="Output directory (default: rendered/ in the project)."),
    as_json: bool = JsonOption,
) -> None:
    """Render job definitions into ready-to-run specs under OUT/ENV/<job-name>/ (all-or-nothing)."""
    from jobs.render.engine import render_environments, select_definitions, write_tree

    job = _one_job(jobs)

    names = list(dict.fromkeys(envs))  # the order given, each once
    environments = [load_environment(name) for name in names]
    rendered = render_environments(environments, job)  # every environment renders before anything is written
    target = (out or _default_out()).resolve()
    only = select_definitions(job) if job else None
    payloads = []
    for name in names:
        written = write_tree(rendered[name], target, name, only=only)
        rows = [{"name": r.name, "job": r.index["job"], "provider": r.index["provider"],
                 "definition": r.index["definition"], "targets": r.index["targets"],
                 "estimated_cost_usd": r.index["estimated_cost_usd"], "directory": str(written / r.name)}
                for r in rendered[name]]
        payloads.append({"environment": name, "out": str(written), "jobs": rows})

    def human(payload: dict) -> None:
        table = Table(title=plain(f"rendered for {payload['environment']} into {payload['out']}"))
        table.add_column("job name", no_wrap=True)
        table.add_column("provider", no_wrap=True)
        table.add_column("files")
        table.add_column("est. cost", justify="right", no_wrap=True)
        for row in payload["jobs"]:
            cost = "-" if row["estimated_cost_usd"] is None else f"${row['estimated_cost_usd']:,.2f}"
            table.add_row(row["name"], row["provider"], escape(", ".join(sorted(row["targets"].values()))), cost)
        err_console.print(table)

    if len(payloads) == 1:
        emit(payloads[0], as_json, human)
    else:
        emit({"renders": payloads}, as_json, lambda data: [human(payload) for payload in data["renders"]])


def diff(
    env: str = EnvOption,
    against: Path = path_option(..., "--against", help="A rendered tree (the --out of an earlier render)."),
    against_env: str | None = typer.Option(None, "--against-env",
                                           help="Compare with AGAINST/<this env> instead of AGAINST/<ENV>."),
    jobs: list[str] | None = JobOption,
    as_json: bool = JsonOption,
) -> None:
    """Show what re-rendering ENV would change in a committed rendered tree; exit 1 when they differ."""
    from jobs.render.diff import diff_jobs, read_tree
    from jobs.render.engine import _relpath, render_environment, select_definitions

    job = _one_job(jobs)

    environment = load_environment(env)
    old_dir, present = _against_tree(against, against_env or env, explicit=against_env is not None)
    rendered = render_environment(environment, job)
    other = against_env or env
    definitions = {_relpath(p) for p in select_definitions(job)} if job else None
    changes = diff_jobs(read_tree(old_dir), rendered, f"{other}", f"{env}", definitions)
    if not present and not as_json:
        err_console.print(f"{old_dir} does not exist: every job of {env} shows as added", markup=False)
    payload = {"environment": env, "against": str(old_dir), "against_exists": present,
               "identical": not changes,
               "changes": [{"kind": c.kind, "job": c.job, "definition": c.definition, "old_name": c.old_name,
                            "new_name": c.new_name, "files": c.files, "diff": c.diff} for c in changes]}

    def human(data: dict) -> None:
        if data["identical"]:
            err_console.print(f"no changes: {data['against']} is what environment {env} renders", markup=False)
            return
        for change in data["changes"]:
            err_console.print(f"[bold]{change['kind']}[/]: {change['job']} ({change['old_name'] or '-'} -> "
                              f"{change['new_name'] or '-'})", soft_wrap=True)
            sys.stdout.write(change["diff"])
        sys.stdout.flush()

    emit(payload, as_json, human)
    if changes:
        raise typer.Exit(1)


def _against_tree(against: Path, name: str, *, explicit: bool) -> tuple[Path, bool]:
    """AGAINST/<name> and whether it exists. AGAINST must be a directory, and so must AGAINST/<name> when it
    exists; a missing one is an environment the tree does not have yet (a new one on a pull request: every job
    is added), unless --against-env named it: then it is a mistake."""
    from jobs.fsutil import resolve_under

    root = against.resolve()
    if not root.is_dir():
        raise FtopsError("no such directory" if not root.exists() else "is not a directory", source=against,
                         field="--against", hint="pass the --out directory of an earlier `ftops render`")
    # --env names an environment file; --against-env is free text, kept from climbing out of AGAINST.
    tree = resolve_under(root, name, what="--against-env") if explicit else root / name
    if tree.is_dir():
        return tree, True
    if tree.exists():
        field = "--against-env" if explicit else "--against"
        raise FtopsError("is not a directory", source=tree, field=field,
                         hint="pass the --out directory of an earlier `ftops render`")
    if explicit:
        present = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        raise FtopsError(f"holds no rendered tree for {name}", source=root, field="--against-env",
                         hint=f"it holds trees for: {', '.join(present)}" if present else
                         f"render it first: ftops render --env {name} --out {against}")
    return tree, False


def schema(
    out: Path | None = path_option(None, "--out", "-o", help="Directory for the schemas (default: schemas/)."),
    check: bool = typer.Option(False, "--check", help="Write nothing; exit 1 if the committed schemas are stale."),
    as_json: bool = JsonOption,
) -> None:
    """Write JSON Schemas for job definitions and environment files (editors complete and check with them)."""
    from jobs.render import schemas

    directory = (out or schemas.schemas_dir()).resolve()
    if directory.exists() and not directory.is_dir():
        raise FtopsError("is not a directory", source=directory, field="--out",
                         hint="pass the directory the schema files go in")
    if check:
        stale = schemas.stale(directory)
        emit({"directory": str(directory), "stale": stale}, as_json,
             lambda d: err_console.print(f"stale: {escape(', '.join(d['stale']))} (run `ftops schema`)" if d["stale"]
                                         else f"schemas in {escape(d['directory'])} are current"))
        if stale:
            raise typer.Exit(1)
        return
    written = schemas.write(directory)
    emit({"directory": str(directory), "files": [str(p) for p in written]}, as_json,
         lambda d: console.print(escape("\n".join(d["files"]))))
