"""`ftops deploy` on SageMaker: the requests it sends conform to the service model (botocore ParamValidator), and a
serverless endpoint never carries a VPC configuration (serverless endpoints take none): in an environment that
runs models in its VPC, a serverless deployment is refused before any call instead of leaving the VPC."""

from __future__ import annotations

from types import SimpleNamespace

import botocore.session
import pytest
from botocore.exceptions import ClientError
from botocore.validate import ParamValidator

from jobs.apply.rendered import RenderedJob
from jobs.config.environment import load_environment
from jobs.errors import CloudError, ConfigError
from jobs.providers import sagemaker
from jobs.providers.base import JobStatus

MODEL = botocore.session.get_session().get_service_model("sagemaker")
OPERATIONS = {"create_model": "CreateModel", "create_endpoint_config": "CreateEndpointConfig",
              "create_endpoint": "CreateEndpoint"}


def _not_found(operation: str, what: str) -> ClientError:
    """What botocore raises when SageMaker does not know a model, config or endpoint."""
    return ClientError({"Error": {"Code": "ValidationException", "Message": f"Could not find {what}."}}, operation)


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
            raise _not_found(name, "it")  # describe_*: nothing exists yet
        return call


def _account(monkeypatch, client, *, subnets: list[str], settings: dict) -> None:
    """Deploys in an environment with these subnets, to `client`, with these deployment settings (read at
    each deploy, so a test may change them between deploys)."""
    aws = SimpleNamespace(region="us-east-1", subnet_ids=subnets, security_group_ids=["sg-1"] if subnets else [],
                          endpoint_role_arn="arn:aws:iam::111111111111:role/ftops-dev-sagemaker-endpoint",
                          kms_key_arn="arn:aws:kms:us-east-1:111111111111:key/k")
    monkeypatch.setattr(sagemaker, "resolved_aws", lambda env: aws)
    monkeypatch.setattr(sagemaker, "client", lambda env, service="sagemaker": client)
    monkeypatch.setattr(sagemaker, "deployment_settings",
                        lambda job, env: {"image": "111111111111.dkr.ecr.us-east-1.amazonaws.com/i:1", **settings})


def _deploy(monkeypatch, *, subnets: list[str], settings: dict) -> Recorder:
    recorder = Recorder()
    _account(monkeypatch, recorder, subnets=subnets, settings=settings)
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


class FakeSageMaker:
    """Models, endpoint configs and endpoints as SageMaker keeps them: immutable models and configs, an
    endpoint that moves to another config only through UpdateEndpoint. Every request is validated against the
    service model, and a missing resource is SageMaker's ValidationException ("Could not find ...")."""

    def __init__(self) -> None:
        self.models: dict[str, dict] = {}
        self.configs: dict[str, dict] = {}
        self.endpoints: dict[str, str] = {}  # endpoint name -> its config name
        self.log: list[tuple[str, dict]] = []

    def __getattr__(self, name):
        operation = MODEL.operation_model("".join(part.title() for part in name.split("_")))

        def call(**kwargs):
            report = ParamValidator().validate(kwargs, operation.input_shape)
            assert not report.has_errors(), report.generate_report()
            self.log.append((name, kwargs))
            return getattr(self, f"_{name}")(**kwargs)
        return call

    def _missing(self, what):
        raise _not_found("", what)

    def _create_model(self, ModelName, **kwargs):
        assert ModelName not in self.models, "a model cannot be created twice"
        self.models[ModelName] = kwargs

    def _describe_model(self, ModelName):
        return self.models.get(ModelName) or self._missing(f"model {ModelName}")

    def _delete_model(self, ModelName):
        self.models.pop(ModelName, None) or self._missing(f"model {ModelName}")

    def _create_endpoint_config(self, EndpointConfigName, **kwargs):
        assert EndpointConfigName not in self.configs, "a config cannot be created twice"
        assert all(v["ModelName"] in self.models for v in kwargs["ProductionVariants"])
        self.configs[EndpointConfigName] = kwargs

    def _describe_endpoint_config(self, EndpointConfigName):
        return self.configs.get(EndpointConfigName) or self._missing(f"config {EndpointConfigName}")

    def _delete_endpoint_config(self, EndpointConfigName):
        self.configs.pop(EndpointConfigName, None) or self._missing(f"config {EndpointConfigName}")

    def _create_endpoint(self, EndpointName, EndpointConfigName, **kwargs):
        assert EndpointName not in self.endpoints and EndpointConfigName in self.configs
        self.endpoints[EndpointName] = EndpointConfigName

    def _update_endpoint(self, EndpointName, EndpointConfigName, **kwargs):
        # "To update an endpoint, you must create a new EndpointConfig" (UpdateEndpoint's documentation)
        assert EndpointConfigName in self.configs and self.endpoints[EndpointName] != EndpointConfigName
        self.endpoints[EndpointName] = EndpointConfigName

    def _describe_endpoint(self, EndpointName):
        if EndpointName not in self.endpoints:
            self._missing(f"endpoint {EndpointName}")
        return {"EndpointName": EndpointName, "EndpointConfigName": self.endpoints[EndpointName],
                "EndpointArn": f"arn:aws:sagemaker:us-east-1:111111111111:endpoint/{EndpointName}",
                "EndpointStatus": "InService"}

    def _delete_endpoint(self, EndpointName):
        self.endpoints.pop(EndpointName, None) or self._missing(f"endpoint {EndpointName}")

    def served(self, endpoint: str) -> str:
        config = self.configs[self.endpoints[endpoint]]
        return self.models[config["ProductionVariants"][0]["ModelName"]]["PrimaryContainer"]["ModelDataUrl"]


def test_the_documentation_says_an_endpoint_changes_only_through_a_new_config():
    documented = MODEL.operation_model("UpdateEndpoint").documentation
    assert "To update an endpoint, you must create a new" in documented  # the rule FakeSageMaker enforces


def test_a_checkpoint_or_new_settings_reach_the_endpoint_and_undeploy_removes_what_serves(monkeypatch):
    fake = FakeSageMaker()
    settings = {"instance_type": "ml.g5.xlarge", "instance_count": 1}
    _account(monkeypatch, fake, subnets=[], settings=settings)
    job = RenderedJob(name="helpdesk-qwen-lora-dev-0123abcd", provider="sagemaker", environment="dev",
                      idempotency_key="0" * 64, targets={"sagemaker": "sagemaker.json"})
    monkeypatch.setattr(RenderedJob, "load_target", lambda self, target: {"TrainingJobName": self.name})
    final = "s3://bucket/output/helpdesk-qwen-lora-dev-0123abcd/output/model.tar.gz"
    status = JobStatus(provider="sagemaker", job_id=job.name, state="succeeded", provider_status="Completed",
                       model=final)
    env, provider = load_environment("dev"), sagemaker.SageMaker()

    first = provider.deploy(env, job, status)
    endpoint = first["endpoint"]
    assert first["created"] == ["model", "endpoint-config", "endpoint"] and fake.served(endpoint) == final
    assert all(len(name) <= 63 for name in [*fake.models, *fake.configs, *fake.endpoints])

    again = provider.deploy(env, job, status)  # nothing changed: nothing created, the endpoint left alone
    assert again["created"] == [] and again["previous_config"] is None
    assert not any(name == "update_endpoint" for name, _ in fake.log)

    checkpoint = "s3://ckpt/helpdesk-qwen-lora-dev-0123abcd/checkpoint-40/model.tar.gz"
    moved = provider.deploy(env, job, status, checkpoint=checkpoint)
    assert moved["created"] == ["model", "endpoint-config"] and moved["previous_config"] == first["config"]
    assert fake.served(endpoint) == checkpoint  # before: the existing model (the final one) kept serving

    settings["instance_type"] = "ml.g5.2xlarge"
    resized = provider.deploy(env, job, status, checkpoint=checkpoint)
    assert resized["previous_config"] == moved["config"] and resized["model"] == moved["model"]
    assert fake.configs[fake.endpoints[endpoint]]["ProductionVariants"][0]["InstanceType"] == "ml.g5.2xlarge"

    removed = provider.undeploy(env, job)
    assert removed["removed"] == ["endpoint", "endpoint-config", "model"]
    assert endpoint not in fake.endpoints and resized["config"] not in fake.configs
    assert resized["model"] not in fake.models
    assert provider.undeploy(env, job)["removed"] == []


class RefusingSageMaker(FakeSageMaker):
    """FakeSageMaker that refuses one create call with the ClientError SageMaker (or moto) answers."""

    def __init__(self, operation: str, code: str, message: str) -> None:
        super().__init__()
        self.operation, self.code, self.message = operation, code, message

    def __getattr__(self, name):
        if name != self.operation:
            return super().__getattr__(name)

        def refused(**kwargs):
            self.log.append((name, kwargs))
            raise ClientError({"Error": {"Code": self.code, "Message": self.message}}, OPERATIONS[name])
        return refused


def _deploy_job(monkeypatch, fake, env_name: str):
    _account(monkeypatch, fake, subnets=[], settings={"instance_type": "ml.g5.xlarge", "instance_count": 1})
    job = RenderedJob(name=f"helpdesk-qwen-lora-{env_name}-0123abcd", provider="sagemaker", environment=env_name,
                      idempotency_key="0" * 64, targets={"sagemaker": "sagemaker.json"},
                      definition="definitions/helpdesk-qwen-lora.yaml")
    monkeypatch.setattr(RenderedJob, "load_target", lambda self, target: {"TrainingJobName": self.name})
    status = JobStatus(provider="sagemaker", job_id=job.name, state="succeeded", provider_status="Completed",
                       model=f"s3://bucket/output/{job.name}/output/model.tar.gz")
    return load_environment(env_name), job, status


# moto's answer to an endpoint config on ml.g5.xlarge (its instance list predates ml.g5), shortened.
MOTO_ENUM = ("Value 'ml.g5.xlarge' at 'instanceType' failed to satisfy constraint: Member must satisfy enum value "
             "set: ['ml.r5d.12xlarge', 'ml.m5.xlarge', 'ml.g4dn.xlarge']")


def test_the_emulator_refusing_a_current_instance_type_is_one_line_and_leaves_nothing(monkeypatch):
    """moto refused ml.g5.xlarge at CreateEndpointConfig: a traceback, and the model CreateModel had made stayed
    behind where `undeploy` never looked."""
    assert "ml.g5.xlarge" in sagemaker.sagemaker_endpoint_instance_types()  # real SageMaker takes it
    fake = RefusingSageMaker("create_endpoint_config", "ValidationException", MOTO_ENUM)
    env, job, status = _deploy_job(monkeypatch, fake, "local")
    with pytest.raises(CloudError) as refused:
        sagemaker.SageMaker().deploy(env, job, status)
    line = str(refused.value)
    assert "\n" not in line and "enum value set" not in line
    assert line.startswith("definitions/helpdesk-qwen-lora.yaml: deployment.sagemaker.instance_type: ")
    assert "the AWS emulator (moto) cannot serve endpoint instance type ml.g5.xlarge" in line
    assert "overrides.local.deployment.sagemaker" in line
    assert fake.models == {} and fake.configs == {} and fake.endpoints == {}
    assert [name for name, _ in fake.log if name.startswith("delete")] == ["delete_model"]
    assert sagemaker.SageMaker().undeploy(env, job)["removed"] == []


def test_a_refused_endpoint_removes_the_model_and_config_this_deploy_made(monkeypatch):
    """Real SageMaker refusing CreateEndpoint (a quota): one line naming the call and the refusal; the model and
    config it would have served are removed."""
    message = ("The account-level service limit 'ml.g5.xlarge for endpoint usage' is 0 Instances, with current "
               "utilization of 0 Instances and a request delta of 1 Instances.")
    fake = RefusingSageMaker("create_endpoint", "ResourceLimitExceeded", message)
    env, job, status = _deploy_job(monkeypatch, fake, "dev")
    with pytest.raises(CloudError) as refused:
        sagemaker.SageMaker().deploy(env, job, status)
    line = str(refused.value)
    assert line.startswith("SageMaker refused CreateEndpoint for endpoint helpdesk-qwen-lora-dev-0123abcd "
                           "(ResourceLimitExceeded): The account-level service limit")
    assert "nothing was deployed" in line and "ftops preflight --env dev" in line
    assert fake.models == {} and fake.configs == {} and fake.endpoints == {}


def test_a_denied_deploy_still_reaches_the_login_message(monkeypatch):
    """AccessDenied is the CLI root's to explain (credential_error); what was created is removed all the same."""
    fake = RefusingSageMaker("create_endpoint_config", "AccessDeniedException", "not authorized")
    env, job, status = _deploy_job(monkeypatch, fake, "dev")
    with pytest.raises(ClientError):
        sagemaker.SageMaker().deploy(env, job, status)
    assert fake.models == {}


class ExpiredLoginSageMaker(RefusingSageMaker):
    """The login expires during the deploy: CreateEndpointConfig and every call after it are refused."""

    def __getattr__(self, name):
        if name == self.operation or name.startswith("delete") or self.log and self.log[-1][0] == self.operation:
            def refused(**kwargs):
                self.log.append((self.operation, kwargs))
                raise ClientError({"Error": {"Code": "ExpiredTokenException", "Message": "The security token "
                                             "included in the request is expired"}}, OPERATIONS.get(name, name))
            return refused
        return super().__getattr__(name)


def test_a_login_that_expires_mid_deploy_names_what_it_left_behind(monkeypatch):
    """The clean-up of a failed deploy needs the same login: when it has expired, the login line also names the
    model this deploy created and could not remove (before, only the login line: the model stayed unseen)."""
    fake = ExpiredLoginSageMaker("create_endpoint_config", "ExpiredTokenException", "expired")
    env, job, status = _deploy_job(monkeypatch, fake, "dev")
    with pytest.raises(CloudError) as refused:
        sagemaker.SageMaker().deploy(env, job, status)
    line, model = str(refused.value), next(iter(fake.models))
    assert line.startswith("no usable AWS credentials for environment dev: ") and "\n" not in line
    assert f"nothing was deployed; could not remove model {model}: delete it with" in line
    assert "aws sso login" in refused.value.hint
