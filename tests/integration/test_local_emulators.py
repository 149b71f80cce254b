"""`ftops local up|status|down` really starts the emulators, records them, and stops them."""

from __future__ import annotations

import json
import os

import boto3
import pytest

from jobs.local import emulators
from jobs.processes import pid_alive

pytestmark = pytest.mark.integration


@pytest.fixture
def stops_what_it_starts(isolated_state):
    """`local up` starts emulators that outlive the command: stop them even when an assertion fails first."""
    yield
    emulators.down()


@pytest.mark.timeout(300)
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
    assert set(json.loads(down.stdout)["stopped"]) >= {"moto", "azurite"} and json.loads(down.stdout)["skipped"] == []
    for entry in state.values():
        with pytest.raises(ProcessLookupError):
            os.kill(entry["pid"], 0)
    assert ftops("local", "status").exit_code == 1


def test_endpoint_without_running_emulator_is_one_clear_error(isolated_state):
    from jobs.errors import FtopsError

    with pytest.raises(FtopsError, match="not running.*ftops local up"):
        emulators.endpoint("moto")


@pytest.mark.timeout(400)
def test_moto_state_survives_down_and_up(ftops, isolated_state, stops_what_it_starts):
    """The stack, the key, datasets, models and ledger objects, training jobs: all back after a restart."""
    first = json.loads(ftops("local", "up", "--json").stdout)["moto"]
    assert first["restored"] == {"replayed": 0}
    endpoint = first["endpoint"]

    def client(service):
        return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    s3, kms, cfn, sagemaker = client("s3"), client("kms"), client("cloudformation"), client("sagemaker")
    s3.create_bucket(Bucket="ftops-local-datasets")
    s3.put_object(Bucket="ftops-local-datasets", Key="datasets/abc/train.jsonl", Body=b'{"x": 1}\n')
    s3.put_object(Bucket="ftops-local-datasets", Key="ledger/local/job.json", Body=b"{}")
    key_id = kms.create_key(Description="ftops")["KeyMetadata"]["KeyId"]
    template = {"Resources": {"Key": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": {
        "Version": "2012-10-17", "Statement": []}}}}}
    cfn.create_stack(StackName="ftops-local", TemplateBody=json.dumps(template))
    stack_key = cfn.describe_stack_resources(StackName="ftops-local")["StackResources"][0]["PhysicalResourceId"]
    sagemaker.create_training_job(
        TrainingJobName="helpdesk-qwen-lora-local-1", RoleArn="arn:aws:iam::123456789012:role/x",
        AlgorithmSpecification={"TrainingImage": "x", "TrainingInputMode": "File"},
        OutputDataConfig={"S3OutputPath": "s3://ftops-local-datasets/out"},
        ResourceConfig={"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": 60})

    assert ftops("local", "down", "--json").exit_code == 0
    again = json.loads(ftops("local", "up", "--json").stdout)["moto"]
    assert again["restored"]["replayed"] > 0 and again["restored"]["lost"] == {}
    assert again["endpoint"] == endpoint, "the port is reused, so resolved endpoints stay valid"

    s3, kms, cfn, sagemaker = client("s3"), client("kms"), client("cloudformation"), client("sagemaker")
    body = s3.get_object(Bucket="ftops-local-datasets", Key="datasets/abc/train.jsonl")["Body"].read()
    assert body == b'{"x": 1}\n'
    assert s3.head_object(Bucket="ftops-local-datasets", Key="ledger/local/job.json")
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyId"] == key_id
    assert cfn.describe_stack_resources(StackName="ftops-local")["StackResources"][0]["PhysicalResourceId"] == stack_key
    assert sagemaker.describe_training_job(TrainingJobName="helpdesk-qwen-lora-local-1")


def test_up_names_what_did_not_come_back(isolated_state, stops_what_it_starts):
    from jobs.local import moto_state

    emulators.up(["moto"])
    emulators.down()
    # An inventory that lists an object the recording never created: `up` must say so, not claim success.
    inventory = isolated_state / "data" / "moto" / moto_state.INVENTORY
    inventory.write_text(json.dumps({"s3_objects": ['s3://gone/key "etag"'], "kms_keys": []}))
    restored: dict = {}
    emulators.up(["moto"], restored=restored)
    assert restored["moto"]["replayed"] > 0
    assert restored["moto"]["lost"] == {"s3_objects": ['s3://gone/key "etag"']}


def test_down_leaves_a_reused_pid_alone(ftops, isolated_state, spawn):
    """A pid in local.json that now belongs to another program is not signalled (nor its process group)."""
    import subprocess
    import sys

    other = spawn([sys.executable, "-c", "import time; time.sleep(60)"], stdout=subprocess.DEVNULL)
    state = {"moto": {"name": "moto", "pid": other.pid, "port": 1, "endpoint": "http://localhost:1", "log": "x",
                      "command": [sys.executable, "-m", "moto.server", "-p", "1"], "started": 1.0}}
    (isolated_state / "local.json").write_text(json.dumps(state))
    result = json.loads(ftops("local", "down", "--json").stdout)
    assert result == {"stopped": [], "skipped": ["moto"]}
    assert other.poll() is None, "down signalled a process it did not start"


@pytest.mark.parametrize("content", ["{not json", "[]", '{"moto": 5}', '{"moto": {"pid": "1"}}',
                                     '{"moto": {"name": "moto", "pid": -1, "port": 1, "endpoint": "e", "log": "l"}}'])
def test_a_malformed_state_file_is_one_line(ftops, isolated_state, content):
    (isolated_state / "local.json").write_text(content)
    for command in ("status", "down", "up"):
        result = ftops("local", command)
        assert result.exit_code == 1 and "local.json" in result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) <= 2


def test_an_entry_from_an_older_ftops_is_stopped_only_if_it_is_that_emulator(ftops, isolated_state, spawn):
    """Entries without command line and start time: the live pid must run the emulator's program on its port."""
    import subprocess
    import sys

    other = spawn([sys.executable, "-c", "import time; time.sleep(60)"], stdout=subprocess.DEVNULL)
    state = {"moto": {"name": "moto", "pid": other.pid, "port": 5555, "endpoint": "http://localhost:5555",
                      "log": "x"}}
    (isolated_state / "local.json").write_text(json.dumps(state))
    assert json.loads(ftops("local", "down", "--json").stdout) == {"stopped": [], "skipped": ["moto"]}
    assert other.poll() is None

    from jobs.local import emulators as emu_module

    with emu_module.running("moto") as moto:
        legacy = {"moto": {"name": "moto", "pid": moto.pid, "port": moto.port, "endpoint": moto.endpoint, "log": "x"}}
        (isolated_state / "local.json").write_text(json.dumps(legacy))
        assert json.loads(ftops("local", "down", "--json").stdout)["stopped"] == ["moto"]


def test_up_prints_what_was_not_restored(ftops, monkeypatch):
    def fake_up(names=None, on_started=None, restored=None):
        restored["moto"] = {"replayed": 12, "lost": {"s3_objects": ["s3://b/k \"e\""]}}
        return {}

    monkeypatch.setattr(emulators, "up", fake_up)
    monkeypatch.setattr(emulators, "status", lambda: {"moto": {"purpose": "AWS", "running": True, "endpoint": "e",
                                                                "pid": 1, "port": 1, "log": "l"}})
    result = ftops("local", "up")
    assert result.exit_code == 0
    assert "replayed 12 recorded requests" in result.stdout
    assert 'NOT restored (s3_objects): s3://b/k "e"' in result.stderr


@pytest.mark.timeout(120)
def test_a_failed_up_stops_what_it_started(ftops, isolated_state, stops_what_it_starts, monkeypatch):
    """azurite missing used to leave moto running with no table: `local status` then showed a half-started set."""
    from jobs.errors import FtopsError

    def missing(tool):
        raise FtopsError(f"{tool} is not installed", hint="run `npm ci` in the project root (make does it)")

    real_start, started = emulators.start, []
    monkeypatch.setattr(emulators, "start", lambda *a, **k: started.append(real_start(*a, **k)) or started[-1])
    monkeypatch.setattr(emulators, "_node_bin", missing)
    result = ftops("local", "up")
    assert result.exit_code == 1 and "azurite-blob is not installed" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert [emu.name for emu in started] == ["moto"]
    assert not pid_alive(started[0].pid)
    assert emulators.read_state() == {}
    status = json.loads(ftops("local", "status", "--json").stdout)
    assert not any(entry["running"] for entry in status.values())


def test_node_tools_are_found_on_path_when_the_checkout_has_none(tmp_path, monkeypatch):
    from jobs.errors import FtopsError

    monkeypatch.setattr(emulators.paths, "project_root", lambda: tmp_path / "fork")  # no node_modules
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(FtopsError, match="azurite-blob is not installed.*npm ci"):
        emulators._node_bin("azurite-blob")
    tool = bin_dir / "azurite-blob"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    assert emulators._node_bin("azurite-blob") == str(tool)
