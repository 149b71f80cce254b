"""End to end on the emulators: upload -> plan -> apply -> plan -> apply again -> concurrent applies ->
wait (through an emulator restart) -> results -> deploy -> undeploy, plus throttling and a killed apply."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import urllib.request

import pytest

from jobs.apply import engine
from jobs.apply.rendered import load_rendered
from jobs.config.environment import load_environment
from jobs.local import emulators
from jobs.providers import azure_openai, sagemaker
from tests.fixtures.rendered import write_dataset, write_job

pytestmark = pytest.mark.integration
ENV = "local"


@pytest.fixture(autouse=True)
def synthetic_trees(monkeypatch):
    """These trees are written by tests.fixtures.rendered, not by the renderer, so `plan`/`apply` would refuse
    them as unreviewed; the check itself is tested in tests/unit/test_hostile_apply.py."""
    monkeypatch.setattr("jobs.apply.verify.verified", lambda env, jobs: jobs)
    # Nor do they have a definition to take deployment settings from (deploy reads them from the definition,
    # never from the tree). moto's endpoint instance-type list predates ml.g5; serverless is what a small model
    # uses anyway.
    monkeypatch.setattr(sagemaker, "deployment_settings", lambda job, env: {
        "serverless": {"memory_mb": 6144, "max_concurrency": 2}})


def _post(url: str, body: dict) -> None:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request).read()


def _azure_account(env) -> None:
    """What `ftops infra apply --cloud azure` creates: the resource group and the OpenAI account."""
    from azure.mgmt.cognitiveservices.models import Account, AccountProperties, Sku
    from azure.mgmt.resource.resources import ResourceManagementClient

    from jobs.clients import azure_credential
    from jobs.config.resolved import resolved_azure

    resolved = resolved_azure(env)
    groups = ResourceManagementClient(azure_credential(env), resolved.subscription_id,
                                      base_url=emulators.endpoint("azure"))
    groups.resource_groups.create_or_update(resolved.resource_group, {"location": resolved.location},
                                            enforce_https=False)
    azure_openai.mgmt(env).accounts.begin_create(
        resolved.resource_group, resolved.openai_account,
        Account(kind="OpenAI", sku=Sku(name="S0"), location=resolved.location,
                properties=AccountProperties(custom_sub_domain_name=resolved.openai_account)),
        enforce_https=False, polling_interval=0).result()


@pytest.fixture
def local(aws_buckets, blob_container, azure_local, tmp_path):
    for cache in (sagemaker._client, azure_openai._client, azure_openai._mgmt):
        cache.cache_clear()
    env = load_environment(ENV)
    _post(f"{azure_local.endpoint}/_emulator/openai/settings", {"job_duration_s": 3, "file_processing_s": 0.2})
    _azure_account(env)
    manifest = write_dataset(tmp_path / "data", train=40, validation=12)
    salt = tmp_path.name  # the emulators live for the session: fresh keys per test
    root = tmp_path / "rendered"
    for i in range(3):
        write_job(root, ENV, f"faq-az-{i}", "azure-openai", manifest, salt=salt)
        write_job(root, ENV, f"faq-sm-{i}-{salt[-8:].lower().replace('_', '-')}", "sagemaker", manifest, salt=salt)
    # Four epochs on 40 examples: the emulator's curve memorises, so results must flag overfitting.
    write_job(root, ENV, "faq-az-overfit", "azure-openai", manifest, salt=salt, body={
        "model": "gpt-4.1-mini-2025-04-14", "training_file": "ftops-file:train", "validation_file": "ftops-file:validation",
        "suffix": f"overfit-{hashlib.sha256(salt.encode()).hexdigest()[:8]}", "seed": 1, "trainingType": "standard",
        "method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 6, "batch_size": 4}}}})
    (root / ENV / "faq-az-overfit" / "azure-openai-deployment.json").write_text(
        json.dumps({"name": f"faq-{salt[-6:]}", "sku": {"name": "Standard", "capacity": 2}}))
    index = json.loads((root / ENV / "faq-az-overfit" / "job.json").read_text())
    index["targets"]["azure-openai-deployment"] = "azure-openai-deployment.json"
    (root / ENV / "faq-az-overfit" / "job.json").write_text(json.dumps(index))
    yield env, root
    for cache in (sagemaker._client, azure_openai._client, azure_openai._mgmt):
        cache.cache_clear()


def _azure_jobs_by_key(env) -> dict[str, int]:
    """Jobs per suffix (the renderer puts the idempotency key's first 8 characters in it)."""
    counts: dict[str, int] = {}
    for job in azure_openai.client(env).fine_tuning.jobs.list(limit=100):
        suffix = str((job.model_extra or {}).get("suffix") or "")
        counts[suffix] = counts.get(suffix, 0) + 1
    return counts


def test_full_lifecycle(ftops, local, tmp_path):
    env, root = local
    jobs = load_rendered(root, ENV)
    plan = json.loads(ftops("plan", root, "--env", ENV, "--json").stdout)
    assert plan["summary"]["create"] == 7

    first = ftops("apply", root, "--env", ENV, "--no-local-runner", "--json")
    assert first.exit_code == 0, first.stdout + first.stderr
    assert json.loads(first.stdout)["summary"] == {"created": 7}
    again = json.loads(ftops("plan", root, "--env", ENV, "--json").stdout)
    assert again["summary"]["create"] == 0 and again["summary"]["submitted"] == 7
    second = json.loads(ftops("apply", root, "--env", ENV, "--no-local-runner", "--json").stdout)
    assert second["summary"] == {"already-submitted": 7}

    # Two pipelines at once on new keys: still exactly one job per key.
    for job_dir in root.joinpath(ENV).glob("faq-az-[0-9]"):
        write_job(root, ENV, job_dir.name, "azure-openai", tmp_path / "data" / "manifest.json", salt="race" + tmp_path.name)
    racing = [j for j in load_rendered(root, ENV) if j.name.startswith("faq-az-") and j.name[-1].isdigit()]
    threads = [threading.Thread(target=engine.apply, args=(env, racing, engine.ApplyOptions(concurrency=3)))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts = _azure_jobs_by_key(env)
    azure_jobs = racing + [j for j in jobs if j.provider == "azure-openai"]
    assert all(counts.get(job.load_target("azure-openai")["suffix"]) == 1 for job in azure_jobs)

    waited = ftops("jobs", "wait", "--env", ENV, "--dir", root, "--interval", "0.3", "--json")
    assert waited.exit_code == 0, waited.stdout + waited.stderr
    assert {row["state"] for row in json.loads(waited.stdout)} == {"succeeded"}

    out = tmp_path / "results"
    result = ftops("jobs", "results", "faq-az-overfit", "--env", ENV, "--dir", root, "--out", out, "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (out / "metrics.csv").stat().st_size > 0 and (out / "loss.png").read_bytes()[:4] == b"\x89PNG"
    assert summary["overfitting"]["flagged"], summary["overfitting"]
    assert summary["best_checkpoint"]["id"].startswith("ftchkpt-")
    normal = json.loads(ftops("jobs", "results", "faq-az-0", "--env", ENV, "--dir", root, "--out", tmp_path / "r0",
                              "--json").stdout)
    assert not normal["overfitting"]["flagged"], normal["overfitting"]

    deployed = ftops("deploy", "faq-az-overfit", "--env", ENV, "--dir", root, "--checkpoint",
                     summary["best_checkpoint"]["id"])
    assert deployed.exit_code == 0, deployed.stderr
    assert "15 days" in deployed.stdout and "billed per hour" in deployed.stdout
    name = json.loads((root / ENV / "faq-az-overfit" / "azure-openai-deployment.json").read_text())["name"]
    chat = azure_openai.client(env).chat.completions.create(
        model=name, messages=[{"role": "user", "content": "What is 3 plus 3?"}])
    assert chat.choices[0].message.content == "6"
    sm_job = next(j for j in jobs if j.provider == "sagemaker")
    sm_deployed = json.loads(ftops("deploy", sm_job.name, "--env", ENV, "--dir", root, "--json").stdout)
    assert sm_deployed["image"].endswith("-ubuntu22.04") and "huggingface-pytorch-inference" in sm_deployed["image"]
    assert sagemaker.client(env).describe_endpoint(EndpointName=sm_deployed["endpoint"])["EndpointName"]
    for job_name in ("faq-az-overfit", sm_job.name):
        undeployed = json.loads(ftops("undeploy", job_name, "--env", ENV, "--dir", root, "--json").stdout)
        assert undeployed["removed"], undeployed
    assert json.loads(ftops("undeploy", "faq-az-overfit", "--env", ENV, "--dir", root, "--json").stdout)["removed"] == []


def test_throttled_submits_are_retried_after_retry_after(ftops, local, azure_local):
    _, root = local
    _post(f"{azure_local.endpoint}/_emulator/faults", {"rules": [
        {"method": "POST", "path": "fine_tuning/jobs$", "status": 429, "code": "TooManyRequests",
         "retry_after": 1, "times": 3}]})
    result = ftops("apply", root, "--env", ENV, "--no-local-runner", "--job", "faq-az-0", "--job", "faq-az-1",
                   "--concurrency", "1", "--json")
    assert result.exit_code == 0, result.stdout
    items = json.loads(result.stdout)["jobs"]
    assert {i["result"] for i in items} == {"created"} and sum(i["attempts"] for i in items) == 5


def test_killed_apply_then_rerun_converges_without_duplicates(local, tmp_path):
    env, root = local
    jobs = [j for j in load_rendered(root, ENV) if j.provider == "azure-openai"]
    # A child apply that dies (SIGKILL, like a cancelled runner) right after its first submit.
    script = (
        "import os, sys\n"
        "from jobs.apply import engine\nfrom jobs.apply.rendered import load_rendered\n"
        "from jobs.config.environment import load_environment\nfrom jobs.providers import azure_openai\n"
        "real = azure_openai.AzureOpenAI.submit\n"
        "def submit(self, *a, **k):\n    result = real(self, *a, **k)\n    os._exit(9)\n"
        "azure_openai.AzureOpenAI.submit = submit\n"
        f"jobs = [j for j in load_rendered(__import__('pathlib').Path({str(root)!r}), 'local') if j.provider == 'azure-openai']\n"
        "engine.apply(load_environment('local'), jobs, engine.ApplyOptions(concurrency=1))\n")
    child = subprocess.run([sys.executable, "-c", script], env=os.environ.copy(), capture_output=True, text=True)
    assert child.returncode == 9, child.stderr
    items = engine.apply(env, jobs, engine.ApplyOptions(concurrency=4))
    assert sorted(i.result for i in items).count("adopted") == 1, [(i.job, i.result, i.detail) for i in items]
    assert {i.result for i in items} <= {"adopted", "created"}
    counts = _azure_jobs_by_key(env)
    assert all(counts[j.load_target("azure-openai")["suffix"]] == 1 for j in jobs)


def test_wait_survives_an_emulator_restart(ftops, aws_local, blob_local, tmp_path, monkeypatch, spawn):
    """A restarted Azure emulator (same state dir and port) keeps the job; `jobs wait` rides through it."""
    state = tmp_path / "azure-state"
    emu = emulators.start("azure", data_dir=state, log_dir=tmp_path, tied_to_parent=True)
    try:
        monkeypatch.setenv("FTOPS_AZURE_ENDPOINT", emu.endpoint)
        for cache in (azure_openai._client, azure_openai._mgmt):
            cache.cache_clear()
        env = load_environment(ENV)
        _post(f"{emu.endpoint}/_emulator/openai/settings", {"job_duration_s": 4, "file_processing_s": 0})
        _azure_account(env)
        manifest = write_dataset(tmp_path / "data")
        write_job(tmp_path / "rendered", ENV, "faq-restart", "azure-openai", manifest, salt=tmp_path.name)
        items = engine.apply(env, load_rendered(tmp_path / "rendered", ENV), engine.ApplyOptions())
        assert items[0].result == "created", items[0].detail
        # spawn: stopped at teardown even if the restart or an assertion fails first.
        waiting = spawn([sys.executable, "-m", "jobs.cli.main", "jobs", "wait", "faq-restart", "--env", ENV,
                         "--dir", str(tmp_path / "rendered"), "--interval", "0.2", "--json"],
                        env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        emulators.stop_pid(emu.pid)
        emu = emulators.start("azure", port=emu.port, data_dir=state, log_dir=tmp_path, tied_to_parent=True)
        out, err = waiting.communicate(timeout=120)
        assert waiting.returncode == 0, err
        assert json.loads(out)[0]["state"] == "succeeded"
    finally:
        emulators.stop_pid(emu.pid)
        for cache in (azure_openai._client, azure_openai._mgmt):
            cache.cache_clear()


def test_jobs_list_status_events_and_cancel(ftops, local, azure_local):
    env, root = local
    # A long job, so that it is still running when we cancel it.
    _post(f"{azure_local.endpoint}/_emulator/openai/settings", {"job_duration_s": 60, "file_processing_s": 0.2})
    job_dir = root / ENV / "faq-az-0"
    applied = ftops("apply", job_dir.parent, "--env", ENV, "--no-local-runner", "--json")
    assert applied.exit_code == 0, applied.stdout + applied.stderr
    job_id = next(j["job_id"] for j in json.loads(applied.stdout)["jobs"] if j["job"] == "faq-az-0")

    listed = json.loads(ftops("jobs", "list", "--env", ENV, "--json").stdout)
    assert job_id in json.dumps(listed)
    status = json.loads(ftops("jobs", "status", job_id, "--env", ENV, "--dir", root, "--json").stdout)
    assert status["state"] not in {"succeeded", "failed", "cancelled"}
    events = json.loads(ftops("jobs", "events", job_id, "--env", ENV, "--dir", root, "--json").stdout)
    assert events, "a submitted job has events"

    cancelled = ftops("jobs", "cancel", job_id, "--env", ENV, "--dir", root, "--json")
    assert cancelled.exit_code == 0, cancelled.stdout + cancelled.stderr
    status = json.loads(ftops("jobs", "status", job_id, "--env", ENV, "--dir", root, "--json").stdout)
    assert status["state"] == "cancelled"
    waited = ftops("jobs", "wait", job_id, "--env", ENV, "--dir", root, "--interval", "0.2", "--json")
    assert waited.exit_code == 1, "waiting on a cancelled job reports it as not succeeded"
