"""SageMaker Model Registry: one model package group per job definition, one model package per artifact.

The request builders are pure functions (tests check them offline with botocore's ParamValidator against the
sagemaker service model); `register` and `set_approval` send them. Approval starts as
`PendingManualApproval`; `ftops models approve` sets `Approved` in the environment that trained and gated the
model, after the gate's stored verdict is checked; a promoted copy is registered `Approved`, its metadata naming
that approval.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from jobs.models.record import ModelRecord

# ModelPackageGroupName: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$ (botocore sagemaker service model, EntityName).
_NOT_NAME = re.compile(r"[^a-zA-Z0-9-]+")
# CustomerMetadataProperties values: ^([\p{L}\p{Z}\p{N}_.:\/=+\-@]*)$ (botocore sagemaker service model).
_NOT_METADATA = re.compile(r"[^\w\s.:/=+\-@]+")


def group_name(job: str) -> str:
    name = _NOT_NAME.sub("-", f"ftops-{job}").strip("-")
    return re.sub(r"-{2,}", "-", name)[:63].rstrip("-")


def metrics_key(record: ModelRecord) -> str:
    return f"ftops-models/{record.env}/{record.job}/{record.artifact.digest}/metrics.json"


def metrics_document(record: ModelRecord) -> bytes:
    """The statistics ModelMetrics points at: training metrics and the gate's evaluation."""
    evaluation = record.evaluation.model_dump() if record.evaluation else None
    return orjson.dumps({"training": record.metrics, "evaluation": evaluation, "artifact": record.artifact.model_dump()},
                        option=orjson.OPT_SORT_KEYS)


def group_request(job: str, tags: dict[str, str]) -> dict[str, Any]:
    return {"ModelPackageGroupName": group_name(job),
            "ModelPackageGroupDescription": f"ftops: models trained from definition {job}"[:1024],
            "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}


def package_request(record: ModelRecord, *, image: str, metrics_uri: str, approval: str) -> dict[str, Any]:
    props = {"ftops:job": record.job, "ftops:env": record.env, "ftops:sha256": record.artifact.sha256 or "",
             "ftops:definition-sha256": record.definition_sha256, "ftops:rendered-sha256": record.rendered_sha256,
             "ftops:dataset-id": record.dataset_id or "", "ftops:base-model": record.base_model,
             "ftops:training-job": record.training_job_id or "",
             "ftops:evaluation": record.evaluation.fingerprint if record.evaluation else "",
             "ftops:promoted-from": (record.promoted_from or {}).get("env", "")}
    if record.approved:  # who approved, where, on which evaluation (an auditor reads it from the registry too)
        props.update({"ftops:approved-by": _NOT_METADATA.sub("-", record.approval.by or ""),
                      "ftops:approved-in": record.approval.env or "",
                      "ftops:approved-evaluation": record.approval.evaluation or ""})
    return {
        "ModelPackageGroupName": group_name(record.job),
        "ModelPackageDescription": f"{record.job} sha256:{record.artifact.sha256}"[:1024],
        "ModelApprovalStatus": approval,
        "InferenceSpecification": {
            "Containers": [{"Image": image, "ModelDataUrl": record.artifact.uri,
                            "Environment": {"HF_TASK": "text-generation"}}],
            "SupportedContentTypes": ["application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        "ModelMetrics": {"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": metrics_uri}}},
        # Values are capped at 256 characters by the API; ours are hashes and names.
        "CustomerMetadataProperties": {k: v[:256] for k, v in props.items() if v},
        "ClientToken": record.artifact.digest,
    }


def approval_request(package_arn: str, status: str, description: str) -> dict[str, Any]:
    return {"ModelPackageArn": package_arn, "ModelApprovalStatus": status, "ApprovalDescription": description[:1024]}


def register(sm: Any, s3: Any, bucket: str, record: ModelRecord, *, image: str, tags: dict[str, str],
             approval: str = "PendingManualApproval", readers: list[str] | None = None) -> dict[str, str]:
    """Create the group (once) and the model package; returns {group, package_arn}. `readers`: pipeline role
    ARNs of the environments this one promotes to, which read its packages (jobs.access.registry)."""
    group = group_name(record.job)
    try:
        group_arn = sm.describe_model_package_group(ModelPackageGroupName=group)["ModelPackageGroupArn"]
    except Exception as exc:
        if "does not exist" not in str(exc) and "ValidationException" not in str(exc):
            raise
        group_arn = sm.create_model_package_group(**group_request(record.job, tags))["ModelPackageGroupArn"]
    if readers:
        # Set on every registration, not only when the group is made: a group from before the environment
        # named its promotion targets (aws.promotion_targets) gets the readers it has now. The call replaces
        # the policy, so repeating it changes nothing.
        from jobs.access.registry import group_policy

        sm.put_model_package_group_policy(ModelPackageGroupName=group, ResourcePolicy=orjson.dumps(
            group_policy(group_arn, readers)).decode())
    key = metrics_key(record)
    s3.put_object(Bucket=bucket, Key=key, Body=metrics_document(record), ContentType="application/json")
    created = sm.create_model_package(**package_request(record, image=image, metrics_uri=f"s3://{bucket}/{key}",
                                                        approval=approval))
    return {"group": group, "package_arn": created["ModelPackageArn"]}


def set_approval(sm: Any, package_arn: str, status: str, description: str) -> str:
    sm.update_model_package(**approval_request(package_arn, status, description))
    return sm.describe_model_package(ModelPackageName=package_arn)["ModelApprovalStatus"]
