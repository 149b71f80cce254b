"""`ftops eval` and `ftops promote`: score a fine-tuned model against its base on the held-out test split,
and promote it only when the job's gate passes."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import orjson
import typer
from rich.markup import escape
from rich.table import Table

from jobs import paths
from jobs.cli.lazy import load_environment
from jobs.cli.output import JsonOption, console, emit, err_console, path_option
from jobs.errors import ConfigError
from jobs.fsutil import atomic_write

FineTunedOption = typer.Option(None, "--fine-tuned", help="Target to evaluate instead of the job's deployment: "
                               "azure:DEPLOYMENT, sagemaker:ENDPOINT, local:PATH or local:s3://.../model.tar.gz.")
BaseOption = typer.Option(None, "--base", help="Base model target to compare with (same forms as --fine-tuned); "
                          "default: the base model's deployment.")
BatchOption = typer.Option(False, "--batch", help="Use the Azure OpenAI Batch API (large test sets, no rate limits).")
ConcurrencyOption = typer.Option(8, "--concurrency", min=1, max=256, help="Requests in flight per target.")


def _human(result: dict[str, Any]) -> None:
    table = Table("metric", "fine-tuned", "base", "fine-tuned − base", title=f"{result['job']} in {result['env']}")
    for name, row in result["metrics"].items():
        ft, base, delta = row["fine_tuned"], row["base"], row["delta"]
        table.add_row(name, f"{ft['value']:.3f} [{ft['low']:.3f}, {ft['high']:.3f}]",
                      f"{base['value']:.3f} [{base['low']:.3f}, {base['high']:.3f}]",
                      f"{delta['value']:+.3f} [{delta['low']:+.3f}, {delta['high']:+.3f}]")
    console.print(table)
    if result["robustness"]:
        rob = Table("input set", "metric", "fine-tuned", "drop", "base", "drop", title="robustness")
        for variant, per_metric in result["robustness"].items():
            for name, row in per_metric.items():
                rob.add_row(variant, name, f"{row['fine_tuned']:.3f}", f"{row['drop_fine_tuned']:+.3f}",
                            f"{row['base']:.3f}", f"{row['drop_base']:+.3f}")
        console.print(rob)
    _print_gate(result["gate"])
    for kind, path in result.get("files", {}).items():
        console.print(f"{kind}: {path}", markup=False)


def _print_gate(gate: dict[str, Any]) -> None:
    verdict = "[green]passed[/]" if gate["passed"] else "[red]failed[/]"
    console.print(f"gate on {gate['metric']}: {verdict}")
    for check in gate["checks"]:
        console.print(f"  {'✓' if check['passed'] else '✗'} {check['message']}")
    for warning in gate.get("warnings", []):
        console.print(f"  [yellow]warning[/]: {escape(warning)}")


def _progress_counter():
    counts: dict[str, int] = {}
    lock = threading.Lock()
    status = err_console.status("evaluating...", spinner="dots")

    def on_answer(role: str) -> None:
        with lock:
            counts[role] = counts.get(role, 0) + 1
            status.update("answers received: " + ", ".join(f"{k} {v}" for k, v in counts.items()))

    return status, on_answer


def _evaluate(job: str, env_name: str, *, fine_tuned: str | None, base: str | None, batch: bool, concurrency: int,
              limit: int | None, judge: bool, out: Path | None, loss_plot: Path | None, quiet: bool,
              register: bool = True) -> dict[str, Any]:
    """Evaluate; when the target is the job's own trained model (no --fine-tuned), its model record is created
    (or found) first, the evaluation names that exact artifact, and the gate's verdict goes on the record."""
    from jobs.eval.plan import make_plan, run_plan

    env = load_environment(env_name)
    plan = make_plan(job, env, fine_tuned=fine_tuned, base=base, judge=judge, limit=limit, out_dir=out)
    record = store = None
    if register and fine_tuned is None:
        from jobs.models.lifecycle import loss_plot as draw_loss_plot
        from jobs.models.lifecycle import register_trained

        record, store = register_trained(env, plan.job)
        plan.artifact = record.artifact.model_dump()
        if loss_plot is None:
            from jobs.eval.plan import find_loss_plot

            # The curve from the provider, drawn beside the report, wherever `jobs results` wrote its own.
            loss_plot = find_loss_plot(plan) or draw_loss_plot(env, record, plan.out_dir)
    status, on_answer = _progress_counter()
    if quiet:
        result = run_plan(plan, batch=batch, concurrency=concurrency, loss_plot=loss_plot)
    else:
        with status:
            result = run_plan(plan, batch=batch, concurrency=concurrency, loss_plot=loss_plot, on_answer=on_answer)
    if record is not None and not result.get("limited"):
        from jobs.models.lifecycle import attach_evaluation

        attach_evaluation(env, record, store, result)
        result["model_record"] = store.url(record)
        if result.get("serving_at"):  # deployed before its first evaluation made the record: it says so now
            from jobs.models.lifecycle import note_deployed

            served = record.artifact.model_id or record.artifact.uri
            note_deployed(env, record.provider, record.job, result["serving_at"], str(served))
    return result


def eval_job(
    job: str = typer.Argument(..., help="Job definition name (definitions/JOB.yaml)."),
    env: str = typer.Option("local", "--env", "-e", help="Environment whose deployments are evaluated."),
    fine_tuned: str | None = FineTunedOption,
    base: str | None = BaseOption,
    batch: bool = BatchOption,
    concurrency: int = ConcurrencyOption,
    limit: int | None = typer.Option(None, "--limit", min=1, help="Only the first N test examples (a smoke test)."),
    no_judge: bool = typer.Option(False, "--no-judge", help="Skip the job's LLM judge."),
    out: Path | None = path_option(None, "--out", help="Folder for answers and reports (default .ftops/eval/ENV/JOB)."),
    loss_plot: Path | None = path_option(None, "--loss-plot", help="PNG to embed (default: from `ftops jobs results`)."),
    check: bool = typer.Option(False, "--check", help="Exit 1 when the promotion gate fails."),
    gate: bool = typer.Option(False, "--gate", help="Run as the promotion gate: deploy the candidate (and a SageMaker "
                              "base model) if not serving, evaluate, remove what was deployed whatever the "
                              "outcome (unless the definition's evaluation sets keep_deployments), exit 1 when "
                              "the gate fails."),
    directory: Path | None = path_option(None, "--dir", "-d", help="The rendered tree (default: rendered/); --gate."),
    as_json: bool = JsonOption,
) -> None:
    """Evaluate the fine-tuned model against its base on the held-out test split (metrics with confidence
    intervals, robustness, the gate's verdict) and write report.md, report.html and evaluation.json.

    Answers are saved as they arrive: run the same command again after an interruption and it asks only for
    what is missing.
    """
    base_spec_default = base

    def run(base_spec: str | None = base) -> dict[str, Any]:
        return _evaluate(job, env, fine_tuned=fine_tuned, base=base_spec, batch=batch, concurrency=concurrency,
                         limit=limit, judge=not no_judge, out=out, loss_plot=loss_plot, quiet=as_json)

    if gate:
        if fine_tuned is not None or limit is not None:
            raise ConfigError("--gate evaluates the job's own trained model on the whole test split",
                              field="--gate", hint="drop --fine-tuned and --limit")
        from jobs.eval.gate_run import run_gate

        result = run_gate(job, load_environment(env), directory, lambda base: run(base or base_spec_default),
                          keep=None)
    else:
        result = run()
    emit(result, as_json, _human)
    for what in (result.get("gate_deployments") or {}).get("removed", []):
        err_console.print(f"removed the gate's {escape(what)}")
    if (check or gate) and not result["gate"]["passed"]:
        raise typer.Exit(1)


def promote(
    job: str = typer.Argument(..., help="Job definition name (definitions/JOB.yaml)."),
    from_env: str = typer.Option("staging", "--from", help="Environment where the candidate was trained, gated and "
                                 "approved (`ftops models approve JOB --env FROM`)."),
    to_env: str = typer.Option("prod", "--to", help="Environment to promote to (its credentials are used)."),
    as_json: bool = JsonOption,
) -> None:
    """Promote the model FROM approved to TO: nothing is retrained, nothing is written in FROM.

    Runs with TO's credentials. Reads FROM's approved model record (approved there, by FROM's own identity,
    after its gate passed on the stored evaluation of that exact artifact: `ftops models approve`) and makes
    the same artifact available in TO: SageMaker copies model.tar.gz into TO's bucket (sha256 verified) and
    registers it there approved; Azure OpenAI records the fine-tuned model with its source account, which
    `ftops deploy --env TO` names in the deployment. TO's record keeps who approved, on which evaluation,
    which bytes. A definition with `promotion: retrain` instead needs its model trained in TO to have passed
    the gate there.
    """
    from jobs.models.lifecycle import promote as promote_model

    source_env = load_environment(from_env)
    target_env = load_environment(to_env)  # an unknown target environment is a mistake worth one clear line
    if source_env.name == target_env.name:
        raise ConfigError("--from and --to name the same environment", field="--to")
    from jobs.models.lifecycle import variant_of

    name = variant_of(job, source_env.name).name  # an unknown job is refused here, before any network call
    with err_console.status(f"promoting {name}: {from_env} -> {to_env}..."):
        record = promote_model(name, source_env, target_env)
    atomic_write(paths.state_dir() / "promotions" / f"{name}.{to_env}.json",
                 orjson.dumps(record, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))

    def human(rec: dict[str, Any]) -> None:
        console.print(f"[green]promoted {escape(rec['job'])}: {rec['from']} -> {rec['to']}[/] "
                      f"({rec['mode']}; artifact {escape(rec['artifact'])})")
        if rec.get("approved_by"):
            console.print(f"approved in {escape(str(rec['approved_in']))} by {escape(str(rec['approved_by']))} "
                          f"on evaluation {escape(str(rec['evaluation']))}")
        console.print(f"record: {escape(rec['target_record'])}")
        console.print(f"next: ftops deploy {escape(rec['job'])} --env {rec['to']}")

    emit(record, as_json, human)
