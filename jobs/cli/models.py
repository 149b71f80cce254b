"""`ftops models`: the model records of an environment: what was trained, how it scored, who approved it,
where it came from and where it serves."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from jobs.cli.output import EnvOption, JsonOption, console, emit, err_console, name_option, path_option

app = typer.Typer(help="Model records: lineage, evaluation, approval and serving of trained models.",
                  no_args_is_help=True)


def _stores(env_name: str):
    """The record stores the environment has (S3 for SageMaker, Blob for Azure OpenAI)."""
    from jobs.config.environment import load_environment
    from jobs.models.store import store_for

    env = load_environment(env_name)
    stores = []
    if env.aws and env.aws.enabled:
        stores.append(store_for(env, "sagemaker"))
    if env.azure and env.azure.enabled:
        stores.append(store_for(env, "azure-openai"))
    return stores


def _when(stamp: float | None) -> str:
    return datetime.fromtimestamp(stamp, timezone.utc).strftime("%Y-%m-%d %H:%M") if stamp else "-"


@app.command("list")
def list_models(env: str = EnvOption, job: str | None = name_option(None, "--job", help="Only this job's models."),
                as_json: bool = JsonOption) -> None:
    """Every model record of the environment, newest first."""
    rows = [r.summary() | {"record": store.url(r)} for store in _stores(env) for r in store.records(job)]

    def human(_: Any) -> None:
        table = Table("job", "artifact", "gate", "approval", "from", "serving", "created", title=f"models in {env}")
        for row in rows:
            table.add_row(escape(row["job"]), escape(row["artifact"][:40]), row["gate"] or "-", row["approval"],
                          escape(row["promoted_from"] or "-"), escape(", ".join(row["serving"]) or "-"),
                          _when(row["created_at"]))
        console.print(table)

    emit(rows, as_json, human)


@app.command()
def show(job: str = typer.Argument(..., help="Job definition name."), env: str = EnvOption,
         as_json: bool = JsonOption) -> None:
    """The job's latest model record in full: artifact, lineage, evaluation, approval, serving."""
    from jobs.errors import FtopsError

    found = [(store, r) for store in _stores(env) for r in store.records(job)]
    if not found:
        raise FtopsError(f"no model record of {job} in {env}",
                         hint=f"`ftops eval {job} --env {env}` records the trained model; `ftops promote` a copy")
    store, record = max(found, key=lambda pair: pair[1].created_at)
    data = record.model_dump() | {"record": store.url(record), "history": len(found)}

    def human(_: Any) -> None:
        a = record.artifact
        console.print(f"[bold]{escape(record.job)}[/] in {escape(env)} ({record.provider}); record {escape(data['record'])}")
        console.print(f"  artifact       {escape(a.uri or a.model_id or '')}")
        if a.sha256:
            console.print(f"  sha256         {a.sha256}" + (f" ({a.bytes} bytes)" if a.bytes else ""))
        if a.source_resource_id:
            console.print(f"  source         {escape(a.source_resource_id)}")
        console.print(f"  definition     {escape(record.definition)} sha256 {record.definition_sha256[:16]}, "
                      f"rendered {record.rendered_sha256[:16]}")
        console.print(f"  dataset        {escape(str(record.dataset_id))}; base model {escape(record.base_model)}")
        if record.training_job_id:
            console.print(f"  trained by     {escape(record.training_job_id)}; metrics "
                          + ", ".join(f"{k} {v:.4g}" for k, v in record.metrics.items()))
        if record.evaluation:
            e = record.evaluation
            console.print(f"  evaluation     {e.fingerprint} in {e.env}: gate {'passed' if e.passed else 'failed'}"
                          + (f" ({escape('; '.join(e.reasons))})" if e.reasons else ""))
            for warning in e.warnings:
                console.print(f"  [yellow]warning[/]        {escape(warning)}")
        else:
            console.print("  evaluation     none")
        ap = record.approval
        console.print(f"  approval       {ap.status}" + (f" by {escape(str(ap.by))} at {_when(ap.at)}" if ap.by else "")
                      + (f" in {escape(ap.env)}" if ap.env else ""))
        if ap.evaluation:
            console.print(f"  approved on    evaluation {ap.evaluation}, artifact {escape(str(ap.artifact))}")
        if record.promoted_from:
            p = record.promoted_from
            console.print(f"  promoted from  {escape(p['env'])}: {escape(p['record'])}")
            if p.get("promoted_by"):
                console.print(f"  promoted by    {escape(str(p['promoted_by']))} at {_when(p.get('promoted_at'))}")
        if record.registry:
            console.print(f"  registry       {escape(record.registry['package_arn'])}")
        for s in record.serving:
            console.print(f"  serving        {escape(s.where)} in {escape(s.env)} since {_when(s.at)}")
        if len(found) > 1:
            console.print(f"  ({len(found) - 1} older record(s): `ftops models list --env {env} --job {job}`)")

    emit(data, as_json, human)


@app.command()
def approve(job: str = typer.Argument(..., help="Job definition name (definitions/JOB.yaml)."), env: str = EnvOption,
            evaluation: Path | None = path_option(None, "--evaluation", help="The evaluation.json to read (default: "
                                                   "where `ftops eval JOB --env ENV` wrote it)."),
            no_judge: bool = typer.Option(False, "--no-judge", help="The evaluation was made without the job's LLM "
                                          "judge."),
            as_json: bool = JsonOption) -> None:
    """Approve the model JOB trained in ENV, with ENV's own credentials, once its gate passed.

    Reads the stored evaluation of that exact artifact and refuses (exit 1, one line, no network call) when
    there is none, when it is stale (definition, data or artifact changed) or when the gate refuses it; then
    marks the model record (and its SageMaker model package) Approved, naming the evaluation and the artifact.
    Another environment promotes it from there (`ftops promote JOB --from ENV --to TARGET`).
    """
    from jobs.config.environment import load_environment
    from jobs.eval.plan import default_out_dir
    from jobs.models.lifecycle import approve as approve_model
    from jobs.models.lifecycle import check_evaluation, variant_of

    environment = load_environment(env)
    name = variant_of(job, environment.name).name
    path = evaluation or default_out_dir(environment, name) / "evaluation.json"
    result = check_evaluation(name, environment, path, judge=not no_judge)  # local files only
    if not result["gate"]["passed"]:
        refused = {"job": name, "env": env, "approved": False, "gate": result["gate"], "evaluation": str(path)}
        emit(refused, as_json, lambda rec: err_console.print(
            f"[red]refusing to approve {escape(name)} in {escape(env)}:[/] " + escape("; ".join(rec["gate"]["reasons"]))))
        raise typer.Exit(1)
    with err_console.status(f"approving {name} in {env}..."):
        record = approve_model(name, environment, result)
    record["evaluation_file"] = str(path)

    def human(rec: dict[str, Any]) -> None:
        console.print(f"[green]approved {escape(rec['job'])} in {escape(env)}[/]: artifact {escape(rec['artifact'])}, "
                      f"evaluation {rec['evaluation']}, by {escape(str(rec['approved_by']))}")
        console.print(f"record: {escape(rec['record'])}")

    emit(record, as_json, human)
