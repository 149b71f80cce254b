"""The local stand-in for SageMaker's tuner: which trials it runs and the requests it launches them with."""

from __future__ import annotations

import botocore.session
import pytest
from botocore.validate import ParamValidator

from jobs.config.environment import load_environment
from jobs.render.engine import render_environment
from jobs.runlocal import tuning
from jobs.training.hparams import parse_args

SM = "helpdesk-qwen-lora"


def test_trials_span_each_range_deterministically():
    config = {"ParameterRanges": {
        "ContinuousParameterRanges": [{"Name": "learning_rate", "MinValue": "0.0001", "MaxValue": "0.01",
                                       "ScalingType": "Logarithmic"}],
        "IntegerParameterRanges": [{"Name": "lora_r", "MinValue": "8", "MaxValue": "32", "ScalingType": "Linear"}],
        "CategoricalParameterRanges": [{"Name": "epochs", "Values": ["2", "3"]}]}}
    trials = tuning.trial_values(config, 3)
    assert [float(t["learning_rate"]) for t in trials] == pytest.approx([0.0001, 0.001, 0.01])
    assert [t["lora_r"] for t in trials] == ["8", "20", "32"] and [t["epochs"] for t in trials] == ["2", "3", "2"]
    assert tuning.trial_values(config, 3) == trials
    names = [tuning.trial_name("sweep-local-0a1b2c3d", i, t) for i, t in enumerate(trials)]
    assert names[0].startswith("sweep-local-0a1b2c3d-001-") and len(set(names)) == 3


def test_the_best_trial_follows_the_objective_goal():
    trials = [{"name": "a", "status": "Completed", "objective": 0.5}, {"name": "b", "status": "Failed", "objective": None},
              {"name": "c", "status": "Completed", "objective": 0.3}]
    assert tuning.best_trial(trials, "Minimize")["name"] == "c"
    assert tuning.best_trial(trials, "Maximize")["name"] == "a"
    assert tuning.best_trial(trials[1:2], "Minimize") is None


def test_a_trial_request_is_a_valid_training_job_the_script_accepts(project):
    project.edit_definition(SM, sweep={"tuning": {"max_jobs": 4, "ranges": {
        "learning_rate": {"min": 0.0001, "max": 0.001, "scaling": "Logarithmic"}, "lora_r": {"values": [8, 16]}}}})
    request = render_environment(load_environment("local"), SM)[0].documents["sagemaker-tuning.json"]
    values = tuning.trial_values(request["HyperParameterTuningJobConfig"], 2)[1]
    name = tuning.trial_name(request["HyperParameterTuningJobName"], 1, values)
    trial = tuning.trial_request(request, name, values)
    model = botocore.session.get_session().get_service_model("sagemaker")
    report = ParamValidator().validate(trial, model.operation_model("CreateTrainingJob").input_shape)
    assert not report.has_errors(), report.generate_report()
    assert trial["CheckpointConfig"] == request["TrainingJobDefinition"]["CheckpointConfig"]
    argv = [token for key, value in trial["HyperParameters"].items() for token in (f"--{key}", value)]
    parsed = parse_args(argv)  # what SageMaker passes each trial, reserved names included
    assert parsed.learning_rate == pytest.approx(0.001) and parsed.lora_r == 16
    assert parsed.extras["_tuning_objective_metric"] == "eval_loss"
