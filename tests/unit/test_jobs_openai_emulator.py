"""The Azure OpenAI data-plane emulator: what Azure validates, the job lifecycle, results and chat."""

from __future__ import annotations

import base64
import io
import json
import threading
import time

import pytest
from flask import Flask

from jobs.local.azure_emulator import faults, openai as openai_bp


def _app(state_dir):
    try:
        from jobs.local.azure_emulator.app import create_app
    except ImportError:  # the ARM framework builds the full app; the blueprint needs only store + faults
        app = Flask("emulator")
        app.config["FTOPS_STATE_DIR"] = str(state_dir)
        app.extensions.update(ftops_stores={}, ftops_stores_lock=threading.Lock(), ftops_faults=faults.Faults())
        app.before_request(faults.intercept)
        app.register_blueprint(faults.bp)
        app.register_blueprint(openai_bp.bp)
        return app
    return create_app(state_dir, op_delay_s=0)


@pytest.fixture
def client(tmp_path):
    app = _app(tmp_path)
    client = app.test_client()
    client.post("/_emulator/openai/settings", json={"job_duration_s": 0.4, "file_processing_s": 0})
    return client


def _chat_lines(n: int) -> bytes:
    return b"".join(json.dumps({"messages": [{"role": "user", "content": f"What is {i} plus {i}?"},
                                             {"role": "assistant", "content": f"{2 * i}"}]}).encode() + b"\n"
                    for i in range(n))


def _upload(client, content: bytes, name="train.jsonl"):
    response = client.post("/openai/files", data={"purpose": "fine-tune", "file": (io.BytesIO(content), name)},
                           content_type="multipart/form-data")
    assert response.status_code == 201, response.json
    return response.json["id"]


def _wait(client, job_id, states=("succeeded", "failed", "cancelled")):
    for _ in range(100):
        job = client.get(f"/openai/fine_tuning/jobs/{job_id}").json
        if job["status"] in states:
            return job
        time.sleep(0.05)
    raise AssertionError(job)


BODY = {"model": "gpt-4.1-mini-2025-04-14", "suffix": "faq", "trainingType": "standard",
        "method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}}}


def test_job_runs_to_success_with_events_checkpoints_and_base64_results(client):
    train, valid = _upload(client, _chat_lines(40)), _upload(client, _chat_lines(12), "valid.jsonl")
    created = client.post("/openai/fine_tuning/jobs", json={**BODY, "training_file": train, "validation_file": valid})
    assert created.status_code == 201 and created.json["status"] == "pending"
    job = _wait(client, created.json["id"])
    assert job["status"] == "succeeded"
    assert job["fine_tuned_model"].startswith("gpt-4.1-mini-2025-04-14.ft-") and job["fine_tuned_model"].endswith("-faq")
    events = client.get(f"/openai/fine_tuning/jobs/{job['id']}/events?limit=1000").json["data"]
    messages = [e["message"] for e in reversed(events)]
    assert messages[0] == "Job entered status pending" and "successfully completed" in messages[-1]
    assert any(e["type"] == "metrics" for e in events)
    checkpoints = client.get(f"/openai/fine_tuning/jobs/{job['id']}/checkpoints").json["data"]
    assert len(checkpoints) == 2 and all(":ckpt-step-" in c["fine_tuned_model_checkpoint"] for c in checkpoints)
    raw = client.get(f"/openai/files/{job['result_files'][0]}/content").data
    csv = base64.b64decode(raw).decode().splitlines()
    assert csv[0].startswith("step,train_loss,") and len(csv) > 2


@pytest.mark.parametrize(("change", "message"), [
    ({"model": "gpt-3.5-turbo-0613"}, "not fine-tunable"),
    ({"suffix": "this-suffix-is-far-too-long"}, "suffix"),
    ({"training_file": "file-missing"}, "does not exist"),
])
def test_create_rejects_what_azure_rejects(client, change, message):
    train = _upload(client, _chat_lines(20))
    response = client.post("/openai/fine_tuning/jobs", json={**BODY, "training_file": train, **change})
    assert response.status_code == 400 and message in response.json["error"]["message"]


def test_the_account_region_must_offer_the_training_type(client):
    from jobs.local.azure_emulator.store import get_store

    with client.application.app_context(), get_store("arm").transaction() as data:
        data["accounts"] = {"weu": {"name": "weu-openai", "kind": "OpenAI", "location": "westeurope"}}
    train = _upload(client, _chat_lines(20))
    response = client.post("/accounts/weu-openai/openai/fine_tuning/jobs", json={**BODY, "training_file": train})
    assert response.status_code == 400
    assert "cannot be fine-tuned with standard training in westeurope" in response.json["error"]["message"]
    other = client.post("/accounts/weu-openai/openai/fine_tuning/jobs",
                        json={**BODY, "training_file": train, "trainingType": "globalstandard"})
    assert other.status_code == 400, "westeurope offers no GlobalStandard fine-tuning for this model either"


def test_too_few_examples_and_unprocessed_files_are_refused(client):
    small = _upload(client, _chat_lines(5))
    response = client.post("/openai/fine_tuning/jobs", json={**BODY, "training_file": small})
    assert response.status_code == 400 and "at least 10" in response.json["error"]["message"]
    client.post("/_emulator/openai/settings", json={"file_processing_s": 60})
    pending = _upload(client, _chat_lines(20))
    assert client.get(f"/openai/files/{pending}").json["status"] == "pending"
    response = client.post("/openai/fine_tuning/jobs", json={**BODY, "training_file": pending})
    assert "not processed" in response.json["error"]["message"]


def test_a_broken_file_ends_in_error_status(client):
    bad = _upload(client, b'{"messages": []}\nnot json\n')
    file = client.get(f"/openai/files/{bad}").json
    assert file["status"] == "error" and "line 2" in file["status_details"]


def test_cancel_and_list_pagination(client):
    client.post("/_emulator/openai/settings", json={"job_duration_s": 60})
    train = _upload(client, _chat_lines(20))
    ids = [client.post("/openai/fine_tuning/jobs", json={**BODY, "training_file": train}).json["id"] for _ in range(5)]
    cancelled = client.post(f"/openai/fine_tuning/jobs/{ids[0]}/cancel").json
    assert cancelled["status"] == "cancelled"
    assert client.post(f"/openai/fine_tuning/jobs/{ids[0]}/cancel").status_code == 400
    seen, after = [], None
    while True:
        page = client.get("/openai/fine_tuning/jobs", query_string={"limit": 2, **({"after": after} if after else {})}).json
        seen += [job["id"] for job in page["data"]]
        if not page["has_more"]:
            break
        after = page["data"][-1]["id"]
    assert seen == list(reversed(ids))


def test_injected_throttling_answers_429_with_retry_after(client):
    client.post("/_emulator/faults", json={"rules": [{"method": "POST", "path": "fine_tuning/jobs$", "status": 429,
                                                      "retry_after": 2, "code": "tooManyRequests"}]})
    train = _upload(client, _chat_lines(20))
    throttled = client.post("/openai/fine_tuning/jobs", json={**BODY, "training_file": train})
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "2"
    assert client.post("/openai/fine_tuning/jobs", json={**BODY, "training_file": train}).status_code == 201


def test_chat_completion_answers_from_the_training_data(client, monkeypatch):
    train = _upload(client, _chat_lines(20))
    job = _wait(client, client.post("/openai/fine_tuning/jobs", json={**BODY, "training_file": train}).json["id"])
    monkeypatch.setattr(openai_bp, "_deployment_model", lambda name: job["fine_tuned_model"] if name == "faq" else None)
    answer = client.post("/openai/deployments/faq/chat/completions",
                         json={"messages": [{"role": "user", "content": "What is 7 plus 7?"}]}).json
    assert answer["choices"][0]["message"]["content"] == "14"
    assert client.post("/openai/deployments/nope/chat/completions", json={"messages": []}).status_code == 404
