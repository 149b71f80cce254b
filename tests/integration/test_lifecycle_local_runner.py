"""`local` end to end with the local runner: seed the stand-in base model -> render -> apply (really trains the
rendered SageMaker job, capped at a few steps) -> status from the run, not moto -> results from the real metric
lines -> model.tar.gz in S3. Runs in a copied project (FTOPS_ROOT), so nothing is written into the checkout."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobs.clients import aws_client
from jobs.config.environment import load_environment
from tests.fixtures.local_runner_fork import local_runner_fork, succeeded_json as _json

pytestmark = pytest.mark.integration
JOB = "helpdesk-qwen-lora"


@pytest.fixture
def fork(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aws_buckets) -> Iterator[Path]:
    """The SageMaker example definition in a copied project (tests.fixtures.local_runner_fork)."""
    yield from local_runner_fork(tmp_path, monkeypatch, Path("definitions") / f"{JOB}.yaml")



def _model_channel(rendered: Path) -> tuple[dict, str]:
    request = json.loads(next(rendered.glob(f"local/{JOB}-*/sagemaker.json")).read_text())
    channel = next(c for c in request["InputDataConfig"] if c["ChannelName"] == "model")
    return request, channel["DataSource"]["S3DataSource"]["S3Uri"]


@pytest.mark.slow
def test_apply_trains_the_rendered_job_for_real(ftops, fork, tmp_path):
    seeded = _json(ftops("local", "seed-model", "--env", "local", "--json"))["models"]
    assert [m["state"] for m in seeded] == ["uploaded"]
    rendered = tmp_path / "rendered"
    assert ftops("render", "--env", "local", "--out", rendered).exit_code == 0
    request, model_uri = _model_channel(rendered)
    assert model_uri == seeded[0]["uri"]  # seed-model resolves base_model.s3_uri as the renderer does
    again = _json(ftops("local", "seed-model", "--env", "local", "--job", JOB, "--json"))["models"]
    assert [m["state"] for m in again] == ["present"]

    applied = _json(ftops("apply", rendered, "--env", "local", "--local-max-steps", "4", "--json"))
    assert applied["summary"] == {"created": 1}

    status = _json(ftops("jobs", "status", JOB, "--env", "local", "--dir", rendered, "--json"))
    assert status["state"] == "succeeded" and status["provider_status"] == "Completed"
    assert status["step"] == 4 and status["metrics"]["train_loss"] > 0
    assert status["model"].endswith(f"/{request['TrainingJobName']}/output/model.tar.gz")

    out = tmp_path / "results"
    summary = _json(ftops("jobs", "results", JOB, "--env", "local", "--dir", rendered, "--out", out, "--json"))
    assert summary["source"].endswith("/output/ftops-metrics.jsonl")
    with open(out / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]  # a loss every step: the smoke run's logging
    assert all(float(r["train_loss"]) > 0 for r in rows)
    assert any(r.get("valid_loss") for r in rows)  # evaluations on the validation channel
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    s3 = aws_client(load_environment("local"), "s3")
    bucket, _, key = status["model"].removeprefix("s3://").partition("/")
    assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] > 1000


def test_a_failed_local_run_is_a_failed_job_not_mocks_completed(ftops, fork, tmp_path):
    rendered = tmp_path / "rendered"
    assert ftops("render", "--env", "local", "--out", rendered).exit_code == 0
    # No seed-model: the `model` channel is empty, so the job fails the way SageMaker fails it.
    assert _json(ftops("apply", rendered, "--env", "local", "--local-max-steps", "2", "--json"))["summary"] == \
        {"created": 1}
    shown = ftops("jobs", "status", JOB, "--env", "local", "--dir", rendered, "--json")
    assert shown.exit_code == 1  # a failed job, as on SageMaker
    status = json.loads(shown.stdout)
    assert status["state"] == "failed" and status["provider_status"] == "Failed"
    assert "model" in status["failure_reason"] and "nothing under" in status["failure_reason"]
    waited = ftops("jobs", "wait", JOB, "--env", "local", "--dir", rendered, "--interval", "0.1")
    assert waited.exit_code != 0
    events = _json(ftops("jobs", "events", JOB, "--env", "local", "--dir", rendered, "--json"))
    assert "local runner" in json.dumps(events)
