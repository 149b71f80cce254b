"""User mistakes on the emulators (moto server): commands run in the wrong order or on a job that is not there
are one line and leave nothing behind that breaks the next step."""

from __future__ import annotations

import pytest

from jobs.clients import aws_client
from jobs.config.environment import load_environment
from jobs.config.resolved import resolved_aws
from tests.fixtures.cli import one_line_error
from tests.fixtures.rendered import real_dataset

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("command", [("jobs", "status", "helpdesk-qwen-lora"), ("plan",), ("models", "list")])
def test_reading_jobs_before_infra_deploy_creates_no_bucket(ftops, project, aws_local, tmp_path, command):
    """The ledger lookup used to create the artifacts bucket on moto (plain, without the stack's key), so the
    `ftops infra deploy --env local` that followed failed with BucketAlreadyExists."""
    project.edit_environment("local", 'account: "123456789012"', 'account: "000000000043"')  # a never-deployed stack
    env = load_environment("local")
    real_dataset(project)  # plan checks the split files before it reads the ledger
    rendered = tmp_path / "rendered"
    assert ftops("render", "--env", "local", "--job", "helpdesk-qwen-lora", "--out", rendered).exit_code == 0
    args = [*command, "--env", "local"]
    if command[0] == "plan":
        args.append(str(rendered))
    elif command[0] == "jobs":
        args += ["--dir", str(rendered)]
    bucket = resolved_aws(env).output_bucket
    # plan checks every stack bucket first (the datasets bucket comes first); the others read the ledger's
    one_line_error(ftops(*args), "does not exist in environment local", "ftops infra deploy --env local")
    with pytest.raises(Exception, match="404|Not Found"):
        aws_client(env, "s3").head_bucket(Bucket=bucket)


def test_cancelling_a_job_that_does_not_exist_names_it_at_once(ftops, aws_local):
    """moto server answers StopTrainingJob with a 500: retried at length, then a traceback."""
    one_line_error(ftops("jobs", "cancel", "no-such-job", "--env", "local"), "no SageMaker training job 'no-such-job'",
              "ftops jobs list")


def test_cancelling_a_job_that_already_ended_says_so(ftops, aws_local):
    env = load_environment("local")
    sm = aws_client(env, "sagemaker")
    name = "ftops-cancel-ended"
    sm.create_training_job(
        TrainingJobName=name, RoleArn="arn:aws:iam::123456789012:role/x",
        AlgorithmSpecification={"TrainingImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1",
                                "TrainingInputMode": "File"},
        OutputDataConfig={"S3OutputPath": "s3://ftops-cancel-ended/out"},
        ResourceConfig={"InstanceType": "ml.g5.2xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": 60})
    one_line_error(ftops("jobs", "cancel", name, "--env", "local"), f"training job {name} already ended", "nothing to cancel")
