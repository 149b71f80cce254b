"""`ftops infra outputs`: a `cdk deploy --outputs-file` JSON becomes environments/resolved/<env>.aws.json."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from jobs import paths
from jobs.config.environment import load_environment
from jobs.config.resolved import ResolvedAws, derive_aws, resolved_aws, resolved_file

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fork(tmp_path, monkeypatch) -> Path:
    """A copy of the fork's environments/ so resolved files land in a temp dir, not in the checkout."""
    root = tmp_path / "fork"
    shutil.copytree(ROOT / "environments", root / "environments", ignore=shutil.ignore_patterns("resolved"))
    monkeypatch.setenv("FTOPS_ROOT", str(root))
    paths.project_root.cache_clear()
    load_environment.cache_clear()
    yield root
    paths.project_root.cache_clear()


def cdk_outputs(env_name: str = "local", **overrides: str) -> dict:
    from infra.aws.outputs import output_key, resolved_fields

    derived = derive_aws(load_environment(env_name)).model_dump()
    outputs = {output_key(f): ",".join(derived[f]) or "none" if isinstance(derived[f], list) else derived[f]
               for f in resolved_fields()}
    outputs["KmsKeyArn"] = "arn:aws:kms:us-east-1:123456789012:key/5e1f0c2a-0000-4000-8000-000000000001"
    outputs.update(overrides)
    return {f"ftops-{env_name}": outputs, "some-other-stack": {"X": "y"}}


def test_outputs_file_becomes_the_resolved_values_rendering_reads(fork, tmp_path, ftops, isolated_state):
    outputs_file = tmp_path / "outputs.json"
    outputs_file.write_text(json.dumps(cdk_outputs(SubnetIds="subnet-1,subnet-2", SecurityGroupIds="sg-1")))
    result = ftops("infra", "outputs", "--env", "local", "--outputs-file", outputs_file, "--json")
    assert result.exit_code == 0, result.stderr
    written = resolved_file("local", "aws")
    assert written.is_relative_to(isolated_state), "an emulated environment's values stay out of the checkout"
    resolved = ResolvedAws.model_validate_json(written.read_text())
    assert resolved.source == "deployed" and resolved.kms_key_arn.endswith(":key/5e1f0c2a-0000-4000-8000-000000000001")
    assert resolved.subnet_ids == ["subnet-1", "subnet-2"] and resolved.security_group_ids == ["sg-1"]
    assert resolved_aws(load_environment("local")) == resolved  # rendering now reads the deployed values
    derived = derive_aws(load_environment("local"))
    same = {"kms_key_arn", "source", "subnet_ids", "security_group_ids"}
    assert resolved.model_dump(exclude=same) == derived.model_dump(exclude=same)
    assert json.loads(result.stdout)["resolved"]["datasets_bucket"] == derived.datasets_bucket


def test_missing_output_is_one_line_and_keeps_the_previous_file(fork, tmp_path, ftops):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(cdk_outputs()))
    assert ftops("infra", "outputs", "--outputs-file", good).exit_code == 0
    before = resolved_file("local", "aws").read_bytes()
    broken = cdk_outputs()
    del broken["ftops-local"]["ExecutionRoleArn"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(broken))
    result = ftops("infra", "outputs", "--outputs-file", bad)
    assert result.exit_code == 1
    assert result.stderr == (f"error: {bad}: ftops-local.ExecutionRoleArn: output ExecutionRoleArn is missing "
                             "(the stack predates this ftops version; deploy it again)")
    assert resolved_file("local", "aws").read_bytes() == before


def test_no_outputs_file_points_at_deploy(fork, ftops):
    result = ftops("infra", "outputs", "--env", "dev")
    assert result.exit_code == 1 and "no CDK outputs file" in result.stderr and "ftops infra deploy --env dev" in result.stderr


def test_outputs_of_another_stack_only_are_refused(fork, tmp_path, ftops):
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(cdk_outputs("dev")))
    result = ftops("infra", "outputs", "--env", "local", "--outputs-file", path)
    assert result.exit_code == 1 and "no outputs for stack 'ftops-local'" in result.stderr


def test_outputs_file_is_for_aws_only(fork, tmp_path, ftops):
    result = ftops("infra", "outputs", "--cloud", "azure", "--outputs-file", tmp_path / "x.json")
    assert result.exit_code == 1 and "--outputs-file applies to --cloud aws only" in result.stderr


def test_unknown_cloud_is_a_usage_error(fork, ftops):
    assert ftops("infra", "outputs", "--cloud", "gcp").exit_code == 2
