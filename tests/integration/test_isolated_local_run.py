"""A network-isolated job in `local`: its code reaches the container as the `code` input channel (no S3 download,
no pip install at start). apply uploads the offline archive to the channel's S3 URI, and the local runner, like
the training toolkit, unpacks it from the channel's directory and trains."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from jobs import paths
from jobs.config.environment import load_environment
from jobs.providers import sagemaker
from jobs.render import definitions

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
JOB = "helpdesk-qwen-lora"


@pytest.fixture
def fork(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aws_local) -> Path:
    root = tmp_path / "fork"
    shutil.copytree(REPO / "environments", root / "environments", ignore=shutil.ignore_patterns("resolved"))
    local = root / "environments" / "local.yaml"
    local.write_text(local.read_text().replace("  region: us-east-1\n",
                                               "  region: us-east-1\n  training:\n    network_isolation: true\n"))
    (root / "definitions").mkdir()
    text = (REPO / "definitions" / f"{JOB}.yaml").read_text()
    model_prefix = f"models/{tmp_path.name.lower().replace('_', '-')}/"
    (root / "definitions" / f"{JOB}.yaml").write_text(text.replace("models/qwen2.5-0.5b-instruct/", model_prefix))
    (root / "templates").symlink_to(REPO / "templates")
    shutil.copytree(REPO / "datasets" / "it-helpdesk" / "prepared", root / "datasets" / "it-helpdesk" / "prepared")
    monkeypatch.setenv("FTOPS_ROOT", str(root))
    for cache in (paths.project_root, load_environment, sagemaker._client, definitions.clear_cache):
        getattr(cache, "cache_clear", cache)()
    yield root
    for cache in (paths.project_root, load_environment, sagemaker._client, definitions.clear_cache):
        getattr(cache, "cache_clear", cache)()


def _json(result):
    assert result.exit_code == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_an_isolated_job_trains_from_its_code_channel(ftops, fork, tmp_path):
    _json(ftops("local", "seed-model", "--env", "local", "--json"))
    rendered = tmp_path / "rendered"
    assert ftops("render", "--env", "local", "--out", rendered).exit_code == 0
    request = json.loads(next(rendered.glob(f"local/{JOB}-*/sagemaker.json")).read_text())
    assert request["EnableNetworkIsolation"] is True
    assert request["HyperParameters"]["sagemaker_submit_directory"] == "/opt/ml/input/data/code/sourcedir.tar.gz"
    applied = _json(ftops("apply", rendered, "--env", "local", "--local-max-steps", "2", "--json"))
    assert applied["summary"] == {"created": 1}
    status = _json(ftops("jobs", "status", JOB, "--env", "local", "--dir", rendered, "--json"))
    assert status["state"] == "succeeded", status
    assert status["model"].endswith("/output/model.tar.gz")
