"""The tuning provider against real SageMaker's answers (botocore's Stubber checks every request and response
against the service model): the best training job by the objective, its metrics, the trials, cancel."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber

from jobs.config.environment import load_environment
from jobs.providers import get

TUNING = "sweep-dev-0a1b2c3d"
BEST, OTHER = f"{TUNING}-002-5e6f7a8b", f"{TUNING}-001-1a2b3c4d"
ROLE = "arn:aws:iam::111111111111:role/ftops-dev-sagemaker-execution"
T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def _tuning_description() -> dict:
    definition = {
        "StaticHyperParameters": {"epochs": "1"},
        "AlgorithmSpecification": {"TrainingImage": "763104351884.dkr.ecr.us-east-1.amazonaws.com/hf:1",
                                   "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "OutputDataConfig": {"S3OutputPath": "s3://ftops-dev-artifacts-111111111111-us-east-1/training-output/"},
        "ResourceConfig": {"InstanceType": "ml.g5.2xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600}, "EnableManagedSpotTraining": True}
    return {
        "HyperParameterTuningJobName": TUNING,
        "HyperParameterTuningJobArn": f"arn:aws:sagemaker:us-east-1:111111111111:hyper-parameter-tuning-job/{TUNING}",
        "HyperParameterTuningJobConfig": {
            "Strategy": "Bayesian", "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "eval_loss"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 2, "MaxParallelTrainingJobs": 2}},
        "TrainingJobDefinition": definition, "HyperParameterTuningJobStatus": "Completed", "CreationTime": T0,
        "TrainingJobStatusCounters": {"Completed": 2}, "ObjectiveStatusCounters": {"Succeeded": 2},
        "BestTrainingJob": {"TrainingJobName": BEST, "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:111111111111:"
                            f"training-job/{BEST}", "CreationTime": T0, "TrainingJobStatus": "Completed",
                            "TunedHyperParameters": {"learning_rate": "0.001"},
                            "FinalHyperParameterTuningJobObjectiveMetric": {"MetricName": "eval_loss", "Value": 0.42}},
    }


def _training_description(name: str) -> dict:
    return {"TrainingJobName": name, "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:111111111111:training-job/{name}",
            "TrainingJobStatus": "Completed", "SecondaryStatus": "Completed", "CreationTime": T0,
            "AlgorithmSpecification": {"TrainingInputMode": "File"},
            "ModelArtifacts": {"S3ModelArtifacts": f"s3://b/training-output/{name}/output/model.tar.gz"},
            "FinalMetricDataList": [{"MetricName": "eval_loss", "Value": 0.42}, {"MetricName": "train_loss",
                                                                                "Value": 0.38}],
            "ResourceConfig": {"InstanceType": "ml.g5.2xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50},
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600}}


@pytest.fixture
def stubbed(monkeypatch):
    sm = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    monkeypatch.setattr("jobs.providers.sagemaker_tuning.client", lambda env, service="sagemaker": sm)
    monkeypatch.setattr("jobs.providers.sagemaker.client", lambda env, service="sagemaker": sm)
    with Stubber(sm) as stub:
        yield stub
        stub.assert_no_pending_responses()


def test_status_names_the_best_training_job_with_its_metrics(stubbed):
    env = load_environment("dev")
    described = {"HyperParameterTuningJobName": TUNING}
    stubbed.add_response("describe_hyper_parameter_tuning_job", _tuning_description(), described)
    stubbed.add_response("describe_hyper_parameter_tuning_job", _tuning_description(), described)
    stubbed.add_response("describe_training_job", _training_description(BEST), {"TrainingJobName": BEST})
    status = get("sagemaker-tuning").describe(env, TUNING)
    assert status.state == "succeeded" and status.provider == "sagemaker-tuning"
    assert status.metrics == {"eval_loss": 0.42, "valid_loss": 0.42, "train_loss": 0.38}
    assert status.model == f"s3://b/training-output/{BEST}/output/model.tar.gz"
    assert status.secondary_status == f"2 trials completed; best {BEST}"


def test_trials_and_best_come_from_the_tuning_job(stubbed):
    env = load_environment("dev")
    provider = get("sagemaker-tuning")
    stubbed.add_response("describe_hyper_parameter_tuning_job", _tuning_description(),
                         {"HyperParameterTuningJobName": TUNING})
    assert provider.best(env, TUNING) == {"training_job": BEST, "metric": "eval_loss", "goal": "Minimize",
                                          "value": 0.42, "hyperparameters": {"learning_rate": "0.001"}}
    stubbed.add_response("describe_hyper_parameter_tuning_job", _tuning_description(),
                         {"HyperParameterTuningJobName": TUNING})
    summaries = [{"TrainingJobName": name, "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:111111111111:training-job/"
                  f"{name}", "CreationTime": T0, "TrainingJobStatus": status, "TunedHyperParameters": {"lr": lr},
                  **({"FinalHyperParameterTuningJobObjectiveMetric": {"MetricName": "eval_loss", "Value": value}}
                     if value is not None else {"FailureReason": "AlgorithmError: out of memory"})}
                 for name, status, lr, value in ((OTHER, "Failed", "0.0001", None), (BEST, "Completed", "0.001", 0.42))]
    stubbed.add_response("list_training_jobs_for_hyper_parameter_tuning_job", {"TrainingJobSummaries": summaries},
                         {"HyperParameterTuningJobName": TUNING})
    trials = provider.trials(env, TUNING)
    assert [(t["training_job"], t["status"], t["objective"]) for t in trials] == [(OTHER, "Failed", None),
                                                                                   (BEST, "Completed", 0.42)]
    assert trials[0]["failure_reason"] == "AlgorithmError: out of memory"


def test_cancel_stops_the_tuning_job(stubbed):
    env = load_environment("dev")
    stubbed.add_response("stop_hyper_parameter_tuning_job", {}, {"HyperParameterTuningJobName": TUNING})
    stopping = _tuning_description() | {"HyperParameterTuningJobStatus": "Stopping"}
    stubbed.add_response("describe_hyper_parameter_tuning_job", stopping, {"HyperParameterTuningJobName": TUNING})
    assert get("sagemaker-tuning").cancel(env, TUNING).provider_status == "Stopping"
