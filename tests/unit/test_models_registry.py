"""The SageMaker Model Registry requests ftops sends, checked offline against botocore's sagemaker service
model (ParamValidator: required members, types, lengths), and the model record's identities."""

from __future__ import annotations

import botocore.session
import pytest
from botocore.validate import ParamValidator

from jobs.models import registry
from jobs.models.record import Artifact, EvaluationSummary, ModelRecord, evaluation_fingerprint

SHA = "ab" * 32


def _validate(operation: str, params: dict) -> None:
    model = botocore.session.get_session().get_service_model("sagemaker")
    report = ParamValidator().validate(params, model.operation_model(operation).input_shape)
    assert not report.has_errors(), report.generate_report()


def _record(**kw) -> ModelRecord:
    return ModelRecord(job="helpdesk-qwen-lora", env="staging", provider="sagemaker",
                       artifact=Artifact(kind="s3", uri="s3://b/out/job/output/model.tar.gz", sha256=SHA, bytes=10),
                       training_job_id="helpdesk-qwen-lora-staging-1a2b3c4d", definition="definitions/x.yaml",
                       definition_sha256="c" * 64, rendered_sha256="d" * 64, dataset_id="ds", base_model="Qwen/x",
                       evaluation=EvaluationSummary(fingerprint="f" * 24, config_fingerprint="e" * 16, dataset_id="ds",
                                                    passed=True, evaluated_at=1.0, env="staging"), **kw)


def test_requests_conform_to_the_sagemaker_service_model():
    record = _record()
    _validate("CreateModelPackageGroup", registry.group_request(record.job, {"environment": "staging"}))
    package = registry.package_request(record, image="763104351884.dkr.ecr.us-east-1.amazonaws.com/hf:1",
                                       metrics_uri="s3://b/ftops-models/m.json", approval="PendingManualApproval")
    _validate("CreateModelPackage", package)
    assert package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"] == "s3://b/ftops-models/m.json"
    assert package["CustomerMetadataProperties"]["ftops:sha256"] == SHA
    _validate("UpdateModelPackage", registry.approval_request("arn:aws:sagemaker:us-east-1:1:model-package/g/1",
                                                              "Approved", "gate passed"))


def test_a_broken_request_is_caught_by_the_validator():
    package = registry.package_request(_record(), image="i", metrics_uri="s3://b/m.json", approval="Approved")
    package["InferenceSpecification"]["SupportedContentTypes"] = "application/json"  # a list in the API
    with pytest.raises(AssertionError, match="SupportedContentTypes"):
        _validate("CreateModelPackage", package)


@pytest.mark.parametrize("job", ["helpdesk-qwen-lora", "a_b.c", "x" * 90])
def test_group_names_follow_the_api_pattern(job):
    import re

    assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", registry.group_name(job))


def test_identity_and_fingerprint_change_with_the_artifact():
    s3 = Artifact(kind="s3", uri="s3://a/model.tar.gz", sha256=SHA)
    moved = Artifact(kind="s3", uri="s3://other/model.tar.gz", sha256=SHA)
    assert s3.identity() == moved.identity()  # a verified copy is the same model
    azure = Artifact(kind="azure-model", model_id="gpt.ft-1", source_resource_id="/subscriptions/x")
    assert azure.identity() == "azure-model:gpt.ft-1"
    assert evaluation_fingerprint("c", "d", s3.identity(), "b", 3) != evaluation_fingerprint("c", "d", azure.identity(), "b", 3)


def test_an_approved_package_names_its_approval_in_metadata_the_api_accepts():
    import regex  # the service model's patterns use \p{..} classes

    from jobs.models.record import ApprovalRecord

    record = _record(approval=ApprovalRecord(status="Approved", by="github:alice (run) #123", at=1.0, env="staging",
                                             evaluation="f" * 24, artifact=f"sha256:{SHA}"))
    package = registry.package_request(record, image="i", metrics_uri="s3://b/m.json", approval="Approved")
    _validate("CreateModelPackage", package)
    props = package["CustomerMetadataProperties"]
    assert props["ftops:approved-in"] == "staging" and props["ftops:approved-evaluation"] == "f" * 24
    shape = botocore.session.get_session().get_service_model("sagemaker").shape_for("CustomerMetadataMap")
    key_pattern, value_pattern = shape.key.metadata["pattern"], shape.value.metadata["pattern"]
    for key, value in props.items():
        assert regex.fullmatch(key_pattern, key) and regex.fullmatch(value_pattern, value), (key, value)
