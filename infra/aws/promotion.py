"""What a source environment grants the pipeline roles of its `aws.promotion_targets` (the environments that run
`ftops promote --from <this>`): on its artifacts bucket, list and read the model records and read the trained
`model.tar.gz`; on its key, decrypt through S3. Read only: this environment approves its own models with its own
role (`ftops models approve`), so no target may write its records or change its model packages.

Principals are the target accounts, narrowed to the pipeline role by `aws:PrincipalArn`: a bucket or key policy
naming a role ARN directly is refused while that role does not exist yet, and this way the source and target
stacks deploy in any order. The target role's identity policy grants the same (infra.aws.pipeline_role), as
cross-account access needs both sides.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from infra.aws.naming import Names
from infra.aws.pipeline_role import RECORDS_PREFIX, SOURCE_MODEL


def _principals(targets: list[Names]) -> tuple[list[iam.IPrincipal], dict]:
    accounts = list(dict.fromkeys(t.account for t in targets))
    return ([iam.AccountPrincipal(a) for a in accounts],
            {"ArnEquals": {"aws:PrincipalArn": [t.pipeline_role_arn for t in targets]}})


def grant_promotion(names: Names, bucket: s3.Bucket, key: kms.Key, targets: list[Names]) -> None:
    if not targets:
        return
    principals, who = _principals(targets)
    records = f"{RECORDS_PREFIX}{names.env}/"
    bucket.add_to_resource_policy(iam.PolicyStatement(
        sid="PromotionTargetsList", principals=principals, actions=["s3:ListBucket"],
        resources=[bucket.bucket_arn], conditions={**who, "StringLike": {"s3:prefix": [f"{records}*"]}}))
    bucket.add_to_resource_policy(iam.PolicyStatement(
        sid="PromotionTargetsRead", principals=principals, actions=["s3:GetObject"],
        resources=[bucket.arn_for_objects(f"{records}*"), bucket.arn_for_objects(SOURCE_MODEL)], conditions=who))
    key.add_to_resource_policy(iam.PolicyStatement(
        sid="PromotionTargetsThroughS3", principals=principals, actions=["kms:Decrypt"],
        resources=["*"],  # in a key policy, "*" means this key
        conditions={**who, "StringEquals": {"kms:ViaService": f"s3.{names.region}.amazonaws.com"}}))
