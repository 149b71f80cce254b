"""Contract tests: what we render is what the SageMaker API, ACK, the Azure OpenAI SDK and our training
script accept, checked offline against their own models and clients."""

from __future__ import annotations

import json
import re
import shlex

import botocore.session
import httpx2 as httpx  # openai 3.x ships its HTTP client as the httpx2 package
import pytest
from botocore.validate import ParamValidator

from jobs.config.environment import load_environment
from jobs.render.engine import render_environment
from jobs.training.hparams import parse_args

SM, AZ = "helpdesk-qwen-lora", "helpdesk-gpt41mini"
TUNING = {"tuning": {"objective": {"metric": "eval_loss"}, "max_jobs": 4,
                     "ranges": {"learning_rate": {"min": 0.00005, "max": 0.0005, "scaling": "Logarithmic"},
                                "lora_r": {"min": 8, "max": 32}, "epochs": {"values": [2, 3]}}}}


@pytest.fixture(scope="module")
def sagemaker_model():
    return botocore.session.get_session().get_service_model("sagemaker")


def _validate(model, operation: str, request: dict) -> None:
    report = ParamValidator().validate(request, model.operation_model(operation).input_shape)
    assert not report.has_errors(), report.generate_report()


def _ack_name(api_name: str) -> str:
    """ACK's field naming: lowerCamelCase with the initialisms ARN, ID(s), URI and KMS; a field named `Type`
    becomes `type_` (ACK renames Go keywords; the HyperParameterTuningJob CRD spells the objective's so)."""
    if api_name == "Type":
        return "type_"
    name = re.sub(r"Arn(?=[A-Z]|$)", "ARN", api_name)
    name = re.sub(r"Ids(?=[A-Z]|$)", "IDs", name)
    name = re.sub(r"Id(?=[A-Z]|$)", "ID", name)
    name = re.sub(r"Uri(?=[A-Z]|$)", "URI", name)
    name = re.sub(r"Kms(?=[A-Z])", "KMS", name)
    for prefix in ("KMS", "S3"):
        if name.startswith(prefix):
            return prefix.lower() + name[len(prefix):]
    return name[0].lower() + name[1:]


def _to_ack(value, shape):
    """The boto3 request as ACK spells it, walking the service model (map keys are user data, kept)."""
    if shape.type_name == "structure":
        return {_ack_name(k): _to_ack(v, shape.members[k]) for k, v in value.items()}
    if shape.type_name == "list":
        return [_to_ack(v, shape.member) for v in value]
    if shape.type_name == "map":
        return {k: _to_ack(v, shape.value) for k, v in value.items()}
    return value


@pytest.mark.parametrize("env", ["local", "prod"])
def test_training_request_passes_botocore_validation_and_matches_ack(project, sagemaker_model, env):
    job = next(r for r in render_environment(load_environment(env), SM))
    request = job.documents["sagemaker.json"]
    _validate(sagemaker_model, "CreateTrainingJob", request)
    ack = job.documents["ack.yaml"]
    assert ack["apiVersion"] == "sagemaker.services.k8s.aws/v1alpha1" and ack["kind"] == "TrainingJob"
    assert ack["metadata"]["name"] == request["TrainingJobName"]
    expected = _to_ack(request, sagemaker_model.operation_model("CreateTrainingJob").input_shape)
    assert ack["spec"] == expected


def test_text_with_line_breaks_reaches_ack_unchanged(project, sagemaker_model):
    """Blank lines inside a value are part of it (rendering drops only the blank lines templates leave)."""
    notes = {"RUN_NOTE": "line one\n\nline three", "OTHER": "a\r\nb \u2028 c"}
    project.edit_definition(SM, compute__environment=notes)
    job = render_environment(load_environment("local"), SM)[0]
    request = job.documents["sagemaker.json"]
    assert {k: request["Environment"][k] for k in notes} == notes
    assert job.documents["ack.yaml"]["spec"] == _to_ack(
        request, sagemaker_model.operation_model("CreateTrainingJob").input_shape)


def test_profiler_and_vpc_render_valid_requests(project, sagemaker_model):
    project.edit_environment("local", "  region: us-east-1\n",
                             "  region: us-east-1\n  training:\n    profiler: true\n    network_isolation: true\n")
    from jobs.config.resolved import derive_aws, resolved_file
    values = derive_aws(load_environment("local")).model_dump() | {"subnet_ids": ["subnet-0a1b2c3d"],
                                                                   "security_group_ids": ["sg-0a1b2c3d"]}
    resolved_file("local", "aws").parent.mkdir(parents=True, exist_ok=True)
    resolved_file("local", "aws").write_text(json.dumps(values))
    job = render_environment(load_environment("local"), SM)[0]
    request = job.documents["sagemaker.json"]
    _validate(sagemaker_model, "CreateTrainingJob", request)
    assert request["VpcConfig"] == {"Subnets": ["subnet-0a1b2c3d"], "SecurityGroupIds": ["sg-0a1b2c3d"]}
    assert request["EnableNetworkIsolation"] is True
    assert request["ProfilerRuleConfigurations"][0]["RuleConfigurationName"] == "ProfilerReport"
    assert "DebugHookConfig" not in request and "DebugRuleConfigurations" not in request
    assert job.documents["ack.yaml"]["spec"] == _to_ack(
        request, sagemaker_model.operation_model("CreateTrainingJob").input_shape)


def test_tuning_request_passes_botocore_validation_and_matches_ack(project, sagemaker_model):
    project.edit_definition(SM, sweep=TUNING)
    job = render_environment(load_environment("local"), SM)[0]
    request = job.documents["sagemaker-tuning.json"]
    _validate(sagemaker_model, "CreateHyperParameterTuningJob", request)
    shape = sagemaker_model.operation_model("CreateHyperParameterTuningJob").input_shape
    # The CRD has no TrainingJobDefinition.Environment (tests/unit/test_ack_crds.py); the rest is the same request.
    without_environment = {**request, "TrainingJobDefinition": {
        k: v for k, v in request["TrainingJobDefinition"].items() if k != "Environment"}}
    assert job.documents["ack.yaml"]["spec"] == _to_ack(without_environment, shape)


def test_hyperparameters_are_what_the_training_script_parses(project):
    request = render_environment(load_environment("local"), SM)[0].documents["sagemaker.json"]
    argv = [token for key, value in request["HyperParameters"].items() for token in (f"--{key}", value)]
    parsed = parse_args(shlex.split(shlex.join(argv)))
    assert parsed.method == "sft" and parsed.peft == "lora" and parsed.packing is True
    assert parsed.learning_rate == 2e-4 and parsed.per_device_batch_size == 8
    assert parsed.extras["sagemaker_program"] == "train.py"
    assert re.fullmatch(r"s3://[a-z0-9.-]+/source/[0-9a-f]{64}/sourcedir.tar.gz", parsed.extras["sagemaker_submit_directory"])


def test_metric_definitions_match_the_training_scripts_lines(project):
    from jobs.training.metrics import format_line

    request = render_environment(load_environment("local"), SM)[0].documents["sagemaker.json"]
    line = format_line(12, {"train_loss": 0.8123, "eval_loss": 0.9, "learning_rate": 2e-4})
    found = {}
    for definition in request["AlgorithmSpecification"]["MetricDefinitions"]:
        match = re.search(definition["Regex"], line)
        if match:
            found[definition["Name"]] = float(match.group(1))
    assert found == {"train_loss": 0.8123, "eval_loss": 0.9, "learning_rate": 2e-4}


@pytest.mark.parametrize(("env", "method"), [("local", "supervised"), ("prod", "supervised"), ("local", "dpo")])
def test_azure_body_is_what_the_openai_sdk_sends(project, env, method):
    import openai

    if method == "dpo":
        project.edit_definition(AZ, method="dpo", hyperparameters__beta=0.2, dataset=project.preference_dataset())
    job = render_environment(load_environment(env), AZ)[0]
    body = job.documents["azure-openai.json"]
    captured: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        captured.append(request)
        return httpx.Response(201, json={"id": "ftjob-1", "object": "fine_tuning.job", "model": body["model"],
                                         "created_at": 0, "status": "pending", "training_file": "file-1",
                                         "validation_file": None, "hyperparameters": {}, "organization_id": "",
                                         "result_files": [], "seed": body["seed"], "fine_tuned_model": None,
                                         "finished_at": None, "error": None, "trained_tokens": None})

    client = openai.AzureOpenAI(azure_endpoint="https://example.openai.azure.com", api_version="2025-04-01-preview",
                                azure_ad_token_provider=lambda: "entra-token", max_retries=0,
                                http_client=httpx.Client(transport=httpx.MockTransport(handler)))
    sdk_fields = {k: v for k, v in body.items() if k != "trainingType"}
    client.fine_tuning.jobs.create(**sdk_fields, extra_body={"trainingType": body["trainingType"]})
    sent = captured[0]
    assert sent.method == "POST" and sent.url.path == "/openai/fine_tuning/jobs"
    assert json.loads(sent.content) == body
    hyper = body["method"][method]["hyperparameters"]
    assert hyper["n_epochs"] == (3 if env == "prod" else 2)
    assert (hyper.get("beta") == 0.2) == (method == "dpo")


def test_no_rendered_azure_file_carries_a_placeholder_model(project):
    """The fine-tuned model exists only after training: render writes no aso.yaml and no model name at all."""
    job = render_environment(load_environment("local"), AZ)[0]
    assert "aso.yaml" not in job.documents
    deployment = job.documents["azure-openai-deployment.json"]
    assert deployment["deployment_name"] == job.name and deployment["body"] == {"sku": {"name": "Standard",
                                                                                        "capacity": 1}}
    assert all("ftops-model" not in json.dumps(job.documents[name]) for name in ("azure-openai.json",
                                                                            "azure-openai-deployment.json"))

