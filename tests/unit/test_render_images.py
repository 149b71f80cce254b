"""Image URIs at render time come from the committed image_uris.json, never from importing the SageMaker SDK, and
that file says exactly what the installed sagemaker-core says (issue 16 item 6)."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from jobs.errors import ConfigError
from jobs.render import images

ROOT = Path(__file__).resolve().parents[2]


def test_the_cache_is_for_the_installed_sdk_and_the_pin():
    data = json.loads(images.CACHE_FILE.read_text())
    assert data["sagemaker_core"] == metadata.version("sagemaker-core"), \
        "sagemaker-core changed: run `python -m jobs.render.images` and commit jobs/render/image_uris.json"
    assert data["image"] == images.HF_TRAINING_IMAGE, "the pin changed: run `python -m jobs.render.images`"


def test_the_cache_answers_what_the_sdk_answers():
    data = json.loads(images.CACHE_FILE.read_text())
    regions = sorted(data["training"]["regions"])
    types = sorted(data["training"]["instance_types"])
    # Every region with a GPU, a CPU and a Trainium type; every instance type in one region.
    samples = {(r, t) for r in regions for t in ("ml.g5.xlarge", "ml.m5.xlarge", "ml.trn1.32xlarge")}
    samples |= {("eu-west-1", t) for t in types}
    for region, instance_type in sorted(samples):
        try:
            expected = images._sdk_training_image_uri(region, instance_type)
        except ConfigError as exc:
            expected = str(exc)
        images._cache.cache_clear()
        try:
            got = images._cached_training(region, instance_type)
        except ConfigError as exc:
            got = str(exc)
        assert got == expected, (region, instance_type)
    for region, uri in data["debugger"].items():
        assert images._image_uris().retrieve("debugger", region=region) == uri


def test_render_does_not_import_the_sagemaker_sdk(tmp_path):
    script = ("import sys\nfrom jobs.cli.main import app\n"
              "try:\n    app(['render', '--env', 'local', '--env', 'dev', '--out', sys.argv[1]])\n"
              "except SystemExit as exc:\n    assert exc.code in (0, None), exc.code\n"
              "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'sagemaker', 'pandas', 'boto3'})\n"
              "print('HEAVY', heavy)\n")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "out")], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, env={**__import__("os").environ, "FTOPS_STATE_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "HEAVY []" in done.stdout, done.stdout[-500:]


def test_an_unknown_sdk_version_falls_back_to_the_sdk(monkeypatch):
    images._cache.cache_clear()
    monkeypatch.setattr(images.metadata, "version", lambda name: "0.0.0")
    try:
        assert images._cache() is None
        assert images.training_image_uri.__wrapped__("us-east-1", "ml.g5.xlarge").endswith(
            "huggingface-pytorch-training:2.9.0-transformers5.3.0-gpu-py312-cu130-ubuntu22.04")
    finally:
        images._cache.cache_clear()


def test_a_cpu_instance_is_refused_with_the_sdks_reason():
    with pytest.raises(ConfigError, match="Unsupported processor: cpu"):
        images.training_image_uri.__wrapped__("us-east-1", "ml.m5.xlarge")
