"""A network-isolated job in `local`: its code reaches the container as the `code` input channel (no S3 download,
no pip install at start). apply uploads the offline archive to the channel's S3 URI, and the local runner, like
the training toolkit, unpacks it from the channel's directory and trains."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.local_runner_fork import local_runner_fork, succeeded_json as _json

pytestmark = [pytest.mark.integration, pytest.mark.slow]
JOB = "helpdesk-qwen-lora"


@pytest.fixture
def fork(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aws_buckets) -> Iterator[Path]:
    yield from local_runner_fork(
        tmp_path, monkeypatch, Path("definitions") / f"{JOB}.yaml",
        edit_local_env=lambda text: text.replace("  region: us-east-1\n",
                                                 "  region: us-east-1\n  training:\n    network_isolation: true\n"))



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
