"""Preflight's Azure checks against responses shaped as the REST specs' examples (../shared/contracts/azure),
read through the real ArmReader (a fake transport records every HTTP method); plus the cost check."""

from __future__ import annotations

import copy
from datetime import datetime, timezone

import orjson
import pytest

from jobs.config.environment import load_environment
from jobs.preflight import azure as checks
from jobs.preflight.needs import AzureNeed, JobSpec
from jobs.preflight.run import Sources, costs, run
from tests.fixtures.contracts import contracts_dir

NOW = datetime(2026, 11, 29, tzinfo=timezone.utc)


def example(name: str) -> dict:
    return orjson.loads((contracts_dir("azure", "examples") / name).read_bytes())["responses"]["200"]["body"]


def arm_spec() -> dict:
    return orjson.loads((contracts_dir("azure") / "arm-2025-09-01.cognitiveservices.json").read_bytes())


class FakeResponse:
    def __init__(self, status: int, body: dict) -> None:
        self.status_code, self._body = status, body

    def json(self) -> dict:
        return self._body

    def text(self) -> str:
        return orjson.dumps(self._body).decode()


class FakeArm:
    """Answers ARM GETs by path suffix; records every request's method and path."""

    def __init__(self, answers: dict[str, dict]) -> None:
        self.answers, self.requests = answers, []

    def send_request(self, request):
        self.requests.append((request.method, request.url))
        path = request.url.split("?")[0].lower()
        for suffix, body in self.answers.items():
            if path.endswith(suffix.lower()):
                return FakeResponse(200, body)
        return FakeResponse(404, {"error": {"code": "NotFound", "message": path}})


def reader(answers: dict[str, dict]) -> tuple[checks.ArmReader, FakeArm]:
    fake = FakeArm(answers)
    return checks.ArmReader(type("Clients", (), {"resources": fake})()), fake


@pytest.fixture
def dev(project):
    return load_environment("dev")


def models_with(change=None) -> dict:
    body = copy.deepcopy(example("ListLocationModels.json"))
    if change:
        for item in body["value"]:
            if item["model"]["name"] == "gpt-4o" and item["model"]["version"] == "2024-08-06":
                change(item["model"])
    return body


NEED = AzureNeed("job-az", "gpt-4o-2024-08-06", "Standard", "Standard", 5)


# --- models --------------------------------------------------------------------------------------------------

def test_the_spec_names_the_fields_preflight_reads():
    definitions = arm_spec()["definitions"]
    assert "finetuneCapabilities" in definitions["AccountModel"]["properties"]
    assert {"defaultAction", "ipRules"} <= set(definitions["NetworkRuleSet"]["properties"])
    assert {"currentValue", "limit", "name"} <= set(definitions["Usage"]["properties"])


def test_model_that_fine_tunes_passes_on_finetune_capabilities(dev):
    # The example lists gpt-4o 2024-08-06 with capabilities.fineTune "false" but finetuneCapabilities.fineTune
    # "true": reading `capabilities` (as the older plan check does) would wrongly refuse it.
    arm, _ = reader({"/models": models_with(), "/usages": {"value": []}})
    rows = checks.models_and_quota(dev, arm, [AzureNeed("job-az", "gpt-4o-2024-08-06", "Standard", None, 0)], NOW)
    assert [r.status for r in rows] == ["ok"] and "finetuneCapabilities" in rows[0].detail


def test_model_without_fine_tune_capability_blocks(dev):
    def no_finetune(model):
        del model["finetuneCapabilities"]
    arm, _ = reader({"/models": models_with(no_finetune)})
    [row] = checks.models_and_quota(dev, arm, [AzureNeed("job-az", "gpt-4o-2024-08-06", "Standard", None, 0)], NOW)
    assert row.status == "block" and "cannot be fine-tuned in swedencentral" in row.detail and row.fix


def test_retired_fine_tuning_blocks_and_near_retirement_warns(dev):
    def retired(model):
        model["deprecation"] = {"fineTune": "2024-06-14T00:00:00Z", "deprecationStatus": "Planned"}

    def soon(model):
        model["deprecation"] = {"fineTune": "2026-12-10T00:00:00Z", "deprecationStatus": "Planned"}
    for change, status, text in ((retired, "block", "retired on 2024-06-14"), (soon, "warn", "retires 2026-12-10")):
        arm, _ = reader({"/models": models_with(change)})
        [row] = checks.models_and_quota(dev, arm, [AzureNeed("j", "gpt-4o-2024-08-06", "Standard", None, 0)], NOW)
        assert row.status == status and text in row.detail and row.fix


def test_a_training_type_outside_its_regions_blocks(dev):
    westus3 = dev.model_copy(update={"azure": dev.azure.model_copy(update={"location": "westus3"})})
    arm, _ = reader({"/models": models_with()})
    [row] = checks.models_and_quota(westus3, arm, [AzureNeed("j", "gpt-4o-2024-08-06", "Standard", None, 0)], NOW)
    assert row.status == "block" and "not with Standard training in westus3" in row.detail
    assert row.fix == "use GlobalStandard training (the job's training_type)"
    arm, _ = reader({"/models": models_with()})
    [ok] = checks.models_and_quota(westus3, arm, [AzureNeed("j", "gpt-4o-2024-08-06", "GlobalStandard", None, 0)], NOW)
    assert ok.status == "ok"


# --- quota ---------------------------------------------------------------------------------------------------

def usages(current: int, limit: int) -> dict:
    body = copy.deepcopy(example("ListUsages.json"))
    item = copy.deepcopy(body["value"][0])
    item.update(name={"value": "OpenAI.Standard.GPT4o", "localizedValue": "Tokens per minute (thousands) - GPT-4o"},
                currentValue=current, limit=limit)
    body["value"].append(item)
    return body


def test_deployment_quota_passes_or_blocks(dev):
    arm, _ = reader({"/models": models_with(), "/usages": usages(10, 100)})
    rows = checks.models_and_quota(dev, arm, [NEED], NOW)
    assert [(r.check, r.status) for r in rows] == [("azure-model", "ok"), ("azure-quota", "ok")]
    arm, _ = reader({"/models": models_with(), "/usages": usages(98, 100)})
    quota = checks.models_and_quota(dev, arm, [NEED], NOW)[1]
    assert quota.status == "block" and "OpenAI.Standard.GPT4o: 98 of 100 used, the deployments need 5" in quota.detail
    assert "request more quota" in quota.fix


def test_deployment_sku_not_offered_blocks(dev):
    arm, _ = reader({"/models": models_with()})
    rows = checks.models_and_quota(dev, arm, [AzureNeed("j", "gpt-4o-2024-08-06", "Standard", "GlobalStandard", 1)], NOW)
    assert rows[1].status == "block" and "GlobalStandard is not offered" in rows[1].detail


# --- permissions ---------------------------------------------------------------------------------------------

# Permission lists as ARM's permissions API returns them (actions, notActions, dataActions, notDataActions): the
# union of the caller's role definitions at the scope. (The contracts hold no Microsoft.Authorization examples.)
CONTRIBUTOR = {"value": [
    {"actions": ["Microsoft.CognitiveServices/*"], "notActions": [],
     "dataActions": ["Microsoft.CognitiveServices/*"], "notDataActions": []},
    {"actions": ["*"], "notActions": ["Microsoft.Authorization/*/Delete", "Microsoft.Authorization/*/Write"],
     "dataActions": ["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/*"], "notDataActions": []}]}
READER = {"value": [{"actions": ["*/read"], "notActions": [], "dataActions": [], "notDataActions": []}]}


def test_effective_permissions_cover_the_calls(dev):
    arm, _ = reader({"/providers/Microsoft.Authorization/permissions": CONTRIBUTOR})
    rows = checks.permissions(dev, arm)
    assert [(r.detail.split(":")[0], r.status) for r in rows] == [("openai account", "ok"), ("container", "ok")]


def test_missing_permissions_block_naming_action_and_scope(dev):
    arm, _ = reader({"/providers/Microsoft.Authorization/permissions": READER})
    rows = {r.detail.split(":")[0]: r for r in checks.permissions(dev, arm)}
    account = rows["openai account"]
    assert account.status == "block" and "Microsoft.CognitiveServices/accounts/deployments/write" in account.detail
    assert "Microsoft.CognitiveServices/accounts/OpenAI/fine-tunes/write" in account.detail   # a data action
    assert "accounts/deployments/read" not in account.detail   # */read covers it
    assert "/accounts/ftops-dev-openai" in account.fix
    container = rows["container"]
    assert container.status == "block" and "containers/blobs/write" in container.detail


def test_not_actions_carve_out_of_a_wildcard():
    carved = [{"actions": ["Microsoft.CognitiveServices/*"],
               "notActions": ["Microsoft.CognitiveServices/accounts/deployments/write"]}]
    assert checks.allows(carved, "Microsoft.CognitiveServices/accounts/read", False)
    assert not checks.allows(carved, "microsoft.cognitiveservices/accounts/deployments/WRITE", False)


# --- network -------------------------------------------------------------------------------------------------

def account(default: str, rules: list[str], public: str = "Enabled") -> dict:
    body = copy.deepcopy(example("CreateAccountMin.json"))
    body["properties"].update(publicNetworkAccess=public,
                              networkAcls={"defaultAction": default, "ipRules": [{"value": r} for r in rules]})
    return body


def network_answers(default: str, rules: list[str], public: str = "Enabled") -> dict:
    return {"/accounts/ftops-dev-openai": account(default, rules, public),
            "/storageAccounts/ftopsdevdata": account(default, rules, public)}


def test_network_rules_allow_the_runner(dev):
    arm, _ = reader(network_answers("Deny", ["203.0.113.0/24"]))
    rows = checks.network(dev, arm, "203.0.113.7")
    assert [r.status for r in rows] == ["ok", "ok"]
    arm, _ = reader(network_answers("Allow", []))
    assert [r.status for r in checks.network(dev, arm, None)] == ["ok", "ok"]


def test_network_rules_refusing_the_runner_block_and_an_unknown_runner_warns(dev):
    arm, _ = reader(network_answers("Deny", ["203.0.113.0/24"]))
    blocked = checks.network(dev, arm, "198.51.100.1")
    assert all(r.status == "block" and "198.51.100.1" in r.fix and "ip_ranges" in r.fix for r in blocked)
    arm, _ = reader(network_answers("Deny", ["203.0.113.0/24"]))
    assert all(r.status == "warn" and "--runner-ip" in r.fix for r in checks.network(dev, arm, None))
    arm, _ = reader(network_answers("Allow", [], public="Disabled"))
    assert all(r.status == "block" and "private endpoints" in r.detail for r in checks.network(dev, arm, "198.51.100.1"))


def test_an_account_never_created_is_named_as_missing_with_the_command_that_creates_it(dev):
    arm, _ = reader({"/storageAccounts/ftopsdevdata": account("Allow", [])})
    openai_row, storage_row = checks.network(dev, arm, None)
    assert openai_row.status == "block" and "ftops-dev-openai does not exist" in openai_row.detail
    assert openai_row.fix == "ftops infra apply --cloud azure --env dev" and storage_row.status == "ok"


# --- costs ---------------------------------------------------------------------------------------------------

def spec(cost: float | None) -> JobSpec:
    return JobSpec("job-c", "azure-openai", {"targets": {}, "estimated_cost_usd": cost}, lambda t: None)


def test_cost_under_the_ceiling_passes_and_above_blocks(dev):
    [ok] = costs(dev, [spec(150.0)])
    [blocked] = costs(dev, [spec(250.0)])   # dev's ceiling: 200
    assert ok.status == "ok" and "$150.00 (ceiling $200.00)" in ok.detail
    assert blocked.status == "block" and "policy.max_cost_per_job_usd" in blocked.fix


# --- the whole Azure run: GETs only --------------------------------------------------------------------------

def test_an_azure_run_makes_only_get_requests(dev):
    az_only = dev.model_copy(update={"aws": None})
    request = {"model": "gpt-4o-2024-08-06", "trainingType": "standard"}
    deployment = {"body": {"sku": {"name": "Standard", "capacity": 5}}}
    job = JobSpec("job-az", "azure-openai", {"targets": {"azure-openai": "a.json", "azure-openai-deployment": "d.json"},
                                             "estimated_cost_usd": 3.0},
                  lambda t: request if t == "azure-openai" else deployment)
    arm, fake = reader({"/models": models_with(), "/usages": usages(0, 100),
                        "/providers/Microsoft.Authorization/permissions": CONTRIBUTOR, **network_answers("Allow", [])})
    report = run(az_only, [job], Sources(arm=arm))
    assert not report.blocked, [r for r in report.rows if r.status != "ok"]
    assert {method for method, _ in fake.requests} == {"GET"} and len(fake.requests) == 6
    assert {r.check for r in report.rows} == {"azure-permission", "azure-model", "azure-quota", "azure-network", "cost"}


def test_missing_credentials_are_one_row_per_cloud_not_a_traceback(dev):
    from azure.core.exceptions import ClientAuthenticationError
    from botocore.exceptions import NoCredentialsError

    class NoAws:
        def get_caller_identity(self):
            raise NoCredentialsError()

    def no_azure(path, api_version):
        raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token")

    job = JobSpec("job-az", "azure-openai", {"targets": {"azure-openai": "a.json"}, "estimated_cost_usd": 1.0},
                  lambda t: {"model": "gpt-4o-2024-08-06", "trainingType": "standard"})
    report = run(dev, [job], Sources(aws_client=lambda service: NoAws(), arm=no_azure))
    blocked = [(r.check, r.fix) for r in report.rows if r.status == "block"]
    assert [check for check, _ in blocked] == ["identity", "azure-identity"]
    assert "aws sso login" in blocked[0][1] and "az login" in blocked[1][1]
