"""The synthesized CloudFormation of every environment: the properties the issue requires, cdk-nag and cfn-lint.

All environments are synthesized once per session, in one jsii process (CDK is slow); tests read the templates.
moto ignores bucket policies, lifecycle and public access blocks, so these assertions are what prove them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("aws_cdk")

from jobs.config.environment import environment_names, load_environment  # noqa: E402
from jobs.config.resolved import derive_aws  # noqa: E402

ENVS = ("local", "dev", "staging", "prod")


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """{env name: template dict} for every environment, plus the Template objects under "_assertions"."""
    from aws_cdk.assertions import Template

    from infra.aws.app import build_app, select_environments

    load_environment.cache_clear()
    out = tmp_path_factory.mktemp("cdk.out")
    assembly = build_app(select_environments(None), outdir=out).synth()
    templates = {}
    for stack in assembly.stacks:
        env = stack.stack_name.split("-", 1)[1]
        templates[env] = {"json": stack.template, "assert": Template.from_json(stack.template),
                          "file": Path(out) / stack.template_file}
    return templates


def resources(template: dict, kind: str) -> dict[str, dict]:
    return {lid: r for lid, r in template["Resources"].items() if r["Type"] == kind}


def by_name(template: dict, kind: str, prop: str, value: str) -> tuple[str, dict]:
    [(lid, res)] = [(lid, r) for lid, r in resources(template, kind).items() if r["Properties"].get(prop) == value]
    return lid, res


def policy_statements(template: dict, role_logical_id: str) -> list[dict]:
    statements = []
    for policy in resources(template, "AWS::IAM::Policy").values():
        if {"Ref": role_logical_id} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def test_every_environment_gets_one_stack(synthesized):
    assert sorted(synthesized) == sorted(ENVS) == sorted(environment_names())


def test_cfn_lint_reports_nothing(synthesized):
    files = [str(t["file"]) for t in synthesized.values()]
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    # W3010: the zones are hard-coded on purpose: they come from the environment file so synth needs no lookup.
    result = subprocess.run([str(cfn_lint), "--ignore-checks", "W3010", "-t", *files], capture_output=True, text=True)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


@pytest.mark.parametrize("env", ENVS)
def test_kms_key_rotates_and_has_the_environment_alias(synthesized, env):
    t = synthesized[env]["json"]
    [key] = resources(t, "AWS::KMS::Key").values()
    assert key["Properties"]["EnableKeyRotation"] is True
    [alias] = resources(t, "AWS::KMS::Alias").values()
    assert alias["Properties"]["AliasName"] == f"alias/ftops-{env}"


@pytest.mark.parametrize("env", ENVS)
def test_buckets_are_named_encrypted_private_and_versioned(synthesized, env):
    t = synthesized[env]["json"]
    derived = derive_aws(load_environment(env))
    key_id = next(iter(resources(t, "AWS::KMS::Key")))
    expected = {derived.datasets_bucket: True, derived.output_bucket: True, derived.checkpoints_bucket: False}
    buckets = {r["Properties"]["BucketName"]: r["Properties"] for r in resources(t, "AWS::S3::Bucket").values()}
    assert set(buckets) == {*expected, f"ftops-{env}-access-logs-{derived.account}-{derived.region}"}
    for name, props in buckets.items():
        assert props["PublicAccessBlockConfiguration"] == {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                                           "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
        [rule] = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        default = rule["ServerSideEncryptionByDefault"]
        if name in expected:
            assert default["SSEAlgorithm"] == "aws:kms"
            assert default["KMSMasterKeyID"] == {"Fn::GetAtt": [key_id, "Arn"]}
            assert rule["BucketKeyEnabled"] is True
            assert props["LoggingConfiguration"]["DestinationBucketName"]
            assert (props.get("VersioningConfiguration", {}).get("Status") == "Enabled") is expected[name]
        else:  # S3 server access logs can only be delivered to an SSE-S3 bucket
            assert default["SSEAlgorithm"] == "AES256"


@pytest.mark.parametrize("env", ENVS)
def test_every_bucket_denies_plain_http(synthesized, env):
    t = synthesized[env]["json"]
    policies = resources(t, "AWS::S3::BucketPolicy").values()
    assert len(policies) == 4
    for policy in policies:
        denies = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
        assert any(s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false" for s in denies)
        assert any(s.get("Condition", {}).get("NumericLessThan", {}).get("s3:TlsVersion") == 1.2 for s in denies)


@pytest.mark.parametrize("env", ENVS)
def test_checkpoints_expire_and_incomplete_uploads_are_aborted(synthesized, env):
    t = synthesized[env]["json"]
    aws = load_environment(env).aws
    _, bucket = by_name(t, "AWS::S3::Bucket", "BucketName", derive_aws(load_environment(env)).checkpoints_bucket)
    rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    assert {"ExpirationInDays": aws.checkpoint_expiry_days, "Prefix": aws.training.checkpoint_prefix,
            "Status": "Enabled", "Id": "expire-old-checkpoints"} in rules
    assert any(r.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation") == 7 for r in rules)


@pytest.mark.parametrize(("env", "policy"), [("local", "Delete"), ("dev", "Delete"), ("staging", "Retain"),
                                             ("prod", "Retain")])
def test_data_is_retained_outside_dev_and_local(synthesized, env, policy):
    t = synthesized[env]["json"]
    for kind in ("AWS::S3::Bucket", "AWS::KMS::Key", "AWS::Logs::LogGroup"):
        for res in resources(t, kind).values():
            assert res["DeletionPolicy"] == policy, kind


@pytest.mark.parametrize("env", ENVS)
def test_execution_role_is_trusted_by_sagemaker_of_this_account_only(synthesized, env):
    t = synthesized[env]["json"]
    _, role = by_name(t, "AWS::IAM::Role", "RoleName", f"ftops-{env}-sagemaker-execution")
    [trust] = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": load_environment(env).aws.account}}
    assert "ManagedPolicyArns" not in role["Properties"]


@pytest.mark.parametrize("env", ENVS)
def test_no_policy_grants_a_wildcard_action_or_a_managed_full_access(synthesized, env):
    t = synthesized[env]["json"]
    for policy in resources(t, "AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            assert not [a for a in as_list(statement["Action"]) if "*" in a], statement
    for role in resources(t, "AWS::IAM::Role").values():
        assert not [arn for arn in role["Properties"].get("ManagedPolicyArns", []) if "FullAccess" in json.dumps(arn)]


@pytest.mark.parametrize("env", ENVS)
def test_execution_role_reads_and_writes_exactly_its_prefixes(synthesized, env):
    t = synthesized[env]["json"]
    e = load_environment(env)
    d = derive_aws(e)
    role_id, _ = by_name(t, "AWS::IAM::Role", "RoleName", f"ftops-{env}-sagemaker-execution")
    reads, writes = set(), set()
    for s in policy_statements(t, role_id):
        actions = as_list(s["Action"])
        if "s3:GetObject" in actions:
            reads |= set(as_list(s["Resource"]))
        if "s3:PutObject" in actions:
            writes |= set(as_list(s["Resource"]))
    arn = "arn:aws:s3:::{}/{}*".format
    cp = e.aws.training.checkpoint_prefix
    # Base models, source, profiler data; nothing an endpoint serves (endpoints have their own role).
    assert reads == {arn(d.datasets_bucket, e.data.s3_prefix), arn(d.checkpoints_bucket, cp),
                     *(arn(d.output_bucket, p) for p in ("models/", "source/", "profiler/"))}
    assert writes == {arn(d.output_bucket, "training-output/"), arn(d.output_bucket, "tensorboard/"),
                      arn(d.output_bucket, "profiler/"), arn(d.checkpoints_bucket, cp)}
    actions = {a for s in policy_statements(t, role_id) for a in as_list(s["Action"])}
    assert not [a for a in actions if "Endpoint" in a]
    assert not [r for s in policy_statements(t, role_id) for r in as_list(s["Resource"])
                if "Endpoints" in json.dumps(r) or "huggingface-pytorch-inference" in json.dumps(r)]


@pytest.mark.parametrize("env", ENVS)
def test_endpoint_role_reads_only_served_models_and_pulls_only_inference_images(synthesized, env):
    t = synthesized[env]["json"]
    d = derive_aws(load_environment(env))
    role_id, role = by_name(t, "AWS::IAM::Role", "RoleName", f"ftops-{env}-sagemaker-endpoint")
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "sagemaker.amazonaws.com"}
    statements = policy_statements(t, role_id)
    reads = {r for s in statements if "s3:GetObject" in as_list(s["Action"]) for r in as_list(s["Resource"])}
    art = f"arn:aws:s3:::{d.output_bucket}/"
    assert reads == {art + "training-output/*/output/model.tar.gz", art + "ftops-models/artifacts/*/model.tar.gz",
                     art + "models/*"}
    actions = {a for s in statements for a in as_list(s["Action"])}
    assert not [a for a in actions if a.startswith("sagemaker:") or a in {"s3:PutObject", "iam:PassRole"}]
    pulls = [s for s in statements if "ecr:BatchGetImage" in as_list(s["Action"])]
    assert [r for s in pulls for r in as_list(s["Resource"])] == [
        "arn:aws:ecr:us-east-1:763104351884:repository/huggingface-pytorch-inference"]


@pytest.mark.parametrize("env", ENVS)
def test_pipeline_passes_only_its_sagemaker_roles_and_only_to_sagemaker(synthesized, env):
    t = synthesized[env]["json"]
    exec_id, _ = by_name(t, "AWS::IAM::Role", "RoleName", f"ftops-{env}-sagemaker-execution")
    pipe_id, _ = by_name(t, "AWS::IAM::Role", "RoleName", f"ftops-{env}-pipeline")
    statements = policy_statements(t, pipe_id)
    endpoint_id, _ = by_name(t, "AWS::IAM::Role", "RoleName", f"ftops-{env}-sagemaker-endpoint")
    [passrole] = [s for s in statements if "iam:PassRole" in as_list(s["Action"])]
    assert sorted(passrole["Resource"], key=json.dumps) == sorted(
        [{"Fn::GetAtt": [exec_id, "Arn"]}, {"Fn::GetAtt": [endpoint_id, "Arn"]}], key=json.dumps)
    assert passrole["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    actions = {a for s in statements for a in as_list(s["Action"])}
    assert "sagemaker:CreateTrainingJob" in actions and "sagemaker:StopTrainingJob" in actions
    # Deletes only for `ftops undeploy`, only of serving resources ftops tagged in this environment.
    for s in statements:
        if any(a.startswith("sagemaker:Delete") for a in as_list(s["Action"])):
            assert s["Condition"] == {"StringEquals": {"aws:ResourceTag/managed-by": "ftops",
                                                       "aws:ResourceTag/environment": env}}
            assert all(":training-job" not in r and "tuning-job" not in r for r in as_list(s["Resource"]))
    [create] = [s for s in statements if "sagemaker:CreateTrainingJob" in as_list(s["Action"])]
    allowed = load_environment(env).aws.training.allowed_instance_types
    assert create["Condition"]["ForAllValues:StringEquals"]["sagemaker:InstanceTypes"] == allowed
    assert "ssm:GetParameter" not in actions  # nothing ftops runs reads the parameter with the pipeline role


@pytest.mark.parametrize("env", ENVS)
def test_vpc_exists_only_where_configured(synthesized, env):
    t = synthesized[env]["json"]
    wants_vpc = load_environment(env).aws.vpc.enabled
    assert bool(resources(t, "AWS::EC2::VPC")) is wants_vpc
    role_id, _ = by_name(t, "AWS::IAM::Role", "RoleName", f"ftops-{env}-sagemaker-execution")
    eni = [s for s in policy_statements(t, role_id) if "ec2:CreateNetworkInterface" in as_list(s["Action"])]
    assert bool(eni) is wants_vpc
    if wants_vpc:
        endpoints = resources(t, "AWS::EC2::VPCEndpoint").values()
        kinds = {json.dumps(r["Properties"]["ServiceName"]): r["Properties"].get("VpcEndpointType") for r in endpoints}
        assert any("s3" in name and kind == "Gateway" for name, kind in kinds.items())
        assert sum(kind == "Interface" for kind in kinds.values()) == len(load_environment(env).aws.vpc.interface_endpoints)
        subnets = resources(t, "AWS::EC2::Subnet").values()
        assert subnets and all(s["Properties"]["MapPublicIpOnLaunch"] is False for s in subnets)
        assert not resources(t, "AWS::EC2::InternetGateway") and not resources(t, "AWS::EC2::NatGateway")


def training_defaults(t: dict, env: str) -> dict:
    _, param = by_name(t, "AWS::SSM::Parameter", "Name", f"/ftops/{env}/training-defaults")
    value = param["Properties"]["Value"]
    if isinstance(value, dict):  # Fn::Join around tokens (key and role ARNs): replace them with markers
        value = "".join(part if isinstance(part, str) else "TOKEN" for part in value["Fn::Join"][1])
    return json.loads(value)


@pytest.mark.parametrize("env", ENVS)
def test_training_defaults_parameter_holds_what_rendering_needs(synthesized, env):
    e = load_environment(env)
    doc = training_defaults(synthesized[env]["json"], env)
    training = e.aws.training
    assert doc["spot"] is training.spot and doc["max_wait_s"] >= doc["max_runtime_s"]
    assert doc["allowed_instance_types"] == training.allowed_instance_types
    assert doc["checkpoint_s3_uri"] == f"s3://{derive_aws(e).checkpoints_bucket}/{training.checkpoint_prefix}"
    assert doc["kms_key_arn"] == "TOKEN" and doc["tags"]["environment"] == env
    assert doc["network_isolation"] is doc["inter_container_encryption"] is (env == "prod")
    assert (doc["subnet_ids"] != []) is (env == "prod")


def test_spot_is_off_only_in_prod(synthesized):
    assert {env: training_defaults(synthesized[env]["json"], env)["spot"] for env in ENVS} == {
        "local": True, "dev": True, "staging": True, "prod": False}


@pytest.mark.parametrize("env", ENVS)
def test_logs_notifications_and_budget(synthesized, env):
    t = synthesized[env]["json"]
    aws = load_environment(env).aws
    [group] = resources(t, "AWS::Logs::LogGroup").values()
    assert group["Properties"]["LogGroupName"] == f"/ftops/{env}/training"
    assert group["Properties"]["RetentionInDays"] == aws.log_retention_days
    assert "KmsKeyId" in group["Properties"]
    [topic] = resources(t, "AWS::SNS::Topic").values()
    assert topic["Properties"]["TopicName"] == f"ftops-{env}-training-events" and "KmsMasterKeyId" in topic["Properties"]
    [rule] = resources(t, "AWS::Events::Rule").values()
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.sagemaker"] and pattern["detail-type"] == ["SageMaker Training Job State Change"]
    [budget] = resources(t, "AWS::Budgets::Budget").values()
    assert budget["Properties"]["Budget"]["BudgetLimit"] == {"Amount": aws.budget.monthly_limit_usd, "Unit": "USD"}
    actual = sorted(n["Notification"]["Threshold"] for n in budget["Properties"]["NotificationsWithSubscribers"]
                    if n["Notification"]["NotificationType"] == "ACTUAL")
    assert actual == aws.budget.alert_thresholds_percent


@pytest.mark.parametrize("env", ENVS)
def test_outputs_cover_every_resolved_field(synthesized, env):
    from infra.aws.outputs import output_key, resolved_fields

    outputs = synthesized[env]["json"]["Outputs"]
    assert {output_key(f) for f in resolved_fields()} <= set(outputs)
    assert outputs["DatasetsBucket"]["Value"]  # a Ref to the explicitly named bucket


def test_local_uses_the_bootstrapless_synthesizer_and_others_check_the_bootstrap_version(synthesized):
    assert "BootstrapVersion" not in synthesized["local"]["json"].get("Parameters", {})
    for env in ("dev", "staging", "prod"):
        assert "BootstrapVersion" in synthesized[env]["json"]["Parameters"]


def test_an_unacknowledged_wildcard_fails_synth(tmp_path):
    """cdk-nag runs at synth: a new wildcard without an acknowledgement stops the build."""
    from aws_cdk import App, Validations
    from aws_cdk import aws_iam as iam
    from cdk_nag import AwsSolutionsChecks

    from infra.aws.app import feature_flags
    from infra.aws.nag import acknowledge
    from infra.aws.stacks import PlatformStack

    app = App(outdir=str(tmp_path), context=feature_flags(), builtin_cloud_formation_validation=False)
    stack = PlatformStack(app, env=load_environment("local"))
    acknowledge(stack)
    stack.execution_role.add_to_principal_policy(
        iam.PolicyStatement(actions=["s3:GetObject"], resources=["arn:aws:s3:::some-other-bucket/*"]))
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    with pytest.raises(Exception, match="ValidationFailed") as failed:
        app.synth()
    message = str(failed.value)
    assert "AwsSolutions-IAM5[Resource::arn:aws:s3:::some-other-bucket/*]" in message
    assert "ftops-local-datasets" not in message  # the acknowledged wildcards stay acknowledged


def test_promotion_grants_are_read_only_on_both_sides(synthesized):
    """staging -> prod: staging's bucket and key policies give prod's pipeline role list, read and decrypt only,
    and prod's promotion policy asks for nothing more in staging (staging approves with its own role)."""
    staging, prod = synthesized["staging"]["json"], synthesized["prod"]["json"]
    prod_role = "arn:aws:iam::333333333333:role/ftops-prod-pipeline"

    def for_prod(statements):
        return [s for s in statements if "aws:PrincipalArn" in json.dumps(s.get("Condition", {}))
                and prod_role in json.dumps(s["Condition"])]

    bucket_grants = [s for p in resources(staging, "AWS::S3::BucketPolicy").values()
                     for s in for_prod(p["Properties"]["PolicyDocument"]["Statement"])]
    assert {a for s in bucket_grants for a in as_list(s["Action"])} == {"s3:ListBucket", "s3:GetObject"}
    [key] = resources(staging, "AWS::KMS::Key").values()
    key_grants = for_prod(key["Properties"]["KeyPolicy"]["Statement"])
    assert [as_list(s["Action"]) for s in key_grants] == [["kms:Decrypt"]]
    [promotion] = [p for p in resources(prod, "AWS::IAM::ManagedPolicy").values()
                   if p["Properties"]["ManagedPolicyName"] == "ftops-prod-pipeline-promotion"]
    actions = {a for s in promotion["Properties"]["PolicyDocument"]["Statement"] for a in as_list(s["Action"])}
    assert actions == {"s3:ListBucket", "s3:GetObject", "kms:Decrypt", "sagemaker:DescribeModelPackage"}
    assert not [s["Sid"] for s in promotion["Properties"]["PolicyDocument"]["Statement"] if "Approve" in s["Sid"]]
