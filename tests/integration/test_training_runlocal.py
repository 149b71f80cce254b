"""`ftops run-local` and `run_training_job` against moto: channels, source archive, checkpoints, artifacts."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from jobs.clients import aws_client
from jobs.config.environment import load_environment
from jobs.config.resolved import derive_aws
from jobs.errors import FtopsError
from jobs.runlocal import run_training_job
from jobs.training.archive import source_archive
from jobs.training.metrics import metric_definitions
from tests.fixtures import tiny_model

pytestmark = pytest.mark.integration

FAST = {"method": "sft", "peft": "lora", "epochs": "1", "per_device_batch_size": "4", "learning_rate": "0.003",
        "max_length": "128", "logging_steps": "1", "save_steps": "2", "eval_steps": "2", "packing": "true"}


def _upload_dir(s3, bucket: str, prefix: str, directory: Path) -> str:
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            s3.put_object(Bucket=bucket, Key=f"{prefix}/{path.relative_to(directory).as_posix()}",
                          Body=path.read_bytes())
    return f"s3://{bucket}/{prefix}"


def build_request(tmp_path: Path, model_dir: Path, job: str, hyperparameters: dict[str, str], *,
                  train_rows: list[dict], validation_rows: list[dict] | None = None,
                  instance_count: int = 1) -> dict:
    """Upload data, model and source like apply does; return the create_training_job kwargs render writes."""
    env = load_environment("local")
    names = derive_aws(env)
    s3 = aws_client(env, "s3")
    for bucket in (names.datasets_bucket, names.output_bucket, names.checkpoints_bucket):
        s3.create_bucket(Bucket=bucket)
    data = tmp_path / "data"
    tiny_model.write_jsonl(data / "train" / "train.jsonl", train_rows)
    channels = {"train": _upload_dir(s3, names.datasets_bucket, f"{job}/train", data / "train"),
                "model": _upload_dir(s3, names.datasets_bucket, f"models/{job}", model_dir)}
    if validation_rows is not None:
        tiny_model.write_jsonl(data / "validation" / "validation.jsonl", validation_rows)
        channels["validation"] = _upload_dir(s3, names.datasets_bucket, f"{job}/validation", data / "validation")
    archive = source_archive()
    s3.put_object(Bucket=names.output_bucket, Key=archive.s3_key(), Body=archive.data)
    return {
        "TrainingJobName": job,
        "RoleArn": names.execution_role_arn,
        "AlgorithmSpecification": {"TrainingImage": "local", "TrainingInputMode": "File",
                                   "MetricDefinitions": metric_definitions()},
        "HyperParameters": {**hyperparameters, "sagemaker_program": "train.py",
                            "sagemaker_submit_directory": f"s3://{names.output_bucket}/{archive.s3_key()}"},
        "InputDataConfig": [{"ChannelName": name, "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": "FullyReplicated"}}}
            for name, uri in channels.items()],
        "OutputDataConfig": {"S3OutputPath": f"s3://{names.output_bucket}/jobs"},
        "ResourceConfig": {"InstanceType": "ml.g5.xlarge", "InstanceCount": instance_count, "VolumeSizeInGB": 50},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200},
        "EnableManagedSpotTraining": True,
        "CheckpointConfig": {"S3Uri": f"s3://{names.checkpoints_bucket}/checkpoints/{job}",
                             "LocalPath": "/opt/ml/checkpoints"},
        "Environment": {"FTOPS_JOB": job},
    }


def _keys(prefix_uri: str) -> list[str]:
    s3 = aws_client(load_environment("local"), "s3")
    bucket, _, prefix = prefix_uri.removeprefix("s3://").partition("/")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def _read(uri: str) -> bytes:
    s3 = aws_client(load_environment("local"), "s3")
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


@pytest.mark.slow
def test_run_local_uploads_model_metrics_and_checkpoints(aws_local, tiny_causal_lm, tmp_path):
    request = build_request(tmp_path, tiny_causal_lm, "rl-artifacts", FAST, train_rows=tiny_model.chat_rows(48),
                            validation_rows=tiny_model.chat_rows(8, seed=3))
    result = run_training_job(request, load_environment("local"), max_steps=4)

    assert result.status == "Completed"
    assert result.model_artifacts == f"{request['OutputDataConfig']['S3OutputPath']}/rl-artifacts/output/model.tar.gz"
    with tarfile.open(fileobj=io.BytesIO(_read(result.model_artifacts))) as tar:
        names = set(tar.getnames())
    assert {"adapter_model.safetensors", "adapter_config.json", "tokenizer.json", "ftops-summary.json"} <= names
    series = [json.loads(line) for line in _read(result.metrics_uri).decode().splitlines()]
    assert [row["step"] for row in series if "train_loss" in row] == [1, 2, 3, 4]
    assert any("eval_loss" in row for row in series)
    checkpoints = _keys(request["CheckpointConfig"]["S3Uri"])
    assert any(key.endswith("checkpoint-4/ftops-complete.json") for key in checkpoints)
    assert result.summary["global_step"] == 4


@pytest.mark.slow
def test_interrupt_at_stops_at_that_step_and_the_resumed_run_trains_the_rest(aws_local, tiny_causal_lm, tmp_path):
    request = build_request(tmp_path, tiny_causal_lm, "rl-spot", {**FAST, "save_steps": "100"},
                            train_rows=tiny_model.chat_rows(48))
    result = run_training_job(request, load_environment("local"), max_steps=6, interrupt_at=3)

    assert result.interruptions == 1
    assert result.summary["resumed_from"] == "checkpoint-3"  # the SIGTERM checkpoint, at the step asked for
    assert any(key.endswith("checkpoint-3/ftops-complete.json") for key in _keys(request["CheckpointConfig"]["S3Uri"]))
    steps = [row["step"] for row in result.metrics if "train_loss" in row]
    assert steps == [1, 2, 3, 4, 5, 6], "each step trained once: 1..3, then 4..6 after the resume"
    segments = result.summary["segments"]
    assert [(s["first_step"], s["last_step"], s["interrupted"]) for s in segments] == [(1, 3, True), (4, 6, False)]
    first = next(row["train_loss"] for row in result.metrics if "train_loss" in row)
    assert result.summary["first_train_loss"] == first  # from the first segment, not null
    assert result.summary["global_step"] == 6 and not result.summary["interrupted"]
    # Tokens: the resumed Trainer carries the count of steps 1..3 in its checkpoint, so the job's total is the
    # last segment's, not the sum (that would count steps 1..3 twice).
    first_half, whole = (s["tokens_seen"] for s in segments)
    assert 1.5 * first_half < whole < 2.5 * first_half and result.summary["tokens_seen"] == whole


@pytest.mark.slow
def test_interrupt_at_does_not_depend_on_the_logging_interval(aws_local, tiny_causal_lm, tmp_path):
    """With a metric line only every 5 steps, the interruption still lands at step 2 (it used to wait for the
    first line at or after it: step 5)."""
    request = build_request(tmp_path, tiny_causal_lm, "rl-spot-sparse",
                            {**FAST, "logging_steps": "5", "save_steps": "100", "eval_steps": "100"},
                            train_rows=tiny_model.chat_rows(48))
    result = run_training_job(request, load_environment("local"), max_steps=6, interrupt_at=2)
    assert result.interruptions == 1
    assert result.summary["resumed_from"] == "checkpoint-2"
    assert [(s["first_step"], s["last_step"]) for s in result.summary["segments"]] == [(1, 2), (3, 6)]
    assert result.summary["first_train_loss"] is not None


def test_run_local_refuses_a_job_that_already_has_checkpoints(aws_local, tiny_causal_lm, tmp_path, ftops):
    request = build_request(tmp_path, tiny_causal_lm, "rl-applied", FAST, train_rows=tiny_model.chat_rows(4))
    s3 = aws_client(load_environment("local"), "s3")
    bucket, _, prefix = request["CheckpointConfig"]["S3Uri"].removeprefix("s3://").partition("/")
    s3.put_object(Bucket=bucket, Key=f"{prefix}/checkpoint-12/ftops-complete.json", Body=b"{}")
    job_file = tmp_path / "sagemaker.json"
    job_file.write_text(json.dumps(request))
    out = ftops("run-local", job_file, "--quiet")
    assert out.exit_code == 1
    assert "already has checkpoints" in out.stderr and "--resume" in out.stderr and "--fresh" in out.stderr
    assert not (Path(os.environ["FTOPS_STATE_DIR"]) / "runs" / "rl-applied").exists()


@pytest.mark.slow
def test_a_smoke_run_of_an_applied_job_is_fresh(aws_local, tiny_causal_lm, tmp_path, ftops):
    request = build_request(tmp_path, tiny_causal_lm, "rl-applied-smoke", FAST, train_rows=tiny_model.chat_rows(16))
    s3 = aws_client(load_environment("local"), "s3")
    planted = request["CheckpointConfig"]["S3Uri"] + "/checkpoint-12/ftops-complete.json"
    bucket, _, key = planted.removeprefix("s3://").partition("/")
    s3.put_object(Bucket=bucket, Key=key, Body=b"{}")
    job_file = tmp_path / "sagemaker.json"
    job_file.write_text(json.dumps(request))
    out = ftops("run-local", job_file, "--max-steps", "2", "--quiet", "--json")
    assert out.exit_code == 0, out.stderr
    payload = json.loads(out.stdout)
    assert payload["job_name"].startswith("rl-applied-smoke-") and payload["job_name"] != "rl-applied-smoke"
    assert payload["summary"]["resumed_from"] is None and payload["summary"]["global_step"] == 2
    assert _keys(request["CheckpointConfig"]["S3Uri"] + "/") == [key]  # the applied job's checkpoints are untouched
    assert not _keys(f"{request['OutputDataConfig']['S3OutputPath']}/rl-applied-smoke/")


def test_missing_channel_data_is_one_clear_error(aws_local, tiny_causal_lm, tmp_path):
    request = build_request(tmp_path, tiny_causal_lm, "rl-missing", FAST, train_rows=tiny_model.chat_rows(4))
    request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] += "-nothing-here"
    with pytest.raises(FtopsError, match="channel 'train': nothing under") as raised:
        run_training_job(request, load_environment("local"), max_steps=1)
    assert "ftops data upload" in str(raised.value)


def test_an_empty_model_channel_names_seed_model_not_data_upload(aws_local, tiny_causal_lm, tmp_path):
    # `ftops apply` before `ftops local seed-model`: the base model is missing, not the data.
    request = build_request(tmp_path, tiny_causal_lm, "rl-no-model", FAST, train_rows=tiny_model.chat_rows(4))
    model = next(c for c in request["InputDataConfig"] if c["ChannelName"] == "model")
    model["DataSource"]["S3DataSource"]["S3Uri"] += "-not-seeded"
    with pytest.raises(FtopsError, match="channel 'model': nothing under") as raised:
        run_training_job(request, load_environment("local"), max_steps=1)
    assert "`ftops local seed-model --env local`" in str(raised.value)
    assert "data upload" not in str(raised.value)


@pytest.mark.slow
def test_cli_run_local_json(aws_local, tiny_causal_lm, tmp_path, ftops):
    request = build_request(tmp_path, tiny_causal_lm, "rl-cli", {**FAST, "max_steps": "2"},
                            train_rows=tiny_model.chat_rows(16))
    job_file = tmp_path / "sagemaker.json"
    job_file.write_text(json.dumps(request))
    out = ftops("run-local", job_file, "--subset", "8", "--quiet", "--json")
    assert out.exit_code == 0, out.stderr
    payload = json.loads(out.stdout)
    assert payload["status"] == "Completed" and payload["summary"]["global_step"] == 2
    assert payload["summary"]["train_examples"] == 8


def test_cli_run_local_rejects_bad_json(tmp_path, ftops):
    job_file = tmp_path / "sagemaker.json"
    job_file.write_text('{"TrainingJobName": "x",\n  oops}')
    out = ftops("run-local", job_file)
    assert out.exit_code == 1
    assert "sagemaker.json:2" in out.stderr and "not valid JSON" in out.stderr


@pytest.mark.slow
def test_resume_rewrites_the_applied_jobs_record_so_status_matches_s3(aws_local, tiny_causal_lm, tmp_path, ftops):
    from jobs.providers.sagemaker import SageMaker
    from jobs.runlocal import record

    env = load_environment("local")
    request = build_request(tmp_path, tiny_causal_lm, "rl-record", FAST, train_rows=tiny_model.chat_rows(16))
    aws_client(env, "sagemaker").create_training_job(**request)  # applied: moto knows it
    # Applied before `seed-model`: the local runner recorded the job Failed.
    record.write(aws_client(env, "s3"), request, {"job": "rl-record", "status": "Failed", "secondary_status": "Failed",
                                                  "failure_reason": "channel 'model': nothing under s3://x"})
    job_file = tmp_path / "sagemaker.json"
    job_file.write_text(json.dumps(request))

    out = ftops("run-local", job_file, "--resume", "--max-steps", "2", "--quiet", "--json")
    assert out.exit_code == 0, out.stderr
    status = SageMaker().describe(env, "rl-record")
    assert (status.state, status.step, status.failure_reason) == ("succeeded", 2, None)
    assert status.model == json.loads(out.stdout)["model_artifacts"]

    out = ftops("run-local", job_file, "--resume", "--max-steps", "4", "--quiet")
    assert out.exit_code == 0, out.stderr
    assert SageMaker().describe(env, "rl-record").step == 4  # not the earlier run's step 2
