"""Issue 14, item 3: the rendered prod tree shows, for review, what will serve. A production job (without
`promotion: retrain`) renders promotion.json naming the source environment's job (its name and idempotency key
are what rendering the same definition for the source produces), the requirement and the deployment settings;
`ftops diff` shows a change to it, a hand edit is refused, `ftops apply` trains nothing for it, and `ftops
deploy` serves only a record of the job it names."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from tests.fixtures.rendered import real_dataset

JOB = "helpdesk-qwen-lora"


def _render(ftops, out: Path, *envs: str) -> None:
    args = [a for env in envs for a in ("--env", env)]
    result = ftops("render", *args, "--job", JOB, "--out", out)
    assert result.exit_code == 0, result.stderr


def _job_dir(out: Path, env: str) -> Path:
    (found,) = (out / env).glob(f"{JOB}-*")
    return found


def test_the_prod_tree_names_the_source_job_that_will_serve(project, ftops, tmp_path):
    _render(ftops, tmp_path / "r", "staging", "prod")
    staging = json.loads((_job_dir(tmp_path / "r", "staging") / "job.json").read_text())
    prod = _job_dir(tmp_path / "r", "prod")
    index = json.loads((prod / "job.json").read_text())
    promotion = json.loads((prod / index["promotion"]).read_text())
    assert promotion["source"]["environment"] == "staging"
    assert promotion["source"]["job_name"] == staging["name"]
    assert promotion["source"]["idempotency_key"] == staging["idempotency_key"]
    assert promotion["requires"]["gate"] == "passed" and "Approved" in promotion["requires"]["model_record"]
    assert promotion["deployment"] == {"provider": "sagemaker", "instance_type": "ml.g5.xlarge", "instance_count": 1}
    # Staging trains: it has no promotion.json.
    assert not (_job_dir(tmp_path / "r", "staging") / "promotion.json").exists()


def test_a_retrain_definition_renders_no_promotion(project, ftops, tmp_path):
    project.edit_definition(JOB, promotion="retrain")
    _render(ftops, tmp_path / "r", "prod")
    prod = _job_dir(tmp_path / "r", "prod")
    assert not (prod / "promotion.json").exists() and "promotion" not in json.loads((prod / "job.json").read_text())


def test_diff_shows_a_change_of_what_serves(project, ftops, tmp_path):
    _render(ftops, tmp_path / "r", "prod")
    # A change that only staging's training sees: prod's training request stays, what serves in prod changes.
    project.edit_definition(JOB, overrides__staging__hyperparameters__epochs=5)
    diff = ftops("diff", "--env", "prod", "--against", tmp_path / "r", "--job", JOB, "--json")
    assert diff.exit_code == 1, diff.stderr
    (change,) = json.loads(diff.stdout)["changes"]
    assert change["kind"] == "changed" and change["files"] == ["promotion.json"], change
    assert "idempotency_key" in change["diff"] and "job_name" in change["diff"]


def test_a_hand_edited_promotion_is_refused_and_apply_trains_nothing(project, ftops, tmp_path, monkeypatch):
    real_dataset(project)
    _render(ftops, tmp_path / "r", "prod")
    applied = ftops("apply", tmp_path / "r", "--env", "prod", "--dry-run", "--skip-preflight", "--json")
    assert applied.exit_code == 0, applied.stderr
    result = json.loads(applied.stdout)
    assert result["jobs"] == [] and result["promoted"] == [_job_dir(tmp_path / "r", "prod").name]

    path = _job_dir(tmp_path / "r", "prod") / "promotion.json"
    data = json.loads(path.read_text())
    data["source"]["job_name"] = "helpdesk-qwen-lora-staging-00000000"
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    attempts: list = []
    monkeypatch.setattr(socket.socket, "connect", lambda self, address, *a, **k: attempts.append(address))
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **k: attempts.append(host))
    refused = ftops("deploy", JOB, "--env", "prod", "--dir", tmp_path / "r")
    assert refused.exit_code == 1
    line = refused.stderr.strip()
    assert "\n" not in line and "promotion.json" in line and "source.job_name" in line, line
    assert attempts == []


def test_the_source_job_renders_once_per_render_and_prod_bytes_do_not_depend_on_it(project, monkeypatch):
    """Issue 16: rendering staging and prod together takes promotion.json's source job from staging's own render
    (one render of it, not two); the prod tree is byte-identical to rendering prod alone, in either order."""
    from jobs.config.environment import load_environment
    from jobs.render import engine

    staging, prod = load_environment("staging"), load_environment("prod")
    alone = engine.render_environments([prod], JOB, workers=1)["prod"]
    assert alone and all("promotion.json" in job.files for job in alone)
    finished: list[str] = []
    real = engine._finish
    monkeypatch.setattr(engine, "_finish", lambda pending, env: finished.append(env.name) or real(pending, env))
    for order in ([staging, prod], [prod, staging]):
        finished.clear()
        both = engine.render_environments(order, JOB, workers=1)
        assert finished.count("staging") == len(both["staging"])  # each staging job rendered once
        assert [job.files for job in both["prod"]] == [job.files for job in alone]
