"""run-local treats the request as input: names stay inside its work directory, nothing it did not create is
deleted, and the request's Environment cannot steer the local process (issue 17, case 3)."""

from __future__ import annotations

import json
import re

import pytest

from jobs.config.environment import load_environment
from jobs.errors import FtopsError
from jobs.runlocal import guard, runner


def _request(job: str = "rl-guard", **changes) -> dict:
    request = {
        "TrainingJobName": job,
        "HyperParameters": {"sagemaker_program": "train.py",
                            "sagemaker_submit_directory": "s3://artifacts/source/x/sourcedir.tar.gz"},
        "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": "s3://datasets/train/"}}}],
        "OutputDataConfig": {"S3OutputPath": "s3://output/jobs"},
        "CheckpointConfig": {"S3Uri": "s3://checkpoints/checkpoints/rl-guard/"},
        "ResourceConfig": {"InstanceCount": 1},
    }
    request.update(changes)
    return request


@pytest.fixture
def no_cloud(monkeypatch):
    """A moto endpoint where nothing listens: whatever the runner would do in S3 fails after the local steps."""
    monkeypatch.setenv("FTOPS_MOTO_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return load_environment("local")


@pytest.mark.parametrize("name", ["../victim", "/tmp/ftops-victim", "a/../../victim", "-x", "a" * 64, ""])
def test_a_job_name_that_is_a_path_is_refused_before_anything_is_deleted(no_cloud, isolated_state, name):
    victim = isolated_state / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")
    with pytest.raises(FtopsError, match="TrainingJobName"):
        runner.run_training_job(_request(name), no_cloud)
    assert (victim / "precious.txt").read_text() == "keep me"


def test_a_run_directory_the_runner_did_not_create_is_not_replaced(no_cloud, isolated_state):
    mine = isolated_state / "runs" / "rl-guard"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(FtopsError, match="not created by the local runner"):
        runner.run_training_job(_request(), no_cloud)
    assert (mine / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("channel", ["..", ".", "../../etc", "/abs"])
def test_a_channel_name_cannot_escape_the_work_directory(no_cloud, channel):
    request = _request()
    request["InputDataConfig"][0]["ChannelName"] = channel
    with pytest.raises(FtopsError, match="ChannelName"):
        runner.run_training_job(request, no_cloud)


@pytest.mark.parametrize("program", ["/etc/passwd", "../../../bin/sh", "code/../../x.py"])
def test_the_program_must_be_inside_the_source(no_cloud, program):
    request = _request()
    request["HyperParameters"]["sagemaker_program"] = program
    with pytest.raises(FtopsError, match="sagemaker_program"):
        runner.run_training_job(request, no_cloud)


def test_inside_refuses_a_symlink_out(tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "train.py").symlink_to("/bin/sh")
    with pytest.raises(FtopsError, match="outside"):
        guard.inside(code, "train.py", "HyperParameters.sagemaker_program")


def test_the_request_environment_cannot_steer_the_local_process(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "the-users-own-secret")
    request = _request(Environment={"LD_PRELOAD": "/tmp/evil.so", "PYTHONPATH": "/tmp/evil", "BASH_ENV": "/tmp/x",
                                    "PYTHONSTARTUP": "/tmp/x.py", "AWS_CONFIG_FILE": "/tmp/c", "PATH": "/tmp",
                                    "WANDB_PROJECT": "helpdesk", "NCCL_DEBUG": "INFO"})
    layout = runner._Layout(tmp_path / "work")
    env = runner._environment(request, layout, ["train"], {}, 1, None)
    assert env["WANDB_PROJECT"] == "helpdesk" and env["NCCL_DEBUG"] == "INFO"
    assert "LD_PRELOAD" not in env and "BASH_ENV" not in env and "PYTHONSTARTUP" not in env
    assert env.get("PYTHONPATH") != "/tmp/evil" and env.get("PATH") != "/tmp"
    assert "AWS_CONFIG_FILE" not in env and "AWS_SECRET_ACCESS_KEY" not in env
    kept, dropped = guard.filter_environment(request["Environment"])
    assert dropped == sorted(["AWS_CONFIG_FILE", "BASH_ENV", "LD_PRELOAD", "PATH", "PYTHONPATH", "PYTHONSTARTUP"])


def test_fresh_gets_a_valid_new_name_and_its_own_checkpoint_prefix():
    long = "helpdesk-qwen-lora-local-" + "a" * 38  # 63 characters, SageMaker's maximum
    for name in ("helpdesk-qwen-lora-local-aa7e4b08", long):
        request = _request(name, CheckpointConfig={"S3Uri": f"s3://ckpt/checkpoints/{name}/", "LocalPath": "/x"})
        copy = guard.fresh(request)
        new = copy["TrainingJobName"]
        assert new != name and len(new) <= 63 and re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", new)
        assert copy["CheckpointConfig"] == {"S3Uri": f"s3://ckpt/checkpoints/{new}/", "LocalPath": "/x"}
        assert request["TrainingJobName"] == name  # the original is untouched
    assert guard.fresh(_request(), "run-1")["TrainingJobName"] != guard.fresh(_request(), "run-2")["TrainingJobName"]


def test_cli_refuses_both_fresh_and_resume(ftops, tmp_path):
    job = tmp_path / "sagemaker.json"
    job.write_text("{}")
    out = ftops("run-local", job, "--fresh", "--resume")
    assert out.exit_code == 1 and "exclude each other" in out.stderr


def test_cli_refuses_an_interruption_at_the_last_step(ftops, tmp_path):
    job = tmp_path / "sagemaker.json"
    job.write_text("{}")
    out = ftops("run-local", job, "--max-steps", "10", "--interrupt-at", "10")
    assert out.exit_code == 1 and "nothing to resume" in out.stderr


def test_cli_names_what_is_not_a_training_request(ftops, tmp_path):
    azure = tmp_path / "azure-openai.json"
    azure.write_text(json.dumps({"model": "gpt-4.1-mini-2025-04-14", "training_file": "file-x"}))
    out = ftops("run-local", azure)
    assert out.exit_code == 1 and "not a SageMaker CreateTrainingJob request" in out.stderr
    assert str(azure) in out.stderr and "Traceback" not in out.stderr
    out = ftops("run-local", tmp_path)
    assert out.exit_code == 1 and "this directory holds no sagemaker.json" in out.stderr


def test_cli_refuses_a_request_rendered_for_another_environment(ftops, tmp_path):
    job = tmp_path / "job"
    job.mkdir()
    (job / "sagemaker.json").write_text(json.dumps({
        "TrainingJobName": "x-dev-12345678", "AlgorithmSpecification": {},
        "Tags": [{"Key": "environment", "Value": "dev"}]}))
    out = ftops("run-local", job, "--env", "local")  # the job's directory is accepted for its sagemaker.json
    assert out.exit_code == 1
    assert "rendered for environment 'dev', not 'local'" in out.stderr and "pass --env dev" in out.stderr
