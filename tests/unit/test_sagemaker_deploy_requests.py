"""`ftops deploy` on SageMaker: the requests it sends conform to the service model (botocore ParamValidator), and a
serverless endpoint never carries a VPC configuration (serverless endpoints take none): in an environment that
runs models in its VPC, a serverless deployment is refused before any call instead of leaving the VPC."""

from __future__ import annotations

from types import SimpleNamespace

import botocore.session
import pytest
from botocore.validate import ParamValidator

from jobs.apply.rendered import RenderedJob
from jobs.config.environment import load_environment
from jobs.errors import ConfigError
from jobs.providers import sagemaker
from jobs.providers.base import JobStatus

MODEL = botocore.session.get_session().get_service_model("sagemaker")
OPERATIONS = {"create_model": "CreateModel", "create_endpoint_config": "CreateEndpointConfig",
              "create_endpoint": "CreateEndpoint"}


class Recorder:
    """A SageMaker client that records the create calls, validated against the service model."""

    def __init__(self) -> None:
        self.calls: dict[str, dict] = {}

    def __getattr__(self, name):
        def call(**kwargs):
            if name in OPERATIONS:
                report = ParamValidator().validate(kwargs, MODEL.operation_model(OPERATIONS[name]).input_shape)
                assert not report.has_errors(), report.generate_report()
                self.calls[name] = kwargs
                return {}
            if name == "describe_endpoint" and "create_endpoint" in self.calls:
                return {"EndpointArn": "arn:aws:sagemaker:us-east-1:111111111111:endpoint/x",
                        "EndpointStatus": "Creating"}
            raise RuntimeError("Could not find it")  # describe_*: nothing exists yet
        return call


def _deploy(monkeypatch, *, subnets: list[str], settings: dict) -> Recorder:
    recorder = Recorder()
    aws = SimpleNamespace(region="us-east-1", subnet_ids=subnets, security_group_ids=["sg-1"] if subnets else [],
                          endpoint_role_arn="arn:aws:iam::111111111111:role/ftops-dev-sagemaker-endpoint",
                          kms_key_arn="arn:aws:kms:us-east-1:111111111111:key/k")
    monkeypatch.setattr(sagemaker, "resolved_aws", lambda env: aws)
    monkeypatch.setattr(sagemaker, "client", lambda env, service="sagemaker": recorder)
    monkeypatch.setattr(sagemaker, "deployment_settings",
                        lambda job, env: {"image": "111111111111.dkr.ecr.us-east-1.amazonaws.com/i:1", **settings})
    job = RenderedJob(name="helpdesk-dev-0123abcd", provider="sagemaker", environment="dev",
                      idempotency_key="0" * 64, targets={"sagemaker": "sagemaker.json"})
    status = JobStatus(provider="sagemaker", job_id=job.name, state="succeeded", provider_status="Completed",
                       model="s3://bucket/output/helpdesk-dev-0123abcd/output/model.tar.gz")
    sagemaker.SageMaker().deploy(load_environment("dev"), job, status)
    return recorder


SERVERLESS = {"serverless": {"memory_mb": 6144, "max_concurrency": 2}}


def test_a_serverless_endpoint_carries_no_vpc_configuration(monkeypatch):
    calls = _deploy(monkeypatch, subnets=[], settings=SERVERLESS).calls
    assert "VpcConfig" not in calls["create_model"] and "EnableNetworkIsolation" not in calls["create_model"]
    variant = calls["create_endpoint_config"]["ProductionVariants"][0]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 6144, "MaxConcurrency": 2}
    assert "KmsKeyId" not in calls["create_endpoint_config"]  # serverless variants take no volume key


def test_in_a_vpc_environment_serverless_is_refused_before_any_call(monkeypatch):
    recorder = Recorder()
    with pytest.raises(ConfigError) as refused:
        recorder = _deploy(monkeypatch, subnets=["subnet-1"], settings=SERVERLESS)
    assert refused.value.field == "deployment.sagemaker.serverless" and "VPC" in str(refused.value)
    assert recorder.calls == {}


def test_an_instance_endpoint_in_a_vpc_environment_runs_in_the_vpc_isolated(monkeypatch):
    calls = _deploy(monkeypatch, subnets=["subnet-1"],
                    settings={"instance_type": "ml.g5.xlarge", "instance_count": 1}).calls
    assert calls["create_model"]["VpcConfig"] == {"Subnets": ["subnet-1"], "SecurityGroupIds": ["sg-1"]}
    assert calls["create_model"]["EnableNetworkIsolation"] is True
    assert calls["create_endpoint_config"]["ProductionVariants"][0]["InstanceType"] == "ml.g5.xlarge"
