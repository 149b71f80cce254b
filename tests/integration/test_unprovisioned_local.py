"""`local` before `ftops infra deploy --env local` / `ftops infra apply --cloud azure --env local`: no ftops
command creates a bucket or a Blob container. apply, plan, run-local and seed-model refuse with one line naming the
bucket (or the container and its storage account), the environment and the provisioning step, exit 1, and leave
nothing behind: no bucket, container, object, ledger entry, training job, Azure upload or local run directory.
They used to create the missing buckets on moto, without the stack's KMS encryption and TLS-only policy, and the
container on Azurite, without the ARM record and role assignment `infra apply` gives it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from jobs.buckets import stack_buckets
from jobs.clients import aws_client, blob_service
from jobs.config.environment import load_environment
from jobs.config.resolved import resolved_aws
from jobs.providers import azure_openai, sagemaker
from tests.fixtures.emulators import container_on_azurite, stack_buckets_on_moto
from tests.fixtures.rendered import real_dataset

pytestmark = pytest.mark.integration
SAGEMAKER_JOB = "helpdesk-qwen-lora"
PREPARED = Path(__file__).resolve().parents[2] / "datasets" / "it-helpdesk" / "prepared"


@pytest.fixture
def unprovisioned(project, aws_local, blob_local, azure_local, tmp_path):
    """The copied project's `local`, under a resource prefix and blob container of this test's own: the session's
    emulators hold none of its buckets (as if the stack was never deployed) and no container."""
    real_dataset(project)  # apply checks the split files against the manifest before it uploads
    tag = hashlib.sha256(str(tmp_path).encode()).hexdigest()[:8]
    project.edit_environment("local", "aws:\n", f"aws:\n  resource_prefix: nodeploy{tag}\n")
    project.edit_environment("local", "data:\n", f"data:\n  blob_container: nodeploy-{tag}\n")
    for cache in (sagemaker._client, azure_openai._client, azure_openai._mgmt):
        cache.cache_clear()
    env = load_environment("local")
    assert all(_missing(env, bucket) for bucket in stack_buckets(env))
    yield env
    for cache in (sagemaker._client, azure_openai._client, azure_openai._mgmt):
        cache.cache_clear()


def _missing(env, bucket: str) -> bool:
    try:
        aws_client(env, "s3").head_bucket(Bucket=bucket)
    except ClientError as exc:
        return exc.response["Error"]["Code"] == "404"
    return False


def _assert_refused(result, env, bucket: str) -> None:
    assert result.exit_code == 1, result.stdout + result.stderr
    assert result.stdout == "" and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"bucket {bucket} does not exist in environment local" in result.stderr
    assert "ftops infra deploy --env local" in result.stderr and "Traceback" not in result.stderr
    assert all(_missing(env, b) for b in stack_buckets(env)), "a refused command created a bucket"


def _render(ftops, out: Path) -> Path:
    rendered = ftops("render", "--env", "local", "--out", out)
    assert rendered.exit_code == 0, rendered.stderr
    return out


def test_apply_and_plan_refuse_before_writing_anything(ftops, unprovisioned, tmp_path):
    env = unprovisioned
    container_on_azurite("local")  # Azure provisioned, the AWS stack not: only the buckets are missing
    rendered = _render(ftops, tmp_path / "rendered")  # both examples: an Azure OpenAI job and a SageMaker job
    first = resolved_aws(env).datasets_bucket

    _assert_refused(ftops("apply", rendered, "--env", "local", "--local-max-steps", "1"), env, first)
    _assert_refused(ftops("apply", rendered, "--env", "local", "--dry-run"), env, first)
    _assert_refused(ftops("plan", rendered, "--env", "local"), env, first)

    # Refused before any job was looked at: no SageMaker job, and the Azure job uploaded and recorded nothing.
    request = json.loads(next((rendered / "local").glob(f"{SAGEMAKER_JOB}-*/sagemaker.json")).read_text())
    pages = sagemaker.client(env).get_paginator("list_training_jobs").paginate()  # moto ignores NameContains
    names = {job["TrainingJobName"] for page in pages for job in page["TrainingJobSummaries"]}
    assert request["TrainingJobName"] not in names
    assert not list(blob_service(env).get_container_client(env.data.blob_container).list_blobs())


def test_run_local_refuses_before_the_run_directory(ftops, unprovisioned, tmp_path, isolated_state):
    env = unprovisioned
    rendered = _render(ftops, tmp_path / "rendered")
    job_dir = next((rendered / "local").glob(f"{SAGEMAKER_JOB}-*"))

    _assert_refused(ftops("run-local", job_dir, "--env", "local"), env, resolved_aws(env).datasets_bucket)
    _assert_refused(ftops("run-local", job_dir, "--env", "local", "--max-steps", "1"), env,
                    resolved_aws(env).datasets_bucket)
    assert not (isolated_state / "runs").exists()


def test_seed_model_refuses_before_building_or_uploading(ftops, unprovisioned):
    env = unprovisioned
    _assert_refused(ftops("local", "seed-model", "--env", "local"), env, resolved_aws(env).output_bucket)
    # An explicit prefix in a bucket that is not the stack's: refused too, with what to do instead.
    other = ftops("local", "seed-model", "--env", "local", "--s3-uri", "s3://ftops-someone-elses-bucket/models/x/")
    assert other.exit_code == 1 and len(other.stderr.strip().splitlines()) == 1
    assert "bucket ftops-someone-elses-bucket does not exist in environment local" in other.stderr
    assert "not one of the stack's buckets" in other.stderr
    assert _missing(env, "ftops-someone-elses-bucket")



@pytest.fixture
def container_never_applied(unprovisioned):
    """`local` with its stack deployed (`ftops infra deploy`) but `ftops infra apply --cloud azure` never run: the
    buckets exist, the data container does not."""
    stack_buckets_on_moto("local")
    return unprovisioned


def _assert_container_refused(result, env) -> None:
    assert result.exit_code == 1, result.stdout + result.stderr
    assert result.stdout == "" and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert (f"container {env.data.blob_container} does not exist in storage account "
            f"{env.require_azure().storage_account} of environment local") in result.stderr
    assert "ftops infra apply --cloud azure --env local" in result.stderr and "Traceback" not in result.stderr
    assert not blob_service(env).get_container_client(env.data.blob_container).exists(), "a command made it"


def test_apply_and_plan_refuse_a_missing_container_before_writing_anything(ftops, container_never_applied,
                                                                            tmp_path):
    env = container_never_applied
    rendered = _render(ftops, tmp_path / "rendered")  # both examples: the SageMaker job's buckets exist

    _assert_container_refused(ftops("apply", rendered, "--env", "local", "--local-max-steps", "1"), env)
    _assert_container_refused(ftops("apply", rendered, "--env", "local", "--dry-run"), env)
    _assert_container_refused(ftops("plan", rendered, "--env", "local"), env)
    azure_job = next((rendered / "local").glob("helpdesk-gpt41mini-*")).name
    _assert_container_refused(ftops("plan", rendered, "--env", "local", "--job", azure_job), env)
    _assert_container_refused(ftops("apply", rendered, "--env", "local", "--job", azure_job), env)

    # Refused before any job: the SageMaker job (whose storage is there) was not submitted, nothing was uploaded.
    request = json.loads(next((rendered / "local").glob(f"{SAGEMAKER_JOB}-*/sagemaker.json")).read_text())
    pages = sagemaker.client(env).get_paginator("list_training_jobs").paginate()
    assert request["TrainingJobName"] not in {job["TrainingJobName"] for page in pages
                                              for job in page["TrainingJobSummaries"]}
    s3, datasets = aws_client(env, "s3"), resolved_aws(env).datasets_bucket
    assert not s3.list_objects_v2(Bucket=datasets).get("KeyCount"), "apply uploaded before refusing"


def test_data_upload_and_model_records_refuse_a_missing_container(ftops, container_never_applied):
    env = container_never_applied
    _assert_container_refused(ftops("data", "upload", PREPARED, "--env", "local", "--cloud", "azure"), env)
    _assert_container_refused(ftops("models", "list", "--env", "local"), env)


def test_a_real_environments_missing_container_is_one_line_not_an_empty_ledger(blob_local):
    """Real environments are not checked up front (jobs.buckets): the first ledger or record call that finds the
    container gone says so in one line, where ContainerNotFound used to read as "no entry" (plan: "create")."""
    from jobs.apply.ledger import BlobLedger, LedgerEntry
    from jobs.buckets import missing_container
    from jobs.errors import CloudError
    from jobs.models.store import BlobRecords

    real = load_environment("local").model_copy(update={"emulated": False})
    container = blob_service(load_environment("local")).get_container_client("never-provisioned-real")
    ledger = BlobLedger(container, "ftops-ledger/dev/", lambda: missing_container(real, "never-provisioned-real"))
    records = BlobRecords("dev", container, ledger.missing_container)
    entry = LedgerEntry(key="a" * 64, job_name="j", provider="azure-openai", state="claimed", run_id="r")
    for call in (lambda: ledger.get("a" * 64), ledger.keys, lambda: ledger.create(entry), records.records):
        with pytest.raises(CloudError) as raised:
            call()
        line = str(raised.value)
        assert "container never-provisioned-real does not exist in storage account" in line and "\n" not in line
        assert "ftops infra apply --cloud azure --env local" in line
    assert not container.exists()
