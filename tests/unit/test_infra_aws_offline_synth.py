"""`cdk synth` works offline for every environment with no AWS credentials at all (issue 12, build item 8):
zones come from CloudFormation (Fn::GetAZs) or the environment file, never from a lookup, and the CLI sends
no telemetry and fetches no notices (cdk.json)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("aws_cdk")

REPO = Path(__file__).resolve().parents[2]
CDK = REPO / "node_modules" / ".bin" / "cdk"


def test_cdk_json_turns_telemetry_and_notices_off():
    settings = json.loads((REPO / "cdk.json").read_text())
    # The CLI reads `cli-telemetry` from the context (aws-cdk lib/cli/telemetry/collect-telemetry.js).
    assert settings["context"]["cli-telemetry"] is False
    assert settings["notices"] is False


@pytest.mark.slow
@pytest.mark.skipif(not CDK.exists(), reason="the CDK CLI is not installed (npm ci)")
def test_cdk_synth_every_environment_without_credentials(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CDK_"))}
    env.update(HOME=str(home), AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE=str(home / "none"),
               AWS_SHARED_CREDENTIALS_FILE=str(home / "none"), JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20")
    app = f"{shutil.which('python') or 'python'} app.py"
    out = tmp_path / "cdk.out"
    result = subprocess.run([str(CDK), "synth", "--quiet", "--no-notices", "--app", app, "--output", str(out)],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    stacks = sorted(path.name for path in out.glob("*.template.json"))
    assert stacks == [f"ftops-{e}.template.json" for e in ("dev", "local", "prod", "staging")]
    prod = json.loads((out / "ftops-prod.template.json").read_text())
    subnets = [r for r in prod["Resources"].values() if r["Type"] == "AWS::EC2::Subnet"]
    assert sorted(s["Properties"]["AvailabilityZone"] for s in subnets) == ["us-east-1a", "us-east-1b"]
    # Nothing was looked up: the context file CDK writes after a lookup stays as committed.
    assert "availability-zones" not in (REPO / "cdk.context.json").read_text()
