"""Test-wide settings: offline model hubs, an isolated state dir, and the emulator fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Nothing in the suite may reach a model hub or real cloud credentials.
os.environ.update({
    "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
    "HF_HOME": str(ROOT / ".ftops" / "hf"), "MPLBACKEND": "Agg",
    "TIKTOKEN_CACHE_DIR": os.environ.get("TIKTOKEN_CACHE_DIR", str(ROOT / ".ftops" / "tiktoken")),
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
})
os.environ.setdefault("JSII_RUNTIME_PACKAGE_CACHE_ROOT", str(ROOT / ".ftops" / "jsii-cache"))
for leaked in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AZURE_CLIENT_SECRET"):
    os.environ.pop(leaked, None)

pytest_plugins = ["tests.fixtures.emulators", "tests.fixtures.cli", "tests.fixtures.tiny_model",
                  "tests.fixtures.render_project", "tests.fixtures.azure_spec"]


@pytest.fixture(autouse=True)
def isolated_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own `.ftops/` so emulator state files and outputs never leak between tests."""
    state = tmp_path_factory.mktemp("ftops-state")
    monkeypatch.setenv("FTOPS_STATE_DIR", str(state))
    from jobs.config.environment import load_environment
    load_environment.cache_clear()
    return state
