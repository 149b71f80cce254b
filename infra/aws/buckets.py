"""The S3 buckets: datasets, artifacts (output, source, tensorboard), checkpoints, and their access logs."""

from __future__ import annotations

from functools import cache

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.aws.naming import Names

# Every jsii value fetched from Python is a round trip to node: shared values are fetched once per process.
ABORT_INCOMPLETE_UPLOADS = Duration.days(7)
BLOCK_ALL = s3.BlockPublicAccess.BLOCK_ALL


@cache
def days(count: int) -> Duration:
    return Duration.days(count)


class PlatformBuckets(Construct):
    def __init__(self, scope: Construct, id: str, *, names: Names, key: kms.IKey, removal_policy: RemovalPolicy,
                 checkpoint_prefix: str, checkpoint_expiry_days: int, noncurrent_version_expiry_days: int) -> None:
        super().__init__(scope, id)
        # S3 server access logging cannot deliver into SSE-KMS buckets, so this one bucket uses SSE-S3.
        self.access_logs = s3.Bucket(
            self, "AccessLogs", bucket_name=names.access_logs_bucket, encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=BLOCK_ALL, enforce_ssl=True, minimum_tls_version=1.2,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED, removal_policy=removal_policy,
            lifecycle_rules=[s3.LifecycleRule(id="expire-access-logs", expiration=days(365),
                                              abort_incomplete_multipart_upload_after=ABORT_INCOMPLETE_UPLOADS)],
        )
        versioned_rules = [s3.LifecycleRule(
            id="expire-old-versions", noncurrent_version_expiration=days(noncurrent_version_expiry_days),
            abort_incomplete_multipart_upload_after=ABORT_INCOMPLETE_UPLOADS)]
        self.datasets = self._bucket("Datasets", names.datasets_bucket, key, removal_policy, versioned=True,
                                     rules=versioned_rules)
        self.artifacts = self._bucket("Artifacts", names.artifacts_bucket, key, removal_policy, versioned=True,
                                      rules=versioned_rules)
        # Training source archives are content-addressed: nobody may overwrite one (issue 17, item 4). S3 enforces
        # the If-None-Match precondition named by s3:if-none-match (AWS S3 User Guide, "Enforce conditional writes
        # on Amazon S3 buckets"); a write without it, including CopyObject, is denied.
        self.artifacts.add_to_resource_policy(iam.PolicyStatement(
            sid="DenySourceOverwrites", effect=iam.Effect.DENY, principals=[iam.AnyPrincipal()],
            actions=["s3:PutObject"], resources=[self.artifacts.arn_for_objects("source/*")],
            conditions={"Null": {"s3:if-none-match": "true"}}))
        # Checkpoints only matter while a job runs or may resume; old ones are expired, not versioned.
        self.checkpoints = self._bucket("Checkpoints", names.checkpoints_bucket, key, removal_policy, versioned=False,
                                        rules=[s3.LifecycleRule(
                                            id="expire-old-checkpoints", prefix=checkpoint_prefix,
                                            expiration=days(checkpoint_expiry_days)),
                                               s3.LifecycleRule(id="abort-incomplete-uploads",
                                                                abort_incomplete_multipart_upload_after=ABORT_INCOMPLETE_UPLOADS)])

    def _bucket(self, id: str, name: str, key: kms.IKey, removal_policy: RemovalPolicy, *, versioned: bool,
                rules: list[s3.LifecycleRule]) -> s3.Bucket:
        return s3.Bucket(
            self, id, bucket_name=name, encryption=s3.BucketEncryption.KMS, encryption_key=key, bucket_key_enabled=True,
            block_public_access=BLOCK_ALL, enforce_ssl=True, minimum_tls_version=1.2,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED, versioned=versioned,
            server_access_logs_bucket=self.access_logs, server_access_logs_prefix=f"{id.lower()}/",
            removal_policy=removal_policy, lifecycle_rules=rules,
        )
