"""The access model (jobs.access): what a rendered request implies, read from the request itself."""

from __future__ import annotations

import copy

import pytest

from jobs.access import Access, accesses_for_environment, accesses_for_request
from jobs.access.model import ecr_repository_arn
from jobs.config.environment import load_environment

ACCOUNT, REGION = "333333333333", "us-east-1"
ART = f"ftops-prod-artifacts-{ACCOUNT}-{REGION}"
DS = f"ftops-prod-datasets-{ACCOUNT}-{REGION}"
CK = f"ftops-prod-checkpoints-{ACCOUNT}-{REGION}"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/11111111-2222-3333-4444-555555555555"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/ftops-prod-sagemaker-execution"


def training_request(**changes) -> dict:
    request = {
        "TrainingJobName": "Helpdesk-prod-1234abcd", "RoleArn": ROLE,
        "HyperParameters": {"sagemaker_program": "train.py",
                            "sagemaker_submit_directory": f"s3://{ART}/source/{'a' * 64}/sourcedir.tar.gz"},
        "AlgorithmSpecification": {"TrainingImage": "763104351884.dkr.ecr.us-east-1.amazonaws.com/"
                                                    "huggingface-pytorch-training:2.9.0-gpu", "TrainingInputMode": "File"},
        "InputDataConfig": [
            {"ChannelName": "train", "DataSource": {"S3DataSource": {"S3Uri": f"s3://{DS}/datasets/abc/train/"}}},
            {"ChannelName": "model", "DataSource": {"S3DataSource": {"S3Uri": f"s3://{ART}/models/qwen/"}}}],
        "OutputDataConfig": {"S3OutputPath": f"s3://{ART}/training-output/", "KmsKeyId": KEY},
        "ResourceConfig": {"InstanceType": "ml.g5.2xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200},
        "CheckpointConfig": {"S3Uri": f"s3://{CK}/checkpoints/Helpdesk-prod-1234abcd/"},
        "TensorBoardOutputConfig": {"S3OutputPath": f"s3://{ART}/tensorboard/Helpdesk-prod-1234abcd/"},
        "ProfilerConfig": {"S3OutputPath": f"s3://{ART}/profiler/"},
        "ProfilerRuleConfigurations": [{"RuleConfigurationName": "ProfilerReport", "RuleEvaluatorImage":
                                        "503895931360.dkr.ecr.us-east-1.amazonaws.com/sagemaker-debugger-rules:latest"}],
        "VpcConfig": {"Subnets": ["subnet-aaa", "subnet-bbb"], "SecurityGroupIds": ["sg-ccc"]},
        "EnableNetworkIsolation": True, "EnableInterContainerTrafficEncryption": True,
        "Tags": [{"Key": "managed-by", "Value": "ftops"}, {"Key": "environment", "Value": "prod"}],
    }
    request.update(changes)
    return request


def find(accesses: list[Access], principal: str, action: str, resource_part: str = "") -> list[Access]:
    return [a for a in accesses if a.principal == principal and a.action == action and resource_part in a.resource]


@pytest.fixture
def prod():
    load_environment.cache_clear()
    return load_environment("prod")


def test_execution_role_reads_every_channel_and_the_source_archive(prod):
    accesses = accesses_for_request(prod, "sagemaker", training_request())
    assert find(accesses, "execution", "s3:GetObject", f"{DS}/datasets/abc/train/")
    model_list = find(accesses, "execution", "s3:ListBucket", ART)
    assert {"s3:prefix": "models/qwen/"} in [a.context for a in model_list]
    assert find(accesses, "execution", "s3:GetObject", f"{ART}/models/qwen/")
    assert find(accesses, "execution", "s3:GetObject", "/sourcedir.tar.gz")


def test_execution_role_writes_output_checkpoints_tensorboard_and_profiler(prod):
    accesses = accesses_for_request(prod, "sagemaker", training_request())
    assert find(accesses, "execution", "s3:PutObject", f"{ART}/training-output/Helpdesk-prod-1234abcd/")
    assert find(accesses, "execution", "s3:PutObject", f"{CK}/checkpoints/Helpdesk-prod-1234abcd/")
    assert find(accesses, "execution", "s3:GetObject", f"{CK}/checkpoints/Helpdesk-prod-1234abcd/")
    assert find(accesses, "execution", "s3:PutObject", f"{ART}/tensorboard/")
    assert find(accesses, "execution", "s3:PutObject", f"{ART}/profiler/Helpdesk-prod-1234abcd/")


def test_execution_role_pulls_the_training_and_the_profiler_rule_images(prod):
    accesses = accesses_for_request(prod, "sagemaker", training_request())
    repos = {a.resource for a in find(accesses, "execution", "ecr:BatchGetImage")}
    assert repos == {"arn:aws:ecr:us-east-1:763104351884:repository/huggingface-pytorch-training",
                     "arn:aws:ecr:us-east-1:503895931360:repository/sagemaker-debugger-rules"}
    assert [a.resource for a in find(accesses, "execution", "ecr:GetAuthorizationToken")] == ["*"]


def test_vpc_network_interfaces_name_the_subnets_and_security_groups(prod):
    accesses = accesses_for_request(prod, "sagemaker", training_request())
    resources = {a.resource for a in find(accesses, "execution", "ec2:CreateNetworkInterface")}
    assert f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/subnet-aaa" in resources
    assert f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/sg-ccc" in resources
    no_vpc = training_request()
    del no_vpc["VpcConfig"]
    assert not find(accesses_for_request(prod, "sagemaker", no_vpc), "execution", "ec2:CreateNetworkInterface")


def test_create_context_follows_the_request(prod):
    (create,) = find(accesses_for_request(prod, "sagemaker", training_request()), "pipeline", "sagemaker:CreateTrainingJob")
    assert create.resource == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/helpdesk-prod-1234abcd"
    assert create.context["sagemaker:InstanceTypes"] == ["ml.g5.2xlarge"]
    assert create.context["sagemaker:OutputKmsKeyArn"] == KEY
    # No volume key in the request (g5 has instance storage): no volume-key condition value either.
    assert "sagemaker:VolumeKmsKeyArn" not in create.context
    assert create.context["sagemaker:NetworkIsolation"] == "true"
    assert create.context["sagemaker:VpcSubnets"] == ["subnet-aaa", "subnet-bbb"]
    assert create.context["aws:RequestTag/managed-by"] == "ftops"
    with_volume = training_request(ResourceConfig={"InstanceType": "ml.p4d.24xlarge", "InstanceCount": 1,
                                                   "VolumeSizeInGB": 50, "VolumeKmsKeyId": KEY})
    accesses = accesses_for_request(prod, "sagemaker", with_volume)
    (create,) = find(accesses, "pipeline", "sagemaker:CreateTrainingJob")
    assert create.context["sagemaker:VolumeKmsKeyArn"] == KEY
    assert find(accesses, "execution", "kms:CreateGrant")


def test_pipeline_passes_the_role_to_sagemaker_only_and_lists_tags(prod):
    accesses = accesses_for_request(prod, "sagemaker", training_request())
    (passrole,) = find(accesses, "pipeline", "iam:PassRole")
    assert passrole.resource == ROLE and passrole.context == {"iam:PassedToService": "sagemaker.amazonaws.com"}
    (stop,) = find(accesses, "pipeline", "sagemaker:StopTrainingJob")
    assert stop.context["aws:ResourceTag/managed-by"] == "ftops"
    assert find(accesses, "pipeline", "sagemaker:ListTags")
    assert find(accesses, "pipeline", "sagemaker:AddTags")[0].context["sagemaker:TaggingAction"] == "CreateTrainingJob"


def test_tuning_request_covers_a_trial(prod):
    definition = copy.deepcopy(training_request())
    tags = definition.pop("Tags")
    for key in ("TrainingJobName", "TensorBoardOutputConfig", "ProfilerConfig", "ProfilerRuleConfigurations"):
        definition.pop(key)
    definition["StaticHyperParameters"] = definition.pop("HyperParameters")
    request = {"HyperParameterTuningJobName": "hd-sweep-1", "TrainingJobDefinition": definition, "Tags": tags}
    accesses = accesses_for_request(prod, "sagemaker-tuning", request)
    assert find(accesses, "pipeline", "sagemaker:CreateHyperParameterTuningJob", "hyper-parameter-tuning-job/hd-sweep-1")
    assert find(accesses, "pipeline", "sagemaker:ListTrainingJobsForHyperParameterTuningJob")
    assert find(accesses, "execution", "s3:PutObject", f"{ART}/training-output/hd-sweep-1-")
    assert find(accesses, "execution", "s3:GetObject", "/sourcedir.tar.gz")


def test_environment_accesses_cover_ledger_uploads_and_listing(prod):
    accesses = accesses_for_environment(prod)
    ledger = [a for a in accesses if "/ftops-ledger/prod/" in a.resource or a.context.get("s3:prefix") == "ftops-ledger/prod/"]
    assert {a.action for a in ledger} == {"s3:ListBucket", "s3:GetObject", "s3:PutObject"}
    lists = {a.context.get("s3:prefix") for a in find(accesses, "pipeline", "s3:ListBucket")}
    assert {"datasets/", "source/", "ftops-ledger/prod/"} <= lists
    (source_put,) = find(accesses, "pipeline", "s3:PutObject", "/source/")
    assert source_put.context == {"s3:if-none-match": "*"}
    star = {a.action for a in accesses if a.resource == "*"}
    # `*` only for actions with no resource types: listings, and preflight's quota, capacity and endpoint lists.
    assert star == {"sagemaker:ListTrainingJobs", "sagemaker:ListHyperParameterTuningJobs", "sagemaker:ListEndpoints",
                    "servicequotas:ListAWSDefaultServiceQuotas", "servicequotas:ListServiceQuotas",
                    "ec2:DescribeInstanceTypeOfferings"}


def test_ecr_repository_arn_reads_tag_and_digest():
    assert ecr_repository_arn("aws", "1.dkr.ecr.eu-west-1.amazonaws.com/a/b:1") == "arn:aws:ecr:eu-west-1:1:repository/a/b"
    assert ecr_repository_arn("aws", "1.dkr.ecr.eu-west-1.amazonaws.com/a@sha256:ff") == "arn:aws:ecr:eu-west-1:1:repository/a"
    with pytest.raises(ValueError):
        ecr_repository_arn("aws", "docker.io/library/python:3")


def test_unknown_principal_is_refused():
    with pytest.raises(ValueError):
        Access("admin", "s3:GetObject", "*", {}, "")


def test_promotion_names_are_the_ones_the_registry_and_the_store_use(prod):
    """Group names, record keys and promoted keys come from jobs.models, not a copy of their rules."""
    from jobs.access.environment import promotion_accesses
    from jobs.access.model import Arns
    from jobs.models.artifacts import promoted_key
    from jobs.models.registry import group_name

    accesses = promotion_accesses(Arns.of(prod), prod, "Helpdesk_Qwen")
    group = group_name("Helpdesk_Qwen")
    assert group == "ftops-Helpdesk-Qwen"
    groups = {a.resource for a in find(accesses, "pipeline", "sagemaker:CreateModelPackageGroup")}
    assert groups == {f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/{group.lower()}"}
    assert find(accesses, "pipeline", "s3:PutObject", f"{ART}/ftops-models/prod/Helpdesk_Qwen/")
    copy_key = promoted_key("Helpdesk_Qwen", "0" * 64)
    assert copy_key.startswith("ftops-models/artifacts/")
    assert find(accesses, "pipeline", "s3:DeleteObject", f"{ART}/{copy_key}")
    # prod promotes from staging (staging names it in aws.promotion_targets): it reads the source's records,
    # package status and model, and writes nothing there (staging approves with its own role).
    staging_art = "ftops-staging-artifacts-222222222222-us-east-1"
    assert find(accesses, "pipeline", "s3:GetObject", f"{staging_art}/training-output/")
    assert find(accesses, "pipeline", "s3:GetObject", f"{staging_art}/ftops-models/staging/Helpdesk_Qwen/")
    assert find(accesses, "pipeline", "sagemaker:DescribeModelPackage",
                ":222222222222:model-package/ftops-helpdesk-qwen/")
    in_staging = [a for a in accesses if staging_art in a.resource or ":222222222222:" in a.resource]
    assert {a.action for a in in_staging} == {"s3:ListBucket", "s3:GetObject", "kms:Decrypt",
                                             "sagemaker:DescribeModelPackage"}
    # The copy is registered Approved in prod; prod sets no package Approved when promoting.
    registered = find(accesses, "pipeline", "sagemaker:CreateModelPackage")
    assert {a.context["sagemaker:ModelApprovalStatus"] for a in registered} == {"PendingManualApproval", "Approved"}
    assert not find(accesses, "pipeline", "sagemaker:UpdateModelPackage")


def test_approval_is_made_in_the_source_with_its_own_role():
    """`ftops models approve JOB --env staging` (jobs.models.lifecycle.approve): staging's own record (read, then
    replaced If-Match) and its own model package (UpdateModelPackage to Approved)."""
    from jobs.access.environment import approval_accesses
    from jobs.access.model import Arns

    load_environment.cache_clear()
    staging = load_environment("staging")
    accesses = approval_accesses(Arns.of(staging), staging, "helpdesk-qwen-lora")
    staging_art = "ftops-staging-artifacts-222222222222-us-east-1"
    (update,) = find(accesses, "pipeline", "sagemaker:UpdateModelPackage",
                     ":222222222222:model-package/ftops-helpdesk-qwen-lora/")
    assert update.context == {"sagemaker:ModelApprovalStatus": "Approved"}
    (put,) = find(accesses, "pipeline", "s3:PutObject", f"{staging_art}/ftops-models/staging/helpdesk-qwen-lora/")
    assert set(put.context) == {"s3:if-match"}
    assert find(accesses, "pipeline", "s3:GetObject", put.resource)
    assert all(a.principal == "pipeline" for a in accesses)


def test_a_source_registry_shares_new_groups_with_its_promotion_targets():
    """registry.register puts the group policy (Stubber checks every request against botocore's service model)
    naming prod's pipeline role, which may then only describe packages (staging approves them itself)."""
    import json

    import boto3
    from botocore.stub import ANY, Stubber

    from jobs.access.registry import group_policy, promotion_readers
    from jobs.models import registry
    from jobs.models.record import Artifact, ModelRecord

    load_environment.cache_clear()
    staging = load_environment("staging")
    readers = promotion_readers(staging)
    assert readers == ["arn:aws:iam::333333333333:role/ftops-prod-pipeline"]
    record = ModelRecord(job="helpdesk-qwen-lora", env="staging", provider="sagemaker",
                         artifact=Artifact(kind="s3", uri="s3://b/training-output/j/output/model.tar.gz",
                                           sha256="ab" * 32, bytes=10),
                         definition="definitions/x.yaml", definition_sha256="c" * 64, rendered_sha256="d" * 64,
                         base_model="Qwen/x")
    group = "arn:aws:sagemaker:us-east-1:222222222222:model-package-group/ftops-helpdesk-qwen-lora"
    sm = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    s3 = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    policy = json.dumps(group_policy(group, readers), separators=(",", ":"))

    def registers(group_calls, version: int) -> None:
        """`group_calls` stubs what is asked about the group; then the policy, the metrics and the package."""
        with Stubber(sm) as sms, Stubber(s3) as s3s:
            group_calls(sms)
            sms.add_response("put_model_package_group_policy", {"ModelPackageGroupArn": group},
                             {"ModelPackageGroupName": "ftops-helpdesk-qwen-lora", "ResourcePolicy": policy})
            s3s.add_response("put_object", {}, {"Bucket": "b", "Key": ANY, "Body": ANY, "ContentType": ANY})
            sms.add_response("create_model_package", {"ModelPackageArn": group.replace("-group/", "/") + f"/{version}"})
            registry.register(sm, s3, "b", record, image="763104351884.dkr.ecr.us-east-1.amazonaws.com/hf:1",
                              tags={"environment": "staging"}, readers=readers)
            sms.assert_no_pending_responses()

    def new_group(sms) -> None:
        sms.add_client_error("describe_model_package_group", "ValidationException", "does not exist")
        sms.add_response("create_model_package_group", {"ModelPackageGroupArn": group})

    registers(new_group, 1)
    statements = json.loads(policy)["Statement"]
    assert {a for s in statements for a in s["Action"]} == {"sagemaker:DescribeModelPackage"}
    assert all(s["Condition"]["ArnEquals"]["aws:PrincipalArn"] == readers for s in statements)

    # A group made before staging named prod as a promotion target gets the policy at its next registration.
    def existing_group(sms) -> None:
        sms.add_response("describe_model_package_group", {
            "ModelPackageGroupName": "ftops-helpdesk-qwen-lora", "ModelPackageGroupArn": group,
            "CreationTime": "2026-11-01T00:00:00Z", "CreatedBy": {}, "ModelPackageGroupStatus": "Completed"},
            {"ModelPackageGroupName": "ftops-helpdesk-qwen-lora"})

    registers(existing_group, 2)


def test_resolved_files_from_before_the_endpoint_role_name_it_by_rule(tmp_path):
    from jobs.config.resolved import ResolvedAws, derive_aws

    derived = derive_aws(load_environment("prod")).model_dump()
    old = {k: v for k, v in derived.items() if k != "endpoint_role_arn"}
    assert ResolvedAws.model_validate(old).endpoint_role_arn == \
        f"arn:aws:iam::{ACCOUNT}:role/ftops-prod-sagemaker-endpoint" == derived["endpoint_role_arn"]


def test_an_unknown_promotion_target_is_one_line_naming_the_field():
    from jobs.access.registry import promotion_readers
    from jobs.errors import ConfigError

    load_environment.cache_clear()
    staging = load_environment("staging")
    broken = staging.model_copy(update={"aws": staging.aws.model_copy(update={"promotion_targets": ["prdo"]})})
    with pytest.raises(ConfigError) as info:
        promotion_readers(broken)
    assert info.value.field == "aws.promotion_targets" and "'prdo' is no other AWS environment" in str(info.value)
