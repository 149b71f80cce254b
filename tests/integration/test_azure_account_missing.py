"""A data-plane call for an Azure OpenAI account that was never created fails as one line naming the account, the
environment and the fix, on the emulator as on Azure (where the account's host does not resolve); the emulator no
longer answers for it, so a test or a client that skips provisioning cannot pass here and fail in the cloud."""

from __future__ import annotations

import json

import pytest

from tests.integration.test_infra_azure_emulator import fork, write_env  # noqa: F401 - fixture

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("fresh_azure_clients")]


def test_a_data_plane_call_for_an_account_never_created_is_one_line_then_provisioning_fixes_it(ftops, fork,
                                                                                              azure_local):
    write_env(fork, "ghost")
    refused = ftops("jobs", "list", "--env", "ghost")
    assert refused.exit_code == 1
    line = refused.stderr.strip()
    assert "\n" not in line and "Traceback" not in refused.stderr + refused.stdout
    assert "Azure OpenAI account ftops-ghost-openai of environment ghost does not exist" in line
    assert "`ftops infra apply --cloud azure --env ghost`" in line

    assert ftops("infra", "apply", "--cloud", "azure", "--env", "ghost", "--yes").exit_code == 0
    listed = ftops("jobs", "list", "--env", "ghost", "--json")
    assert listed.exit_code == 0, listed.stderr
    assert isinstance(json.loads(listed.stdout), list)
