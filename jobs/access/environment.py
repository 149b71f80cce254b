"""What the pipeline role needs in an environment whatever job it applies: the apply ledger, dataset and source
uploads, listings, preflight's own reads, the model records and registry of approval and promotion."""

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
RECORDS_PREFIX = "ftops-models/"
"""jobs.models.store.PREFIX: model records `<prefix><env>/<job>/<digest>.json`, the registry's metrics documents
`<prefix><env>/<job>/<digest>/metrics.json`, and promoted artifacts `<prefix>artifacts/<job>/<sha256>/model.tar.gz`
(jobs.models.artifacts.promoted_key)."""


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
    return [Access("pipeline", action, ANY_RESOURCE, {}, f"`ftops jobs list` ({NO_RESOURCE_LEVEL[action]})")
            for action in ("sagemaker:ListTrainingJobs", "sagemaker:ListHyperParameterTuningJobs")]


def key_alias_name(env: Environment) -> str:
    """The environment key's alias name (jobs.config.resolved.derive_aws names it `<prefix>-<env>`)."""
    return f"{env.require_aws().resource_prefix}-{env.name}"


def promotion_sources(env: Environment) -> list[Environment]:
    """The environments `env` promotes from: those naming it in `aws.promotion_targets`."""
    from jobs.config.environment import environment_names, load_environment

    out = []
    for name in environment_names():
        if name == env.name:
            continue
        other = load_environment(name)
        if other.aws and other.aws.enabled and env.name in other.aws.promotion_targets:
            out.append(other)
    return out


def _package_arns(arns: Arns, job: str) -> tuple[str, str]:
    from jobs.models.registry import group_name

    group = group_name(job)
    return (arns.sagemaker("model-package-group", group),
            arns.sagemaker("model-package", f"{group}/{SAMPLE_VERSION}"))


SAMPLE_VERSION = "1"
SAMPLE_DIGEST = "sha256-" + "0" * 64
"""Stand-ins for a model package version and a record's artifact digest (IAM matches them by pattern)."""


def record_accesses(arns: Arns, env_name: str, job: str, why: str) -> list[Access]:
    """jobs.models.store (S3): list a job's records, read one, create it (If-None-Match), update it (If-Match);
    jobs.models.registry: the metrics document beside the record, which ModelMetrics points at."""
    from jobs.models.store import PREFIX, record_key

    bucket = arns.resolved.output_bucket
    record = arns.s3(bucket, record_key(env_name, job, SAMPLE_DIGEST))
    metrics = arns.s3(bucket, f"{PREFIX}{env_name}/{job}/{SAMPLE_DIGEST}/metrics.json")
    return [
        Access("pipeline", "s3:ListBucket", arns.s3(bucket), {"s3:prefix": f"{PREFIX}{env_name}/{job}/"},
               f"{why}: list the model records"),
        Access("pipeline", "s3:ListBucket", arns.s3(bucket), {"s3:prefix": f"{PREFIX}{env_name}/"},
               f"{why}: `ftops models list`"),
        Access("pipeline", "s3:GetObject", record, {}, f"{why}: read a model record"),
        Access("pipeline", "s3:PutObject", record, {"s3:if-none-match": "*"}, f"{why}: create a model record"),
        Access("pipeline", "s3:PutObject", record, {"s3:if-match": '"0123456789abcdef0123456789abcdef"'},
               f"{why}: update a model record (If-Match its ETag)"),
        Access("pipeline", "s3:PutObject", metrics, {}, f"{why}: the registry's metrics document"),
        *kms_for_s3(arns, "pipeline", f"{why}: model records", write=True),
    ]


def registry_accesses(arns: Arns, env: Environment, job: str, approval: str, why: str) -> list[Access]:
    """jobs.models.registry.register: the group (created once, tagged), a model package registered `approval`."""
    from jobs.access.model import tag_context

    group, package = _package_arns(arns, job)
    tags = env.all_tags
    return [
        Access("pipeline", "sagemaker:DescribeModelPackageGroup", group, {}, f"{why}: group exists?"),
        Access("pipeline", "sagemaker:CreateModelPackageGroup", group, tag_context(tags, request=True),
               f"{why}: model package group"),
        Access("pipeline", "sagemaker:AddTags", group,
               {**tag_context(tags, request=True), "sagemaker:TaggingAction": "CreateModelPackageGroup"},
               f"{why}: group tags set on create"),
        Access("pipeline", "sagemaker:CreateModelPackage", package, {"sagemaker:ModelApprovalStatus": approval},
               f"{why}: register the model ({approval})"),
        Access("pipeline", "sagemaker:DescribeModelPackage", package, {}, f"{why}: approval status (deploy checks it)"),
    ]


def approval_accesses(arns: Arns, env: Environment, job: str) -> list[Access]:
    """`ftops models approve JOB --env env` (jobs.models.lifecycle.approve), run by `env`'s own pipeline role in
    the environment that trained and gated the model: read its record, set its model package Approved
    (registry.set_approval: UpdateModelPackage, then DescribeModelPackage), replace the record If-Match the ETag
    read. `promotion: retrain` approves the same way in the target, with the target's role."""
    from jobs.models.store import record_key

    bucket = arns.resolved.output_bucket
    record = arns.s3(bucket, record_key(env.name, job, SAMPLE_DIGEST))
    _, package = _package_arns(arns, job)
    why = f"approval of {job} in {env.name}"
    return [
        Access("pipeline", "s3:GetObject", record, {}, f"{why}: read the model record"),
        Access("pipeline", "sagemaker:UpdateModelPackage", package, {"sagemaker:ModelApprovalStatus": "Approved"},
               f"{why}: set the model package Approved"),
        Access("pipeline", "sagemaker:DescribeModelPackage", package, {}, f"{why}: the package's status after"),
        Access("pipeline", "s3:PutObject", record, {"s3:if-match": '"0123456789abcdef0123456789abcdef"'},
               f"{why}: mark the record Approved (If-Match its ETag)"),
        *kms_for_s3(arns, "pipeline", f"{why}: the model record", write=True),
    ]


def source_read_accesses(src: Arns, source: Environment, job: str, why: str) -> list[Access]:
    """What `ftops promote --from source` reads there with the target's credentials, and nothing else
    (jobs.models.lifecycle.source_approved and copy_verified): the job's records (list and read), the approved
    package's status, the evaluated model.tar.gz; decrypted through S3 with the source's key, which the target's
    identity policy names by its alias (its key id is known only once the source is deployed; KMS sets
    kms:ResourceAliases from the key's aliases)."""
    from jobs.models.store import PREFIX, record_key

    bucket = src.resolved.output_bucket
    _, package = _package_arns(src, job)
    alias = "alias/" + key_alias_name(source)
    return [
        Access("pipeline", "s3:ListBucket", src.s3(bucket), {"s3:prefix": f"{PREFIX}{source.name}/{job}/"},
               f"{why}: list the source's model records"),
        Access("pipeline", "s3:GetObject", src.s3(bucket, record_key(source.name, job, SAMPLE_DIGEST)), {},
               f"{why}: read the source's approved record"),
        Access("pipeline", "sagemaker:DescribeModelPackage", package, {}, f"{why}: the source package is Approved?"),
        # The evaluated artifact: the training job's model.tar.gz in the source's artifacts bucket
        # (jobs.access.deploy.model_artifact: `<S3OutputPath><training job>/output/model.tar.gz`).
        Access("pipeline", "s3:GetObject", src.s3(bucket, f"{OUTPUT_PREFIX}{job}-0123abcd/output/model.tar.gz"), {},
               f"{why}: the evaluated model.tar.gz"),
        *(Access(a.principal, a.action, a.resource, {**a.context, "kms:ResourceAliases": [alias]}, a.why)
          for a in kms_for_s3(src, "pipeline", f"{why}: the source's records and model", write=False)),
    ]


def promotion_accesses(arns: Arns, env: Environment, job: str) -> list[Access]:
    """What `env`'s pipeline role does for jobs.models.lifecycle: register and evaluate a model trained here, and
    promote one from each environment that names `env` in `aws.promotion_targets` (`ftops promote --from S --to
    env` runs with env's credentials: it only reads S's approved record, package status and artifact, copies
    the bytes into env's bucket, verifies them, registers them here Approved). The approval itself is made in S
    by S's own role (approval_accesses); nothing here writes into S."""
    from jobs.models.artifacts import promoted_key

    out = record_accesses(arns, env.name, job, f"model of {job}")
    out += registry_accesses(arns, env, job, "PendingManualApproval", f"model of {job}")
    if env.require_aws().promotion_targets:
        group, _ = _package_arns(arns, job)
        out.append(Access("pipeline", "sagemaker:PutModelPackageGroupPolicy", group, {},
                          f"model of {job}: let {', '.join(env.require_aws().promotion_targets)} read its packages"))
    bucket = arns.resolved.output_bucket
    for source in promotion_sources(env):
        why = f"promotion of {job} from {source.name}"
        out += source_read_accesses(Arns.of(source), source, job, why)
        # The copy (jobs.models.artifacts.copy_verified): streamed, multipart for large files, under the target
        # environment's key; re-read to verify the sha256; removed when it does not match.
        target = arns.s3(bucket, promoted_key(job, "0" * 64))
        encrypted = {"s3:x-amz-server-side-encryption": "aws:kms",
                     "s3:x-amz-server-side-encryption-aws-kms-key-id": arns.key_arn}
        out += [Access("pipeline", "s3:ListBucket", arns.s3(bucket), {"s3:prefix": promoted_key(job, "0" * 64)},
                       f"{why}: is the copy there?"),
                Access("pipeline", "s3:GetObject", target, {}, f"{why}: verify the copy's sha256"),
                Access("pipeline", "s3:PutObject", target, encrypted, f"{why}: copy the model.tar.gz here"),
                *(Access("pipeline", action, target, {}, f"{why}: multipart copy")
                  for action in ("s3:AbortMultipartUpload", "s3:ListMultipartUploadParts")),
                Access("pipeline", "s3:DeleteObject", target, {}, f"{why}: remove a copy whose sha256 differs"),
                *kms_for_s3(arns, "pipeline", f"{why}: copy", write=True)]
        # The copy's record (created, or replaced If-Match when promoted again) and its package, registered Approved.
        out += record_accesses(arns, env.name, job, why)
        out += registry_accesses(arns, env, job, "Approved", why)
    return out


def preflight_accesses(arns: Arns, env: Environment) -> list[Access]:
    """`ftops preflight` (and the cheap part `ftops apply` runs) as the pipeline role: jobs.preflight.aws's reads.

    sts:GetCallerIdentity needs no permission (AWS STS docs) and is not listed. Resource-level where the service
    has it (iam role, cloudformation stack, s3 bucket, budgets budget, sagemaker endpoint); `*` for the Service
    Quotas lists, ec2:DescribeInstanceTypeOfferings and sagemaker:ListEndpoints/ListTrainingJobs, which have no
    resource types (NO_RESOURCE_LEVEL)."""
    from infra.aws.naming import Names  # no aws_cdk there: the names the stack and preflight both use
    from infra.aws.outputs import stack_name

    resolved = arns.resolved
    why = "preflight"
    out = [Access("pipeline", "iam:SimulatePrincipalPolicy", role, {},
                  f"{why}: permissions of {role.rsplit('/', 1)[-1]}")
           for role in (resolved.pipeline_role_arn, resolved.execution_role_arn, resolved.endpoint_role_arn)]
    out += [Access("pipeline", action, ANY_RESOURCE, {}, f"{why}: quotas, capacity and instances in use "
                   f"({NO_RESOURCE_LEVEL[action]})")
            for action in ("servicequotas:ListAWSDefaultServiceQuotas", "servicequotas:ListServiceQuotas",
                           "ec2:DescribeInstanceTypeOfferings", "sagemaker:ListTrainingJobs",
                           "sagemaker:ListEndpoints")]
    out += [
        # Any endpoint or running job of the account holds quota, ftops' or not.
        Access("pipeline", "sagemaker:DescribeTrainingJob", arns.sagemaker("training-job", SAMPLE_OBJECT), {},
               f"{why}: instances a running training job holds"),
        Access("pipeline", "sagemaker:DescribeEndpoint", arns.sagemaker("endpoint", SAMPLE_OBJECT), {},
               f"{why}: an endpoint's config"),
        Access("pipeline", "sagemaker:DescribeEndpointConfig", arns.sagemaker("endpoint-config", SAMPLE_OBJECT), {},
               f"{why}: instances an endpoint holds"),
        # The stack id is known only once deployed; IAM matches the ARN's id by pattern.
        Access("pipeline", "cloudformation:DescribeStacks",
               arns.arn("cloudformation", f"stack/{stack_name(env)}/00000000-0000-0000-0000-000000000000"), {},
               f"{why}: the stack's status and outputs"),
        Access("pipeline", "budgets:ViewBudget", arns.arn("budgets", f"budget/{Names.of(env).budget}", region=False),
               {}, f"{why}: the remaining monthly budget"),
    ]
    for bucket in (resolved.datasets_bucket, resolved.output_bucket, resolved.checkpoints_bucket):
        # GetBucketEncryption is authorized as s3:GetEncryptionConfiguration (S3 API reference, "Permissions") and
        # answers existence too; no HeadBucket, which would need s3:ListBucket on the whole bucket.
        out.append(Access("pipeline", "s3:GetEncryptionConfiguration", arns.s3(bucket), {},
                          f"{why}: the bucket exists, is reachable, and its default encryption is the environment's key"))
    return out


def environment_accesses(env: Environment) -> list[Access]:
    arns = Arns.of(env)
    return [*ledger_accesses(arns, env.name), *dataset_upload_accesses(arns, env), *source_upload_accesses(arns),
            *listing_accesses(), *preflight_accesses(arns, env)]
