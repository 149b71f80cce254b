"""The CLI root, the environment model and its error messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.config.environment import Environment, environment_names, load_environment
from jobs.errors import ConfigError
from jobs.yamlio import load_model

ROOT = Path(__file__).resolve().parents[2]


def test_every_shipped_environment_loads():
    assert {"local", "dev", "staging", "prod"} <= set(environment_names())
    for name in environment_names():
        env = load_environment(name)
        assert env.name == name
    assert load_environment("local").emulated


def test_every_environment_field_is_described():
    def walk(schema: dict, defs: dict, path: str) -> None:
        for key, prop in schema.get("properties", {}).items():
            assert prop.get("description"), f"{path}.{key} has no description"
        for name, sub in defs.items():
            for key, prop in sub.get("properties", {}).items():
                assert prop.get("description"), f"{name}.{key} has no description"

    schema = Environment.model_json_schema()
    walk(schema, schema.get("$defs", {}), "Environment")


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


BASE = """name: dev
owner: team
aws:
  account: "111111111111"
  region: us-east-1
"""


def test_unknown_key_names_file_line_and_field(tmp_path):
    path = _write(tmp_path, "dev", BASE + "  regoin: us-east-2\n")
    with pytest.raises(ConfigError) as err:
        load_model(path, Environment)
    assert str(err.value).startswith(f"{path}:6: aws.regoin: unknown key regoin, did you mean region?")


def test_bad_value_points_at_its_line(tmp_path):
    path = _write(tmp_path, "dev", BASE.replace("us-east-1", "Mars"))
    with pytest.raises(ConfigError) as err:
        load_model(path, Environment)
    assert err.value.line == 5 and err.value.field == "aws.region"


def test_missing_field_points_at_parent(tmp_path):
    path = _write(tmp_path, "dev", BASE.replace('  region: us-east-1\n', ''))
    with pytest.raises(ConfigError) as err:
        load_model(path, Environment)
    assert err.value.field == "aws.region" and err.value.line == 3 and "add the field" in str(err.value)


def test_name_must_match_file(tmp_path):
    path = _write(tmp_path, "staging", BASE)
    with pytest.raises(ConfigError) as err:
        load_model(path, Environment)
    assert err.value.field == "name" and "differs from the file name" in str(err.value)


def test_duplicate_key_and_bad_yaml(tmp_path):
    path = _write(tmp_path, "dev", BASE + "owner: other\n")
    with pytest.raises(ConfigError, match="duplicate key 'owner'") as err:
        load_model(path, Environment)
    assert err.value.line == 6
    path = _write(tmp_path, "dev", "name: [dev\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_model(path, Environment)


def test_split_must_add_up(tmp_path):
    path = _write(tmp_path, "dev", BASE + "data:\n  split: [0.5, 0.1, 0.1]\n")
    with pytest.raises(ConfigError) as err:
        load_model(path, Environment)
    assert err.value.field == "data.split" and err.value.line == 7


def test_cli_version_help_and_exit_codes(ftops):
    assert ftops("--version").stdout.startswith("ftops ")
    assert ftops("--help").exit_code == 0
    assert ftops("no-such-command").exit_code == 2
    result = ftops("env", "show", "nope")
    assert result.exit_code == 1 and "unknown environment 'nope'" in result.stderr
    shown = json.loads(ftops("env", "show", "local", "--json").stdout)
    assert shown["name"] == "local" and shown["emulated"] is True


def test_console_script_prints_one_line_without_traceback():
    proc = subprocess.run([sys.executable, "-m", "jobs.cli.main", "env", "show", "nope"],
                          capture_output=True, text=True, cwd="/")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "unknown environment" in proc.stderr
