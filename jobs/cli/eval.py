"""`ftops eval` and `ftops promote`: score a fine-tuned model against its base on the held-out test split,
and promote it only when the job's gate passes."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import orjson
import typer
from rich.table import Table

from jobs import paths
from jobs.cli.output import JsonOption, console, emit, err_console
from jobs.config.environment import load_environment
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
              limit: int | None, judge: bool, out: Path | None, loss_plot: Path | None, quiet: bool) -> dict[str, Any]:
    from jobs.eval.plan import make_plan, run_plan

    env = load_environment(env_name)
    plan = make_plan(job, env, fine_tuned=fine_tuned, base=base, judge=judge, limit=limit, out_dir=out)
    status, on_answer = _progress_counter()
    if quiet:
        return run_plan(plan, batch=batch, concurrency=concurrency, loss_plot=loss_plot)
    with status:
        return run_plan(plan, batch=batch, concurrency=concurrency, loss_plot=loss_plot, on_answer=on_answer)


def eval_job(
    job: str = typer.Argument(..., help="Job definition name (definitions/JOB.yaml)."),
    env: str = typer.Option("local", "--env", "-e", help="Environment whose deployments are evaluated."),
    fine_tuned: str | None = FineTunedOption,
    base: str | None = BaseOption,
    batch: bool = BatchOption,
    concurrency: int = ConcurrencyOption,
    limit: int | None = typer.Option(None, "--limit", min=1, help="Only the first N test examples (a smoke test)."),
    no_judge: bool = typer.Option(False, "--no-judge", help="Skip the job's LLM judge."),
    out: Path | None = typer.Option(None, "--out", help="Folder for answers and reports (default .ftops/eval/ENV/JOB)."),
    loss_plot: Path | None = typer.Option(None, "--loss-plot", help="PNG to embed (default: from `ftops jobs results`)."),
    check: bool = typer.Option(False, "--check", help="Exit 1 when the promotion gate fails."),
    as_json: bool = JsonOption,
) -> None:
    """Evaluate the fine-tuned model against its base on the held-out test split (metrics with confidence
    intervals, robustness, the gate's verdict) and write report.md, report.html and evaluation.json.

    Answers are saved as they arrive: run the same command again after an interruption and it asks only for
    what is missing.
    """
    result = _evaluate(job, env, fine_tuned=fine_tuned, base=base, batch=batch, concurrency=concurrency, limit=limit,
                       judge=not no_judge, out=out, loss_plot=loss_plot, quiet=as_json)
    emit(result, as_json, _human)
    if check and not result["gate"]["passed"]:
        raise typer.Exit(1)


def _reusable(path: Path, plan: Any) -> dict[str, Any] | None:
    """A stored evaluation that scored exactly this model pair on this data with these settings."""
    if not path.is_file():
        return None
    try:
        stored = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError:
        return None
    if stored.get("config_fingerprint") != plan.config.fingerprint() or stored.get("dataset_id") != plan.dataset_id \
            or stored.get("limited") or stored.get("examples") != len(plan.examples) \
            or stored.get("target_specs") != {"fine_tuned": plan.fine_tuned, "base": plan.base, "judge": plan.judge}:
        return None
    return stored


def promote(
    job: str = typer.Argument(..., help="Job definition name (definitions/JOB.yaml)."),
    from_env: str = typer.Option("staging", "--from", help="Environment where the candidate was evaluated."),
    to_env: str = typer.Option("prod", "--to", help="Environment to promote to."),
    evaluation: Path | None = typer.Option(None, "--evaluation", help="Read this evaluation.json instead of "
                                           "evaluating (e.g. an artifact of an earlier pipeline step)."),
    rerun: bool = typer.Option(False, "--rerun", help="Evaluate again even if a matching evaluation exists."),
    fine_tuned: str | None = FineTunedOption,
    base: str | None = BaseOption,
    batch: bool = BatchOption,
    concurrency: int = ConcurrencyOption,
    no_judge: bool = typer.Option(False, "--no-judge", help="Skip the job's LLM judge."),
    as_json: bool = JsonOption,
) -> None:
    """Promote JOB from one environment to the next only if its evaluation passes the job's gate.

    Reads the stored evaluation when it matches the job's current settings and data (else evaluates), then
    exits 1 naming the metric and the numbers when the gate refuses. The GitOps workflow runs this before the
    prod apply.
    """
    from jobs.eval.gate import decide
    from jobs.eval.plan import make_plan, run_plan

    source_env = load_environment(from_env)
    load_environment(to_env)  # an unknown target environment is a mistake worth one clear line
    plan = make_plan(job, source_env, fine_tuned=fine_tuned, base=base, judge=not no_judge)
    if evaluation is not None:
        try:
            result = orjson.loads(evaluation.read_bytes())
        except (FileNotFoundError, orjson.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read the evaluation: {exc}", source=evaluation,
                              hint="pass the evaluation.json that `ftops eval` wrote") from None
        if result.get("job") != plan.job:
            raise ConfigError(f"this evaluation is of job {result.get('job')!r}, not {plan.job!r}", source=evaluation)
        reused = True
    else:
        result = None if rerun else _reusable(plan.evaluation_path, plan)
        reused = result is not None
        if result is None:
            status, on_answer = _progress_counter()
            if as_json:
                result = run_plan(plan, batch=batch, concurrency=concurrency)
            else:
                with status:
                    result = run_plan(plan, batch=batch, concurrency=concurrency, on_answer=on_answer)
    if result.get("limited"):
        raise ConfigError("this evaluation used --limit: a smoke test cannot promote a model", source=evaluation,
                          hint="evaluate the whole test split")
    # The gate comes from the job definition as it is now, not from what the stored evaluation recorded.
    verdict = decide(plan.config.gate, result, source=plan.definition_path)
    record = {"job": plan.job, "from": from_env, "to": to_env, "promoted": verdict["passed"], "gate": verdict,
              "evaluation": str(evaluation or plan.evaluation_path), "reused_evaluation": reused,
              "fine_tuned": result["targets"]["fine_tuned"], "base": result["targets"]["base"]}
    if verdict["passed"]:
        atomic_write(paths.state_dir() / "promotions" / f"{plan.job}.{to_env}.json",
                     orjson.dumps(record, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))

    def human(rec: dict[str, Any]) -> None:
        _print_gate(rec["gate"])
        if rec["promoted"]:
            console.print(f"[green]promote {rec['job']}: {rec['from']} -> {rec['to']} approved[/]; "
                          f"next: ftops apply --env {rec['to']}")
        else:
            err_console.print(f"[red]refusing to promote {rec['job']} to {rec['to']}:[/] " + "; ".join(rec["gate"]["reasons"]))

    emit(record, as_json, human)
    if not verdict["passed"]:
        raise typer.Exit(1)
