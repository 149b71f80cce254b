"""Mistakes a new platform engineer or data scientist really makes, each through the CLI: one line naming the file,
line and field with the fix, a non-zero exit, nothing half-written and nothing already stored lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.config.environment import load_environment
from jobs.render import definitions
from tests.fixtures.cli import one_line_error

REPO = Path(__file__).resolve().parents[2]
CHAT = REPO / "datasets" / "it-helpdesk" / "support-chat.jsonl"


def _line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), start=1) if text in line)


def _chat_sample(tmp_path: Path, lines: int = 20) -> Path:
    path = tmp_path / "chat.jsonl"
    path.write_text("".join(CHAT.read_text().splitlines(keepends=True)[:lines]))
    return path


# --- NaN and infinity: YAML reads `.nan`/`.inf` as floats, and NaN compares false with everything ------------------

@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", "1e999"])
def test_a_nan_or_infinite_gate_threshold_is_refused_at_its_line(project, ftops, tmp_path, value):
    path = project.root / "definitions" / "helpdesk-qwen-lora.yaml"
    path.write_text(path.read_text().replace("min_improvement: 0.02", f"min_improvement: {value}"))
    definitions.clear_cache()
    one_line_error(ftops("render", "--env", "local", "--out", tmp_path / "out"),
                    f"helpdesk-qwen-lora.yaml:{_line_of(path, 'min_improvement')}:",
                    "evaluation.gate.min_improvement", "not a finite number", "write a number")
    assert not (tmp_path / "out").exists()


def test_a_nan_cost_ceiling_in_an_environment_is_refused_at_its_line(project, ftops):
    project.edit_environment("dev", "max_cost_per_job_usd: 200", "max_cost_per_job_usd: .nan")
    path = project.root / "environments" / "dev.yaml"
    one_line_error(ftops("env", "show", "dev"), f"dev.yaml:{_line_of(path, 'max_cost_per_job_usd')}:",
                    "policy.max_cost_per_job_usd", "not a finite number")


def test_a_nan_split_in_an_environment_is_refused_before_prepare_writes(project, ftops, tmp_path):
    project.edit_environment("dev", "split: [0.8, 0.1, 0.1]", "split: [.nan, 0.1, 0.1]")
    load_environment.cache_clear()
    result = ftops("data", "prepare", _chat_sample(tmp_path), "--out", tmp_path / "out", "--env", "dev")
    one_line_error(result, "dev.yaml:", "data.split.0", "not a finite number")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("split", ["nan,0.1,0.1", "0.8,nan,0.1", "0.8,0.1,nan"])
def test_a_nan_split_option_is_one_line_not_a_traceback(ftops, tmp_path, split):
    result = ftops("data", "prepare", _chat_sample(tmp_path), "--out", tmp_path / "out", "--split", split)
    one_line_error(result, "--split", "e.g. --split 0.8,0.1,0.1")
    assert not (tmp_path / "out").exists()


# --- pipeline render: an empty or impossible --branch wrote a workflow that never runs -----------------------------

@pytest.mark.parametrize("branch", ["", "feature branch", "main\nname: x", "a..b", "main/"])
def test_a_branch_git_would_refuse_is_one_line_and_writes_nothing(ftops, tmp_path, branch):
    out = tmp_path / "ftops.yml"
    one_line_error(ftops("pipeline", "render", "--branch", branch, "--out", out),
                    "--branch:", "is not a branch name git accepts", "--branch main")
    assert not out.exists()


@pytest.mark.parametrize("branch", ["main", "release/2026.1", "release/*", "feature/x-y_z"])
def test_ordinary_branch_names_and_filter_patterns_are_written(ftops, tmp_path, branch):
    out = tmp_path / "ftops.yml"
    result = ftops("pipeline", "render", "--branch", branch, "--out", out)
    assert result.exit_code == 0, result.stderr
    assert f'branches: ["{branch}"]' in out.read_text()


# --- local seed-model --s3-uri: `s3://` or an unset bucket variable was seeded as a key prefix `s3:/` -------------

@pytest.mark.parametrize("uri", ["s3://", "s3:///models/qwen/", "models/my model/", "https://bucket/models/"])
def test_a_malformed_seed_uri_is_refused_before_anything_is_uploaded(ftops, uri):
    one_line_error(ftops("local", "seed-model", "--env", "local", "--s3-uri", uri),
                    "--s3-uri:", "is neither an s3://bucket/prefix/ URI nor a key prefix", "e.g. --s3-uri models/")


# --- an unset shell variable as an option's value ------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ("render", "--env", "local", "--job", ""),  # meant every definition, silently
    ("diff", "--env", "local", "--job", " "),
    ("local", "seed-model", "--job", ""),  # meant every job's base model
    ("plan", "--job", ""),  # "no rendered job named  "
    ("models", "list", "--job", ""),
    ("preflight", "--runner-ip", ""),  # the network check silently did not run
    ("apply", "--lease", "inf"),
    ("jobs", "wait", "some-job", "--interval", "inf"),
    ("jobs", "wait", "some-job", "--timeout", "inf"),
])
def test_an_empty_name_or_an_endless_number_is_a_usage_error_before_anything_runs(project, ftops, tmp_path, args):
    result = ftops(*args)
    assert result.exit_code == 2, (args, result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    said = " ".join(result.stderr.replace("\u2502", " ").split())  # the usage box wraps its lines
    assert any(why in said for why in ("an empty name", "an empty address", "not a finite number",
                                       "less than or equal to")), said


def test_a_misspelt_environment_name_gets_a_did_you_mean(project, ftops):
    line = one_line_error(ftops("render", "--env", "lcoal"), "unknown environment 'lcoal'", "did you mean 'local'?")
    assert "known environments: dev, local, prod, staging" in line
    assert "did you mean" not in one_line_error(ftops("render", "--env", "qa"), "unknown environment 'qa'")
