"""The diff engine, the retry boundary and the model/region checks, without any server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError

from infra.azure.checks import offline_checks, raise_first_failure
from infra.azure.desired import Resource
from infra.azure.plan import compare, diff
from infra.azure.errors import call
from jobs.retry import RetryPolicy
from jobs.config.environment import Environment, load_environment
from jobs.errors import CloudError, ConfigError
from jobs.yamlio import load_model

ACCOUNT = Resource("openai_account", "acct", "/x/acct", {
    "location": "swedencentral", "tags": {"managed-by": "ftops", "environment": "dev"},
    "properties": {"disableLocalAuth": True, "networkAcls": {"defaultAction": "Deny",
                                                             "ipRules": [{"value": "1.2.3.4"}, {"value": "5.6.7.8"}]},
                   "allowedFqdnList": [], "customSubDomainName": "acct"}},
    immutable=("location", "properties.customSubDomainName"))


def actual(**changes) -> dict:
    body = {"id": "/x/acct", "location": "Sweden Central",
            "tags": {"managed-by": "ftops", "environment": "dev", "added-by-policy": "yes"},
            "properties": {"provisioningState": "Succeeded", "disableLocalAuth": True, "endpoint": "https://x/",
                           "customSubDomainName": "acct",
                           "networkAcls": {"defaultAction": "Deny", "ipRules": [{"value": "5.6.7.8"},
                                                                                {"value": "1.2.3.4"}]}}}
    body["properties"].update(changes)
    return body


def test_unchanged_ignores_what_ftops_does_not_declare():
    # Extra tags, read-only properties, list order, location spelling and absent empty lists are not changes.
    assert compare(ACCOUNT, actual()).action == "unchanged"


def test_update_lists_exactly_the_changed_properties():
    change = compare(ACCOUNT, actual(disableLocalAuth=False))
    assert change.action == "update"
    assert [(c.path, c.before, c.after) for c in change.changes] == [("properties.disableLocalAuth", False, True)]


def test_missing_resource_is_created_and_immutable_change_is_a_replace():
    assert compare(ACCOUNT, None).action == "create"
    change = compare(ACCOUNT, actual(customSubDomainName="other"))
    assert change.action == "replace" and "customSubDomainName" in change.note


def test_failed_or_still_provisioning_resources_are_converged():
    assert compare(ACCOUNT, actual(provisioningState="Failed")).action == "update"
    assert compare(ACCOUNT, actual(provisioningState="Creating")).action == "update"


def test_diff_reports_tag_changes_by_key():
    changes = diff({"tags": {"owner": "a", "environment": "dev"}}, {"tags": {"owner": "b", "environment": "dev"}})
    assert [(c.path, c.before, c.after) for c in changes] == [("tags.owner", "b", "a")]


class FakeResponse:
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None) -> None:
        self.status_code, self.reason, self.headers = status, "reason", headers or {}
        self.content_type = "application/json"
        self._body = json.dumps({"error": {"code": code, "message": message}})
        self.request = None

    def text(self, encoding=None):
        return self._body

    def body(self):
        return self._body.encode()


def failing(*responses: FakeResponse):
    calls = iter(responses)

    def fn():
        response = next(calls, None)
        if response is None:
            return "done"
        raise HttpResponseError(response=response)

    return fn


def test_throttling_and_provisioning_conflicts_are_retried_honouring_retry_after():
    waits: list[float] = []
    fn = failing(FakeResponse(429, "TooManyRequests", "slow down", {"Retry-After": "7"}),
                 FakeResponse(409, "AccountProvisioningStateInvalid", "Account x in state Creating."),
                 FakeResponse(503, "ServiceUnavailable", "try later", {"retry-after-ms": "250"}))
    assert call("create x", fn, RetryPolicy(base_s=2.0), sleep=waits.append) == "done"
    assert waits[0] == 7.0 and 1.0 <= waits[1] <= 4.0 and waits[2] == 0.25


def test_other_errors_name_the_resource_code_and_message_without_retrying():
    waits: list[float] = []
    fn = failing(FakeResponse(400, "CustomDomainInUse", "Custom domain name 'x' not available."))
    with pytest.raises(CloudError) as err:
        call("create openai_account x", fn, sleep=waits.append)
    assert waits == []
    assert str(err.value).startswith("create openai_account x failed: CustomDomainInUse: Custom domain name 'x' "
                                     "not available. (set azure.openai.custom_subdomain")


def test_retries_are_bounded():
    waits: list[float] = []
    fn = failing(*[FakeResponse(429, "TooManyRequests", "slow down", {"Retry-After": "1"})] * 5)
    with pytest.raises(CloudError, match="TooManyRequests"):
        call("read x", fn, RetryPolicy(attempts=3), sleep=waits.append)
    assert waits == [1.0, 1.0]  # three tries in all


def test_models_the_region_cannot_fine_tune_are_refused_with_file_and_line(tmp_path: Path, monkeypatch):
    env_dir = tmp_path / "environments"
    env_dir.mkdir()
    (env_dir / "dev.yaml").write_text("""name: dev
owner: team
azure:
  subscription_id: 11111111-1111-4111-8111-111111111111
  location: westeurope
  resource_group: ftops-dev-rg
  storage_account: ftopsdevdata
  openai:
    fine_tuning_models:
      - {model: gpt-4.1-mini-2025-04-14, training_type: GlobalStandard}
      - {model: gpt-4.1-mini-2025-04-14, training_type: Standard}
""")
    monkeypatch.setenv("FTOPS_ROOT", str(tmp_path))
    from jobs import paths
    paths.project_root.cache_clear()
    try:
        env = load_model(env_dir / "dev.yaml", Environment)
        results = offline_checks(env)
        assert [r.ok for r in results] == [False, False]
        with pytest.raises(ConfigError) as err:
            raise_first_failure(env, results)
        assert str(err.value).startswith(f"{env_dir / 'dev.yaml'}:10: azure.openai.fine_tuning_models.0.model: "
                                         "gpt-4.1-mini-2025-04-14: cannot be fine-tuned with GlobalStandard "
                                         "training in westeurope")
    finally:
        paths.project_root.cache_clear()


def test_shipped_environments_pass_the_offline_checks():
    for name in ("local", "dev", "staging", "prod"):
        assert all(r.ok for r in offline_checks(load_environment(name)))


def test_cli_aws_on_azure_commands_points_to_the_cdk(ftops):
    result = ftops("infra", "plan", "--cloud", "aws", "--env", "local")
    assert result.exit_code == 2
    assert "ftops infra deploy" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_plan_without_the_emulator_says_to_start_it(ftops, monkeypatch):
    monkeypatch.delenv("FTOPS_AZURE_ENDPOINT", raising=False)
    result = ftops("infra", "plan", "--cloud", "azure", "--env", "local")
    assert result.exit_code == 1
    assert "the azure emulator is not running" in result.stderr and "ftops local up" in result.stderr


def test_plain_http_is_allowed_for_loopback_only(monkeypatch):
    from infra.azure.clients import AzureClients

    env = load_environment("local")
    monkeypatch.setenv("FTOPS_AZURE_ENDPOINT", "http://arm.example.com")
    with pytest.raises(CloudError, match="emulator endpoint http://arm.example.com is not a loopback address"):
        AzureClients.for_env(env)  # refused by jobs.clients before any client exists
    monkeypatch.setenv("FTOPS_AZURE_ENDPOINT", "http://127.0.0.1:9")
    assert AzureClients.for_env(env).endpoint == "http://127.0.0.1:9"
