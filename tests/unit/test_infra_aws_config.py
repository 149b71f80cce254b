"""Bad AWS settings fail at load with one line naming file and field, before anything is synthesized or deployed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jobs import paths
from jobs.config.environment import Environment, load_environment
from jobs.errors import ConfigError
from jobs.yamlio import load_model

ROOT = Path(__file__).resolve().parents[2]

BASE = """\
name: {name}
owner: platform-team
aws:
  account: "111111111111"
{region}{aws}
"""


def write_env(directory: Path, name: str, aws: str = "", region: str = "  region: us-east-1\n") -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(BASE.format(name=name, region=region, aws=aws))
    return path


def load_error(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_model(path, Environment)
    return caught.value


@pytest.mark.parametrize(("name", "aws", "field", "words"), [
    ("dev", "  vpcs: {enabled: true}\n", "aws.vpcs", "unknown key vpcs, did you mean vpc?"),
    ("dev", "  training: {max_runtime_s: 7200, max_wait_s: 3600}\n", "aws.training", "max_wait_s (3600) must be >= max_runtime_s"),
    ("dev", "  training: {allowed_instance_types: [ml.g5.xlarge, ml.gpu.huge]}\n", "aws.training.allowed_instance_types",
     "'ml.gpu.huge' is not a SageMaker training instance type"),
    ("dev", "  training: {spot: false}\n", "aws.training", "spot: false is only allowed in production"),
    ("prod", "  training: {network_isolation: true, inter_container_encryption: true}\n", "aws.vpc",
     "set vpc.enabled: true"),
    ("prod", "  vpc: {enabled: true}\n  training: {network_isolation: true}\n", "aws.training",
     "inter_container_encryption: true"),
    ("prod", "  vpc: {enabled: true}\n  training: {network_isolation: true, inter_container_encryption: true}\n"
             "  removal_policy: destroy\n", "aws.removal_policy", "removal_policy: retain"),
    ("dev", "  log_retention_days: 42\n", "aws.log_retention_days", "not a CloudWatch Logs retention"),
    ("dev", "  vpc: {enabled: true, cidr: 10.0.0.0/8}\n", "aws.vpc.cidr", "between /16 and /24"),
    ("dev", "  notification_emails: [not-an-address]\n", "aws.notification_emails", "not an email address"),
])
def test_bad_aws_settings_name_file_line_and_field(tmp_path, name, aws, field, words):
    path = write_env(tmp_path, name, aws)
    err = load_error(path)
    assert err.field == field and words in err.message
    line = str(err)
    assert line.startswith(f"{path}:") and "\n" not in line


def test_missing_region_is_named(tmp_path):
    err = load_error(write_env(tmp_path, "dev", region=""))
    assert err.field == "aws.region" and err.message == "Field required"


def test_production_flag_turns_the_guard_rails_on_for_any_name(tmp_path):
    err = load_error(write_env(tmp_path, "prod-eu", "  production: true\n"))
    assert err.field == "aws.training"


def test_a_prod_with_guard_rails_loads(tmp_path):
    env = load_model(write_env(tmp_path, "prod", "  vpc: {enabled: true, availability_zones: [us-east-1a, us-east-1b]}\n  training: {spot: false, "
                                                 "network_isolation: true, inter_container_encryption: true}\n"),
                     Environment)
    assert env.aws.vpc.enabled and not env.aws.training.spot and env.aws.removal_policy == "retain"


def test_shipped_environments_choose_as_documented():
    local, dev, prod = (load_environment(n).aws for n in ("local", "dev", "prod"))
    assert local.synthesizer == "bootstrapless" and dev.synthesizer == prod.synthesizer == "default"
    assert local.removal_policy == dev.removal_policy == "destroy" and prod.removal_policy == "retain"
    assert prod.vpc.enabled and prod.training.network_isolation and prod.training.inter_container_encryption
    assert not local.vpc.enabled and not dev.vpc.enabled


def test_cdk_app_prints_one_line_and_exits_1_on_a_bad_file(tmp_path):
    """`python app.py` (what `cdk synth` runs) stops before any CDK code with the same one line."""
    root = tmp_path / "fork"
    (root / "environments").mkdir(parents=True)
    path = write_env(root / "environments", "dev", "  training: {max_runtime_s: 7200, max_wait_s: 3600}\n")
    env = {**os.environ, "FTOPS_ROOT": str(root), "CDK_OUTDIR": str(tmp_path / "out")}
    result = subprocess.run([sys.executable, str(ROOT / "app.py")], capture_output=True, text=True, env=env,
                            cwd=tmp_path, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {path}:6: aws.training: max_wait_s (3600) must be >= max_runtime_s (7200) when spot is on; "
        "raise max_wait_s"]
    assert not (tmp_path / "out").exists()


def test_cdk_app_selects_an_unknown_environment_with_one_line(tmp_path):
    env = {**os.environ, "CDK_CONTEXT_JSON": '{"env": "nope"}', "CDK_OUTDIR": str(tmp_path / "out")}
    result = subprocess.run([sys.executable, str(ROOT / "app.py")], capture_output=True, text=True, env=env,
                            timeout=120)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert "unknown environment 'nope'" in line and str(paths.environments_dir()) in line
