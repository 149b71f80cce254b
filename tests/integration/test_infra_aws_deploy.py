"""A real `cdk deploy` of the `local` environment to moto server, checked with boto3, diffed and destroyed.

moto proves the stack deploys and the resources exist with their names; it ignores bucket policies, lifecycle
and public access blocks, which tests/unit/test_infra_aws_templates.py asserts on the templates instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import boto3
import pytest

from jobs import paths
from jobs.config.environment import load_environment
from jobs.config.resolved import ResolvedAws, derive_aws, resolved_file
from jobs.local import emulators

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def moto():
    """A moto server of its own: other tests create buckets with the same deterministic names in the shared one."""
    with emulators.running("moto") as emu:
        yield emu


@pytest.fixture
def fork(tmp_path, monkeypatch, moto) -> Path:
    """The fork with a private environments/ copy (resolved values land there) and the emulator's endpoint."""
    root = tmp_path / "fork"
    shutil.copytree(ROOT / "environments", root / "environments", ignore=shutil.ignore_patterns("resolved"))
    for name in ("app.py", "cdk.json", "node_modules"):
        (root / name).symlink_to(ROOT / name)
    monkeypatch.setenv("FTOPS_ROOT", str(root))
    monkeypatch.setenv("FTOPS_MOTO_ENDPOINT", moto.endpoint)
    paths.project_root.cache_clear()
    load_environment.cache_clear()
    yield root
    paths.project_root.cache_clear()


def aws(service: str, moto) -> object:
    return boto3.client(service, endpoint_url=moto.endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def cdk(moto, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "AWS_ENDPOINT_URL": moto.endpoint, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1", "CDK_DISABLE_CLI_TELEMETRY": "true"}
    return subprocess.run([str(ROOT / "node_modules" / ".bin" / "cdk"), *args, "--no-notices"], capture_output=True, text=True,
                          env=env, cwd=paths.project_root(), timeout=300)


def test_deploy_local_to_moto_then_diff_and_destroy(fork, moto, ftops, isolated_state):
    result = ftops("infra", "deploy", "--env", "local", "--json")
    assert result.exit_code == 0, result.stderr
    env = load_environment("local")
    derived = derive_aws(env)

    # What rendering will read: the deployed values, equal to the derived names except the key's ARN.
    resolved = ResolvedAws.model_validate_json(resolved_file("local", "aws").read_text())
    assert resolved_file("local", "aws").is_relative_to(isolated_state), "emulated values stay out of the checkout"
    assert resolved.source == "deployed" and json.loads(result.stdout)["resolved"] == resolved.model_dump(mode="json")
    assert resolved.model_dump(exclude={"kms_key_arn", "source"}) == derived.model_dump(exclude={"kms_key_arn", "source"})

    s3 = aws("s3", moto)
    buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    access_logs = env.aws.bucket_name("local", "access-logs")
    assert {derived.datasets_bucket, derived.output_bucket, derived.checkpoints_bucket, access_logs} <= buckets
    encryption = s3.get_bucket_encryption(Bucket=derived.datasets_bucket)["ServerSideEncryptionConfiguration"]
    assert encryption["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"

    # (moto's DescribeKey fails on keys whose policy came from CloudFormation; Encrypt resolves the alias.)
    kms = aws("kms", moto)
    key_arn = kms.encrypt(KeyId="alias/ftops-local", Plaintext=b"ftops")["KeyId"]
    assert key_arn == resolved.kms_key_arn
    assert kms.get_key_rotation_status(KeyId=key_arn.rsplit("/", 1)[1])["KeyRotationEnabled"] is True

    iam = aws("iam", moto)
    execution = iam.get_role(RoleName="ftops-local-sagemaker-execution")["Role"]
    assert execution["Arn"] == resolved.execution_role_arn
    trust = execution["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert trust["Statement"][0]["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert iam.get_role(RoleName="ftops-local-pipeline")["Role"]["Arn"] == resolved.pipeline_role_arn
    # Endpoints run as their own role; `ftops infra outputs` resolved it from the stack's EndpointRoleArn output.
    endpoint = iam.get_role(RoleName="ftops-local-sagemaker-endpoint")["Role"]
    assert endpoint["Arn"] == resolved.endpoint_role_arn != resolved.execution_role_arn

    parameter = aws("ssm", moto).get_parameter(Name=resolved.training_defaults_parameter)["Parameter"]
    defaults = json.loads(parameter["Value"])
    assert defaults["execution_role_arn"] == resolved.execution_role_arn and defaults["kms_key_arn"] == key_arn
    assert defaults["spot"] is True and defaults["max_wait_s"] >= defaults["max_runtime_s"]

    groups = aws("logs", moto).describe_log_groups(logGroupNamePrefix=resolved.log_group_name)["logGroups"]
    assert [g["logGroupName"] for g in groups] == [resolved.log_group_name]
    topics = [t["TopicArn"] for t in aws("sns", moto).list_topics()["Topics"]]
    assert resolved.notifications_topic_arn in topics

    # The synthesized assembly `ftops infra deploy` used: diff and destroy without synthesizing again.
    assembly = str(isolated_state / "cdk" / "local.out")
    diff = cdk(moto, "diff", "--app", assembly, "--method=template", "--fail", "ftops-local")
    assert diff.returncode == 0 and "There were no differences" in diff.stdout + diff.stderr, diff.stderr
    destroy = cdk(moto, "destroy", "--app", assembly, "--force", "ftops-local")
    assert destroy.returncode == 0, destroy.stderr
    assert not aws("cloudformation", moto).describe_stacks()["Stacks"]
    assert derived.datasets_bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}  # local: removal destroy
