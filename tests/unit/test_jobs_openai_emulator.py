"""The Azure OpenAI data-plane emulator: what Azure validates, the job lifecycle, results and chat."""

from __future__ import annotations

import base64
import io
import json
import time

import pytest

from jobs.local.azure_emulator.app import create_app
from tests.fixtures.emulators import (account_id, create_openai_account, deploy_on_account,
                                      provision_openai_account)

DP = "/accounts/acct/openai"
"""The data plane of the account every test here provisions first (the emulator answers for no other)."""


@pytest.fixture
def client(tmp_path):
    client = create_app(tmp_path, op_delay_s=0).test_client()
    assert provision_openai_account(client, "acct") == DP
    client.post("/_emulator/openai/settings", json={"job_duration_s": 0.4, "file_processing_s": 0})
    return client


def _chat_lines(n: int) -> bytes:
    return b"".join(json.dumps({"messages": [{"role": "user", "content": f"What is {i} plus {i}?"},
                                             {"role": "assistant", "content": f"{2 * i}"}]}).encode() + b"\n"
                    for i in range(n))


def _upload(client, content: bytes, name="train.jsonl", *, prefix: str = DP, purpose: str = "fine-tune"):
    response = client.post(f"{prefix}/files", data={"purpose": purpose, "file": (io.BytesIO(content), name)},
                           content_type="multipart/form-data")
    assert response.status_code == 201, response.json
    return response.json["id"]


def _wait(client, job_id, states=("succeeded", "failed", "cancelled"), *, prefix: str = DP):
    for _ in range(100):
        job = client.get(f"{prefix}/fine_tuning/jobs/{job_id}").json
        if job["status"] in states:
            return job
        time.sleep(0.05)
    raise AssertionError(job)


BODY = {"model": "gpt-4.1-mini-2025-04-14", "suffix": "faq", "trainingType": "standard",
        "method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}}}


def test_job_runs_to_success_with_events_checkpoints_and_base64_results(client):
    train, valid = _upload(client, _chat_lines(40)), _upload(client, _chat_lines(12), "valid.jsonl")
    created = client.post(f"{DP}/fine_tuning/jobs", json={**BODY, "training_file": train, "validation_file": valid})
    assert created.status_code == 201 and created.json["status"] == "pending"
    job = _wait(client, created.json["id"])
    assert job["status"] == "succeeded"
    assert job["fine_tuned_model"].startswith("gpt-4.1-mini-2025-04-14.ft-") and job["fine_tuned_model"].endswith("-faq")
    events = client.get(f"{DP}/fine_tuning/jobs/{job['id']}/events?limit=1000").json["data"]
    messages = [e["message"] for e in reversed(events)]
    assert messages[0] == "Job entered status pending" and "successfully completed" in messages[-1]
    assert any(e["type"] == "metrics" for e in events)
    checkpoints = client.get(f"{DP}/fine_tuning/jobs/{job['id']}/checkpoints").json["data"]
    assert len(checkpoints) == 2 and all(":ckpt-step-" in c["fine_tuned_model_checkpoint"] for c in checkpoints)
    raw = client.get(f"{DP}/files/{job['result_files'][0]}/content").data
    csv = base64.b64decode(raw).decode().splitlines()
    assert csv[0].startswith("step,train_loss,") and len(csv) > 2


@pytest.mark.parametrize(("change", "message"), [
    ({"model": "gpt-3.5-turbo-0613"}, "not fine-tunable"),
    ({"suffix": "this-suffix-is-far-too-long"}, "suffix"),
    ({"training_file": "file-missing"}, "does not exist"),
])
def test_create_rejects_what_azure_rejects(client, change, message):
    train = _upload(client, _chat_lines(20))
    response = client.post(f"{DP}/fine_tuning/jobs", json={**BODY, "training_file": train, **change})
    assert response.status_code == 400 and message in response.json["error"]["message"]


def test_the_account_region_must_offer_the_training_type(client):
    weu = provision_openai_account(client, "weu-openai", location="westeurope", group="weu-rg")
    train = _upload(client, _chat_lines(20), prefix=weu)  # the account's own file: another account's is unknown
    response = client.post(f"{weu}/fine_tuning/jobs", json={**BODY, "training_file": train})
    assert response.status_code == 400
    assert "cannot be fine-tuned with standard training in westeurope" in response.json["error"]["message"]
    other = client.post(f"{weu}/fine_tuning/jobs", json={**BODY, "training_file": train, "trainingType": "globalstandard"})
    assert other.status_code == 400, "westeurope offers no GlobalStandard fine-tuning for this model either"
    assert "globalstandard" in other.json["error"]["message"]


def test_too_few_examples_and_unprocessed_files_are_refused(client):
    small = _upload(client, _chat_lines(5))
    response = client.post(f"{DP}/fine_tuning/jobs", json={**BODY, "training_file": small})
    assert response.status_code == 400 and "at least 10" in response.json["error"]["message"]
    client.post("/_emulator/openai/settings", json={"file_processing_s": 60})
    pending = _upload(client, _chat_lines(20))
    assert client.get(f"{DP}/files/{pending}").json["status"] == "pending"
    response = client.post(f"{DP}/fine_tuning/jobs", json={**BODY, "training_file": pending})
    assert "not processed" in response.json["error"]["message"]


def test_a_broken_file_ends_in_error_status(client):
    bad = _upload(client, b'{"messages": []}\nnot json\n')
    file = client.get(f"{DP}/files/{bad}").json
    assert file["status"] == "error" and "line 2" in file["status_details"]


def test_cancel_and_list_pagination(client):
    client.post("/_emulator/openai/settings", json={"job_duration_s": 60})
    train = _upload(client, _chat_lines(20))
    ids = [client.post(f"{DP}/fine_tuning/jobs", json={**BODY, "training_file": train}).json["id"] for _ in range(5)]
    cancelled = client.post(f"{DP}/fine_tuning/jobs/{ids[0]}/cancel").json
    assert cancelled["status"] == "cancelled"
    assert client.post(f"{DP}/fine_tuning/jobs/{ids[0]}/cancel").status_code == 400
    seen, after = [], None
    while True:
        page = client.get(f"{DP}/fine_tuning/jobs", query_string={"limit": 2, **({"after": after} if after else {})}).json
        seen += [job["id"] for job in page["data"]]
        if not page["has_more"]:
            break
        after = page["data"][-1]["id"]
    assert seen == list(reversed(ids))


def test_injected_throttling_answers_429_with_retry_after(client):
    client.post("/_emulator/faults", json={"rules": [{"method": "POST", "path": "fine_tuning/jobs$", "status": 429,
                                                      "retry_after": 2, "code": "tooManyRequests"}]})
    train = _upload(client, _chat_lines(20))
    throttled = client.post(f"{DP}/fine_tuning/jobs", json={**BODY, "training_file": train})
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "2"
    assert client.post(f"{DP}/fine_tuning/jobs", json={**BODY, "training_file": train}).status_code == 201


def test_chat_completion_answers_from_the_training_data(client):
    train = _upload(client, _chat_lines(20))
    job = _wait(client, client.post(f"{DP}/fine_tuning/jobs", json={**BODY, "training_file": train}).json["id"])
    deploy_on_account(client, "acct", "faq", job["fine_tuned_model"])
    answer = client.post(f"{DP}/deployments/faq/chat/completions",
                         json={"messages": [{"role": "user", "content": "What is 7 plus 7?"}]}).json
    assert answer["choices"][0]["message"]["content"] == "14"
    missing = client.post(f"{DP}/deployments/nope/chat/completions", json={"messages": []})
    assert missing.status_code == 404 and missing.json["error"]["code"] == "DeploymentNotFound"


def test_a_deployment_is_served_only_by_its_own_account(client):
    """Azure: a deployment of another account, even under the same name, is 404 DeploymentNotFound here."""
    train = _upload(client, _chat_lines(20))
    job = _wait(client, client.post(f"{DP}/fine_tuning/jobs", json={**BODY, "training_file": train}).json["id"])
    deploy_on_account(client, "acct", "faq", job["fine_tuned_model"])
    other = provision_openai_account(client, "other-openai", group="other-rg")
    response = client.post(f"{other}/deployments/faq/chat/completions",
                           json={"messages": [{"role": "user", "content": "What is 7 plus 7?"}]})
    assert response.status_code == 404 and response.json["error"]["code"] == "DeploymentNotFound"


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/files"), ("GET", "/files"), ("GET", "/fine_tuning/jobs"), ("POST", "/fine_tuning/jobs"),
    ("GET", "/fine_tuning/jobs/ftjob-1/events"), ("POST", "/deployments/faq/chat/completions"),
    ("POST", "/batches"), ("GET", "/batches"),
])
def test_no_data_plane_answers_for_an_account_arm_does_not_hold(client, method, path):
    """Never created: refused before anything else (faults, rate limits, validation), with the marker the client
    maps to its one line; and there is no account-less data plane to fall back on."""
    from jobs.local.azure_emulator import NO_SUCH_ACCOUNT_HEADER

    assert client.open(f"/openai{path}", method=method, json={}).status_code == 404
    client.post("/_emulator/faults", json={"rules": [{"path": "openai/", "status": 500}]})
    response = client.open(f"/accounts/never-created/openai{path}", method=method, json={})
    assert response.status_code == 421 and response.headers[NO_SUCH_ACCOUNT_HEADER] == "never-created"
    assert "never-created" in response.json["error"]["message"]


def test_a_deleted_account_answers_no_more(client):
    headers, query = {"Authorization": "Bearer t"}, {"api-version": "2025-09-01"}
    path = ("/subscriptions/00000000-0000-4000-8000-000000000000/resourceGroups/rg/providers/"
            "Microsoft.CognitiveServices/accounts/acct")
    assert client.get(f"{DP}/files").status_code == 200
    assert client.delete(path, headers=headers, query_string=query).status_code == 202
    client.get(path, headers=headers, query_string=query)  # ARM settles the (instant) delete on its next read
    assert client.get(f"{DP}/files").status_code == 421


def test_each_account_has_its_own_files_jobs_and_batches(client):
    """Azure: an account's data plane is its own; an id of account A is 404 on account B, even though B exists."""
    train = _upload(client, _chat_lines(20))
    job = _wait(client, client.post(f"{DP}/fine_tuning/jobs", json={**BODY, "training_file": train}).json["id"])
    deploy_on_account(client, "acct", "grader", "gpt-4.1-mini", sku="GlobalStandard", version="2025-04-14")
    batch_input = json.dumps({"custom_id": "q1", "method": "POST", "url": "/chat/completions",
                              "body": {"model": "grader", "messages": [{"role": "user", "content": "hi"}]}})
    batch_file = _upload(client, batch_input.encode() + b"\n", "batch.jsonl", purpose="batch")
    batch = client.post(f"{DP}/batches", json={"input_file_id": batch_file, "endpoint": "/chat/completions",
                                               "completion_window": "24h"})
    assert batch.status_code == 201, batch.json
    other = provision_openai_account(client, "other-openai", group="other-rg")

    for path in (f"/files/{train}", f"/files/{train}/content", f"/files/{job['result_files'][0]}/content",
                 f"/fine_tuning/jobs/{job['id']}", f"/fine_tuning/jobs/{job['id']}/events",
                 f"/fine_tuning/jobs/{job['id']}/checkpoints", f"/batches/{batch.json['id']}"):
        assert client.get(f"{other}{path}").status_code == 404, path
        assert client.get(f"{DP}{path}").status_code == 200, path
    assert client.post(f"{other}/fine_tuning/jobs/{job['id']}/cancel").status_code == 404
    assert client.post(f"{other}/batches/{batch.json['id']}/cancel").status_code == 404
    assert client.delete(f"{other}/fine_tuning/jobs/{job['id']}").status_code == 404
    assert client.delete(f"{other}/files/{train}").status_code == 404
    assert client.get(f"{other}/files").json["data"] == []
    assert client.get(f"{other}/fine_tuning/jobs").json["data"] == []
    assert client.get(f"{other}/batches").json["data"] == []
    refused = client.post(f"{other}/fine_tuning/jobs", json={**BODY, "training_file": train})
    assert refused.status_code == 400 and "does not exist" in refused.json["error"]["message"]
    refused = client.post(f"{other}/batches", json={"input_file_id": batch_file, "endpoint": "/chat/completions",
                                                    "completion_window": "24h"})
    assert refused.status_code == 404
    # Nothing of A was touched by B's attempts.
    assert client.get(f"{DP}/files/{train}").status_code == 200
    assert client.get(f"{DP}/fine_tuning/jobs/{job['id']}").json["status"] == "succeeded"


def test_a_fine_tuned_model_deploys_elsewhere_only_with_its_account_as_source(client):
    """ARM looks for the model in the deploying account's data plane, or in the account `properties.model.source`
    names (how a prod deployment serves what staging trained); the deployment then answers from that model."""
    train = _upload(client, _chat_lines(20))
    job = _wait(client, client.post(f"{DP}/fine_tuning/jobs", json={**BODY, "training_file": train}).json["id"])
    prod = provision_openai_account(client, "prod-openai", group="prod-rg")

    unnamed = deploy_on_account(client, "prod-openai", "faq", job["fine_tuned_model"], group="prod-rg",
                                expect_created=False)
    assert unnamed.status_code == 400 and unnamed.json["error"]["code"] == "DeploymentModelNotSupported"
    assert "not found in account 'prod-openai'" in unnamed.json["error"]["message"]
    wrong = deploy_on_account(client, "prod-openai", "faq", job["fine_tuned_model"], group="prod-rg",
                              source=account_id("prod-openai", group="prod-rg"), expect_created=False)
    assert wrong.status_code == 400 and "not found in source account 'prod-openai'" in wrong.json["error"]["message"]
    nowhere = deploy_on_account(client, "prod-openai", "faq", job["fine_tuned_model"], group="prod-rg",
                                source=account_id("never-created"), expect_created=False)
    assert nowhere.status_code == 400 and "not an existing" in nowhere.json["error"]["message"]

    deploy_on_account(client, "prod-openai", "faq", job["fine_tuned_model"], group="prod-rg",
                      source=account_id("ACCT"))  # ARM ids compare without case
    answer = client.post(f"{prod}/deployments/faq/chat/completions",
                         json={"messages": [{"role": "user", "content": "What is 7 plus 7?"}]})
    assert answer.status_code == 200 and answer.json["choices"][0]["message"]["content"] == "14"
    checkpoint = client.get(f"{DP}/fine_tuning/jobs/{job['id']}/checkpoints").json["data"][0]["id"]
    deploy_on_account(client, "prod-openai", "faq-ckpt", checkpoint, group="prod-rg", source=account_id("acct"))


def test_the_host_is_the_accounts_custom_subdomain_unique_across_subscriptions(client):
    """Azure's data-plane host is `<customSubDomainName>.openai.azure.com`: two accounts of one name in different
    subscriptions are two hosts, and their name is neither's host; a subdomain taken anywhere is refused."""
    twin_a = provision_openai_account(client, "twin-openai", subscription="11111111-0000-4000-8000-000000000000",
                                      subdomain="twin-a")
    twin_b = provision_openai_account(client, "twin-openai", subscription="22222222-0000-4000-8000-000000000000",
                                      subdomain="TWIN-B")
    assert (twin_a, twin_b) == ("/accounts/twin-a/openai", "/accounts/TWIN-B/openai")
    file_a = _upload(client, _chat_lines(12), prefix=twin_a)
    assert client.get(f"/accounts/TWIN-A/openai/files/{file_a}").status_code == 200  # DNS ignores case
    assert client.get(f"/accounts/twin-b/openai/files/{file_a}").status_code == 404
    assert client.get("/accounts/twin-openai/openai/files").status_code == 421  # a name is no host

    taken = create_openai_account(client, "third-openai", subscription="33333333-0000-4000-8000-000000000000",
                                  group="third-rg", subdomain="Twin-A")
    assert taken.status_code == 400 and taken.json["error"]["code"] == "CustomDomainInUse"
    assert client.get(f"/accounts/twin-a/openai/files/{file_a}").status_code == 200


def test_an_account_without_a_subdomain_answers_by_its_name_when_no_other_shares_it(client):
    bare = provision_openai_account(client, "bare-openai", group="bare-rg", subdomain=None)
    assert bare == "/accounts/bare-openai/openai"
    assert client.get(f"{bare}/files").status_code == 200
    provision_openai_account(client, "bare-openai", group="bare-rg2", subdomain=None)
    ambiguous = client.get(f"{bare}/files")
    assert ambiguous.status_code == 421 and "customSubDomainName" in ambiguous.json["error"]["message"]
    # A subdomain is never read as another account's name: it names its own account.
    named = provision_openai_account(client, "elsewhere-openai", group="else-rg", subdomain="bare-openai")
    assert named == bare and client.get(f"{bare}/files").json["data"] == []


def test_a_soft_deleted_account_keeps_its_data_for_a_restore_and_a_purge_erases_it(client):
    arm = {"headers": {"Authorization": "Bearer t"}, "query_string": {"api-version": "2025-09-01"}}
    path = account_id("acct")
    purge = ("/subscriptions/00000000-0000-4000-8000-000000000000/providers/Microsoft.CognitiveServices/locations/"
             "swedencentral/resourceGroups/rg/deletedAccounts/acct")
    body = {"location": "swedencentral", "kind": "OpenAI", "sku": {"name": "S0"},
            "properties": {"customSubDomainName": "acct", "restore": True}}
    kept = _upload(client, _chat_lines(12))

    assert client.delete(path, **arm).status_code == 202
    assert client.get(path, **arm).status_code == 404  # the (instant) delete is settled: soft-deleted
    assert client.put(path, json=body, **arm).status_code == 201  # restored, with its data
    assert client.get(f"{DP}/files/{kept}").status_code == 200

    assert client.delete(path, **arm).status_code == 202
    assert client.get(path, **arm).status_code == 404
    assert client.delete(purge, **arm).status_code == 200
    del body["properties"]["restore"]
    assert client.put(path, json=body, **arm).status_code == 201  # a new account under the same id: nothing of the old
    assert client.get(f"{DP}/files/{kept}").status_code == 404 and client.get(f"{DP}/files").json["data"] == []
