"""Run a rendered SageMaker tuning job's trials with the local runner (emulated environments).

moto accepts `CreateHyperParameterTuningJob`, reports it Completed at once with a placeholder best job, and runs
nothing. Here the trials really train: each is the tuning job's TrainingJobDefinition turned into a
`CreateTrainingJob` request (what SageMaker launches per trial), created on the emulator and trained by the local
runner (`jobs.runlocal.record.run`), so `ftops jobs status <trial>` works as for any job. The outcome, with the
best trial by the objective metric, is kept beside the trials' output, where `ftops jobs` reads it:

    <S3OutputPath>/<HyperParameterTuningJobName>/ftops-local-tuning.json

Not SageMaker's search: trial i of n takes the point i/(n-1) along every range (logarithmic ranges in log
space) and cycles through categorical values, so a smoke sweep is deterministic and spans each range. Trials run
one after another (this is a CPU stand-in), and by default only the first DEFAULT_TRIALS of MaxNumberOfTrainingJobs.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime
from typing import Any

from jobs.config.environment import Environment
from jobs.runlocal import s3io

RECORD_FILE = "ftops-local-tuning.json"
DEFAULT_TRIALS = 2
OBJECTIVE_HYPERPARAMETER = "_tuning_objective_metric"
# What a trial inherits from the tuning job's TrainingJobDefinition, as CreateTrainingJob spells it.
_COPIED = ("RoleArn", "InputDataConfig", "OutputDataConfig", "ResourceConfig", "StoppingCondition", "VpcConfig",
           "EnableNetworkIsolation", "EnableInterContainerTrafficEncryption", "EnableManagedSpotTraining",
           "CheckpointConfig", "RetryStrategy", "Environment")
_ALGORITHM = ("TrainingImage", "TrainingInputMode", "MetricDefinitions")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _along(low: float, high: float, fraction: float, scaling: str) -> float:
    if scaling == "Logarithmic" and low > 0:
        return math.exp(math.log(low) + fraction * (math.log(high) - math.log(low)))
    return low + fraction * (high - low)


def trial_values(config: dict[str, Any], count: int) -> list[dict[str, str]]:
    """The tuned hyperparameters of `count` trials (strings, as SageMaker passes them)."""
    ranges = config.get("ParameterRanges", {})
    trials = []
    for i in range(count):
        fraction = i / (count - 1) if count > 1 else 0.5
        values: dict[str, str] = {}
        for r in ranges.get("ContinuousParameterRanges", []):
            point = _along(float(r["MinValue"]), float(r["MaxValue"]), fraction, r.get("ScalingType", "Auto"))
            values[r["Name"]] = repr(float(f"{point:.6g}"))  # 0.0001, not 0.00010000000000000009
        for r in ranges.get("IntegerParameterRanges", []):
            point = _along(float(r["MinValue"]), float(r["MaxValue"]), fraction, r.get("ScalingType", "Auto"))
            values[r["Name"]] = str(round(point))
        for r in ranges.get("CategoricalParameterRanges", []):
            values[r["Name"]] = r["Values"][i % len(r["Values"])]
        trials.append(values)
    return trials


def trial_name(tuning_name: str, index: int, values: dict[str, str]) -> str:
    """SageMaker's pattern for the training jobs a tuning job launches: `<tuning job>-<NNN>-<8 hex>`."""
    digest = hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:8]
    return f"{tuning_name}-{index + 1:03d}-{digest}"


def trial_request(tuning: dict[str, Any], name: str, values: dict[str, str]) -> dict[str, Any]:
    """The CreateTrainingJob request of one trial: static + tuned hyperparameters + the objective's name."""
    definition = tuning["TrainingJobDefinition"]
    objective = tuning["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]["MetricName"]
    request: dict[str, Any] = {
        "TrainingJobName": name,
        "HyperParameters": {**definition["StaticHyperParameters"], **values, OBJECTIVE_HYPERPARAMETER: objective},
        "AlgorithmSpecification": {k: v for k, v in definition["AlgorithmSpecification"].items() if k in _ALGORITHM},
    }
    request |= {key: definition[key] for key in _COPIED if key in definition}
    if tuning.get("Tags"):
        request["Tags"] = tuning["Tags"]
    return request


def record_uri(tuning: dict[str, Any]) -> str:
    output = tuning["TrainingJobDefinition"]["OutputDataConfig"]["S3OutputPath"]
    return s3io.join(output, tuning["HyperParameterTuningJobName"], RECORD_FILE)


def read(s3, tuning: dict[str, Any]) -> dict[str, Any] | None:
    """The local record of this tuning job, or None when it was not run locally."""
    bucket, key = s3io.split_uri(record_uri(tuning))
    try:
        return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except Exception as exc:
        if getattr(exc, "response", {}).get("Error", {}).get("Code", "") in {"NoSuchKey", "NoSuchBucket", "404"}:
            return None
        raise


def _write(s3, tuning: dict[str, Any], record: dict[str, Any]) -> None:
    bucket, key = s3io.split_uri(record_uri(tuning))
    kms_key = tuning["TrainingJobDefinition"].get("OutputDataConfig", {}).get("KmsKeyId")
    extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key} if kms_key else {}
    s3io._call("writing", record_uri(tuning), s3.put_object, Bucket=bucket, Key=key,
               Body=json.dumps(record, indent=2).encode(), ContentType="application/json", **extra)


def best_trial(trials: list[dict[str, Any]], goal: str) -> dict[str, Any] | None:
    """The completed trial with the best objective value (lowest for Minimize), as SageMaker's BestTrainingJob."""
    scored = [t for t in trials if t["status"] == "Completed" and t.get("objective") is not None]
    if not scored:
        return None
    return (max if goal == "Maximize" else min)(scored, key=lambda t: t["objective"])


def run(env: Environment, tuning: dict[str, Any], *, trials: int | None = None,
        max_steps: int | None = None) -> dict[str, Any]:
    """Create and train the trials of `tuning` (the rendered request) one by one; record and return the outcome.
    Its buckets are the stack's: apply checked them before it uploaded or submitted anything (`check_storage`)."""
    from jobs.clients import aws_client
    from jobs.runlocal import record as training_record

    s3, sm = aws_client(env, "s3"), aws_client(env, "sagemaker")
    config = tuning["HyperParameterTuningJobConfig"]
    objective = config["HyperParameterTuningJobObjective"]
    limit = config["ResourceLimits"]["MaxNumberOfTrainingJobs"]
    count = min(limit, trials or DEFAULT_TRIALS)
    base = {"tuning_job": tuning["HyperParameterTuningJobName"], "runner": "ftops local runner",
            "objective": {"metric": objective["MetricName"], "goal": objective["Type"]}, "started_at": _now(),
            "max_steps": max_steps, "planned_trials": count, "max_trials": limit}
    done: list[dict[str, Any]] = []
    _write(s3, tuning, {**base, "status": "InProgress", "trials": done})
    for index, values in enumerate(trial_values(config, count)):
        name = trial_name(tuning["HyperParameterTuningJobName"], index, values)
        request = trial_request(tuning, name, values)
        try:
            sm.create_training_job(**request)
        except sm.exceptions.ResourceInUse:
            pass  # a previous, interrupted local run created it; train it again
        outcome = training_record.run(env, request, max_steps=max_steps)
        final = outcome.get("final_metrics") or {}
        done.append({"name": name, "hyperparameters": values, "status": outcome["status"],
                     "objective": final.get(objective["MetricName"]), "final_metrics": final,
                     "model_artifacts": outcome.get("model_artifacts"), "steps": outcome.get("steps"),
                     "failure_reason": outcome.get("failure_reason")})
        _write(s3, tuning, {**base, "status": "InProgress", "trials": done})
    best = best_trial(done, objective["Type"])
    record = {**base, "trials": done, "finished_at": _now(), "best_training_job": best["name"] if best else None,
              "status": "Completed" if best else "Failed",
              "failure_reason": None if best else f"no trial reported the objective metric {objective['MetricName']}"}
    _write(s3, tuning, record)
    return record
