"""`ftops run-local JOB.json`: run a rendered SageMaker training job on this machine, without Docker."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from jobs.cli.output import EnvOption, JsonOption, console, emit, err_console, path_argument, plain
from jobs.errors import FtopsError


def _load_request(path: Path) -> dict:
    if path.is_dir():  # a rendered job's directory: its training request
        if not (path / "sagemaker.json").is_file():
            raise FtopsError("this directory holds no sagemaker.json", source=path,
                             hint="pass a rendered SageMaker job's directory or its sagemaker.json (tuning sweeps "
                                  "and Azure OpenAI jobs do not run locally)")
        path = path / "sagemaker.json"
    if not path.is_file():
        raise FtopsError("no such file", source=path, hint="pass a rendered sagemaker.json (ftops render writes it)")
    try:
        request = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise FtopsError(f"not valid JSON: {exc.msg}", source=path, line=exc.lineno) from None
    except UnicodeDecodeError:
        raise FtopsError("not UTF-8 text", source=path, hint="pass a rendered sagemaker.json") from None
    if not isinstance(request, dict):
        raise FtopsError("expected a JSON object (the create_training_job request)", source=path)
    if "TrainingJobName" not in request or "AlgorithmSpecification" not in request:
        raise FtopsError("not a SageMaker CreateTrainingJob request (no TrainingJobName and AlgorithmSpecification)",
                         source=path, hint="pass a rendered sagemaker.json; Azure OpenAI jobs and tuning sweeps "
                                           "do not run locally")
    return request


def _check_environment(request: dict, env: str, path: Path) -> None:
    """A request rendered for another environment names that environment's buckets, role and key: refuse it
    here rather than fail later on a bucket this environment does not have."""
    rendered_for = next((tag.get("Value") for tag in request.get("Tags") or []
                         if isinstance(tag, dict) and tag.get("Key") == "environment"), None)
    if rendered_for is not None and rendered_for != env:
        raise FtopsError(f"rendered for environment {rendered_for!r}, not {env!r}", source=path, field="--env",
                         hint=f"pass --env {rendered_for}, or render the job for {env}")


def _human(result: dict) -> None:
    from rich.table import Table

    summary = result.get("summary") or {}
    table = Table(title=plain(f"{result['job_name']}: {result['status']}"), show_header=False)
    rows = [
        ("steps", summary.get("global_step")),
        ("train loss (first -> last)", f"{summary.get('first_train_loss')} -> {summary.get('final_train_loss')}"),
        ("best eval loss", summary.get("best_eval_loss")),
        ("tokens/s", round(summary["tokens_per_second"]) if summary.get("tokens_per_second") else None),
        ("processes", result["processes"]),
        ("spot interruptions simulated", result["interruptions"]),
        ("model artifacts", result["model_artifacts"]),
        ("metrics", result["metrics_uri"]),
        ("checkpoints", result["checkpoint_uri"]),
        ("local log", f"{result['run_dir']}/train.log"),
    ]
    for name, value in rows:
        if value is not None:
            table.add_row(name, plain(value))
    console.print(table)


def run_local(
    job: Path = path_argument(..., help="A rendered SageMaker request (sagemaker.json: create_training_job kwargs), "
                                         "or the rendered job's directory."),
    env: str = EnvOption,
    max_steps: int | None = typer.Option(None, "--max-steps", min=1, help="Stop after N optimizer steps (smoke test)."),
    subset: int | None = typer.Option(None, "--subset", min=1, help="Use only the first N examples of each channel."),
    interrupt_at: int | None = typer.Option(None, "--interrupt-at", min=1, metavar="STEP",
                                            help="Simulate a spot interruption at STEP, then resume from S3."),
    nproc: int | None = typer.Option(None, "--nproc", min=1,
                                     help="Worker processes (torchrun); default: the request's InstanceCount."),
    fresh: bool = typer.Option(False, "--fresh", help="Run under a new job name and new output and checkpoint "
                                                      "prefixes (the default with --max-steps)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the job's checkpoints in S3 and replace its "
                                                        "outputs, as a restarted SageMaker job would."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Do not stream the training log to stderr."),
    as_json: bool = JsonOption,
) -> None:
    """Run a rendered SageMaker training job locally: channels from S3, SM_* layout, checkpoints, model.tar.gz.

    A job that already has outputs or checkpoints in S3 (an applied job, an earlier run) is refused unless you
    say --resume or --fresh; smoke runs (--max-steps) are fresh unless you say --resume."""
    from jobs.buckets import require_buckets
    from jobs.clients import aws_client
    from jobs.config.environment import load_environment
    from jobs.runlocal import guard, record, run_training_job

    if fresh and resume:
        raise FtopsError("--fresh and --resume exclude each other", field="--fresh",
                         hint="--fresh: a new name and prefixes; --resume: continue this job")
    if interrupt_at is not None and max_steps is not None and interrupt_at >= max_steps:
        raise FtopsError(f"--interrupt-at {interrupt_at} leaves nothing to resume with --max-steps {max_steps}",
                         field="--interrupt-at", hint="interrupt before the last step")
    request = _load_request(job)
    _check_environment(request, env, job)
    guard.check_request(request)
    environment = load_environment(env)
    # Before the run directory, the record or any upload: a missing bucket is the stack's to make, never ours.
    require_buckets(environment, aws_client(environment, "s3"), guard.buckets(request))
    renamed = fresh or (max_steps is not None and not resume)
    if renamed:
        request = guard.fresh(request)
        err_console.print(f"fresh run: {request['TrainingJobName']}", markup=False, highlight=False)
    elif not resume:
        found = guard.existing(aws_client(environment, "s3"), request)
        if found:
            where = ", ".join(f"{kind} at {uri}" for kind, uri in found.items())
            raise FtopsError(f"job {request['TrainingJobName']} already has {where}", source=job,
                             hint="--resume continues from its checkpoints and replaces its outputs; "
                                  "--fresh runs under a new name")
    echo = None if quiet else (lambda line: err_console.print(line, markup=False, highlight=False, soft_wrap=True))

    def train():
        return run_training_job(request, environment, max_steps=max_steps, subset=subset, interrupt_at=interrupt_at,
                                nproc=nproc, echo=echo)

    if renamed:
        result = train()
    else:  # the job's own outputs are replaced: its run record must say so (`ftops jobs status|results`)
        result = record.rerun(environment, request, train, max_steps=max_steps)
    payload = result.to_dict()
    payload.pop("metrics")  # the series lives at metrics_uri; keep the document small
    emit(payload, as_json, _human)
