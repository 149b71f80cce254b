"""The role the GitOps pipeline assumes to apply rendered jobs, deploy, evaluate and promote models.

What it may do is what jobs.access lists for the pipeline principal (tests/unit/test_infra_aws_iam.py evaluates
each against this role): create jobs only with the execution role (PassRole scoped to it and to SageMaker), on the
environment's instance types, key, network settings and ftops tags; stop and tag only ftops-tagged resources of
this environment; the apply ledger, dataset and source uploads (source archives never overwritten), results; the
endpoint and model-registry calls of deploy and promotion.

Trust: GitHub Actions' OIDC provider for `repo:ORG/REPO:environment:ENV` when the environment names a
repository; otherwise this account (operators running `ftops apply` from a workstation, and the emulator), whose
administrators grant sts:AssumeRole on this role explicitly.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.aws.naming import Names
from infra.aws.role_policy import add_to_default_policy
from jobs.config.github import GITHUB_OIDC_HOST, STS_AUDIENCE, GitHubSettings

LEDGER_PREFIX = "ftops-ledger/"
SOURCE_PREFIX = "source/"
OUTPUT_PREFIX = "training-output/"
PROMOTED_PREFIX = "promoted/"
CREATE_ACTIONS = ["CreateTrainingJob", "CreateHyperParameterTuningJob", "CreateModel", "CreateEndpointConfig",
                  "CreateEndpoint", "CreateModelPackageGroup"]
"""Create calls whose Tags need sagemaker:AddTags (tag-on-create), limited to these by sagemaker:TaggingAction."""


class PipelineRole(Construct):
    def __init__(self, scope: Construct, id: str, *, names: Names, key: kms.IKey, execution_role: iam.IRole,
                 allowed_instance_types: list[str], require_isolation: bool, dataset_prefix: str,
                 subnet_ids: list[str], security_group_ids: list[str], github: GitHubSettings | None) -> None:
        super().__init__(scope, id)
        self.provider_arn: str | None = None
        self.role = iam.Role(self, "Role", role_name=names.pipeline_role, assumed_by=self._trust(names, github),
                             description=f"ftops {names.env}: applies rendered SageMaker jobs (GitOps)")
        sm = lambda kind: names.arn("sagemaker", f"{kind}/*")  # noqa: E731
        jobs = [sm("training-job"), sm("hyper-parameter-tuning-job")]
        serving = [sm("model"), sm("endpoint-config"), sm("endpoint")]
        registry = [names.arn("sagemaker", f"model-package-group/{names.prefix}-*"),
                    names.arn("sagemaker", f"model-package/{names.prefix}-*/*")]
        key_arn = key.key_arn  # one jsii round trip, not one per use
        ftops_request = {"aws:RequestTag/managed-by": "ftops", "aws:RequestTag/environment": names.env}
        ftops_resource = {"aws:ResourceTag/managed-by": "ftops", "aws:ResourceTag/environment": names.env}
        create_conditions: dict = {
            "StringEquals": dict(ftops_request),
            "ForAllValues:StringEquals": {"sagemaker:InstanceTypes": allowed_instance_types},
            # The output key must be the environment's; a volume key only where the instance type takes one
            # (instance-storage types refuse it), and then the environment's. The *Arn keys replace the deprecated
            # sagemaker:VolumeKmsKey/OutputKmsKey and take the key ARN (Service Authorization Reference, SageMaker).
            "ArnEquals": {"sagemaker:OutputKmsKeyArn": key_arn},
            "ArnEqualsIfExists": {"sagemaker:VolumeKmsKeyArn": key_arn},
        }
        if require_isolation:
            create_conditions["Bool"] = {"sagemaker:NetworkIsolation": "true",
                                         "sagemaker:InterContainerTrafficEncryption": "true"}
        model_conditions: dict = {"StringEquals": dict(ftops_request)}
        if subnet_ids:
            # Jobs and models run in the environment's subnets with its security group, and must name them.
            network = {"sagemaker:VpcSubnets": subnet_ids, "sagemaker:VpcSecurityGroupIds": security_group_ids}
            create_conditions["ForAllValues:StringEquals"].update(network)
            create_conditions["Null"] = {"sagemaker:VpcSubnets": "false"}
            model_conditions["ForAllValues:StringEquals"] = dict(network)
            model_conditions["Null"] = {"sagemaker:VpcSubnets": "false"}
            model_conditions["Bool"] = {"sagemaker:NetworkIsolation": "true"}
        s3 = names.s3_arn
        art, ds = names.artifacts_bucket, names.datasets_bucket
        ledger = f"{LEDGER_PREFIX}{names.env}/"
        statements = [
            iam.PolicyStatement(sid="CreateJobs",
                                actions=["sagemaker:CreateTrainingJob", "sagemaker:CreateHyperParameterTuningJob"],
                                resources=jobs, conditions=create_conditions),
            iam.PolicyStatement(sid="TagOnCreate", actions=["sagemaker:AddTags"], resources=[*jobs, *serving, registry[0]],
                                conditions={"StringEquals": {**ftops_request,
                                                             "sagemaker:TaggingAction": CREATE_ACTIONS}}),
            iam.PolicyStatement(sid="ReadJobs",
                                actions=["sagemaker:DescribeTrainingJob", "sagemaker:DescribeHyperParameterTuningJob",
                                         "sagemaker:ListTrainingJobsForHyperParameterTuningJob", "sagemaker:ListTags"],
                                resources=jobs),
            # Only jobs ftops made for this environment can be stopped (issue 17, item 8).
            iam.PolicyStatement(sid="StopFtopsJobs",
                                actions=["sagemaker:StopTrainingJob", "sagemaker:StopHyperParameterTuningJob"],
                                resources=jobs, conditions={"StringEquals": ftops_resource}),
            # ListTrainingJobs has no resource-level permissions (`ftops jobs list`).
            iam.PolicyStatement(sid="ListJobs", actions=["sagemaker:ListTrainingJobs"], resources=["*"]),
            iam.PolicyStatement(sid="PassExecutionRoleToSageMaker", actions=["iam:PassRole"],
                                resources=[execution_role.role_arn],
                                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}),
            # Deploy: models run in the environment's network; endpoints use its key for their volumes.
            iam.PolicyStatement(sid="CreateModels", actions=["sagemaker:CreateModel"], resources=[sm("model")],
                                conditions=model_conditions),
            iam.PolicyStatement(sid="CreateEndpointConfigs", actions=["sagemaker:CreateEndpointConfig"],
                                resources=[sm("endpoint-config")],
                                conditions={"StringEquals": dict(ftops_request),
                                            "ArnEqualsIfExists": {"sagemaker:VolumeKmsKeyArn": key_arn}}),
            iam.PolicyStatement(sid="CreateEndpoints", actions=["sagemaker:CreateEndpoint"],
                                resources=[sm("endpoint"), sm("endpoint-config")],
                                conditions={"StringEquals": dict(ftops_request)}),
            iam.PolicyStatement(sid="ReadServing",
                                actions=["sagemaker:DescribeModel", "sagemaker:DescribeEndpointConfig",
                                         "sagemaker:DescribeEndpoint", "sagemaker:InvokeEndpoint"],
                                resources=serving),
            iam.PolicyStatement(sid="ChangeFtopsServing",
                                actions=["sagemaker:UpdateEndpoint", "sagemaker:DeleteEndpoint",
                                         "sagemaker:DeleteEndpointConfig", "sagemaker:DeleteModel"],
                                resources=serving, conditions={"StringEquals": ftops_resource}),
            iam.PolicyStatement(sid="CreateModelPackageGroups", actions=["sagemaker:CreateModelPackageGroup"],
                                resources=[registry[0]], conditions={"StringEquals": dict(ftops_request)}),
            iam.PolicyStatement(sid="ModelRegistry",
                                actions=["sagemaker:DescribeModelPackageGroup", "sagemaker:PutModelPackageGroupPolicy",
                                         "sagemaker:CreateModelPackage", "sagemaker:UpdateModelPackage",
                                         "sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages"],
                                resources=registry),
            # S3: listing makes a missing key 404 (not 403), which the upload and ledger checks depend on.
            iam.PolicyStatement(sid="ListArtifactPrefixes", actions=["s3:ListBucket"], resources=[s3(art)],
                                conditions={"StringLike": {"s3:prefix": [f"{ledger}*", f"{SOURCE_PREFIX}*",
                                                                         f"{OUTPUT_PREFIX}*"]}}),
            iam.PolicyStatement(sid="ReadArtifacts", actions=["s3:GetObject"],
                                resources=[s3(art, f"{p}*") for p in (ledger, SOURCE_PREFIX, OUTPUT_PREFIX,
                                                                      PROMOTED_PREFIX)]),
            iam.PolicyStatement(sid="WriteLedgerAndPromoted", actions=["s3:PutObject"],
                                resources=[s3(art, f"{ledger}*"), s3(art, f"{PROMOTED_PREFIX}*")]),
            # Source archives are content-addressed: written only if absent, never overwritten (issue 17, item 4).
            iam.PolicyStatement(sid="CreateSourceArchives", actions=["s3:PutObject"],
                                resources=[s3(art, f"{SOURCE_PREFIX}*")],
                                conditions={"StringEquals": {"s3:if-none-match": "*"}}),
            iam.PolicyStatement(sid="ListDatasetPrefix", actions=["s3:ListBucket"], resources=[s3(ds)],
                                conditions={"StringLike": {"s3:prefix": [f"{dataset_prefix}*"]}}),
            # s3:prefix is not a condition key of ListBucketMultipartUploads (Service Authorization Reference, S3).
            iam.PolicyStatement(sid="ListDatasetUploads", actions=["s3:ListBucketMultipartUploads"], resources=[s3(ds)]),
            iam.PolicyStatement(sid="UploadDatasets",
                                actions=["s3:GetObject", "s3:PutObject", "s3:ListMultipartUploadParts",
                                         "s3:AbortMultipartUpload"],
                                resources=[s3(ds, f"{dataset_prefix}*")]),
            iam.PolicyStatement(sid="EncryptThroughS3", actions=["kms:GenerateDataKey", "kms:Decrypt"],
                                resources=[key_arn],
                                conditions={"StringEquals": {"kms:ViaService": f"s3.{names.region}.amazonaws.com"}}),
            # GetMetricData has no resource-level permissions (`ftops jobs results`).
            iam.PolicyStatement(sid="ReadJobMetrics", actions=["cloudwatch:GetMetricData"], resources=["*"]),
        ]
        add_to_default_policy(self.role, statements)

    def _trust(self, names: Names, github: GitHubSettings | None) -> iam.IPrincipal:
        if github is None:
            return iam.AccountPrincipal(names.account)
        if github.oidc_provider_arn:
            provider_arn = github.oidc_provider_arn
        else:
            provider = iam.OidcProviderNative(self, "GitHubOidc", url=f"https://{GITHUB_OIDC_HOST}",
                                              client_ids=[STS_AUDIENCE])
            provider_arn = provider.oidc_provider_arn
        self.provider_arn = provider_arn
        return iam.WebIdentityPrincipal(provider_arn, conditions={
            "StringEquals": {f"{GITHUB_OIDC_HOST}:aud": STS_AUDIENCE,
                             f"{GITHUB_OIDC_HOST}:sub": github.subject(names.env)}})
