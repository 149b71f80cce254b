"""`ftops preflight --env local` against the emulators (moto server, the ftops Azure emulator), and the cheap
preflight `ftops apply` runs first. Every AWS operation and every Azure HTTP method is recorded: reads only."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

READ_PREFIXES = ("Get", "List", "Describe", "Head", "Simulate")

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def recorded(monkeypatch):
    """Every botocore operation and ARM method preflight's clients send."""
    import jobs.clients
    from jobs.preflight import azure as azure_checks

    calls: dict[str, list[str]] = {"aws": [], "azure": []}
    real_client = jobs.clients.aws_client

    def recording_client(env, service, **config):
        client = real_client(env, service, **config)
        client.meta.events.register("before-parameter-build.*.*",
                                    lambda model, **_: calls["aws"].append(f"{service}:{model.name}"))
        return client

    monkeypatch.setattr(jobs.clients, "aws_client", recording_client)
    real_call = azure_checks.ArmReader.__call__

    def recording_call(self, path, api_version):
        try:
            return real_call(self, path, api_version)
        finally:
            calls["azure"][:] = self.methods

    monkeypatch.setattr(azure_checks.ArmReader, "__call__", recording_call)
    return calls


def test_local_preflight_reports_each_source_and_blocks_on_an_undeployed_stack(ftops, project, aws_local,
                                                                                azure_local, blob_local, recorded):
    assert ftops("infra", "apply", "--cloud", "azure", "--env", "local", "--yes").exit_code == 0
    result = ftops("preflight", "--env", "local", "--json")
    report = json.loads(result.stdout)
    rows = {(r["check"], r["job"].split("-")[0]): r for r in report["checks"]}
    assert result.exit_code == 1 and report["blocked"]
    # The AWS stack was never deployed on this moto server: named, with the command that fixes it.
    assert rows[("stack", "")]["status"] == "block" and rows[("stack", "")]["fix"] == "ftops infra deploy --env local"
    quota = rows[("quota", "helpdesk")]
    assert quota["status"] == "ok" and "aws.quotas" in quota["source"]
    assert rows[("permission", "")]["status"] == "skip"
    assert rows[("azure-permission", "")]["status"] == "skip"
    assert rows[("azure-model", "helpdesk")]["status"] == "ok"
    assert rows[("azure-quota", "helpdesk")]["status"] == "ok"
    assert {r["status"] for r in report["checks"] if r["check"] == "azure-network"} == {"ok"}
    assert recorded["aws"] and all(op.split(":")[1].startswith(READ_PREFIXES) for op in recorded["aws"])
    assert recorded["azure"] and set(recorded["azure"]) == {"GET"}


def test_apply_runs_the_cheap_preflight_first_unless_skipped(ftops, project, aws_local, azure_local, tmp_path,
                                                            monkeypatch):
    project.edit_environment("local", "ml.g5.2xlarge for spot training job usage: 4",
                             "ml.g5.2xlarge for spot training job usage: 0")
    # apply re-checks the cost on facts, from the split files: the real prepared dataset, not a bare manifest
    prepared = project.root / "datasets/it-helpdesk/prepared"
    shutil.rmtree(prepared)
    shutil.copytree(REPO / "datasets/it-helpdesk/prepared", prepared)
    out = tmp_path / "rendered"
    assert ftops("render", "--env", "local", "--out", out).exit_code == 0
    submitted = []
    monkeypatch.setattr("jobs.apply.engine.apply", lambda env, jobs, options, on_done=None: submitted.append(jobs) or [])

    blocked = ftops("apply", out, "--env", "local")
    assert blocked.exit_code == 1 and not submitted
    assert "Preflight blocks this apply" in blocked.stderr
    as_json = ftops("apply", out, "--env", "local", "--json")
    [row] = [r for r in json.loads(as_json.stdout)["preflight"]["checks"] if r["status"] == "block"]
    assert as_json.exit_code == 1 and not submitted
    assert row["check"] == "quota" and "spot training job usage" in row["detail"] and "aws.quotas" in row["fix"]
    skipped = ftops("apply", out, "--env", "local", "--skip-preflight")
    assert skipped.exit_code == 0 and len(submitted) == 1
