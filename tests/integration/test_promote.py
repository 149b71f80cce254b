"""Train once, evaluate, approve, promote, deploy, on the emulators: what serves in the second environment is
the artifact the first one evaluated (Azure: the same fine-tuned model id, deployed with its source account;
SageMaker: the same model.tar.gz bytes), an unapproved record never serves, and a promotion without a stored
evaluation is refused before any network call."""

from __future__ import annotations

import json
import shutil
import urllib.request
from pathlib import Path

import pytest

from jobs.config.environment import load_environment
from jobs.config.resolved import resolved_azure
from jobs.local import emulators
from jobs.providers import azure_openai, sagemaker
from tests.fixtures.emulators import container_on_azurite, stack_buckets_on_moto
from tests.fixtures.network import no_network

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
JOB = "helpdesk-gpt41mini"
SOURCE, TARGET = "local", "local-prod"


def _post(url: str, body: dict) -> None:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request).read()


def _arm(method: str, path: str) -> dict:
    request = urllib.request.Request(f"{emulators.endpoint('azure')}{path}?api-version=2025-09-01", method=method,
                                     headers={"Authorization": "Bearer t"})
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read() or b"{}")


def _azure_account(env, deployments: list[tuple[str, str, str]] = ()) -> None:
    from azure.mgmt.cognitiveservices.models import (Account, AccountProperties, Deployment, DeploymentModel,
                                                     DeploymentProperties, Sku)
    from azure.mgmt.resource.resources import ResourceManagementClient

    from jobs.clients import azure_credential

    resolved = resolved_azure(env)
    groups = ResourceManagementClient(azure_credential(env), resolved.subscription_id,
                                      base_url=emulators.endpoint("azure"))
    groups.resource_groups.create_or_update(resolved.resource_group, {"location": resolved.location},
                                            enforce_https=False)
    mgmt = azure_openai.mgmt(env)
    mgmt.accounts.begin_create(resolved.resource_group, resolved.openai_account,
                               Account(kind="OpenAI", sku=Sku(name="S0"), location=resolved.location,
                                       properties=AccountProperties(custom_sub_domain_name=resolved.openai_account)),
                               enforce_https=False, polling_interval=0).result()
    for name, model, version in deployments:
        mgmt.deployments.begin_create_or_update(
            resolved.resource_group, resolved.openai_account, name,
            Deployment(sku=Sku(name="GlobalStandard", capacity=1),
                       properties=DeploymentProperties(model=DeploymentModel(format="OpenAI", name=model,
                                                                             version=version))),
            enforce_https=False, polling_interval=0).result()


@pytest.fixture
def two_envs(project, aws_buckets, blob_local, azure_local):
    """The copied project with the real prepared dataset and a second emulated environment (`local-prod`)."""
    root = project.root
    prepared = root / "datasets/it-helpdesk/prepared"
    shutil.rmtree(prepared)
    shutil.copytree(REPO / "datasets/it-helpdesk/prepared", prepared)
    shutil.copytree(REPO / "datasets/out-of-domain", root / "datasets/out-of-domain")
    # The emulators live for the session: a container of this test's own keeps its ledger and records apart.
    container = "ftops-" + "".join(c for c in root.parent.name.lower() if c.isalnum())[-20:]
    text = (root / "environments/local.yaml").read_text().replace("data:\n", f"data:\n  blob_container: {container}\n")
    (root / "environments/local.yaml").write_text(text)
    (root / "environments" / f"{TARGET}.yaml").write_text(
        text.replace("name: local", f"name: {TARGET}").replace("ftops-local-rg", "ftops-localprod-rg"))
    load_environment.cache_clear()
    for cache in (sagemaker._client, azure_openai._client, azure_openai._mgmt):
        cache.cache_clear()
    stack_buckets_on_moto(TARGET)  # provisioned like `local` (aws_buckets): ftops never creates them
    _post(f"{azure_local.endpoint}/_emulator/openai/settings", {"job_duration_s": 0.5, "file_processing_s": 0})
    _azure_account(load_environment(SOURCE), [("grader", "gpt-4.1-mini", "2025-04-14")])
    _azure_account(load_environment(TARGET))
    for name in (SOURCE, TARGET):  # what `ftops infra apply --cloud azure` makes, with the accounts
        container_on_azurite(name)
    yield root
    for cache in (sagemaker._client, azure_openai._client, azure_openai._mgmt):
        cache.cache_clear()


def test_azure_staging_model_promoted_to_prod_is_the_same_fine_tuned_model(ftops, two_envs, monkeypatch, tmp_path):
    rendered = two_envs / "rendered"
    assert ftops("render", "--env", SOURCE, "--env", TARGET, "--job", JOB, "--out", rendered).exit_code == 0
    applied = ftops("apply", rendered, "--env", SOURCE, "--json")
    assert applied.exit_code == 0, applied.stderr
    assert ftops("jobs", "wait", "--env", SOURCE, "--dir", rendered, "--interval", "0.2").exit_code == 0
    deployed = ftops("deploy", JOB, "--env", SOURCE, "--dir", rendered, "--json")  # the candidate, for the gate
    assert deployed.exit_code == 0, deployed.stderr
    model_id = json.loads(deployed.stdout)["model"]

    # No evaluation stored yet: the source's approval is refused with one line, before any connection attempt.
    with monkeypatch.context() as offline:
        attempts = no_network(offline)
        refused = ftops("models", "approve", JOB, "--env", SOURCE, "--no-judge")
    assert refused.exit_code == 1
    assert "no stored evaluation of helpdesk-gpt41mini in local" in refused.stderr and "ftops eval" in refused.stderr
    assert attempts == []
    # And the target has nothing approved to promote.
    unapproved = ftops("promote", JOB, "--from", SOURCE, "--to", TARGET)
    assert unapproved.exit_code == 1 and "no approved model record of helpdesk-gpt41mini in local" in unapproved.stderr

    # Nothing promoted: the target serves nothing, and says why.
    nothing = ftops("deploy", JOB, "--env", TARGET, "--dir", rendered)
    assert nothing.exit_code == 1 and "no model record of helpdesk-gpt41mini in local-prod" in nothing.stderr

    evaluated = ftops("eval", JOB, "--env", SOURCE, "--no-judge", "--out", tmp_path / "eval", "--json")
    assert evaluated.exit_code == 0, evaluated.stderr
    evaluation = json.loads(evaluated.stdout)
    assert evaluation["gate"]["passed"] and evaluation["artifact"]["model_id"] == model_id
    # The loss plot is in the report although the results were never written where eval looks.
    assert evaluation["loss_plot"] and "data:image/png;base64," in (tmp_path / "eval" / "report.html").read_text()
    shown = json.loads(ftops("models", "show", JOB, "--env", SOURCE, "--json").stdout)
    assert shown["approval"]["status"] == "PendingManualApproval" and shown["evaluation"]["passed"]

    # Evaluated but not approved by the source: the target refuses to promote it.
    pending = ftops("promote", JOB, "--from", SOURCE, "--to", TARGET)
    assert pending.exit_code == 1 and "no approved model record of helpdesk-gpt41mini in local" in pending.stderr

    # The source approves, with its own identity (here: this user), on its stored evaluation.
    approved = ftops("models", "approve", JOB, "--env", SOURCE, "--no-judge",
                     "--evaluation", tmp_path / "eval" / "evaluation.json", "--json")
    assert approved.exit_code == 0, approved.stderr
    approval = json.loads(approved.stdout)
    assert approval["evaluation"] == evaluation["evaluation_fingerprint"]
    assert approval["artifact"] == f"azure-model:{model_id}"
    source_record = json.loads(ftops("models", "show", JOB, "--env", SOURCE, "--json").stdout)

    promoted = ftops("promote", JOB, "--from", SOURCE, "--to", TARGET, "--json")
    assert promoted.exit_code == 0, promoted.stderr
    source_id = resolved_azure(load_environment(SOURCE)).openai_account_id
    assert json.loads(promoted.stdout)["source_resource_id"] == source_id
    # The target only read the source: its record is as the source left it.
    after = json.loads(ftops("models", "show", JOB, "--env", SOURCE, "--json").stdout)
    assert after == source_record

    served = ftops("deploy", JOB, "--env", TARGET, "--dir", rendered, "--json")
    assert served.exit_code == 0, served.stderr
    result = json.loads(served.stdout)
    assert result["record"].endswith(".json") and result["promoted_from"] == SOURCE
    target = resolved_azure(load_environment(TARGET))
    deployment = _arm("GET", f"{target.openai_account_id}/deployments/{result['deployment']}")
    assert deployment["properties"]["model"]["name"] == model_id
    assert deployment["properties"]["model"]["source"] == source_id

    record = json.loads(ftops("models", "show", JOB, "--env", TARGET, "--json").stdout)
    assert record["approval"]["status"] == "Approved" and record["promoted_from"]["env"] == SOURCE
    # An auditor reads from the target's record who approved, where, on which evaluation, which model.
    assert record["approval"] == source_record["approval"] and record["approval"]["env"] == SOURCE
    assert record["approval"]["evaluation"] == evaluation["evaluation_fingerprint"]
    assert record["approval"]["artifact"] == f"azure-model:{model_id}" and record["promoted_from"]["promoted_by"]
    assert record["artifact"]["model_id"] == model_id and record["training_job_id"] is None
    assert [s["where"] for s in record["serving"]] == [result["deployment"]]
    listed = json.loads(ftops("models", "list", "--env", SOURCE, "--job", JOB, "--json").stdout)
    assert [r["approval"] for r in listed] == ["Approved"]
    assert ftops("undeploy", JOB, "--env", TARGET, "--dir", rendered).exit_code == 0
    assert json.loads(ftops("models", "show", JOB, "--env", TARGET, "--json").stdout)["serving"] == []


def test_a_model_deployed_where_it_was_trained_is_listed_as_serving(ftops, two_envs):
    """Only a deploy of a promoted record noted where it serves: `models list|show` never said "serving" for a
    model deployed in the environment that trained it."""
    from jobs.models.record import Artifact, ModelRecord
    from jobs.models.store import store_for

    rendered = two_envs / "rendered"
    assert ftops("render", "--env", SOURCE, "--job", JOB, "--out", rendered).exit_code == 0
    assert ftops("apply", rendered, "--env", SOURCE).exit_code == 0
    assert ftops("jobs", "wait", "--env", SOURCE, "--dir", rendered, "--interval", "0.2").exit_code == 0
    model_id = json.loads(ftops("jobs", "status", JOB, "--env", SOURCE, "--dir", rendered, "--json").stdout)["model"]
    # The record `ftops eval` registers for that model (written here: scoring is the eval tests' concern).
    env = load_environment(SOURCE)
    store_for(env, "azure-openai").put(ModelRecord(
        job=JOB, env=SOURCE, provider="azure-openai", definition=f"definitions/{JOB}.yaml",
        artifact=Artifact(kind="azure-model", model_id=model_id, source_resource_id=resolved_azure(env).openai_account_id),
        definition_sha256="0" * 64, rendered_sha256="1" * 64, base_model="gpt-4.1-mini@2025-04-14"))

    deployed = ftops("deploy", JOB, "--env", SOURCE, "--dir", rendered, "--json")
    assert deployed.exit_code == 0, deployed.stderr
    deployment = json.loads(deployed.stdout)["deployment"]
    shown = ftops("models", "show", JOB, "--env", SOURCE)
    assert f"serving        {deployment} in {SOURCE} since" in shown.stdout
    listed = json.loads(ftops("models", "list", "--env", SOURCE, "--job", JOB, "--json").stdout)
    assert [r["serving"] for r in listed] == [[deployment]]

    assert ftops("undeploy", JOB, "--env", SOURCE, "--dir", rendered).exit_code == 0
    assert json.loads(ftops("models", "show", JOB, "--env", SOURCE, "--json").stdout)["serving"] == []


def test_an_unapproved_record_is_refused_by_deploy(ftops, two_envs):
    from jobs.models.record import Artifact, ModelRecord
    from jobs.models.store import store_for

    env = load_environment(TARGET)
    record = ModelRecord(job=JOB, env=TARGET, provider="azure-openai",
                         artifact=Artifact(kind="azure-model", model_id="gpt-4.1-mini-2025-04-14.ft-unapproved",
                                           source_resource_id=resolved_azure(load_environment(SOURCE)).openai_account_id),
                         definition=f"definitions/{JOB}.yaml", definition_sha256="0" * 64, rendered_sha256="1" * 64,
                         base_model="gpt-4.1-mini@2025-04-14")
    store_for(env, "azure-openai").put(record)
    refused = ftops("deploy", JOB, "--env", TARGET)
    assert refused.exit_code == 1
    assert "is PendingManualApproval, not Approved" in refused.stderr
    target = resolved_azure(env)
    served = [d["properties"]["model"]["name"] for d in _arm("GET", f"{target.openai_account_id}/deployments")["value"]]
    assert record.artifact.model_id not in served


SM_JOB = "helpdesk-qwen-lora"


def _trained_sagemaker_job(env, model_bytes: bytes) -> str:
    """What apply and the training run leave behind: the job (moto), its ledger entry, its model.tar.gz."""
    from jobs.apply.ledger import LedgerEntry
    from jobs.eval.plan import _rendered

    rendered = _rendered(env, SM_JOB)
    request = dict(rendered.documents["sagemaker.json"])
    sm = sagemaker.client(env)
    sm.create_training_job(**request)
    provider = sagemaker.SageMaker()
    provider.ledger(env).create(LedgerEntry(key=rendered.index["idempotency_key"], job_name=rendered.name,
                                            provider="sagemaker", state="submitted", run_id="test",
                                            job_id=request["TrainingJobName"]))
    model = provider.describe(env, request["TrainingJobName"]).model
    bucket, key = model.removeprefix("s3://").split("/", 1)
    sagemaker.client(env, "s3").put_object(Bucket=bucket, Key=key, Body=model_bytes)
    return model


def _passing_evaluation(env, record) -> dict:
    """An evaluation result of `record`'s artifact, as `ftops eval` stores it (scores made up: the scoring
    itself is covered by the eval tests; this is about what promote does with a stored verdict)."""
    from jobs.eval.gate import decide
    from jobs.eval.plan import default_out_dir, definition_eval
    from jobs.models.record import evaluation_fingerprint

    expected = definition_eval(SM_JOB, env)
    base = "local:s3://base/"
    row = {"fine_tuned": {"value": 0.5, "low": 0.4, "high": 0.6}, "base": {"value": 0.2, "low": 0.1, "high": 0.3},
           "delta": {"value": 0.3, "low": 0.2, "high": 0.4}}
    result = {"job": SM_JOB, "env": env.name, "dataset_id": expected.manifest.dataset_id,
              "config_fingerprint": expected.config.fingerprint(), "examples": len(expected.examples),
              "limited": False, "target_specs": {"fine_tuned": "local:x", "base": base, "judge": None},
              "artifact": record.artifact.model_dump(), "metrics": {"rougeL": row, "exact_match": row},
              "robustness": {}}
    result["evaluation_fingerprint"] = evaluation_fingerprint(result["config_fingerprint"], result["dataset_id"],
                                                              record.artifact.identity(), base, result["examples"])
    result["gate"] = decide(expected.config.gate, result)
    path = default_out_dir(env, SM_JOB) / "evaluation.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result))
    return result


def test_sagemaker_promotion_copies_the_same_bytes_and_registers_them_approved(ftops, two_envs, project):
    import hashlib

    # moto's endpoint instance types predate ml.g5; serverless is what a small model uses anyway.
    project.edit_definition(SM_JOB, deployment__sagemaker__serverless={"memory_mb": 6144, "max_concurrency": 2})

    from jobs.models.lifecycle import attach_evaluation, register_trained

    source, target = load_environment(SOURCE), load_environment(TARGET)
    model_bytes = b"model weights " * 1000
    _trained_sagemaker_job(source, model_bytes)
    record, store = register_trained(source, SM_JOB)
    assert record.artifact.sha256 == hashlib.sha256(model_bytes).hexdigest()
    sm = sagemaker.client(source)
    assert sm.describe_model_package(ModelPackageName=record.registry["package_arn"])["ModelApprovalStatus"] == \
        "PendingManualApproval"
    evaluation = _passing_evaluation(source, record)
    attach_evaluation(source, record, store, evaluation)

    # Not approved by the source yet: nothing to promote.
    refused = ftops("promote", SM_JOB, "--from", SOURCE, "--to", TARGET)
    assert refused.exit_code == 1 and "no approved model record" in refused.stderr
    approved = ftops("models", "approve", SM_JOB, "--env", SOURCE, "--json")
    assert approved.exit_code == 0, approved.stderr
    assert sm.describe_model_package(ModelPackageName=record.registry["package_arn"])["ModelApprovalStatus"] == \
        "Approved"
    promoted = ftops("promote", SM_JOB, "--from", SOURCE, "--to", TARGET, "--json")
    assert promoted.exit_code == 0, promoted.stderr
    copy_uri = json.loads(promoted.stdout)["target"]
    assert copy_uri.startswith(f"s3://{sagemaker.resolved_aws(target).output_bucket}/")
    bucket, key = copy_uri.removeprefix("s3://").split("/", 1)
    copied = sagemaker.client(target, "s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    assert hashlib.sha256(copied).hexdigest() == record.artifact.sha256
    assert sm.describe_model_package(ModelPackageName=record.registry["package_arn"])["ModelApprovalStatus"] == \
        "Approved"
    shown = json.loads(ftops("models", "show", SM_JOB, "--env", TARGET, "--json").stdout)
    assert shown["artifact"]["sha256"] == record.artifact.sha256 and shown["artifact"]["uri"] == copy_uri
    # Who approved which bytes on which evaluation, as the source recorded it.
    assert shown["approval"]["artifact"] == f"sha256:{record.artifact.sha256}" and shown["approval"]["env"] == SOURCE
    assert shown["approval"]["evaluation"] == evaluation["evaluation_fingerprint"]
    assert shown["promoted_from"]["sha256"] == record.artifact.sha256
    package = sm.describe_model_package(ModelPackageName=shown["registry"]["package_arn"])
    assert package["ModelApprovalStatus"] == "Approved"
    assert package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == copy_uri
    assert "/local-prod/" in package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]

    # The endpoint in the target serves the verified copy, and the record says so.
    rendered = two_envs / "rendered"
    assert ftops("render", "--env", TARGET, "--job", SM_JOB, "--out", rendered).exit_code == 0
    served = ftops("deploy", SM_JOB, "--env", TARGET, "--dir", rendered, "--json")
    assert served.exit_code == 0, served.stderr
    endpoint = json.loads(served.stdout)
    assert endpoint["model_data"] == copy_uri and endpoint["promoted_from"] == SOURCE
    model = sagemaker.client(target).describe_model(ModelName=endpoint["model"])
    assert model["PrimaryContainer"]["ModelDataUrl"] == copy_uri
    shown = json.loads(ftops("models", "show", SM_JOB, "--env", TARGET, "--json").stdout)
    assert [s["where"] for s in shown["serving"]] == [endpoint["endpoint"]]


def test_a_failed_gate_leaves_no_deployment_behind(ftops, two_envs, project):
    project.edit_definition(JOB, evaluation__gate__min_improvement=0.99)  # nothing clears this bar
    rendered = two_envs / "rendered"
    assert ftops("render", "--env", SOURCE, "--job", JOB, "--out", rendered).exit_code == 0
    assert ftops("apply", rendered, "--env", SOURCE, "--json").exit_code == 0
    assert ftops("jobs", "wait", "--env", SOURCE, "--dir", rendered, "--interval", "0.2").exit_code == 0
    account = resolved_azure(load_environment(SOURCE)).openai_account_id

    def deployments() -> set[str]:
        return {d["name"] for d in _arm("GET", f"{account}/deployments")["value"]}

    # The emulators live for the session: start from a candidate that is not deployed (another test may have).
    assert ftops("undeploy", JOB, "--env", SOURCE, "--dir", rendered).exit_code == 0
    before = deployments()
    gated = ftops("eval", JOB, "--env", SOURCE, "--gate", "--no-judge", "--dir", rendered, "--json")
    assert gated.exit_code == 1
    result = json.loads(gated.stdout)
    assert not result["gate"]["passed"] and "below the required +0.990" in result["gate"]["reasons"][0]
    created = result["gate_deployments"]["created"]
    assert len(created) == 1 and created == result["gate_deployments"]["removed"]
    assert deployments() == before  # the candidate was deployed for the gate, and is gone again
    # A candidate that already served before the gate is left as it was found.
    assert ftops("deploy", JOB, "--env", SOURCE, "--dir", rendered).exit_code == 0
    again = json.loads(ftops("eval", JOB, "--env", SOURCE, "--gate", "--no-judge", "--dir", rendered, "--json").stdout)
    assert again["gate_deployments"]["created"] == [] and len(deployments()) == len(before) + 1
    shown = json.loads(ftops("models", "show", JOB, "--env", SOURCE, "--json").stdout)
    assert shown["evaluation"]["passed"] is False and shown["approval"]["status"] == "PendingManualApproval"


def test_promotion_retrain_serves_only_the_target_model_that_passed_the_gate_there(ftops, two_envs, project):
    project.edit_definition(JOB, promotion="retrain")
    target = load_environment(TARGET)
    _azure_account(target, [("grader", "gpt-4.1-mini", "2025-04-14")])
    rendered = two_envs / "rendered"
    assert ftops("render", "--env", SOURCE, "--env", TARGET, "--job", JOB, "--out", rendered).exit_code == 0
    for env in (SOURCE, TARGET):
        assert ftops("apply", rendered, "--env", env, "--json").exit_code == 0
        assert ftops("jobs", "wait", "--env", env, "--dir", rendered, "--interval", "0.2").exit_code == 0
    assert ftops("eval", JOB, "--env", SOURCE, "--gate", "--no-judge", "--dir", rendered).exit_code == 0

    early = ftops("promote", JOB, "--from", SOURCE, "--to", TARGET)
    assert early.exit_code == 1 and "has not passed the gate there" in early.stderr

    assert ftops("eval", JOB, "--env", TARGET, "--gate", "--no-judge", "--dir", rendered).exit_code == 0
    promoted = ftops("promote", JOB, "--from", SOURCE, "--to", TARGET, "--json")
    assert promoted.exit_code == 0, promoted.stderr
    assert json.loads(promoted.stdout)["mode"] == "retrain"
    record = json.loads(ftops("models", "show", JOB, "--env", TARGET, "--json").stdout)
    assert record["approval"]["status"] == "Approved" and record["training_job_id"].startswith("ftjob-")
    assert record["evaluation"]["env"] == TARGET and record["evaluation"]["passed"]
    assert record["artifact"]["source_resource_id"] == resolved_azure(target).openai_account_id
    assert record["approval"]["env"] == TARGET and record["approval"]["evaluation"] == record["evaluation"]["fingerprint"]
