"""The ARM emulator's long-running operations: a settled operation stays settled whatever the request that settled
it answers."""

from __future__ import annotations

import time
import types

import orjson
import pytest

from jobs.local.azure_emulator import arm
from jobs.local.azure_emulator.app import create_app
from tests.fixtures.emulators import account_id, provision_openai_account

HEADERS = {"Authorization": "Bearer emulator-token"}
QUERY = {"api-version": "2025-09-01"}


@pytest.fixture
def clock(monkeypatch):
    """ARM's clock, moved by the test (the emulator settles operations lazily, from the time of each request)."""
    now = [1_800_000_000.0]
    monkeypatch.setattr(arm, "time", types.SimpleNamespace(time=lambda: now[0], strftime=time.strftime,
                                                           gmtime=time.gmtime))
    return now


def test_a_finished_delete_settled_by_a_request_that_answers_404_stays_settled(tmp_path, clock):
    """The GET that first sees a finished account delete answers 404 (the account is gone); the delete's end, its
    soft-deleted record and the removal are kept (on disk too), not rolled back with the error answer, so the
    operation's status says it ended when that GET saw it end, not at some later request."""
    client = create_app(tmp_path, op_delay_s=5).test_client()
    provision_openai_account(client, "acct")
    clock[0] += 10  # the account's create has finished
    path = account_id("acct")
    created = client.get(path, headers=HEADERS, query_string=QUERY).json
    assert created["properties"]["provisioningState"] == "Succeeded"

    deleted = client.delete(path, headers=HEADERS, query_string=QUERY)
    assert deleted.status_code == 202
    status_url = deleted.headers["Azure-AsyncOperation"].split("://", 1)[1].split("/", 1)[1]
    clock[0] += 10  # the delete has finished: the next request settles it
    seen_gone_at = clock[0]
    gone = client.get(path, headers=HEADERS, query_string=QUERY)
    assert gone.status_code == 404 and gone.json["error"]["code"] == "ResourceNotFound"

    state = orjson.loads((tmp_path / "arm.json").read_bytes())  # what a restarted emulator would load
    op = next(o for o in state["operations"].values() if o["action"] == "delete")
    assert op["status"] == "Succeeded" and op["end_time"] == seen_gone_at
    assert path.lower() not in state["resources"] and path.lower() in state["deleted_accounts"]

    clock[0] += 3600
    status = client.get(f"/{status_url}", headers=HEADERS).json
    assert status["status"] == "Succeeded"
    assert status["endTime"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seen_gone_at))


def test_an_error_answer_still_rolls_back_the_requests_own_changes(tmp_path, clock):
    """Only settling is kept: a refused request (a deployment PUT over quota, the first request after the
    account's create finished) leaves no deployment, and the create it settled stays settled."""
    client = create_app(tmp_path, op_delay_s=5).test_client()
    provision_openai_account(client, "acct")
    clock[0] += 10
    before = orjson.loads((tmp_path / "arm.json").read_bytes())
    refused = client.put(f"{account_id('acct')}/deployments/d", headers=HEADERS, query_string=QUERY,
                         json={"sku": {"name": "GlobalStandard", "capacity": 1000000},
                               "properties": {"model": {"format": "OpenAI", "name": "gpt-4.1-mini",
                                                        "version": "2025-04-14"}}})
    assert refused.status_code == 400 and refused.json["error"]["code"] == "InsufficientQuota"
    after = orjson.loads((tmp_path / "arm.json").read_bytes())
    assert after["resources"].keys() == before["resources"].keys()
    assert after["resources"][account_id("acct").lower()]["properties"]["provisioningState"] == "Succeeded"
