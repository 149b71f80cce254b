"""The rendered SageMaker example job, run locally: its MetricDefinitions match what the script prints."""

from __future__ import annotations

import json
import re

import pytest

from jobs.clients import aws_client
from jobs.config.environment import load_environment
from jobs.runlocal import run_training_job
from jobs.training.archive import source_archive
from tests.fixtures import tiny_model

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _put_prefix(s3, uri: str, files: dict[str, bytes]) -> None:
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    for name, body in files.items():
        s3.put_object(Bucket=bucket, Key=f"{prefix.rstrip('/')}/{name}", Body=body)


def test_rendered_example_job_runs_and_its_metric_regexes_match(aws_local, tiny_causal_lm, tmp_path):
    from jobs.render.engine import render_environment

    env = load_environment("local")
    (rendered,) = render_environment(env, "helpdesk-qwen-lora")
    request = json.loads(rendered.files["sagemaker.json"])
    # Evaluate and checkpoint within the smoke run's few steps (the example evaluates every 50).
    request["HyperParameters"] |= {"eval_steps": "2", "save_steps": "2", "logging_steps": "1"}

    s3 = aws_client(env, "s3")
    for uri in [c["DataSource"]["S3DataSource"]["S3Uri"] for c in request["InputDataConfig"]] + [
            request["OutputDataConfig"]["S3OutputPath"], request["CheckpointConfig"]["S3Uri"]]:
        bucket = uri.removeprefix("s3://").split("/")[0]
        if bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
            s3.create_bucket(Bucket=bucket)
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in request["InputDataConfig"]}
    _put_prefix(s3, channels["train"], {"train.jsonl": "".join(
        json.dumps(r) + "\n" for r in tiny_model.chat_rows(32)).encode()})
    _put_prefix(s3, channels["validation"], {"validation.jsonl": "".join(
        json.dumps(r) + "\n" for r in tiny_model.chat_rows(8, seed=4)).encode()})
    _put_prefix(s3, channels["model"], {p.name: p.read_bytes() for p in tiny_causal_lm.iterdir() if p.is_file()})
    archive = source_archive()
    assert request["HyperParameters"]["sagemaker_submit_directory"].endswith(archive.s3_key())
    _put_prefix(s3, request["HyperParameters"]["sagemaker_submit_directory"].rsplit("/", 1)[0],
                {"sourcedir.tar.gz": archive.data})

    result = run_training_job(request, env, max_steps=4, subset=16)
    assert result.status == "Completed"
    log = open(f"{result.run_dir}/train.log", encoding="utf-8").read()
    found = {d["Name"]: [float(m.group(1)) for m in re.finditer(d["Regex"], log)]
             for d in request["AlgorithmSpecification"]["MetricDefinitions"]}
    for name in ("train_loss", "eval_loss", "learning_rate", "epoch", "tokens_per_second", "grad_norm"):
        assert found[name], f"the rendered regex for {name} matched nothing in the job's output"
    assert len(found["train_loss"]) == 4 and len(found["eval_loss"]) == 2
