"""`ftops local up|status|down` really starts the emulators, records them, and stops them."""

from __future__ import annotations

import json
import os

import boto3
import pytest

from jobs.local import emulators

pytestmark = pytest.mark.integration


@pytest.fixture
def stops_what_it_starts(isolated_state):
    """`local up` starts emulators that outlive the command: stop them even when an assertion fails first."""
    yield
    emulators.down()


def test_local_up_status_down(ftops, isolated_state, stops_what_it_starts):
    up = ftops("local", "up", "--json")
    assert up.exit_code == 0, up.stderr
    report = json.loads(up.stdout)
    assert report["moto"]["running"] and report["azurite"]["running"]
    assert report["moto"]["endpoint"].startswith("http://localhost:")
    state = json.loads((isolated_state / "local.json").read_text())
    assert set(state) >= {"moto", "azurite"}

    s3 = boto3.client("s3", endpoint_url=report["moto"]["endpoint"], region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket="ftops-probe")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["ftops-probe"]

    again = json.loads(ftops("local", "up", "--json").stdout)
    assert again["moto"]["pid"] == report["moto"]["pid"], "up must keep emulators that already run"

    down = ftops("local", "down", "--json")
    assert set(json.loads(down.stdout)["stopped"]) >= {"moto", "azurite"}
    for entry in state.values():
        with pytest.raises(ProcessLookupError):
            os.kill(entry["pid"], 0)
    assert ftops("local", "status").exit_code == 1


def test_endpoint_without_running_emulator_is_one_clear_error(isolated_state):
    from jobs.errors import FtopsError

    with pytest.raises(FtopsError, match="not running.*ftops local up"):
        emulators.endpoint("moto")
