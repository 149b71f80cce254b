"""The status of a SageMaker job that the local runner trains, kept beside the job's output in S3.

moto reports every training job Completed the moment it is created. When `ftops apply` routes a job to the local
runner (emulated environments), the provider writes this record before training (InProgress) and after it
(Completed or Failed, with the reason, the model URI and the final losses), and `describe` believes the record
over moto. It lives in the environment's own storage, so any process (`ftops jobs wait` in another terminal, a
pipeline runner) reads the same truth, and no local state is needed:

    <S3OutputPath>/<TrainingJobName>/output/ftops-local-run.json
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from jobs.config.environment import Environment
from jobs.errors import FtopsError
from jobs.runlocal import s3io

if TYPE_CHECKING:
    from jobs.runlocal.runner import RunResult

RECORD_FILE = "ftops-local-run.json"


def record_uri(request: dict[str, Any]) -> str:
    return s3io.join(request["OutputDataConfig"]["S3OutputPath"], request["TrainingJobName"], "output", RECORD_FILE)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def write(s3, request: dict[str, Any], record: dict[str, Any]) -> None:
    bucket, key = s3io.split_uri(record_uri(request))
    kms_key = request.get("OutputDataConfig", {}).get("KmsKeyId")
    extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key} if kms_key else {}
    s3io._call("writing", record_uri(request), s3.put_object, Bucket=bucket, Key=key,
               Body=json.dumps(record, indent=2).encode(), ContentType="application/json", **extra)


def read(s3, request: dict[str, Any]) -> dict[str, Any] | None:
    """The record, or None when this job was not run locally (moto's own status then stands)."""
    bucket, key = s3io.split_uri(record_uri(request))
    try:
        return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
        if code in {"NoSuchKey", "NoSuchBucket", "404"}:
            return None
        raise


def _final(metrics: list[dict[str, float]]) -> dict[str, float]:
    latest: dict[str, float] = {}
    for row in metrics:
        latest.update({k: v for k, v in row.items() if k != "step"})
    return latest


def _base(request: dict[str, Any], max_steps: int | None) -> dict[str, Any]:
    return {"job": request["TrainingJobName"], "runner": "ftops local runner", "started_at": _now(),
            "max_steps": max_steps}


def _failed(base: dict[str, Any], exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, FtopsError):
        return {**base, "status": "Failed", "secondary_status": "Failed", "failure_reason": str(exc),
                "finished_at": _now()}
    return {**base, "status": "Failed", "secondary_status": "Interrupted", "finished_at": _now(),
            "failure_reason": f"the local run was interrupted ({type(exc).__name__})"}


def _completed(base: dict[str, Any], result: RunResult) -> dict[str, Any]:
    return {**base, "status": "Completed", "secondary_status": "Completed", "finished_at": _now(),
            "training_seconds": round(result.seconds), "model_artifacts": result.model_artifacts,
            "metrics_uri": result.metrics_uri, "steps": (result.summary or {}).get("global_step"),
            "final_metrics": _final(result.metrics), "log": f"{result.run_dir}/train.log"}


def run(env: Environment, request: dict[str, Any], *, max_steps: int | None = None) -> dict[str, Any]:
    """Train `request` with the local runner, recording InProgress, then Completed or Failed.

    A training failure is the job's failure, as on SageMaker: recorded, not raised, so apply still records the
    submission and `ftops jobs wait` reports the reason. An interrupt (Ctrl-C) is recorded and re-raised.

    Its buckets are the stack's: apply checked them before it uploaded or submitted anything (`check_storage`)."""
    from jobs.clients import aws_client
    from jobs.runlocal.runner import run_training_job, smoke_overrides

    s3 = aws_client(env, "s3")
    base = _base(request, max_steps)
    write(s3, request, {**base, "status": "InProgress", "secondary_status": "Training"})
    overrides = smoke_overrides(request.get("HyperParameters") or {}, max_steps) if max_steps else None
    try:
        result = run_training_job(request, env, max_steps=max_steps, overrides=overrides)
    except FtopsError as exc:
        record = _failed(base, exc)
        write(s3, request, record)
        return record
    except BaseException as exc:
        write(s3, request, _failed(base, exc))
        raise
    record = _completed(base, result)
    write(s3, request, record)
    return record


def rerun(env: Environment, request: dict[str, Any], train: Callable[[], RunResult], *,
          max_steps: int | None = None) -> RunResult:
    """`train()` under the job's own name (`ftops run-local --resume`, or a first run-local): it replaces the
    job's outputs, so the record follows, or `ftops jobs status|results` would report the earlier run.

    A job with a record (applied in `local`) is recorded InProgress, then Completed or Failed, as `run` does;
    one without gets a record only once its outputs exist. Failures are re-raised: run-local exits 1."""
    from jobs.clients import aws_client

    s3 = aws_client(env, "s3")
    recorded = read(s3, request) is not None
    base = _base(request, max_steps)
    if recorded:
        write(s3, request, {**base, "status": "InProgress", "secondary_status": "Training"})
    try:
        result = train()
    except BaseException as exc:
        if recorded:
            write(s3, request, _failed(base, exc))
        raise
    write(s3, request, _completed(base, result))
    return result
