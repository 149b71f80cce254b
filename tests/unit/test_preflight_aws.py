"""Preflight's AWS checks against botocore's Stubber: each request and response is checked against the service
model, each check has a passing and a blocking case, and the blocking row names the fix."""

from __future__ import annotations

from datetime import datetime, timezone

import boto3
import orjson
import pytest
from botocore.stub import Stubber

from infra.aws.outputs import output_key, resolved_fields
from jobs.config.environment import load_environment
from jobs.config.resolved import derive_aws, resolved_file
from jobs.preflight import aws as checks
from jobs.preflight.access import Question
from jobs.preflight.needs import JobSpec
from jobs.preflight.run import Sources, run

NOW = datetime(2026, 11, 29, tzinfo=timezone.utc)
KEY_ARN = "arn:aws:kms:us-east-1:111111111111:key/0a1b2c3d-0000-4000-8000-000000000001"
READ_PREFIXES = ("Get", "List", "Describe", "Head", "Simulate")


class Stubs:
    """Stubbed clients per service, and every operation any of them was asked for."""

    def __init__(self) -> None:
        self.clients: dict[str, object] = {}
        self.stubbers: dict[str, Stubber] = {}
        self.operations: list[str] = []

    def __call__(self, service: str):
        if service not in self.clients:
            client = boto3.client(service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
            client.meta.events.register("before-parameter-build.*.*",
                                        lambda model, **_: self.operations.append(f"{service}:{model.name}"))
            self.clients[service] = client
            self.stubbers[service] = Stubber(client)
            self.stubbers[service].activate()
        return self.clients[service]

    def on(self, service: str) -> Stubber:
        self(service)
        return self.stubbers[service]

    def done(self) -> None:
        for stubber in self.stubbers.values():
            stubber.assert_no_pending_responses()


@pytest.fixture
def dev(project):
    return load_environment("dev")


def training_job(name: str = "job-a", instance: str = "ml.g5.2xlarge", count: int = 1, spot: bool = True,
                 cost: float = 12.0) -> JobSpec:
    request = {"ResourceConfig": {"InstanceType": instance, "InstanceCount": count, "VolumeSizeInGB": 50},
               "EnableManagedSpotTraining": spot}
    return JobSpec(name, "sagemaker", {"targets": {"sagemaker": "sagemaker.json"}, "estimated_cost_usd": cost},
                   lambda target: request)


def quota_listing(stubs: Stubs, value: float, applied: float | None = None) -> None:
    name = "ml.g5.2xlarge for spot training job usage"
    quota = {"ServiceCode": "sagemaker", "QuotaCode": "L-0000SPOT", "QuotaName": name, "Value": value}
    sq = stubs.on("service-quotas")
    sq.add_response("list_aws_default_service_quotas", {"Quotas": [quota]}, {"ServiceCode": "sagemaker"})
    sq.add_response("list_service_quotas", {"Quotas": [{**quota, "Value": applied}] if applied is not None else []},
                    {"ServiceCode": "sagemaker"})


def running_jobs(stubs: Stubs, count: int) -> None:
    sm = stubs.on("sagemaker")
    names = [f"running-{i}" for i in range(count)]
    sm.add_response("list_training_jobs", {"TrainingJobSummaries": [
        {"TrainingJobName": n, "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:111111111111:training-job/{n}",
         "CreationTime": NOW, "TrainingJobStatus": "InProgress"} for n in names]}, {"StatusEquals": "InProgress"})
    for n in names:
        sm.add_response("describe_training_job", {
            "TrainingJobName": n, "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:111111111111:training-job/{n}",
            "ModelArtifacts": {"S3ModelArtifacts": ""}, "TrainingJobStatus": "InProgress", "SecondaryStatus": "Training",
            "AlgorithmSpecification": {"TrainingInputMode": "File", "TrainingImage": "img"},
            "ResourceConfig": {"InstanceType": "ml.g5.2xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50},
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600}, "CreationTime": NOW,
            "EnableManagedSpotTraining": True}, {"TrainingJobName": n})


# --- identity ------------------------------------------------------------------------------------------------

def test_identity_passes_in_the_environments_account_and_blocks_in_another(dev):
    stubs = Stubs()
    stubs.on("sts").add_response("get_caller_identity", {"UserId": "AROA:ci", "Account": "111111111111",
                                                         "Arn": "arn:aws:sts::111111111111:assumed-role/ci/gh"}, {})
    stubs.on("sts").add_response("get_caller_identity", {
        "UserId": "AROA:gh", "Account": "111111111111",
        "Arn": "arn:aws:sts::111111111111:assumed-role/ftops-dev-pipeline/gh"}, {})
    rows, arn = checks.identity(dev, stubs)
    assert rows[0].status == "ok" and arn.endswith("ci/gh") and "not the pipeline role ftops-dev-pipeline" in rows[0].detail
    rows, _ = checks.identity(dev, stubs)
    assert rows[0].status == "ok" and "not the pipeline role" not in rows[0].detail
    stubs.on("sts").add_response("get_caller_identity", {"UserId": "AROA:ci", "Account": "999999999999",
                                                         "Arn": "arn:aws:sts::999999999999:assumed-role/ci/gh"}, {})
    rows, _ = checks.identity(dev, stubs)
    assert rows[0].status == "block" and "111111111111" in rows[0].fix and "999999999999" in rows[0].detail


# --- permissions ---------------------------------------------------------------------------------------------

PASS_ROLE = Question("arn:aws:iam::111111111111:role/ftops-dev-pipeline", "iam:PassRole",
                     "arn:aws:iam::111111111111:role/ftops-dev-sagemaker-execution",
                     {"iam:PassedToService": "sagemaker.amazonaws.com"}, "CreateTrainingJob passes the role", "job-a")


def simulate(stubs: Stubs, decision: str, statements: list[dict] | None = None) -> None:
    stubs.on("iam").add_response("simulate_principal_policy", {"EvaluationResults": [{
        "EvalActionName": PASS_ROLE.action, "EvalResourceName": PASS_ROLE.resource, "EvalDecision": decision,
        "MatchedStatements": statements or [], "MissingContextValues": []}], "IsTruncated": False}, {
        "PolicySourceArn": PASS_ROLE.principal, "ActionNames": [PASS_ROLE.action],
        "ResourceArns": [PASS_ROLE.resource],
        "ContextEntries": [{"ContextKeyName": "iam:PassedToService", "ContextKeyValues": ["sagemaker.amazonaws.com"],
                            "ContextKeyType": "string"}]})


def test_permission_allowed_passes(dev):
    stubs = Stubs()
    simulate(stubs, "allowed", [{"SourcePolicyId": "PipelinePolicy", "SourcePolicyType": "IAM Policy"}])
    [row] = checks.permissions(dev, stubs, [PASS_ROLE])
    assert row.status == "ok" and row.job == "job-a"
    stubs.done()


def test_permission_denied_names_action_resource_and_grant(dev):
    stubs = Stubs()
    simulate(stubs, "implicitDeny")
    simulate(stubs, "explicitDeny", [{"SourcePolicyId": "DenyPassRole", "SourcePolicyType": "IAM Policy"}])
    [implicit] = checks.permissions(dev, stubs, [PASS_ROLE])
    [explicit] = checks.permissions(dev, stubs, [PASS_ROLE])
    assert implicit.status == "block" and "no statement grants it" in implicit.detail
    assert "iam:PassRole" in implicit.detail and PASS_ROLE.resource in implicit.detail
    assert implicit.fix.startswith("grant iam:PassRole on arn:aws:iam::111111111111:role/ftops-dev-sagemaker-execution")
    assert explicit.status == "block" and "DenyPassRole" in explicit.detail


def test_the_access_model_becomes_questions_about_the_environments_roles(dev):
    from jobs.config.resolved import resolved_aws
    from jobs.preflight.access import SUBMIT_KINDS, questions
    from jobs.preflight.needs import from_render

    specs = [s for s in from_render(dev) if s.provider == "sagemaker"]
    every, submit = questions(dev, specs), questions(dev, specs, SUBMIT_KINDS)
    resolved = resolved_aws(dev)
    # deploy accesses run as the stack's separate endpoint role, not the training (execution) role
    assert resolved.endpoint_role_arn.endswith("role/ftops-dev-sagemaker-endpoint")
    assert {q.principal for q in every} == {resolved.pipeline_role_arn, resolved.execution_role_arn,
                                            resolved.endpoint_role_arn}
    assert len(submit) < len(every)   # apply's cheap preflight asks only about submitting and running
    pass_role = [q for q in submit if q.action == "iam:PassRole" and q.job == specs[0].name]
    assert pass_role and pass_role[0].resource == resolved.execution_role_arn
    assert pass_role[0].context == {"iam:PassedToService": "sagemaker.amazonaws.com"}
    assert any(q.job == "-" for q in every)   # the environment's own accesses (ledger, uploads)


def test_actions_on_one_resource_share_a_simulation_and_a_refusal_warns_once(dev):
    stubs = Stubs()
    bucket = "arn:aws:s3:::ftops-dev-datasets-111111111111-us-east-1/datasets/x"
    role = "arn:aws:iam::111111111111:role/ftops-dev-execution"
    asked = [Question(role, "s3:GetObject", bucket, {}, "read the dataset", "job-a"),
             Question(role, "s3:PutObject", bucket, {}, "write the dataset", "job-a")]
    stubs.on("iam").add_response("simulate_principal_policy", {"EvaluationResults": [
        {"EvalActionName": "s3:GetObject", "EvalResourceName": bucket, "EvalDecision": "allowed"},
        {"EvalActionName": "s3:PutObject", "EvalResourceName": bucket, "EvalDecision": "implicitDeny"}],
        "IsTruncated": False}, {"PolicySourceArn": role, "ActionNames": ["s3:GetObject", "s3:PutObject"],
                                "ResourceArns": [bucket]})
    rows = checks.permissions(dev, stubs, asked)
    assert [(r.status, r.detail.split(":")[0]) for r in rows] == [("block", "ftops-dev-execution may not s3"),
                                                                  ("ok", "ftops-dev-execution")]
    assert "1 access allowed" in rows[1].detail and "s3:PutObject" in rows[0].detail
    stubs.on("iam").add_client_error("simulate_principal_policy", service_error_code="AccessDenied",
                                     http_status_code=403)
    [refused] = checks.permissions(dev, stubs, asked)
    assert refused.status == "warn" and "AccessDenied" in refused.detail
    assert "iam:SimulatePrincipalPolicy" in refused.fix


def test_permissions_in_the_emulator_say_why_they_are_not_simulated(project):
    [row] = checks.permissions(load_environment("local"), Stubs(), [PASS_ROLE])
    assert row.status == "skip" and "SimulatePrincipalPolicy" in row.detail


# --- quotas and capacity -------------------------------------------------------------------------------------

def test_quota_covers_the_jobs_plus_the_running_ones(dev):
    stubs = Stubs()
    quota_listing(stubs, value=0.0, applied=4.0)   # raised from the new-account 0
    running_jobs(stubs, 1)
    [row] = checks.quotas(dev, stubs, [training_job(count=2)])
    assert row.status == "ok" and "limit 4, in use 1, these jobs need 2" in row.detail
    stubs.done()


def test_quota_short_names_quota_code_and_increase_command(dev):
    stubs = Stubs()
    quota_listing(stubs, value=0.0)   # a new account: 0 spot instances
    running_jobs(stubs, 0)
    [row] = checks.quotas(dev, stubs, [training_job(count=2)])
    assert row.status == "block" and "ml.g5.2xlarge for spot training job usage (L-0000SPOT)" in row.detail
    assert row.fix == ("aws service-quotas request-service-quota-increase --service-code sagemaker "
                       "--quota-code L-0000SPOT --desired-value 2 --region us-east-1")


def test_quota_missing_for_the_instance_type_blocks(dev):
    stubs = Stubs()
    quota_listing(stubs, value=4.0)
    running_jobs(stubs, 0)
    [row] = checks.quotas(dev, stubs, [training_job(instance="ml.g6.2xlarge")])
    assert row.status == "block" and "ml.g6.2xlarge for spot training job usage" in row.detail


def test_local_quotas_come_from_the_environment_file(project):
    local = load_environment("local")
    stubs = Stubs()
    running_jobs(stubs, 0)
    [ok] = checks.quotas(local, stubs, [training_job(count=4)])
    running_jobs(stubs, 1)
    [short] = checks.quotas(local, stubs, [training_job(count=4)])
    running_jobs(stubs, 0)
    [undeclared] = checks.quotas(local, stubs, [training_job(instance="ml.g6.xlarge")])
    assert ok.status == "ok" and "aws.quotas" in ok.source
    assert short.status == "block" and "in use 1" in short.detail and "aws.quotas" in short.fix
    assert undeclared.status == "warn" and "ml.g6.xlarge for spot training job usage" in undeclared.fix


def offerings(stubs: Stubs, offered: list[str]) -> None:
    stubs.on("ec2").add_response("describe_instance_type_offerings", {"InstanceTypeOfferings": [
        {"InstanceType": t, "LocationType": "region", "Location": "us-east-1"} for t in offered]},
        {"LocationType": "region", "Filters": [{"Name": "instance-type", "Values": ["g5.2xlarge"]}]})


def test_capacity_offered_passes_and_not_offered_blocks(dev):
    stubs = Stubs()
    offerings(stubs, ["g5.2xlarge"])
    offerings(stubs, [])
    [ok] = checks.capacity(dev, stubs, [training_job()])
    [blocked] = checks.capacity(dev, stubs, [training_job()])
    assert ok.status == "ok"
    assert blocked.status == "block" and "not offered in us-east-1" in blocked.detail and blocked.fix


# --- deployed state ------------------------------------------------------------------------------------------

def deployed_values(env) -> dict:
    values = derive_aws(env).model_dump()
    values.update(kms_key_arn=KEY_ARN, source="deployed")
    return values


def stack(stubs: Stubs, env, status: str = "UPDATE_COMPLETE") -> None:
    values = deployed_values(env)
    outputs = [{"OutputKey": output_key(f), "OutputValue": ",".join(values[f]) if isinstance(values[f], list)
                else values[f]} for f in resolved_fields()]
    for o in outputs:
        o["OutputValue"] = o["OutputValue"] or "none"
    stubs.on("cloudformation").add_response("describe_stacks", {"Stacks": [
        {"StackName": "ftops-dev", "CreationTime": NOW, "StackStatus": status, "Outputs": outputs}]},
        {"StackName": "ftops-dev"})


def buckets(stubs: Stubs, env, key: str = KEY_ARN, missing: str | None = None) -> None:
    values = deployed_values(env)
    s3 = stubs.on("s3")
    for bucket in (values["datasets_bucket"], values["output_bucket"], values["checkpoints_bucket"]):
        params = {"Bucket": bucket, "ExpectedBucketOwner": "111111111111"}
        if bucket == missing:
            s3.add_client_error("get_bucket_encryption", service_error_code="NoSuchBucket", http_status_code=404,
                                expected_params=params)
            continue
        s3.add_response("get_bucket_encryption", {"ServerSideEncryptionConfiguration": {"Rules": [
            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key},
             "BucketKeyEnabled": True}]}}, params)


def write_resolved(env, **changes) -> None:
    path = resolved_file(env.name, "aws")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps({**deployed_values(env), **changes}))


def test_deployed_state_matches_and_buckets_use_the_key(dev):
    stubs = Stubs()
    write_resolved(dev)
    stack(stubs, dev)
    buckets(stubs, dev)
    rows = checks.deployed_state(dev, stubs)
    assert [r.check for r in rows] == ["stack", "resolved", "bucket", "bucket", "bucket"]
    assert all(r.status == "ok" for r in rows), rows
    stubs.done()


def test_stack_missing_blocks_with_the_deploy_command(dev):
    stubs = Stubs()
    stubs.on("cloudformation").add_client_error("describe_stacks", service_error_code="ValidationError",
                                                service_message="Stack with id ftops-dev does not exist",
                                                expected_params={"StackName": "ftops-dev"})
    [row] = checks.deployed_state(dev, stubs)
    assert row.status == "block" and row.fix == "ftops infra deploy --env dev"


def test_resolved_file_drift_and_wrong_bucket_key_block(dev):
    stubs = Stubs()
    write_resolved(dev, output_bucket="ftops-dev-old-artifacts")
    stack(stubs, dev)
    buckets(stubs, dev, key="arn:aws:kms:us-east-1:111111111111:key/another", missing=deployed_values(dev)["checkpoints_bucket"])
    rows = {(r.check, r.detail.split(" ")[0]): r for r in checks.deployed_state(dev, stubs)}
    drift = rows[("resolved", "dev.aws.json")]
    assert drift.status == "block" and "output_bucket" in drift.detail and "ftops infra outputs --env dev" in drift.fix
    wrong_key = [r for r in rows.values() if r.check == "bucket" and "not the environment's key" in r.detail]
    missing = [r for r in rows.values() if r.check == "bucket" and "does not exist" in r.detail]
    assert len(wrong_key) == 2 and all(r.status == "block" for r in wrong_key)
    assert len(missing) == 1 and missing[0].status == "block"


# --- budget --------------------------------------------------------------------------------------------------

def budget(stubs: Stubs, spent: str) -> None:
    stubs.on("budgets").add_response("describe_budget", {"Budget": {
        "BudgetName": "ftops-dev-monthly", "BudgetLimit": {"Amount": "500", "Unit": "USD"}, "TimeUnit": "MONTHLY",
        "BudgetType": "COST", "CalculatedSpend": {"ActualSpend": {"Amount": spent, "Unit": "USD"}}}},
        {"AccountId": "111111111111", "BudgetName": "ftops-dev-monthly"})


def test_budget_remaining_covers_the_jobs_or_blocks(dev):
    stubs = Stubs()
    budget(stubs, "100")
    budget(stubs, "495")
    [ok] = checks.budget(dev, stubs, [training_job(cost=12.0)])
    [blocked] = checks.budget(dev, stubs, [training_job(cost=12.0)])
    assert ok.status == "ok" and "$400.00 left" in ok.detail
    assert blocked.status == "block" and "$5.00 left" in blocked.detail and "monthly_limit_usd" in blocked.fix


def test_budget_not_readable_warns(dev):
    stubs = Stubs()
    stubs.on("budgets").add_client_error("describe_budget", service_error_code="AccessDeniedException",
                                         http_status_code=403)
    [row] = checks.budget(dev, stubs, [training_job()])
    assert row.status == "warn" and "budgets:ViewBudget" in row.fix


# --- the whole run: read calls only --------------------------------------------------------------------------

def test_a_full_run_makes_only_read_calls(dev, monkeypatch):
    monkeypatch.setattr("jobs.preflight.run.questions", lambda *args: [PASS_ROLE])
    stubs = Stubs()
    stubs.on("sts").add_response("get_caller_identity", {"UserId": "AROA:ci", "Account": "111111111111",
                                                         "Arn": "arn:aws:sts::111111111111:assumed-role/ci/gh"}, {})
    simulate(stubs, "allowed")
    quota_listing(stubs, value=4.0)
    running_jobs(stubs, 1)
    offerings(stubs, ["g5.2xlarge"])
    write_resolved(dev)
    stack(stubs, dev)
    buckets(stubs, dev)
    budget(stubs, "0")
    report = run(dev, [training_job()], Sources(aws_client=stubs))
    stubs.done()
    assert not report.blocked, [r for r in report.rows if r.status != "ok"]
    assert all(op.split(":")[1].startswith(READ_PREFIXES) for op in stubs.operations), stubs.operations
    assert set(stubs.operations) == {
        "sts:GetCallerIdentity", "iam:SimulatePrincipalPolicy", "service-quotas:ListAWSDefaultServiceQuotas",
        "service-quotas:ListServiceQuotas", "sagemaker:ListTrainingJobs", "sagemaker:DescribeTrainingJob",
        "ec2:DescribeInstanceTypeOfferings", "cloudformation:DescribeStacks",
        "s3:GetBucketEncryption", "budgets:DescribeBudget"}
    assert {r.check for r in report.rows} == {"identity", "permission", "quota", "capacity", "stack", "resolved",
                                              "bucket", "budget", "cost"}


def test_endpoint_quota_counts_the_endpoints_in_service(dev, monkeypatch):
    from jobs.apply.rendered import RenderedJob
    from jobs.providers import sagemaker

    rendered = RenderedJob.model_validate({"name": "job-a", "provider": "sagemaker", "environment": "dev",
                                           "idempotency_key": "ab" * 32, "targets": {"sagemaker": "sagemaker.json"}})
    # Deployment settings come from the job's definition (never from job.json): this job deploys one ml.g5.xlarge.
    monkeypatch.setattr(sagemaker, "deployment_settings",
                        lambda job, env: {"instance_type": "ml.g5.xlarge", "instance_count": 1})
    job = training_job()
    job = JobSpec(job.name, job.provider, job.index, job.load, rendered)
    stubs = Stubs()
    for limit in (2.0, 1.0):
        quota = {"ServiceCode": "sagemaker", "QuotaCode": "L-00000END", "Value": limit,
                 "QuotaName": "ml.g5.xlarge for endpoint usage"}
        sq = stubs.on("service-quotas")
        sq.add_response("list_aws_default_service_quotas", {"Quotas": [quota]}, {"ServiceCode": "sagemaker"})
        sq.add_response("list_service_quotas", {"Quotas": []}, {"ServiceCode": "sagemaker"})
        sm = stubs.on("sagemaker")
        sm.add_response("list_endpoints", {"Endpoints": [{
            "EndpointName": "other", "EndpointArn": "arn:aws:sagemaker:us-east-1:111111111111:endpoint/other",
            "CreationTime": NOW, "LastModifiedTime": NOW, "EndpointStatus": "InService"}]}, {})
        sm.add_response("describe_endpoint", {
            "EndpointName": "other", "EndpointArn": "arn:aws:sagemaker:us-east-1:111111111111:endpoint/other",
            "EndpointConfigName": "other-config", "EndpointStatus": "InService", "CreationTime": NOW,
            "LastModifiedTime": NOW}, {"EndpointName": "other"})
        sm.add_response("describe_endpoint_config", {
            "EndpointConfigName": "other-config",
            "EndpointConfigArn": "arn:aws:sagemaker:us-east-1:111111111111:endpoint-config/other-config",
            "ProductionVariants": [{"VariantName": "main", "InstanceType": "ml.g5.xlarge", "InitialInstanceCount": 1}],
            "CreationTime": NOW}, {"EndpointConfigName": "other-config"})
        running_jobs(stubs, 0)
    # The listing here declares only the endpoint quota: the (blocking) spot training row is left aside.
    [ok] = [r for r in checks.quotas(dev, stubs, [job]) if "endpoint" in r.detail]
    assert ok.status == "ok" and "limit 2, in use 1, these jobs need 1" in ok.detail
    [blocked] = [r for r in checks.quotas(dev, stubs, [job]) if "endpoint" in r.detail]
    assert blocked.status == "block" and "--quota-code L-00000END --desired-value 2" in blocked.fix


def test_a_read_the_identity_may_not_make_blocks_and_names_the_grant(dev):
    stubs = Stubs()
    stubs.on("sts").add_response("get_caller_identity", {"UserId": "AROA:ci", "Account": "111111111111",
                                                         "Arn": "arn:aws:sts::111111111111:assumed-role/ci/gh"}, {})
    stubs.on("service-quotas").add_client_error("list_aws_default_service_quotas",
                                                service_error_code="AccessDeniedException", http_status_code=400)
    report = run(dev, [training_job()], Sources(aws_client=stubs), cheap=True)
    [row] = [r for r in report.rows if r.check == "quota"]
    assert row.status == "block" and "AccessDeniedException" in row.detail and "grant this identity" in row.fix
