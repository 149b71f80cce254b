"""Two environments whose Azure OpenAI accounts share a name (same resource group name, different subscriptions)
are two data planes, as on Azure: ftops addresses each account by its custom subdomain (its host), and a file of
one is unknown to the other."""

from __future__ import annotations

import io

import openai
import pytest

from jobs.config.environment import load_environment
from jobs.providers import azure_openai
from tests.integration.test_infra_azure_emulator import PIPELINE, fork  # noqa: F401 - fixture

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("fresh_azure_clients")]


def _twin(root, name: str, subscription: str) -> None:
    (root / "environments" / f"{name}.yaml").write_text(f"""name: {name}
emulated: true
owner: test-team
azure:
  subscription_id: {subscription}
  location: swedencentral
  resource_group: ftops-twin-rg
  storage_account: ftops{name.replace("-", "")}data
  pipeline_principal_id: {PIPELINE}
  openai:
    custom_subdomain: ftops-{name}-host
    fine_tuning_models:
      - {{model: gpt-4.1-mini-2025-04-14, training_type: Standard}}
""")
    load_environment.cache_clear()


def test_accounts_of_one_name_in_two_subscriptions_keep_their_files_apart(ftops, fork, azure_local):
    _twin(fork, "twin-a", "aaaaaaaa-0000-4000-8000-000000000000")
    _twin(fork, "twin-b", "bbbbbbbb-0000-4000-8000-000000000000")
    for name in ("twin-a", "twin-b"):
        applied = ftops("infra", "apply", "--cloud", "azure", "--env", name, "--yes")
        assert applied.exit_code == 0, applied.stderr
    a, b = load_environment("twin-a"), load_environment("twin-b")
    assert azure_openai.endpoint(a) == f"{azure_local.endpoint}/accounts/ftops-twin-a-host"
    assert azure_openai.endpoint(b) == f"{azure_local.endpoint}/accounts/ftops-twin-b-host"

    uploaded = azure_openai.client(a).files.create(file=("train.jsonl", io.BytesIO(b'{"messages": []}\n')),
                                                   purpose="fine-tune")
    assert azure_openai.client(a).files.retrieve(uploaded.id).id == uploaded.id
    with pytest.raises(openai.NotFoundError):
        azure_openai.client(b).files.retrieve(uploaded.id)
    assert uploaded.id not in [f.id for f in azure_openai.client(b).files.list()]
