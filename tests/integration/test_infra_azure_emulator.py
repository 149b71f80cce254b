"""`ftops infra plan|apply|destroy --cloud azure` with the real management SDKs against the ARM emulator."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from jobs import paths
from jobs.config.environment import load_environment
from jobs.config.resolved import resolved_file
from jobs.local import emulators

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SUB = "00000000-0000-4000-8000-000000000000"
PIPELINE = "00000000-0000-4000-8000-0000000000b1"


@pytest.fixture
def fork(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, blob_local) -> Path:
    """A throwaway fork root, so resolved outputs and environment edits never touch the repository. Its emulated
    environments' data containers live on the session's Azurite (apply makes them there too)."""
    root = tmp_path / "fork"
    (root / "environments").mkdir(parents=True)
    monkeypatch.setenv("FTOPS_ROOT", str(root))
    paths.project_root.cache_clear()
    load_environment.cache_clear()
    yield root
    paths.project_root.cache_clear()
    load_environment.cache_clear()


def write_env(root: Path, name: str, *, extra: str = "", network: str = "", openai: str = "") -> Path:
    """An emulated environment with its own resource group and storage account (the emulator is shared)."""
    compact = name.replace("-", "")
    path = root / "environments" / f"{name}.yaml"
    path.write_text(f"""name: {name}
emulated: true
owner: test-team
azure:
  subscription_id: {SUB}
  location: swedencentral
  resource_group: ftops-{name}-rg
  storage_account: ftops{compact}data
  pipeline_principal_id: {PIPELINE}
{extra}  openai:
    fine_tuning_models:
      - {{model: gpt-4.1-mini-2025-04-14, training_type: Standard}}
    deployments:
      - {{name: grader, model: gpt-4.1-mini, version: "2025-04-14", sku: GlobalStandard, capacity: 2}}
{openai}{network}""")
    load_environment.cache_clear()
    return path


def plan_json(ftops, name: str) -> dict:
    result = ftops("infra", "plan", "--cloud", "azure", "--env", name, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def actions(plan: dict) -> dict[str, str]:
    return {f"{c['kind']} {c['name']}": c["action"] for c in plan["changes"]}


def faults(endpoint: str, *rules: dict) -> None:
    request = urllib.request.Request(f"{endpoint}/_emulator/faults", data=json.dumps({"rules": list(rules)}).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request)


def arm_get(endpoint: str, resource_id: str) -> dict | None:
    request = urllib.request.Request(f"{endpoint}{resource_id}?api-version=2025-09-01",
                                     headers={"Authorization": "Bearer test"})
    try:
        return json.loads(urllib.request.urlopen(request).read())
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def account_id(name: str) -> str:
    return (f"/subscriptions/{SUB}/resourceGroups/ftops-{name}-rg/providers/Microsoft.CognitiveServices/"
            f"accounts/ftops-{name}-openai")


def test_plan_apply_plan_change_apply_destroy(ftops, fork, azure_local):
    write_env(fork, "cycle")
    first = plan_json(ftops, "cycle")
    assert set(actions(first).values()) == {"create"} and len(first["changes"]) == 8
    assert all(check["ok"] for check in first["checks"])
    # `current` counts what other tests deployed in the session's emulator before this one (any test order).
    (quota,) = first["quota"]
    assert quota.pop("current") >= 0
    assert quota == {"usage": "OpenAI.GlobalStandard.gpt-4.1-mini", "limit": 1000.0, "requested": 2.0,
                     "deployments": ["grader"], "ok": True}

    applied = ftops("infra", "apply", "--cloud", "azure", "--env", "cycle", "--yes", "--json")
    assert applied.exit_code == 0, applied.stderr
    resolved = json.loads(resolved_file("cycle", "azure").read_text())
    assert resolved["source"] == "deployed"
    assert resolved["openai_endpoint"] == "https://ftops-cycle-openai.openai.azure.com/"
    assert resolved["container_url"] == "https://ftopscycledata.blob.core.windows.net/training-data"
    assert resolved["openai_account_id"] == account_id("cycle")

    # What apply created is what the issue asks for, read back over ARM.
    account = arm_get(azure_local.endpoint, account_id("cycle"))
    assert account["kind"] == "OpenAI" and account["sku"]["name"] == "S0"
    assert account["identity"]["type"] == "SystemAssigned"
    assert account["properties"]["disableLocalAuth"] is True
    assert account["properties"]["restrictOutboundNetworkAccess"] is True
    assert account["tags"] == {"managed-by": "ftops", "environment": "cycle", "owner": "test-team"}
    storage = arm_get(azure_local.endpoint, f"/subscriptions/{SUB}/resourceGroups/ftops-cycle-rg/providers/"
                                            "Microsoft.Storage/storageAccounts/ftopscycledata")
    props = storage["properties"]
    assert (props["supportsHttpsTrafficOnly"], props["minimumTlsVersion"], props["allowBlobPublicAccess"],
            props["allowSharedKeyAccess"]) == (True, "TLS1_2", False, False)

    again = plan_json(ftops, "cycle")
    assert set(actions(again).values()) == {"unchanged"} and not again["has_changes"]
    assert ftops("infra", "plan", "--cloud", "azure", "--env", "cycle", "--detailed-exitcode").exit_code == 0

    path = fork / "environments" / "cycle.yaml"
    path.write_text(path.read_text().replace("  pipeline_principal_id", "  soft_delete_days: 14\n  pipeline_principal_id"))
    load_environment.cache_clear()
    changed = plan_json(ftops, "cycle")
    updates = [c for c in changed["changes"] if c["action"] != "unchanged"]
    assert [(c["kind"], c["action"]) for c in updates] == [("blob_service", "update")]
    assert updates[0]["changes"] == [
        {"path": "properties.deleteRetentionPolicy.days", "before": 7, "after": 14},
        {"path": "properties.containerDeleteRetentionPolicy.days", "before": 7, "after": 14}]
    assert ftops("infra", "plan", "--cloud", "azure", "--env", "cycle", "--detailed-exitcode").exit_code == 2

    assert ftops("infra", "apply", "--cloud", "azure", "--env", "cycle", "--yes").exit_code == 0
    assert not plan_json(ftops, "cycle")["has_changes"]

    destroyed = ftops("infra", "destroy", "--cloud", "azure", "--env", "cycle", "--yes", "--json")
    assert destroyed.exit_code == 0, destroyed.stderr
    assert json.loads(destroyed.stdout)["delete"] == 6
    # The resolved values described what is gone: rendering must not keep reading them.
    assert json.loads(destroyed.stdout)["outputs_removed"] == str(resolved_file("cycle", "azure"))
    assert not resolved_file("cycle", "azure").exists()
    assert set(actions(plan_json(ftops, "cycle")).values()) == {"create"}
    # The subdomain was purged with the account, so the environment can be provisioned again.
    assert ftops("infra", "apply", "--cloud", "azure", "--env", "cycle", "--yes").exit_code == 0


def test_throttling_and_server_errors_are_retried_honouring_retry_after(ftops, fork, azure_local):
    write_env(fork, "throttled")
    faults(azure_local.endpoint, {"method": "PUT", "path": "storageAccounts/ftopsthrottleddata$", "status": 429,
                                  "code": "TooManyRequests", "retry_after": 1, "times": 2},
           {"method": "PUT", "path": "containers/training-data$", "status": 500, "code": "InternalServerError",
            "retry_after": 0, "times": 1})
    result = ftops("infra", "apply", "--cloud", "azure", "--env", "throttled", "--yes")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.count("TooManyRequests, retrying in 1.0s") == 2
    assert "create container ftopsthrottleddata/training-data: InternalServerError, retrying" in result.stderr
    assert not plan_json(ftops, "throttled")["has_changes"]


def test_failed_operation_names_resource_and_arm_message_then_rerun_converges(ftops, fork, azure_local):
    write_env(fork, "lrofail")
    faults(azure_local.endpoint, {"method": "PUT", "path": "accounts/ftops-lrofail-openai$", "fail_operation": True,
                                  "code": "QuotaExceeded", "message": "Operation failed: the subscription reached "
                                                                      "its limit of OpenAI accounts."})
    result = ftops("infra", "apply", "--cloud", "azure", "--env", "lrofail", "--yes")
    assert result.exit_code == 1
    assert "openai_account ftops-lrofail-openai" in result.stderr
    assert "QuotaExceeded" in result.stderr and "reached its limit of OpenAI accounts" in result.stderr
    account = [c for c in plan_json(ftops, "lrofail")["changes"] if c["kind"] == "openai_account"][0]
    assert account["action"] == "update" and "Failed" in account["note"]
    assert ftops("infra", "apply", "--cloud", "azure", "--env", "lrofail", "--yes").exit_code == 0
    assert not plan_json(ftops, "lrofail")["has_changes"]


def test_apply_killed_mid_way_converges_when_rerun(ftops, fork, azure_local):
    write_env(fork, "killed")
    # The account takes a few seconds to provision: long enough to kill apply while it waits on the poller.
    faults(azure_local.endpoint, {"method": "PUT", "path": "accounts/ftops-killed-openai$", "op_delay_s": 3})
    proc = subprocess.Popen([sys.executable, "-m", "jobs.cli.main", "infra", "apply", "--cloud", "azure",
                             "--env", "killed", "--yes"], env=dict(os.environ), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while arm_get(azure_local.endpoint, account_id("killed")) is None:
            assert proc.poll() is None, "apply ended before it created the account"
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    interrupted = actions(plan_json(ftops, "killed"))
    assert interrupted["resource_group ftops-killed-rg"] == "unchanged"
    assert interrupted["deployment ftops-killed-openai/grader"] == "create"

    rerun = ftops("infra", "apply", "--cloud", "azure", "--env", "killed", "--yes")
    assert rerun.exit_code == 0, rerun.stderr
    assert not plan_json(ftops, "killed")["has_changes"]


def test_subdomain_in_use_is_one_clear_error(ftops, fork, azure_local):
    write_env(fork, "first")
    assert ftops("infra", "apply", "--cloud", "azure", "--env", "first", "--yes").exit_code == 0
    write_env(fork, "second", openai="    custom_subdomain: ftops-first-openai\n")
    result = ftops("infra", "apply", "--cloud", "azure", "--env", "second", "--yes")
    assert result.exit_code == 1
    assert "CustomDomainInUse" in result.stderr and "azure.openai.custom_subdomain" in result.stderr
    assert "Traceback" not in result.stderr


def test_production_network_rules_and_destroy_guard(ftops, fork, azure_local):
    write_env(fork, "guarded", extra="  production: true\n",
              network="  network:\n    default_action: Deny\n    ip_ranges: [203.0.113.0/24]\n")
    assert ftops("infra", "apply", "--cloud", "azure", "--env", "guarded", "--yes").exit_code == 0
    account = arm_get(azure_local.endpoint, account_id("guarded"))
    assert account["properties"]["networkAcls"]["defaultAction"] == "Deny"
    assert account["properties"]["networkAcls"]["ipRules"] == [{"value": "203.0.113.0/24"}]

    refused = ftops("infra", "destroy", "--cloud", "azure", "--env", "guarded", "--yes", input="staging\n")
    assert refused.exit_code == 1 and "refusing to destroy guarded" in refused.stderr
    assert arm_get(azure_local.endpoint, account_id("guarded")) is not None
    typed = ftops("infra", "destroy", "--cloud", "azure", "--env", "guarded", input="guarded\n")
    assert typed.exit_code == 0, typed.stderr
    assert arm_get(azure_local.endpoint, account_id("guarded")) is None
    # Production keeps the account soft-deleted (recoverable); apply restores it under the same name.
    plan = plan_json(ftops, "guarded")
    assert "restores" in [c for c in plan["changes"] if c["kind"] == "openai_account"][0]["note"]
    assert ftops("infra", "apply", "--cloud", "azure", "--env", "guarded", "--yes").exit_code == 0
    assert arm_get(azure_local.endpoint, account_id("guarded"))["properties"]["provisioningState"] == "Succeeded"


def test_destroy_deletes_only_what_ftops_manages(ftops, fork, azure_local):
    write_env(fork, "shared")
    assert ftops("infra", "apply", "--cloud", "azure", "--env", "shared", "--yes").exit_code == 0
    # Someone else's storage account in the same group, and the OpenAI account's tags changed by hand.
    request = urllib.request.Request(
        f"{azure_local.endpoint}/subscriptions/{SUB}/resourceGroups/ftops-shared-rg/providers/Microsoft.Storage/"
        "storageAccounts/otherteamdata?api-version=2025-01-01", method="PUT",
        headers={"Authorization": "Bearer test", "Content-Type": "application/json"},
        data=json.dumps({"location": "swedencentral", "kind": "StorageV2", "sku": {"name": "Standard_LRS"}}).encode())
    urllib.request.urlopen(request)
    patch = urllib.request.Request(f"{azure_local.endpoint}{account_id('shared')}?api-version=2025-09-01",
                                   method="PATCH", data=json.dumps({"tags": {"owner": "someone"}}).encode(),
                                   headers={"Authorization": "Bearer test", "Content-Type": "application/json"})
    urllib.request.urlopen(patch)
    deadline = time.monotonic() + 30
    while arm_get(azure_local.endpoint, account_id("shared"))["properties"]["provisioningState"] != "Succeeded":
        assert time.monotonic() < deadline
        time.sleep(0.05)

    result = ftops("infra", "destroy", "--cloud", "azure", "--env", "shared", "--yes", "--json")
    assert result.exit_code == 0, result.stderr
    steps = {f"{s['kind']} {s['name']}": s for s in json.loads(result.stdout)["steps"]}
    assert steps["openai_account ftops-shared-openai"]["action"] == "keep"
    assert steps["storage_account ftopsshareddata"]["action"] == "delete"
    assert steps["resource_group ftops-shared-rg"]["action"] == "keep"
    assert arm_get(azure_local.endpoint, account_id("shared")) is not None
    assert arm_get(azure_local.endpoint, f"/subscriptions/{SUB}/resourceGroups/ftops-shared-rg") is not None
    # The OpenAI account it describes is still there: the resolved values stay.
    assert json.loads(result.stdout)["outputs_removed"] is None and resolved_file("shared", "azure").is_file()


def test_emulator_keeps_state_across_restarts(ftops, fork, tmp_path, monkeypatch):
    state = tmp_path / "azure-state"
    write_env(fork, "restart")
    with emulators.running("azure", data_dir=state) as emu:
        monkeypatch.setenv("FTOPS_AZURE_ENDPOINT", emu.endpoint)
        assert ftops("infra", "apply", "--cloud", "azure", "--env", "restart", "--yes").exit_code == 0
    with emulators.running("azure", data_dir=state) as emu:
        monkeypatch.setenv("FTOPS_AZURE_ENDPOINT", emu.endpoint)
        assert not plan_json(ftops, "restart")["has_changes"]


def test_apply_makes_the_container_on_azurite_too_and_makes_it_again_when_lost(ftops, fork, azure_local):
    """On Azure one ARM PUT makes the container on the blob endpoint; on the emulators ARM and Azurite are apart, so
    apply makes it on both, and a container Azurite lost (restarted empty) is planned and made again. No other
    command creates one (tests/integration/test_unprovisioned_local.py)."""
    from jobs.clients import blob_service

    path = write_env(fork, "holder")
    path.write_text(path.read_text() + "data:\n  blob_container: holder-data\n")
    load_environment.cache_clear()
    container = blob_service(load_environment("holder")).get_container_client("holder-data")
    assert not container.exists()
    assert actions(plan_json(ftops, "holder"))["container ftopsholderdata/holder-data"] == "create"
    assert ftops("infra", "apply", "--cloud", "azure", "--env", "holder", "--yes").exit_code == 0
    assert container.exists()
    assert not plan_json(ftops, "holder")["has_changes"]

    container.delete_container()  # ARM still has it, Azurite does not (an emulator restarted empty)
    assert actions(plan_json(ftops, "holder"))["container ftopsholderdata/holder-data"] == "create"
    applied = ftops("infra", "apply", "--cloud", "azure", "--env", "holder", "--yes")
    assert applied.exit_code == 0, applied.stderr
    assert container.exists()
    assert not plan_json(ftops, "holder")["has_changes"]


def test_emulator_speaks_arm(azure_local):
    base = f"{azure_local.endpoint}/subscriptions/{SUB}/resourcegroups/ftops-probe-rg"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(urllib.request.Request(base, headers={"Authorization": "Bearer t"}))
    assert err.value.code == 400
    assert json.loads(err.value.read())["error"]["code"] == "MissingApiVersionParameter"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(urllib.request.Request(base + "?api-version=2025-04-01",
                                                      headers={"Authorization": "Bearer t"}))
    assert err.value.code == 404
    assert json.loads(err.value.read())["error"] == {
        "code": "ResourceGroupNotFound", "message": "Resource group 'ftops-probe-rg' could not be found."}
