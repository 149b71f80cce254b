"""`ftops models approve` (the source environment's approval, which `ftops promote` later reads) decides from
local files before anything else: a missing, stale, tampered or smoke-test
evaluation is refused with one line and no connection attempt (no cloud call, no credential lookup)."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest

from jobs.config.environment import load_environment

REPO = Path(__file__).resolve().parents[2]
JOB = "helpdesk-gpt41mini"


@pytest.fixture
def offline(project, monkeypatch):
    prepared = project.root / "datasets/it-helpdesk/prepared"
    shutil.rmtree(prepared)
    shutil.copytree(REPO / "datasets/it-helpdesk/prepared", prepared)
    attempts: list = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return project, attempts


def _write_evaluation(path: Path, *, judge: bool = False, **changes) -> dict:
    from jobs.eval.plan import definition_eval
    from jobs.models.record import Artifact, evaluation_fingerprint

    env = load_environment("local")
    expected = definition_eval(JOB, env, judge=judge)
    artifact = Artifact(kind="azure-model", model_id="gpt-4.1-mini-2025-04-14.ft-x", source_resource_id="/sub/x")
    row = {"fine_tuned": {"value": 0.6}, "base": {"value": 0.1}, "delta": {"low": 0.4, "high": 0.6}}
    result = {"job": JOB, "env": "local", "dataset_id": expected.manifest.dataset_id,
              "config_fingerprint": expected.config.fingerprint(), "examples": len(expected.examples),
              "limited": False, "target_specs": {"base": "azure:grader"}, "artifact": artifact.model_dump(),
              "metrics": {"rougeL": row, "exact_match": row}, "robustness": {}}
    result["evaluation_fingerprint"] = evaluation_fingerprint(result["config_fingerprint"], result["dataset_id"],
                                                              artifact.identity(), "azure:grader", result["examples"])
    result.update(changes)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result))
    return result


def test_a_current_evaluation_passes_the_offline_check(offline, tmp_path):
    from jobs.models.lifecycle import check_evaluation

    _write_evaluation(tmp_path / "evaluation.json")
    result = check_evaluation(JOB, load_environment("local"), tmp_path / "evaluation.json", judge=False)
    assert result["gate"]["passed"]
    assert offline[1] == []


@pytest.mark.parametrize("change, expected", [
    ({"limited": True}, "it used --limit"),
    ({"config_fingerprint": "0" * 16}, "the evaluation settings in the definition changed since"),
    ({"dataset_id": "other"}, "the dataset changed since"),
    ({"artifact": None}, "it scored a target given by hand"),
    ({"evaluation_fingerprint": "f" * 24}, "its fingerprint does not match its contents"),
    ({"env": "dev"}, "it was made in 'dev'"),
])
def test_a_stale_evaluation_is_refused_in_one_line_without_network(offline, ftops, tmp_path, change, expected):
    _write_evaluation(tmp_path / "evaluation.json", **change)
    result = ftops("models", "approve", JOB, "--env", "local", "--no-judge",
                   "--evaluation", tmp_path / "evaluation.json")
    assert result.exit_code == 1
    assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert offline[1] == []


def test_a_changed_gate_makes_the_stored_evaluation_stale(offline, ftops, tmp_path):
    project, attempts = offline
    _write_evaluation(tmp_path / "evaluation.json")
    project.edit_definition(JOB, evaluation__gate__min_improvement=0.9)
    result = ftops("models", "approve", JOB, "--env", "local", "--no-judge",
                   "--evaluation", tmp_path / "evaluation.json")
    assert result.exit_code == 1 and "is stale: the evaluation settings in the definition changed" in result.stderr
    assert attempts == []


@pytest.mark.parametrize("content", ["[]", '"x"', "{}", '{"job": "x"}'])
def test_a_file_that_is_not_an_evaluation_is_named_as_such(offline, ftops, tmp_path, content):
    path = tmp_path / "evaluation.json"
    path.write_text(content)
    result = ftops("models", "approve", JOB, "--env", "local", "--no-judge", "--evaluation", path)
    assert result.exit_code == 1, result.stdout
    assert "not an evaluation written by `ftops eval`" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert offline[1] == []


@pytest.mark.parametrize("evaluated_with_judge, approve_flags, made, approve_as", [
    (False, [], "made without the job's LLM judge", "`ftops models approve helpdesk-gpt41mini --env local --no-judge`"),
    (True, ["--no-judge"], "made with the job's LLM judge", "`ftops models approve helpdesk-gpt41mini --env local`"),
])
def test_a_judge_mismatch_is_told_apart_from_a_changed_definition(offline, ftops, tmp_path, evaluated_with_judge,
                                                                  approve_flags, made, approve_as):
    """`ftops eval --no-judge` then `ftops models approve` (README section 7) said the definition had changed."""
    _write_evaluation(tmp_path / "evaluation.json", judge=evaluated_with_judge)
    result = ftops("models", "approve", JOB, "--env", "local", *approve_flags,
                   "--evaluation", tmp_path / "evaluation.json")
    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1
    assert made in result.stderr and approve_as in result.stderr
    assert "changed since" not in result.stderr and "stale" not in result.stderr
    assert offline[1] == []
