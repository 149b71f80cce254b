"""What the pipeline role needs in an environment whatever job it applies: the apply ledger, dataset and source
uploads, listings, the model registry that promotion writes."""

from __future__ import annotations

from jobs.access.jobs import NO_RESOURCE_LEVEL, kms_for_s3
from jobs.access.model import ANY_RESOURCE, SAMPLE_OBJECT, Access, Arns
from jobs.config.environment import Environment

LEDGER_PREFIX = "ftops-ledger/"
"""jobs.providers.sagemaker.LEDGER_PREFIX; `<prefix><env>/` in the artifacts bucket."""
SOURCE_PREFIX = "source/"
"""Content-addressed training source archives: `source/<sha256>/sourcedir.tar.gz`, written once, never overwritten."""
MODELS_PREFIX = "models/"
"""Base-model weights in the artifacts bucket (the `model` channel)."""
OUTPUT_PREFIX = "training-output/"
PROMOTED_PREFIX = "promoted/"
"""Where promotion copies a candidate's model.tar.gz in the target environment's artifacts bucket."""


def ledger_accesses(arns: Arns, env_name: str) -> list[Access]:
    bucket = arns.resolved.output_bucket
    prefix = f"{LEDGER_PREFIX}{env_name}/"
    entry = arns.s3(bucket, f"{prefix}{SAMPLE_OBJECT}.json")
    why = "apply ledger"
    return [
        Access("pipeline", "s3:ListBucket", arns.s3(bucket), {"s3:prefix": prefix}, f"{why}: list entries"),
        Access("pipeline", "s3:GetObject", entry, {}, f"{why}: read an entry"),
        Access("pipeline", "s3:PutObject", entry, {"s3:if-none-match": "*"}, f"{why}: create an entry (If-None-Match)"),
        Access("pipeline", "s3:PutObject", entry, {"s3:if-match": '"0123456789abcdef0123456789abcdef"'},
               f"{why}: replace an entry (If-Match its ETag)"),
        *kms_for_s3(arns, "pipeline", why, write=True),
    ]


def dataset_upload_accesses(arns: Arns, env: Environment) -> list[Access]:
    bucket = arns.resolved.datasets_bucket
    prefix = env.data.s3_prefix
    obj = arns.s3(bucket, f"{prefix}0123456789abcdef/train/{SAMPLE_OBJECT}.jsonl")
    why = "dataset upload (`ftops data upload`, apply)"
    return [
        # Listing makes a HEAD on a missing key 404 (not 403): the upload's existence check depends on it.
        Access("pipeline", "s3:ListBucket", arns.s3(bucket), {"s3:prefix": prefix}, f"{why}: HEAD of missing keys"),
        Access("pipeline", "s3:GetObject", obj, {}, f"{why}: HEAD/verify an uploaded file"),
        Access("pipeline", "s3:PutObject", obj, {}, f"{why}: put, multipart create/part/complete"),
        # The request's Prefix is no condition key of this action (Service Authorization Reference, S3).
        Access("pipeline", "s3:ListBucketMultipartUploads", arns.s3(bucket), {},
               f"{why}: resume an interrupted multipart upload"),
        Access("pipeline", "s3:ListMultipartUploadParts", obj, {}, f"{why}: parts already sent"),
        Access("pipeline", "s3:AbortMultipartUpload", obj, {}, f"{why}: abandon a stale multipart upload"),
        *kms_for_s3(arns, "pipeline", why, write=True),
    ]


def source_upload_accesses(arns: Arns) -> list[Access]:
    bucket = arns.resolved.output_bucket
    obj = arns.s3(bucket, f"{SOURCE_PREFIX}{'0' * 64}/sourcedir.tar.gz")
    why = "training source upload (apply)"
    return [
        Access("pipeline", "s3:ListBucket", arns.s3(bucket), {"s3:prefix": SOURCE_PREFIX}, f"{why}: HEAD of missing keys"),
        Access("pipeline", "s3:GetObject", obj, {}, f"{why}: HEAD and verify an archive at its content address"),
        # Written only if absent: the role may not overwrite an existing archive (issue 17, item 4).
        Access("pipeline", "s3:PutObject", obj, {"s3:if-none-match": "*"}, f"{why}: put if absent"),
        *kms_for_s3(arns, "pipeline", why, write=True),
    ]


def listing_accesses() -> list[Access]:
    return [Access("pipeline", "sagemaker:ListTrainingJobs", ANY_RESOURCE, {},
                   f"`ftops jobs list` ({NO_RESOURCE_LEVEL['sagemaker:ListTrainingJobs']})")]


def model_group_name(env: Environment, job: str) -> str:
    """The model package group promotion registers a job's candidates in (one per job definition)."""
    return f"{env.require_aws().resource_prefix}-{job}"[:63]


def promotion_accesses(arns: Arns, env: Environment, job: str) -> list[Access]:
    """Model-registry calls and the copy of the candidate's artifact into this environment (pre-declared for
    `ftops promote`; the registry calls are the SageMaker Model Registry API's)."""
    group_name = model_group_name(env, job)
    group = arns.sagemaker("model-package-group", group_name)
    package = arns.sagemaker("model-package", f"{group_name}/1")
    tags = env.all_tags
    why = f"promotion of {job}"
    from jobs.access.model import tag_context

    out = [
        Access("pipeline", "sagemaker:CreateModelPackageGroup", group, tag_context(tags, request=True),
               f"{why}: model package group"),
        Access("pipeline", "sagemaker:AddTags", group,
               {**tag_context(tags, request=True), "sagemaker:TaggingAction": "CreateModelPackageGroup"},
               f"{why}: group tags set on create"),
        Access("pipeline", "sagemaker:DescribeModelPackageGroup", group, {}, f"{why}: group exists?"),
        Access("pipeline", "sagemaker:PutModelPackageGroupPolicy", group, {}, f"{why}: cross-account read of the group"),
        Access("pipeline", "sagemaker:CreateModelPackage", package, {}, f"{why}: register a candidate"),
        Access("pipeline", "sagemaker:UpdateModelPackage", package, {}, f"{why}: approve or reject"),
        Access("pipeline", "sagemaker:DescribeModelPackage", package, {}, f"{why}: candidate status"),
        Access("pipeline", "sagemaker:ListModelPackages", package, {}, f"{why}: candidates of the group"),
    ]
    bucket = arns.resolved.output_bucket
    target = arns.s3(bucket, f"{PROMOTED_PREFIX}{job}/{SAMPLE_OBJECT}/model.tar.gz")
    out += [Access("pipeline", "s3:PutObject", target, {}, f"{why}: copy the candidate's model.tar.gz here"),
            Access("pipeline", "s3:GetObject", target, {}, f"{why}: verify the copy"),
            *kms_for_s3(arns, "pipeline", f"{why}: copy", write=True)]
    return out


def environment_accesses(env: Environment) -> list[Access]:
    arns = Arns.of(env)
    return [*ledger_accesses(arns, env.name), *dataset_upload_accesses(arns, env), *source_upload_accesses(arns),
            *listing_accesses()]
