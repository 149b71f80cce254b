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
                  "tests.fixtures.render_project", "tests.fixtures.processes",
                  "tests.fixtures.azure_spec"]

# pytest-timeout's limit (pyproject: `timeout`) fits a unit or emulator test; tests marked slow (training, the CDK
# CLI) get this one instead unless they carry their own `@pytest.mark.timeout(N)`.
SLOW_TIMEOUT_S = 600
# pytest-randomly shuffles the tests; without --randomly-seed it would pick a new order every run. A fixed order by
# default keeps a local failure reproducible; `make test` in CI passes a random seed (printed in the header).
DEFAULT_ORDER_SEED = 20261129


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if getattr(config.option, "randomly_seed", None) == "default":  # absent under `-p no:randomly`
        config.option.randomly_seed = DEFAULT_ORDER_SEED


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT_S))


@pytest.fixture(autouse=True)
def isolated_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own `.ftops/` so emulator state files and outputs never leak between tests."""
    state = tmp_path_factory.mktemp("ftops-state")
    monkeypatch.setenv("FTOPS_STATE_DIR", str(state))
    monkeypatch.setenv("FTOPS_CACHE_DIR", str(tmp_path_factory.mktemp("ftops-user-cache")))  # never the user's own
    from jobs.config.environment import load_environment
    load_environment.cache_clear()
    return state
