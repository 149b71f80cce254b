"""Azure after training, on the emulator: `deploy --gitops` writes an ASO manifest naming the real model, a
checkpoint deploys by its id, `eval --batch` is refused for a fine-tuned deployment, and `jobs wait` ends on a
paused job (exit 3) instead of waiting forever."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest
import yaml

from jobs.config.environment import load_environment
from jobs.errors import ConfigError
from jobs.providers import azure_openai
from tests.fixtures.rendered import write_dataset, write_job
from tests.integration.test_lifecycle_e2e import _azure_account

pytestmark = pytest.mark.integration
ENV = "local"
JOB = "gitops-az"


def _settings(endpoint: str, **values) -> None:
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/_emulator/openai/settings", method="POST",
                                                  data=json.dumps(values).encode(),
                                                  headers={"Content-Type": "application/json"}))


@pytest.fixture(autouse=True)
def synthetic_trees(monkeypatch):
    """This tree is written by tests.fixtures.rendered, not by the renderer, so apply and deploy would refuse it
    as unreviewed; that check is tested in tests/unit/test_hostile_apply.py and test_deploy_reviewed.py."""
    monkeypatch.setattr("jobs.apply.verify.verified", lambda env, jobs: jobs)


@pytest.fixture
def azure_job(blob_local, azure_local, tmp_path):
    for cache in (azure_openai._client, azure_openai._mgmt):
        cache.cache_clear()
    env = load_environment(ENV)
    _azure_account(env)
    manifest = write_dataset(tmp_path / "data", train=20, validation=10)
    root = tmp_path / "rendered"
    job_dir = write_job(root, ENV, JOB, "azure-openai", manifest, salt=tmp_path.name)
    name = f"gitops-{tmp_path.name[-8:].lower().replace('_', '-')}"
    (job_dir / "azure-openai-deployment.json").write_text(json.dumps({
        "deployment_name": name, "body": {"sku": {"name": "Standard", "capacity": 1}}}))
    index = json.loads((job_dir / "job.json").read_text())
    index["targets"]["azure-openai-deployment"] = "azure-openai-deployment.json"
    (job_dir / "job.json").write_text(json.dumps(index))
    return env, root, name


def test_gitops_manifest_checkpoint_deploy_and_batch_refusal(ftops, azure_job, azure_local, tmp_path):
    env, root, name = azure_job
    _settings(azure_local.endpoint, job_duration_s=1.0, file_processing_s=0.1)
    applied = ftops("apply", root, "--env", ENV, "--no-local-runner")
    assert applied.exit_code == 0, applied.stdout + applied.stderr
    waited = ftops("jobs", "wait", JOB, "--env", ENV, "--dir", root, "--interval", "0.2", "--json")
    assert waited.exit_code == 0, waited.stdout + waited.stderr
    model = json.loads(waited.stdout)[0]["model"]

    gitops = tmp_path / "gitops"
    written = ftops("deploy", JOB, "--env", ENV, "--dir", root, "--gitops", gitops, "--json")
    assert written.exit_code == 0, written.stderr
    manifest = yaml.safe_load((gitops / ENV / f"{name}.aso.yaml").read_text())
    assert manifest["kind"] == "Deployment" and manifest["spec"]["azureName"] == name
    assert manifest["spec"]["properties"]["model"] == {"format": "OpenAI", "name": model, "version": "1"}
    assert manifest["spec"]["owner"]["armId"].endswith("/accounts/ftops-local-openai")
    from azure.core.exceptions import ResourceNotFoundError
    from jobs.config.resolved import resolved_azure

    resolved = resolved_azure(env)
    with pytest.raises(ResourceNotFoundError):  # --gitops writes the manifest; it creates nothing
        azure_openai.mgmt(env).deployments.get(resolved.resource_group, resolved.openai_account, name,
                                               enforce_https=False)
    (gitops / ENV / f"{name}.aso.yaml").write_text("kind: Secret\n")
    refused = ftops("deploy", JOB, "--env", ENV, "--dir", root, "--gitops", gitops)
    assert refused.exit_code == 1 and "not overwriting" in refused.stderr + refused.stdout

    rule = {"rules": [{"method": "PUT", "path": "/deployments/", "status": 403, "code": "AuthorizationFailed",
                       "message": "The client does not have authorization to perform action "
                                  "'Microsoft.CognitiveServices/accounts/deployments/write'.", "times": 1}]}
    urllib.request.urlopen(urllib.request.Request(f"{azure_local.endpoint}/_emulator/faults", method="POST",
                                                  data=json.dumps(rule).encode(),
                                                  headers={"Content-Type": "application/json"}))
    denied = ftops("deploy", JOB, "--env", ENV, "--dir", root)
    assert denied.exit_code == 1
    assert "pipeline_principal_id 'Cognitive Services OpenAI Contributor' at account scope" in \
        (denied.stderr + denied.stdout).replace("\n", " ")

    job_id = json.loads(waited.stdout)[0]["job_id"]
    checkpoint = next(iter(azure_openai.client(env).fine_tuning.jobs.checkpoints.list(job_id))).id
    deployed = ftops("deploy", JOB, "--env", ENV, "--dir", root, "--checkpoint", checkpoint, "--json")
    assert deployed.exit_code == 0, deployed.stderr
    created = azure_openai.mgmt(env).deployments.get(resolved.resource_group, resolved.openai_account, name,
                                                     enforce_https=False)
    assert created.properties.model.name == checkpoint

    from jobs.eval.targets import build

    with pytest.raises(ConfigError, match="does not support fine-tuned models"):
        build(f"azure:{name}", env, batch=True)
    assert ftops("undeploy", JOB, "--env", ENV, "--dir", root).exit_code == 0


def test_jobs_wait_ends_on_a_paused_job(ftops, azure_job, azure_local):
    env, root, _ = azure_job
    _settings(azure_local.endpoint, job_duration_s=60.0, file_processing_s=0.1)
    applied = ftops("apply", root, "--env", ENV, "--no-local-runner", "--json")
    assert applied.exit_code == 0, applied.stdout + applied.stderr
    job_id = next(j["job_id"] for j in json.loads(applied.stdout)["jobs"] if j["job"] == JOB)
    provider = azure_openai.AzureOpenAI()
    deadline = time.monotonic() + 30
    while provider.describe(env, job_id).state != "running":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    azure_openai.client(env).fine_tuning.jobs.pause(job_id)
    assert provider.describe(env, job_id).state == "paused"
    waited = ftops("jobs", "wait", JOB, "--env", ENV, "--dir", root, "--interval", "0.2", "--timeout", "30")
    assert waited.exit_code == 3, waited.stdout + waited.stderr
    assert "paused" in waited.stderr and "resume" in waited.stderr
    azure_openai.client(env).fine_tuning.jobs.cancel(job_id)
