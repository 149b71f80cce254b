"""The session-wide check of emulator exchanges against Azure's REST specs can fail: it catches what the old
emulator answered (OpenAI's job states, ARM's non-existent `Updating`, non-spec error codes)."""

from __future__ import annotations

import json

from tests.fixtures.azure_spec import problems
from tests.fixtures.contracts import contracts_dir

SUB = "/subscriptions/00000000-0000-4000-8000-000000000000"
ACCOUNT = f"{SUB}/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/acct"


def _job(status: str) -> dict:
    return {"method": "GET", "path": "/openai/fine_tuning/jobs/ftjob-1", "status": 200, "request": None,
            "response": {"id": "ftjob-1", "object": "fine_tuning.job", "model": "gpt-4.1-mini-2025-04-14",
                         "training_file": "file-1", "status": status, "created_at": 1}}


def test_old_job_states_are_caught_and_spec_states_pass():
    contracts_dir("azure")
    assert problems(_job("validating_files")) and problems(_job("queued"))
    assert problems(_job("paused")) == [] and problems(_job("pending")) == []


def test_an_updating_account_and_an_unknown_error_code_are_caught():
    contracts_dir("azure")
    account = {"method": "GET", "path": ACCOUNT, "status": 200, "request": None,
               "response": {"location": "swedencentral", "properties": {"provisioningState": "Updating"}}}
    assert any("Updating" in p for p in problems(account))
    account["response"]["properties"]["provisioningState"] = "Accepted"
    assert problems(account) == []
    error = {"method": "GET", "path": "/accounts/a/openai/files/file-x", "status": 404, "request": None,
             "response": {"error": {"code": "fileNotFound", "message": "no"}}}
    assert problems(error)


def test_accepted_requests_are_held_to_the_spec_too():
    contracts_dir("azure")
    put = {"method": "PUT", "path": ACCOUNT, "status": 201, "response": None,
           "request": {"location": "x", "properties": {"publicNetworkAccess": "Sometimes"}}}
    assert problems(put)
    assert problems({**put, "status": 400}) == []  # refusing a bad body is the emulator doing its job


def test_the_emulator_data_plane_error_codes_are_the_spec_enum():
    from jobs.local.azure_emulator.faults import DATA_PLANE_CODES

    spec = json.loads(contracts_dir("azure", "data-plane-2025-04-01-preview.azureopenai.json").read_text())
    assert DATA_PLANE_CODES == set(spec["definitions"]["ErrorCode"]["enum"])
