"""Issue 13 (Azure on first contact) and 17.8 (constrained role assignments): each case fails on the old behaviour.

Offline: the client's checks against the spec's own examples, the emulator's data plane and ARM through Flask's
test client, the provider's deploy planning, the permission map against the transcribed built-in roles.
"""

from __future__ import annotations

import io
import json
import re
import time

import pytest

from infra.azure.checks import live_checks
from infra.azure.plan import compare
from jobs.config.azure import FineTuningModel
from jobs.config.environment import load_environment
from jobs.errors import ConfigError
from jobs.providers import azure_openai
from jobs.providers.base import JobStatus
from tests.fixtures.contracts import contracts_dir
from tests.fixtures.emulators import provision_openai_account
from tests.fixtures.rendered import chat_lines, write_dataset, write_job
from tests.unit.test_infra_azure_plan import ACCOUNT, actual

SUB = "00000000-0000-4000-8000-000000000000"


def _env_fine_tuning(model: str):
    env = load_environment("local")
    openai = env.azure.openai.model_copy(update={"fine_tuning_models": [FineTuningModel(model=model)],
                                                 "deployments": []})
    return env.model_copy(update={"azure": env.azure.model_copy(update={"openai": openai})})


# --- 1. capability from finetuneCapabilities, and kind ----------------------------------------------------------

def test_the_spec_example_gpt4o_is_fine_tunable_by_finetune_capabilities():
    example = json.loads((contracts_dir("azure", "examples", "ListLocationModels.json")).read_text())
    models = example["responses"]["200"]["body"]["value"]
    listed = next(m["model"] for m in models if m["model"]["name"] == "gpt-4o" and m["model"]["version"] == "2024-08-06")
    assert listed["capabilities"]["fineTune"] == "false" and listed["finetuneCapabilities"]["fineTune"] == "true"
    results = live_checks(_env_fine_tuning("gpt-4o-2024-08-06"), models)
    assert [r.ok for r in results] == [True], [r.message for r in results]


def test_a_model_listed_only_for_another_account_kind_is_refused():
    example = json.loads((contracts_dir("azure", "examples", "ListLocationModels.json")).read_text())
    models = [{**m, "kind": "AIServices"} for m in example["responses"]["200"]["body"]["value"]]
    results = live_checks(_env_fine_tuning("gpt-4o-2024-08-06"), models)
    assert [r.ok for r in results] == [False] and "does not offer it" in results[0].message


# --- 10. provisioning states -----------------------------------------------------------------------------------

def test_moving_is_in_progress_and_canceled_is_a_failure():
    moving = compare(ACCOUNT, actual(provisioningState="Moving"))
    assert moving.action == "update" and "still Moving" in moving.note
    canceled = compare(ACCOUNT, actual(provisioningState="Canceled"))
    assert canceled.action == "update" and "Canceled" in canceled.note


# --- 9. hosting notice -------------------------------------------------------------------------------------------

def test_the_hosting_notice_follows_the_deployment_type():
    developer = azure_openai.hosting_notice("DeveloperTier")
    assert "no hosting fee" in developer and "24 hours" in developer and "15 days" not in developer
    standard = azure_openai.hosting_notice("Standard")
    assert "billed per hour" in standard and "15 days" in standard


# --- 2, 4. checkpoint id, deployment table at deploy -------------------------------------------------------------

class _Checkpoints:
    def list(self, job_id):
        return [type("C", (), {"id": "ftchkpt-" + "a" * 32,
                               "fine_tuned_model_checkpoint": "gpt-4.1-mini-2025-04-14.ft-x:ckpt-step-10"})()]


@pytest.fixture
def rendered(tmp_path):
    from jobs.apply.rendered import load_rendered

    manifest = write_dataset(tmp_path / "data")

    def make(model="gpt-4.1-mini-2025-04-14", sku="Standard"):
        root = tmp_path / f"r-{model}-{sku}"
        job_dir = write_job(root, "local", "faq", "azure-openai", manifest)
        body = json.loads((job_dir / "azure-openai.json").read_text())
        (job_dir / "azure-openai.json").write_text(json.dumps({**body, "model": model}))
        (job_dir / "azure-openai-deployment.json").write_text(json.dumps({
            "deployment_name": "faq", "body": {"sku": {"name": sku, "capacity": 1}}}))
        index = json.loads((job_dir / "job.json").read_text())
        index["targets"]["azure-openai-deployment"] = "azure-openai-deployment.json"
        (job_dir / "job.json").write_text(json.dumps(index))
        return load_rendered(root, "local")[0]
    return make


def test_a_checkpoint_deploys_by_its_id(rendered, monkeypatch):
    fake = type("Client", (), {"fine_tuning": type("FT", (), {"jobs": type("J", (), {"checkpoints": _Checkpoints()})()})()})()
    monkeypatch.setattr(azure_openai, "client", lambda env: fake)
    status = JobStatus("azure-openai", "ftjob-1", "succeeded", "succeeded", model="gpt-4.1-mini-2025-04-14.ft-x")
    planned = azure_openai.AzureOpenAI().planned_deployment(load_environment("local"), rendered(), status,
                                                            checkpoint="ftchkpt-" + "a" * 32)
    assert planned["model"] == "ftchkpt-" + "a" * 32


@pytest.mark.parametrize("model,sku,problem", [
    ("gpt-4o-2024-08-06", "DeveloperTier", "has no fine-tuned DeveloperTier deployments"),
    ("gpt-4.1-mini-2025-04-14", "Standard", "deploys as Standard only in"),
])
def test_deploy_refuses_a_sku_the_table_does_not_offer(rendered, model, sku, problem, monkeypatch):
    env = load_environment("local")
    if sku == "Standard":  # Standard fine-tuned deployments are regional: not in eastus
        env = env.model_copy(update={"azure": env.azure.model_copy(update={"location": "eastus"})})
    status = JobStatus("azure-openai", "ftjob-1", "succeeded", "succeeded", model=f"{model}.ft-x")
    with pytest.raises(ConfigError, match=problem):
        azure_openai.AzureOpenAI().planned_deployment(env, rendered(model, sku), status)


def test_render_refuses_a_deployment_sku_the_table_does_not_offer(project):
    from jobs.render.engine import render_environment

    project.edit_definition("helpdesk-gpt41mini", base_model__azure_model="gpt-4o", base_model__version="2024-08-06",
                            azure__training_type="Standard", deployment__azure__sku="DeveloperTier")
    with pytest.raises(ConfigError, match="no fine-tuned DeveloperTier deployments"):
        render_environment(load_environment("local"), "helpdesk-gpt41mini")


# --- 8, 11. trainingType spelling and suffix rules at render ------------------------------------------------------

def test_developer_training_renders_as_developer_tier(project):
    from jobs.render.engine import render_environment

    job = render_environment(load_environment("local"), "helpdesk-gpt41mini")[0]
    definition = project.definition("helpdesk-gpt41mini")
    assert definition["azure"]["training_type"] == "Developer"
    body = job.documents["azure-openai.json"]
    assert body["trainingType"] == "developerTier" and "metadata" not in body


def test_a_suffix_with_a_dot_is_refused_at_render():
    from jobs.render.policy import AZURE_SUFFIX

    assert AZURE_SUFFIX.match("faq-v1_2") and not AZURE_SUFFIX.match("faq.v1")


# --- the emulator's data plane: strict bodies, spec states, spec errors, checkpoints -----------------------------

DP = "/accounts/dp-acct/openai"
"""The data plane of the account the `emulator` fixture provisions (the emulator answers for no other)."""


@pytest.fixture
def emulator(tmp_path):
    from jobs.local.azure_emulator.app import create_app

    client = create_app(tmp_path, op_delay_s=0).test_client()
    assert provision_openai_account(client, "dp-acct", group="dp-rg") == DP
    client.post("/_emulator/openai/settings", json={"job_duration_s": 1.0, "file_processing_s": 0})
    return client


def _train(client) -> str:
    response = client.post(f"{DP}/files", data={"purpose": "fine-tune", "file": (io.BytesIO(chat_lines(20)), "t.jsonl")},
                           content_type="multipart/form-data")
    return response.json["id"]


BODY = {"model": "gpt-4.1-mini-2025-04-14", "suffix": "faq",
        "method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}}}


@pytest.mark.parametrize("extra,field", [
    ({"trainingType": "developertier"}, "trainingType"),
    ({"trainingType": "GlobalStandard"}, "trainingType"),
    ({"training_type": "standard"}, "training_type"),
    ({"metadata": {"k": "v"}}, "metadata"),
    ({"suffix": "faq.v1"}, "suffix"),
])
def test_the_emulator_takes_only_the_documented_spelling_and_fields(emulator, extra, field):
    response = emulator.post(f"{DP}/fine_tuning/jobs", json={**BODY, "training_file": _train(emulator), **extra})
    assert response.status_code == 400 and response.json["error"]["code"] == "invalidPayload"
    assert response.json["error"].get("target") == field


def test_the_emulator_accepts_each_documented_training_type(emulator):
    train = _train(emulator)
    for wire in ("standard", "globalstandard", "developerTier"):
        response = emulator.post(f"{DP}/fine_tuning/jobs", json={**BODY, "training_file": train, "trainingType": wire})
        assert response.status_code == 201, (wire, response.json)


def test_the_emulator_job_fields_are_the_spec_fields_plus_training_type():
    from jobs.local.azure_emulator.openai import JOB_FIELDS

    spec = json.loads(contracts_dir("azure", "data-plane-2025-04-01-preview.azureopenai.json").read_text())
    assert JOB_FIELDS == set(spec["definitions"]["FineTuningJobCreation"]["properties"]) | {"trainingType"}


def _status(client, job_id):
    return client.get(f"{DP}/fine_tuning/jobs/{job_id}").json["status"]


def test_jobs_move_through_the_spec_states_and_pause_and_resume(emulator):
    spec = json.loads(contracts_dir("azure", "data-plane-2025-04-01-preview.azureopenai.json").read_text())
    states = set(spec["definitions"]["FineTuningState"]["enum"])
    created = emulator.post(f"{DP}/fine_tuning/jobs", json={**BODY, "training_file": _train(emulator)}).json
    seen = {created["status"]}
    assert created["status"] == "pending"
    while _status(emulator, created["id"]) != "running":
        time.sleep(0.02)
    paused = emulator.post(f"{DP}/fine_tuning/jobs/{created['id']}/pause").json
    seen |= {paused["status"], _status(emulator, created["id"])}
    assert paused["status"] == "pausing" and _status(emulator, created["id"]) == "paused"
    time.sleep(1.2)  # longer than the whole job: a paused job does not finish on its own
    assert _status(emulator, created["id"]) == "paused"
    resumed = emulator.post(f"{DP}/fine_tuning/jobs/{created['id']}/resume").json
    seen.add(resumed["status"])
    while (state := _status(emulator, created["id"])) not in {"succeeded", "failed"}:
        seen.add(state)
        time.sleep(0.05)
    seen.add(state)
    assert {"pending", "running", "pausing", "paused", "resuming", "succeeded"} <= seen <= states


def test_errors_use_the_spec_codes(emulator):
    spec = json.loads(contracts_dir("azure", "data-plane-2025-04-01-preview.azureopenai.json").read_text())
    codes = set(spec["definitions"]["ErrorCode"]["enum"])
    missing_job = emulator.get(f"{DP}/fine_tuning/jobs/ftjob-nope").json["error"]["code"]
    missing_file = emulator.get(f"{DP}/files/file-nope").json["error"]["code"]
    assert missing_job == missing_file == "notFound" and {missing_job} <= codes


def test_checkpoints_have_deployable_ids_and_the_spec_metrics(emulator):
    spec = json.loads(contracts_dir("azure", "data-plane-examples", "get_finetuning_job_checkpoints.json").read_text())
    example_metrics = set(spec["responses"]["200"]["body"]["data"][0]["metrics"])
    job = emulator.post(f"{DP}/fine_tuning/jobs", json={**BODY, "training_file": _train(emulator)}).json
    while _status(emulator, job["id"]) != "succeeded":
        time.sleep(0.05)
    checkpoints = emulator.get(f"{DP}/fine_tuning/jobs/{job['id']}/checkpoints").json["data"]
    assert checkpoints and all(re.fullmatch(r"ftchkpt-[0-9a-f]{32}", c["id"]) for c in checkpoints)
    assert all(set(c["metrics"]) == example_metrics for c in checkpoints)


def test_the_provider_reports_a_paused_job_as_paused():
    assert azure_openai.STATES["paused"] == "paused"
    assert {azure_openai.STATES[s] for s in ("pausing", "resuming")} == {"running"}
    assert azure_openai.STATES["created"] == "pending"


# --- the emulator's ARM: SDK-model checks and provisioning states ------------------------------------------------

ARM = {"Authorization": "Bearer x"}


def _arm(client, method, path, body=None):
    return client.open(f"/subscriptions/{SUB}{path}?api-version=2025-09-01", method=method, json=body, headers=ARM)


@pytest.fixture
def account(emulator):
    _arm(emulator, "PUT", "/resourceGroups/rg", {"location": "swedencentral"})
    body = {"location": "swedencentral", "kind": "OpenAI", "sku": {"name": "S0"},
            "properties": {"customSubDomainName": "acct"}}
    assert _arm(emulator, "PUT", "/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/acct",
                body).status_code == 201
    return body


@pytest.mark.parametrize("change,words", [
    ({"bogus": 1}, "Could not find member 'bogus'"),
    ({"properties": {"customSubDomainName": "acct", "endpoint": "https://x"}}, "read-only"),
    ({"properties": {"customSubDomainName": "acct", "publicNetworkAccess": "Sometimes"}}, "Sometimes"),
])
def test_arm_bodies_are_held_to_the_sdk_models(emulator, account, change, words):
    response = _arm(emulator, "PUT", "/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/acct",
                    {**account, **change})
    assert response.status_code == 400 and response.json["error"]["code"] == "InvalidRequestContent"
    assert words in response.json["error"]["message"]


def test_an_account_update_is_accepted_never_updating(emulator, account):
    time.sleep(0.01)
    _arm(emulator, "GET", "/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/acct")
    changed = {**account, "tags": {"team": "ml"}}
    response = _arm(emulator, "PUT", "/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/acct", changed)
    assert response.json["properties"]["provisioningState"] in {"Accepted", "Succeeded"}


def test_models_list_has_the_spec_shape_and_both_kinds(emulator):
    items = _arm(emulator, "GET", "/providers/Microsoft.CognitiveServices/locations/swedencentral/models").json["value"]
    assert {i["kind"] for i in items} == {"OpenAI", "AIServices"}
    mini = next(i["model"] for i in items if i["kind"] == "OpenAI" and i["model"]["name"] == "gpt-4.1-mini")
    assert mini["finetuneCapabilities"]["fineTune"] == "true" and mini["capabilities"]["fineTune"] == "false"
    assert {"deprecation", "skus"} <= set(mini)


# --- 6. a submitted job is found without `metadata` -------------------------------------------------------------

def test_a_submitted_job_is_found_by_suffix_model_and_training_file(rendered, monkeypatch):
    from types import SimpleNamespace

    from jobs.data.manifest import read_manifest

    job = rendered()
    body = job.load_target("azure-openai")
    train = read_manifest(job.manifest_dir()).files["train"]
    filename = f"ftops-{train.sha256[:16]}-train.jsonl"
    remote = SimpleNamespace(id="ftjob-1", model=body["model"], training_file="file-7", status="running",
                             suffix=body["suffix"], metadata=None)
    other = SimpleNamespace(id="ftjob-2", model=body["model"], training_file="file-8", status="running",
                            suffix=body["suffix"], metadata=None)  # same suffix, another training file
    fake = SimpleNamespace(
        files=SimpleNamespace(list=lambda purpose: [SimpleNamespace(filename=filename, id="file-7"),
                                                    SimpleNamespace(filename="other.jsonl", id="file-8")]),
        fine_tuning=SimpleNamespace(jobs=SimpleNamespace(list=lambda limit: [other, remote])))
    monkeypatch.setattr(azure_openai, "client", lambda env: fake)
    found = azure_openai.AzureOpenAI().existing(load_environment("local"), [job])
    assert found == {job.name: ("ftjob-1", job.idempotency_key)}
    remote.status = "failed"  # a failed job may be submitted again
    assert azure_openai.AzureOpenAI().existing(load_environment("local"), [job]) == {}


def test_settings_refused_on_azure_jobs_are_ones_the_spec_has_no_hyperparameter_for():
    """`SAGEMAKER_ONLY_HYPERPARAMETERS` are refused on an azure-openai job: the data-plane spec's hyperparameter
    objects (supervised and DPO) hold none of them, and hold every one ftops sends instead."""
    from jobs.config.job import SAGEMAKER_ONLY_HYPERPARAMETERS

    spec = json.loads(contracts_dir("azure", "data-plane-2025-04-01-preview.azureopenai.json").read_text())
    accepted = set(spec["definitions"]["FineTuningHyperParameters"]["properties"]) | set(
        spec["definitions"]["DpoHyperparamsRequest"]["properties"])
    assert not accepted & set(SAGEMAKER_ONLY_HYPERPARAMETERS)
    assert {"n_epochs", "batch_size", "learning_rate_multiplier", "beta"} <= accepted
