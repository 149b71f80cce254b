"""Azure after training, on the emulator: `deploy --gitops` writes an ASO manifest naming the real model, a
checkpoint deploys by its id, `eval --batch` is refused for a fine-tuned deployment, and `jobs wait` ends on a
paused job (exit 3) instead of waiting forever."""

from __future__ import annotations

import json
import shutil
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from jobs.config.environment import load_environment
from jobs.errors import ConfigError
from jobs.providers import azure_openai
from tests.fixtures.emulators import container_on_azurite
from tests.integration.test_lifecycle_e2e import _azure_account

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
ENV = "local"


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
def azure_job(project, ftops, blob_local, azure_local, tmp_path):
    """A real render (apply verifies that what it submits is what `ftops render` produced) of the example Azure
    definition under a name of this test's own (the emulators live for the session), with the real split files."""
    for cache in (azure_openai._client, azure_openai._mgmt):
        cache.cache_clear()
    prepared = project.root / "datasets/it-helpdesk/prepared"
    shutil.rmtree(prepared)
    shutil.copytree(REPO / "datasets/it-helpdesk/prepared", prepared)
    suffix = "".join(c for c in tmp_path.name.lower() if c.isalnum())[-20:]
    job = f"gitops-{suffix[-8:]}"
    # The key comes from what is trained, not the job's name: a container of this test's own keeps its ledger apart.
    local = project.root / "environments/local.yaml"
    local.write_text(local.read_text().replace("data:\n", f"data:\n  blob_container: ftops-{suffix}\n"))
    load_environment.cache_clear()
    data = project.definition("helpdesk-gpt41mini")
    data["name"] = job
    data["azure"]["suffix"] = suffix[-8:]  # Azure finds a submitted job by its suffix: one of this test's own
    project.write_definition(data)
    env = load_environment(ENV)
    _azure_account(env)
    container_on_azurite(ENV)  # what `ftops infra apply --cloud azure` makes, with the account
    root = tmp_path / "rendered"
    rendered = ftops("render", "--env", ENV, "--job", job, "--out", root)
    assert rendered.exit_code == 0, rendered.stderr
    [job_dir] = (root / ENV).glob(f"{job}*/")
    name = json.loads((job_dir / "azure-openai-deployment.json").read_text())["deployment_name"]
    return env, root, job, name


def test_gitops_manifest_checkpoint_deploy_and_batch_refusal(ftops, azure_job, azure_local, tmp_path):
    env, root, job, name = azure_job
    _settings(azure_local.endpoint, job_duration_s=1.0, file_processing_s=0.1)
    applied = ftops("apply", root, "--env", ENV, "--no-local-runner")
    assert applied.exit_code == 0, applied.stdout + applied.stderr
    waited = ftops("jobs", "wait", job, "--env", ENV, "--dir", root, "--interval", "0.2", "--json")
    assert waited.exit_code == 0, waited.stdout + waited.stderr
    model = json.loads(waited.stdout)[0]["model"]

    gitops = tmp_path / "gitops"
    written = ftops("deploy", job, "--env", ENV, "--dir", root, "--gitops", gitops, "--json")
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
    refused = ftops("deploy", job, "--env", ENV, "--dir", root, "--gitops", gitops)
    assert refused.exit_code == 1 and "not overwriting" in refused.stderr + refused.stdout
    # Mistakes with the options: one line each, nothing written and nothing deployed.
    (tmp_path / "not-a-dir").write_text("x")
    in_the_way = tmp_path / "in-the-way"
    (in_the_way).mkdir()
    (in_the_way / ENV).write_text("x")  # a file where DIR/<env>/ goes (was a NotADirectoryError traceback)
    for args, needle in (((("--gitops", tmp_path / "not-a-dir")), "--gitops: is not a directory"),
                         (("--gitops", in_the_way), "--gitops: a file is in the way"),
                         (("--checkpoint", ""), "--checkpoint: is empty")):  # an unset variable: not the final model
        mistaken = ftops("deploy", job, "--env", ENV, "--dir", root, *args)
        assert mistaken.exit_code == 1 and needle in mistaken.stderr, (args, mistaken.stdout, mistaken.stderr)
        assert len(mistaken.stderr.strip().splitlines()) == 1, mistaken.stderr
    assert (in_the_way / ENV).read_text() == "x"
    with pytest.raises(ResourceNotFoundError):
        azure_openai.mgmt(env).deployments.get(resolved.resource_group, resolved.openai_account, name,
                                               enforce_https=False)

    rule = {"rules": [{"method": "PUT", "path": "/deployments/", "status": 403, "code": "AuthorizationFailed",
                       "message": "The client does not have authorization to perform action "
                                  "'Microsoft.CognitiveServices/accounts/deployments/write'.", "times": 1}]}
    urllib.request.urlopen(urllib.request.Request(f"{azure_local.endpoint}/_emulator/faults", method="POST",
                                                  data=json.dumps(rule).encode(),
                                                  headers={"Content-Type": "application/json"}))
    denied = ftops("deploy", job, "--env", ENV, "--dir", root)
    assert denied.exit_code == 1
    assert "pipeline_principal_id 'Cognitive Services OpenAI Contributor' at account scope" in \
        (denied.stderr + denied.stdout).replace("\n", " ")

    job_id = json.loads(waited.stdout)[0]["job_id"]
    checkpoint = next(iter(azure_openai.client(env).fine_tuning.jobs.checkpoints.list(job_id))).id
    deployed = ftops("deploy", job, "--env", ENV, "--dir", root, "--checkpoint", checkpoint, "--json")
    assert deployed.exit_code == 0, deployed.stderr
    created = azure_openai.mgmt(env).deployments.get(resolved.resource_group, resolved.openai_account, name,
                                                     enforce_https=False)
    assert created.properties.model.name == checkpoint

    from jobs.eval.targets import build

    with pytest.raises(ConfigError, match="does not support fine-tuned models"):
        build(f"azure:{name}", env, batch=True)

    # The evaluation is recorded on the trained model's record (which approval and promotion trust): while
    # the deployment serves a checkpoint it is refused before any request; once the final model serves, its
    # answers are asked afresh, not taken from what the deployment served before.
    from jobs import paths

    _base_deployment(env, "grader")  # the base model `local` declares (`ftops infra apply --cloud azure`)
    shutil.copytree(REPO / "datasets/out-of-domain", paths.project_root() / "datasets/out-of-domain")
    out = tmp_path / "eval"
    refused = ftops("eval", job, "--env", ENV, "--no-judge", "--out", out)
    assert refused.exit_code == 1, refused.stdout + refused.stderr
    assert f"serves {checkpoint}, not {model}" in refused.stderr and "ftops deploy" in refused.stderr
    assert not (out / "answers.jsonl").is_file() or not (out / "answers.jsonl").read_text().strip()
    assert ftops("deploy", job, "--env", ENV, "--dir", root).exit_code == 0
    scored = ftops("eval", job, "--env", ENV, "--no-judge", "--out", out, "--json")
    assert scored.exit_code == 0, scored.stderr
    evaluation = json.loads(scored.stdout)
    assert evaluation["artifact"]["model_id"] == model
    assert evaluation["targets"]["fine_tuned"] == f"azure-openai:{name}={model}@1"
    assert evaluation["requests"]["fine_tuned"]["reused"] == 0
    assert ftops("undeploy", job, "--env", ENV, "--dir", root).exit_code == 0


def _base_deployment(env, name: str) -> None:
    from azure.mgmt.cognitiveservices.models import Deployment, DeploymentModel, DeploymentProperties, Sku

    from jobs.config.resolved import resolved_azure

    declared = next(d for d in env.azure.openai.deployments if d.name == name)
    resolved = resolved_azure(env)
    azure_openai.mgmt(env).deployments.begin_create_or_update(
        resolved.resource_group, resolved.openai_account, name,
        Deployment(sku=Sku(name=declared.sku, capacity=declared.capacity), properties=DeploymentProperties(
            model=DeploymentModel(format="OpenAI", name=declared.model, version=declared.version))),
        enforce_https=False, polling_interval=0).result()


def test_jobs_wait_ends_on_a_paused_job(ftops, azure_job, azure_local):
    env, root, job, _ = azure_job
    _settings(azure_local.endpoint, job_duration_s=60.0, file_processing_s=0.1)
    applied = ftops("apply", root, "--env", ENV, "--no-local-runner", "--json")
    assert applied.exit_code == 0, applied.stdout + applied.stderr
    job_id = next(j["job_id"] for j in json.loads(applied.stdout)["jobs"] if j["job"].startswith(f"{job}-"))
    provider = azure_openai.AzureOpenAI()
    deadline = time.monotonic() + 30
    while provider.describe(env, job_id).state != "running":
        assert time.monotonic() < deadline, provider.describe(env, job_id)
        time.sleep(0.2)
    azure_openai.client(env).fine_tuning.jobs.pause(job_id)
    assert provider.describe(env, job_id).state == "paused"
    waited = ftops("jobs", "wait", job, "--env", ENV, "--dir", root, "--interval", "0.2", "--timeout", "30")
    assert waited.exit_code == 3, waited.stdout + waited.stderr
    assert "paused" in waited.stderr and "resume" in waited.stderr
    azure_openai.client(env).fine_tuning.jobs.cancel(job_id)


def test_a_model_deployed_before_its_first_evaluation_is_recorded_as_serving(ftops, azure_job, azure_local,
                                                                             tmp_path):
    """Model records are made by `ftops eval`: a deploy before it had no record to mark. The evaluation, having
    read that the deployment serves exactly the trained model, says so on the record it makes."""
    from jobs import paths

    env, root, job, name = azure_job
    _settings(azure_local.endpoint, job_duration_s=0.5, file_processing_s=0.1)
    assert ftops("apply", root, "--env", ENV, "--no-local-runner").exit_code == 0
    assert ftops("jobs", "wait", job, "--env", ENV, "--dir", root, "--interval", "0.2").exit_code == 0
    assert ftops("deploy", job, "--env", ENV, "--dir", root).exit_code == 0
    from jobs.models.store import store_for

    records = store_for(env, "azure-openai")  # what `ftops models list` reads (its SageMaker side needs moto)
    assert records.records(job) == []

    _base_deployment(env, "grader")
    shutil.copytree(REPO / "datasets/out-of-domain", paths.project_root() / "datasets/out-of-domain")
    scored = ftops("eval", job, "--env", ENV, "--no-judge", "--out", tmp_path / "eval", "--json")
    assert scored.exit_code == 0, scored.stderr
    [record] = records.records(job)
    assert [s.where for s in record.serving] == [name]
    assert ftops("undeploy", job, "--env", ENV, "--dir", root).exit_code == 0
