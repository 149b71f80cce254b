"""`ftops deploy` of a SageMaker model on moto: moto's endpoint instance types predate ml.g5 (the definitions'
default), so its refusal must be one line that says so and names the setting, and must leave no model behind for
`undeploy` to miss; an instance type moto knows, as the line suggests, deploys."""

from __future__ import annotations

import uuid

import pytest

from jobs.apply.rendered import RenderedJob
from jobs.config.environment import load_environment
from jobs.errors import CloudError
from jobs.providers import sagemaker
from jobs.providers.base import JobStatus

pytestmark = pytest.mark.integration


@pytest.fixture
def trained(aws_local, monkeypatch):
    """A trained job of `local` (a fresh name: the moto server lives for the session)."""
    sagemaker._client.cache_clear()
    name = f"helpdesk-qwen-lora-local-{uuid.uuid4().hex[:8]}"
    job = RenderedJob(name=name, job="helpdesk-qwen-lora", provider="sagemaker", environment="local",
                      idempotency_key="0" * 64, targets={"sagemaker": "sagemaker.json"},
                      definition="definitions/helpdesk-qwen-lora.yaml")
    monkeypatch.setattr(RenderedJob, "load_target", lambda self, target: {"TrainingJobName": self.name})
    status = JobStatus(provider="sagemaker", job_id=name, state="succeeded", provider_status="Completed",
                       model=f"s3://ftops-local-artifacts/output/{name}/output/model.tar.gz")
    yield load_environment("local"), job, status
    sagemaker._client.cache_clear()


def _models(env, job) -> list[str]:
    # Filtered here too: moto may not apply NameContains, and other tests of the session leave models behind.
    listed = sagemaker.client(env).list_models(NameContains=job.name)["Models"]
    return [m["ModelName"] for m in listed if job.name in m["ModelName"]]


def test_an_instance_type_moto_lacks_is_one_line_and_leaves_no_model(trained, monkeypatch):
    env, job, status = trained
    assert sagemaker.deployment_settings(job, env)["instance_type"] == "ml.g5.xlarge"  # the example definition's
    with pytest.raises(CloudError) as refused:
        sagemaker.SageMaker().deploy(env, job, status)
    line = str(refused.value)
    assert line.startswith("definitions/helpdesk-qwen-lora.yaml: deployment.sagemaker.instance_type: the AWS "
                           "emulator (moto) cannot serve endpoint instance type ml.g5.xlarge")
    assert "\n" not in line and "enum value set" not in line
    assert _models(env, job) == []
    assert sagemaker.SageMaker().undeploy(env, job)["removed"] == []

    # What the line suggests: an instance type moto knows.
    monkeypatch.setattr(sagemaker, "deployment_settings", lambda job, env: {"instance_type": "ml.m5.xlarge"})
    deployed = sagemaker.SageMaker().deploy(env, job, status)
    assert deployed["created"] == ["model", "endpoint-config", "endpoint"]
    assert sagemaker.SageMaker().undeploy(env, job)["removed"] == ["endpoint", "endpoint-config", "model"]
    assert _models(env, job) == []
