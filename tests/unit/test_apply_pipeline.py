"""`ftops pipeline render`: a valid GitHub Actions workflow with OIDC, ordered applies and a guarded prod."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml


def test_workflow_is_valid_and_applies_in_order_with_oidc(ftops, tmp_path):
    out = tmp_path / "ftops.yml"
    result = ftops("pipeline", "render", "--out", out, "--json")
    assert result.exit_code == 0, result.stderr
    lint = subprocess.run([str(Path(sys.executable).parent / "check-jsonschema"), "--builtin-schema",
                           "vendor.github-workflows", str(out)], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    workflow = yaml.safe_load(out.read_text())
    jobs = workflow["jobs"]
    assert jobs["apply-staging"]["needs"] == ["apply-dev"] and jobs["apply-prod"]["needs"] == ["apply-staging"]
    assert jobs["apply-prod"]["environment"] == "prod"
    for name in ("apply-dev", "apply-staging", "apply-prod"):
        assert jobs[name]["permissions"]["id-token"] == "write"
        steps = {step.get("uses", "").split("@")[0]: step for step in jobs[name]["steps"]}
        assert steps["aws-actions/configure-aws-credentials"]["with"]["role-to-assume"].endswith("-pipeline")
        assert set(steps["azure/login"]["with"]) == {"client-id", "tenant-id", "subscription-id"}
    assert "secrets." not in out.read_text(), "no long-lived secrets"
    review = "\n".join(step.get("run", "") for step in jobs["review"]["steps"])
    assert "ftops data validate" in review and "ftops render" in review and "GITHUB_STEP_SUMMARY" in review


def test_check_reports_a_stale_workflow(ftops, tmp_path):
    out = tmp_path / "ftops.yml"
    out.write_text("name: old\n")
    assert ftops("pipeline", "render", "--out", out, "--check").exit_code == 1
    assert ftops("pipeline", "render", "--out", out).exit_code == 0
    assert ftops("pipeline", "render", "--out", out, "--check").exit_code == 0


def test_an_emulated_environment_cannot_be_in_the_pipeline(ftops, tmp_path):
    result = ftops("pipeline", "render", "--env", "local", "--out", tmp_path / "x.yml")
    assert result.exit_code == 1 and "emulated" in result.stderr


def test_the_promotion_gate_runs_before_the_prod_apply(ftops, tmp_path):
    out = tmp_path / "ftops.yml"
    assert ftops("pipeline", "render", "--out", out).exit_code == 0
    jobs = yaml.safe_load(out.read_text())["jobs"]
    staging_steps = [step.get("run", "") for step in jobs["apply-staging"]["steps"]]
    gate = next(i for i, run in enumerate(staging_steps) if "ftops promote" in run)
    apply = next(i for i, run in enumerate(staging_steps) if run.startswith("ftops apply"))
    assert apply < gate, "the gate evaluates what staging trained"
    for name in ("helpdesk-gpt41mini", "helpdesk-qwen-lora"):
        assert f'ftops promote "{name}" --from staging --to prod' in staging_steps[gate]
    # prod's apply only starts once staging's job (and so its gate) succeeded.
    assert jobs["apply-prod"]["needs"] == ["apply-staging"]
    assert not any("ftops promote" in step.get("run", "") for step in jobs["apply-dev"]["steps"])
