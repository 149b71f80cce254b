"""The gate's out-of-domain threshold and collapse warning, and the SageMaker
base-model deployment the gate creates (requests checked against botocore's service model)."""

from __future__ import annotations

import botocore.session
from botocore.validate import ParamValidator

from jobs.config.environment import load_environment
from jobs.eval.config import GateConfig
from jobs.eval.gate import decide
from jobs.eval.gate_run import base_model_names, base_model_requests


def _evaluation(ood_ft: float, ood_base: float) -> dict:
    row = {"fine_tuned": {"value": 0.673}, "base": {"value": 0.40}, "delta": {"low": 0.2, "high": 0.3}}
    return {"metrics": {"rougeL": row},
            "robustness": {"out_of_domain": {"rougeL": {"fine_tuned": ood_ft, "base": ood_base,
                                                        "drop_fine_tuned": round(0.673 - ood_ft, 6),
                                                        "drop_base": 0.0}}}}


def test_an_out_of_domain_collapse_below_base_warns_without_a_threshold():
    verdict = decide(GateConfig("rougeL", 0.02, 0.05), _evaluation(0.004, 0.31))
    assert verdict["passed"]  # no threshold set: reported, not refused
    assert verdict["warnings"] == ["rougeL on out_of_domain: fine-tuned 0.004 is below the base model's 0.310"]


def test_max_out_of_domain_regression_refuses_the_collapse():
    verdict = decide(GateConfig("rougeL", 0.02, 0.05, max_out_of_domain_regression=0.1), _evaluation(0.004, 0.31))
    assert not verdict["passed"]
    assert verdict["reasons"] == ["rougeL out of domain: fine-tuned drops 0.669 from clean (0.673 -> 0.004), over "
                                  "the allowed 0.100"]
    fine = decide(GateConfig("rougeL", 0.02, 0.05, max_out_of_domain_regression=0.1), _evaluation(0.6, 0.31))
    assert fine["passed"] and fine["warnings"] == []


def _base_requests(subnets: list[str]) -> dict:
    model = botocore.session.get_session().get_service_model("sagemaker")
    requests = base_model_requests(load_environment("staging"), "helpdesk-qwen-lora", "s3://b/models/qwen/",
                                   image="763104351884.dkr.ecr.us-east-1.amazonaws.com/hf:1",
                                   execution_role="arn:aws:iam::111122223333:role/x", subnets=subnets,
                                   security_groups=["sg-1"] if subnets else [],
                                   kms_key="arn:aws:kms:us-east-1:111122223333:key/k")
    for operation, key in (("CreateModel", "model"), ("CreateEndpointConfig", "config"),
                           ("CreateEndpoint", "endpoint")):
        report = ParamValidator().validate(requests[key], model.operation_model(operation).input_shape)
        assert not report.has_errors(), report.generate_report()
    return requests


def test_the_gate_base_model_requests_conform_to_the_service_model():
    requests = _base_requests([])
    variant = requests["config"]["ProductionVariants"][0]
    assert "ServerlessConfig" in variant and "InstanceType" not in variant  # nothing idles, billed per request
    assert "VpcConfig" not in requests["model"]
    in_vpc = _base_requests(["subnet-1"])  # serverless takes no VPC: one instance in the VPC instead
    variant = in_vpc["config"]["ProductionVariants"][0]
    assert "ServerlessConfig" not in variant and variant["InstanceType"] == "ml.g5.xlarge"
    assert in_vpc["model"]["VpcConfig"]["Subnets"] == ["subnet-1"] and in_vpc["model"]["EnableNetworkIsolation"]
    assert requests["model"]["PrimaryContainer"]["ModelDataSource"]["S3DataSource"]["CompressionType"] == "None"
    names = base_model_names("a" * 32)
    assert len(names["endpoint"]) <= 63 and len(names["config"]) <= 63
