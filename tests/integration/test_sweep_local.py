"""A SageMaker tuning sweep end to end in `local`: render -> plan -> apply (moto takes the tuning job; both trials
really train with the local runner) -> status, wait, events, results name the best training job by the objective
metric -> each trial checkpointed under its own prefix -> a second apply submits nothing. In a copied project."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobs.clients import aws_client
from jobs.config.environment import load_environment
from tests.fixtures.local_runner_fork import local_runner_fork, succeeded_json as _json

pytestmark = [pytest.mark.integration, pytest.mark.slow]
JOB = "helpdesk-qwen-sweep"


@pytest.fixture
def fork(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aws_buckets) -> Iterator[Path]:
    yield from local_runner_fork(tmp_path, monkeypatch, Path("demo") / "sweep" / f"{JOB}.yaml")



def test_a_two_trial_sweep_runs_end_to_end(ftops, fork, tmp_path):
    _json(ftops("local", "seed-model", "--env", "local", "--json"))
    rendered = tmp_path / "rendered"
    assert ftops("render", "--env", "local", "--out", rendered).exit_code == 0
    (job_dir,) = [p for p in (rendered / "local").iterdir() if p.is_dir()]
    index = json.loads((job_dir / "job.json").read_text())
    assert index["provider"] == "sagemaker-tuning" and index["targets"]["sagemaker-tuning"] == "sagemaker-tuning.json"
    tuning_name = index["tuning_job_name"]

    planned = _json(ftops("plan", rendered, "--env", "local", "--json"))
    assert [item["action"] for item in planned["jobs"]] == ["create"]
    applied = _json(ftops("apply", rendered, "--env", "local", "--local-max-steps", "3", "--json"))
    assert applied["summary"] == {"created": 1}

    status = _json(ftops("jobs", "status", JOB, "--env", "local", "--dir", rendered, "--json"))
    assert status["provider"] == "sagemaker-tuning" and status["job_id"] == tuning_name
    assert status["state"] == "succeeded" and "eval_loss" in status["metrics"]
    assert status["model"].endswith("/output/model.tar.gz")
    waited = ftops("jobs", "wait", JOB, "--env", "local", "--dir", rendered, "--interval", "0.1")
    assert waited.exit_code == 0, waited.stderr

    results = _json(ftops("jobs", "results", JOB, "--env", "local", "--dir", rendered, "--out", tmp_path / "res",
                          "--json"))
    trials = results["trials"]
    assert len(trials) == 2 and all(t["status"] == "Completed" for t in trials)
    assert all(t["training_job"].startswith(f"{tuning_name}-00") for t in trials)
    rates = [float(t["hyperparameters"]["learning_rate"]) for t in trials]
    assert rates == pytest.approx([0.0001, 0.001])
    best = min(trials, key=lambda t: t["objective"])
    assert results["best_training_job"]["training_job"] == best["training_job"]
    assert results["best_training_job"]["value"] == best["objective"]
    assert results["best_training_job"]["metric"] == "eval_loss" and results["steps"] == 3
    assert json.loads((tmp_path / "res" / "summary.json").read_text())["best_training_job"] == \
        results["best_training_job"]

    events = _json(ftops("jobs", "events", JOB, "--env", "local", "--dir", rendered, "--json"))
    messages = [e["message"] for e in events]
    assert sum(m.startswith("trial ") and ": Completed, objective" in m for m in messages) == 2
    assert any(m.startswith(f"best training job {best['training_job']}") for m in messages)

    # Both trials got the same CheckpointConfig; each kept its checkpoints under its own training job name.
    request = json.loads((job_dir / "sagemaker-tuning.json").read_text())
    bucket, _, prefix = request["TrainingJobDefinition"]["CheckpointConfig"]["S3Uri"][5:].partition("/")
    keys = [o["Key"][len(prefix):] for o in aws_client(load_environment("local"), "s3").list_objects_v2(
        Bucket=bucket, Prefix=prefix).get("Contents", [])]
    assert {key.split("/")[0] for key in keys} == {t["training_job"] for t in trials}
    for trial in trials:
        assert any(key.startswith(f"{trial['training_job']}/checkpoint-") for key in keys), keys

    again = _json(ftops("apply", rendered, "--env", "local", "--local-max-steps", "3", "--json"))
    assert "created" not in again["summary"]
    cancelled = ftops("jobs", "cancel", JOB, "--env", "local", "--dir", rendered)
    assert cancelled.exit_code == 1 and "already ended (succeeded); nothing to cancel" in cancelled.stderr


def test_without_the_local_runner_moto_s_placeholder_best_job_is_never_reported(ftops, fork, tmp_path):
    rendered = tmp_path / "rendered"
    assert ftops("render", "--env", "local", "--out", rendered).exit_code == 0
    applied = _json(ftops("apply", rendered, "--env", "local", "--no-local-runner", "--json"))
    assert applied["summary"] == {"created": 1}
    status = _json(ftops("jobs", "status", JOB, "--env", "local", "--dir", rendered, "--json"))
    assert status["state"] == "succeeded" and status["model"] is None and status["metrics"] == {}
    from jobs import providers

    listed = providers.get("sagemaker-tuning").list(load_environment("local"))  # what `ftops jobs list` adds
    assert status["job_id"] in {s.job_id for s in listed}
    results = _json(ftops("jobs", "results", JOB, "--env", "local", "--dir", rendered, "--out", tmp_path / "r",
                          "--json"))
    assert results["best_training_job"] is None and results["trials"] == []
