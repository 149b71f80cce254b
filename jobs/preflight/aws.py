"""AWS checks: identity, permissions, quotas and capacity, deployed state, budget. Read-only calls only.

`client(service)` returns a boto3 client (jobs.clients in the CLI; Stubber-backed clients in tests).
Emulated environments (moto) have no Service Quotas and no SimulatePrincipalPolicy: quotas come from
`aws.quotas` in the environment file and permission rows say why they are not evaluated here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from jobs.config.environment import Environment, environment_file
from jobs.preflight.needs import InstanceNeed, JobSpec, instance_needs
from jobs.preflight.report import ENV, Row

Client = Callable[[str], Any]


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    return str((response or {}).get("Error", {}).get("Code") or type(exc).__name__)


# --- identity ------------------------------------------------------------------------------------------------

def identity(env: Environment, client: Client) -> tuple[list[Row], str | None]:
    from botocore.exceptions import BotoCoreError, ClientError

    aws = env.require_aws()
    try:
        me = client("sts").get_caller_identity()
    except (ClientError, BotoCoreError) as exc:
        return [Row("identity", ENV, "block", f"no AWS credentials work here ({_code(exc)}: {exc})",
                    "configure credentials (OIDC role in the pipeline, `aws sso login` on a laptop)",
                    "sts:GetCallerIdentity")], None
    if me["Account"] != aws.account:
        return [Row("identity", ENV, "block", f"{me['Arn']} is in account {me['Account']}, the environment is "
                    f"{aws.account}", f"use credentials for account {aws.account}, or fix aws.account in "
                    f"{environment_file(env.name).name}", "sts:GetCallerIdentity")], me["Arn"]
    from jobs.config.resolved import resolved_aws

    pipeline_role = resolved_aws(env).pipeline_role_arn.rsplit("/", 1)[-1]
    # An assumed role shows as arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION.
    as_pipeline = f":assumed-role/{pipeline_role}/" in me["Arn"]
    note = "" if as_pipeline else (f"; not the pipeline role {pipeline_role}: permissions below are simulated "
                                   "for the pipeline and execution roles, not for this caller")
    return [Row("identity", ENV, "ok", f"{me['Arn']} (account {me['Account']}){note}", "",
                "sts:GetCallerIdentity")], me["Arn"]


# --- permissions ---------------------------------------------------------------------------------------------

def permissions(env: Environment, client: Client, accesses: list[Any]) -> list[Row]:
    """Each access through iam:SimulatePrincipalPolicy for its principal, with its resource and context keys."""
    from botocore.exceptions import ClientError

    if env.emulated:
        return [Row("permission", ENV, "skip",
                    f"{len(accesses)} accesses not simulated: moto has no iam:SimulatePrincipalPolicy and ftops "
                    "ships no IAM evaluator of its own; the same access model is verified at test time against "
                    "the synthesized templates (tests/unit/test_infra_aws_access.py, with an IAM evaluator)", "",
                    "not evaluated (emulator)")]
    iam = client("iam")
    paginator = iam.get_paginator("simulate_principal_policy")
    # One simulation per principal, resource and context, with all the actions asked of that resource: the
    # results come back per action (EvalActionName). 20 actions per request keeps requests small.
    groups: dict[tuple, list[Any]] = defaultdict(list)
    for access in accesses:
        groups[(access.principal, access.resource, repr(sorted((access.context or {}).items())))].append(access)
    results: dict[int, dict] = {}
    refused: dict[str, str] = {}
    for (principal, resource, _), items in groups.items():
        if principal in refused:
            continue
        actions = list(dict.fromkeys(a.action for a in items))
        for start in range(0, len(actions), 20):
            request = {"PolicySourceArn": principal, "ActionNames": actions[start:start + 20],
                       "ResourceArns": [resource]}
            context = _context_entries(items[0].context)
            if context:
                request["ContextEntries"] = context
            try:
                by_action = {r["EvalActionName"].lower(): r for page in paginator.paginate(**request)
                             for r in page["EvaluationResults"]}
            except ClientError as exc:
                refused[principal] = _code(exc)
                break
            for access in items:
                if access.action.lower() in by_action:
                    results[id(access)] = by_action[access.action.lower()]
    rows = [Row("permission", ENV, "warn", f"{p.rsplit('/', 1)[-1]}: not simulated ({code})",
                "grant the preflight identity iam:SimulatePrincipalPolicy on the roles (README, Preflight)",
                "iam:SimulatePrincipalPolicy") for p, code in refused.items()]
    allowed: dict[tuple[str, str], int] = defaultdict(int)
    for access in accesses:
        result = results.get(id(access))
        if result is None:
            continue
        who = access.principal.rsplit("/", 1)[-1]
        decision = result["EvalDecision"]
        if decision == "allowed":
            allowed[(access.job, who)] += 1
            continue
        statements = [s.get("SourcePolicyId") or s.get("SourcePolicyType", "?")
                      for s in result.get("MatchedStatements") or []]
        missing = result.get("MissingContextValues") or []
        reason = (f"explicitly denied by {', '.join(statements)}" if decision == "explicitDeny"
                  else "no statement grants it")
        if missing:
            reason += f" (context keys not supplied: {', '.join(missing)})"
        rows.append(Row("permission", access.job, "block",
                        f"{who} may not {access.action} on {access.resource}: {reason}. Why needed: {access.why}",
                        f"grant {access.action} on {access.resource} to {access.principal} "
                        f"(the role's policy in infra/aws/), then `ftops infra deploy --env {env.name}`",
                        "iam:SimulatePrincipalPolicy"))
    rows += [Row("permission", job, "ok", f"{who}: {n} access{'es' if n > 1 else ''} allowed", "",
                 "iam:SimulatePrincipalPolicy") for (job, who), n in sorted(allowed.items())]
    return rows


def _context_entries(context: dict[str, Any] | None) -> list[dict]:
    """The access model's condition values as SimulatePrincipalPolicy ContextEntries (strings and string lists;
    booleans and numbers get their IAM types)."""
    def kind(value: Any) -> tuple[str, str]:
        if isinstance(value, bool):
            return "boolean", str(value).lower()
        if isinstance(value, (int, float)):
            return "numeric", str(value)
        return "string", str(value)

    entries = []
    for key, values in (context or {}).items():
        items = [kind(v) for v in (values if isinstance(values, list) else [values])]
        type_ = items[0][0] if items else "string"
        entries.append({"ContextKeyName": key, "ContextKeyValues": [v for _, v in items],
                        "ContextKeyType": f"{type_}List" if isinstance(values, list) else type_})
    return entries


# --- quotas and capacity -------------------------------------------------------------------------------------

def _quota_table(client: Client) -> dict[str, dict]:
    """Quota name -> {code, value}: applied values where set, AWS defaults otherwise."""
    sq = client("service-quotas")
    table: dict[str, dict] = {}
    for page in sq.get_paginator("list_aws_default_service_quotas").paginate(ServiceCode="sagemaker"):
        for quota in page["Quotas"]:
            table[quota["QuotaName"]] = {"code": quota["QuotaCode"], "value": quota.get("Value", 0.0)}
    for page in sq.get_paginator("list_service_quotas").paginate(ServiceCode="sagemaker"):
        for quota in page["Quotas"]:
            table[quota["QuotaName"]] = {"code": quota["QuotaCode"], "value": quota.get("Value", 0.0)}
    return table


def _running(client: Client, endpoints: bool) -> dict[tuple[str, str], int]:
    """Instances held now, per (instance type, usage): training jobs in progress, and (when asked) endpoints."""
    sm = client("sagemaker")
    held: dict[tuple[str, str], int] = defaultdict(int)
    if endpoints:
        for page in sm.get_paginator("list_endpoints").paginate():
            for summary in page["Endpoints"]:
                if summary["EndpointStatus"] in ("Failed", "Deleting"):
                    continue
                config_name = sm.describe_endpoint(EndpointName=summary["EndpointName"])["EndpointConfigName"]
                for variant in sm.describe_endpoint_config(EndpointConfigName=config_name)["ProductionVariants"]:
                    if variant.get("InstanceType"):
                        held[(variant["InstanceType"], "endpoint")] += int(variant.get("InitialInstanceCount") or 1)
    for page in sm.get_paginator("list_training_jobs").paginate(StatusEquals="InProgress"):
        for summary in page["TrainingJobSummaries"]:
            job = sm.describe_training_job(TrainingJobName=summary["TrainingJobName"])
            config = job.get("ResourceConfig") or {}
            usage = "spot training" if job.get("EnableManagedSpotTraining") else "training"
            if config.get("InstanceType"):
                held[(config["InstanceType"], usage)] += int(config.get("InstanceCount") or 1)
    return held


def quotas(env: Environment, client: Client, specs: list[JobSpec], *, endpoints: bool = True) -> list[Row]:
    """`endpoints`: also the endpoint `ftops deploy` would create (not asked before an apply, which trains only)."""
    aws = env.require_aws()
    wanted: dict[tuple[str, str], list[InstanceNeed]] = defaultdict(list)
    for spec in specs:
        for need in instance_needs(spec, env if endpoints else None):
            wanted[(need.instance_type, need.usage)].append(need)
    if not wanted:
        return []
    if env.emulated:
        table = {name: {"code": "-", "value": value} for name, value in aws.quotas.items()}
        source = f"{environment_file(env.name).name} aws.quotas (moto has no Service Quotas)"
    else:
        table, source = _quota_table(client), "service-quotas"
    running = _running(client, endpoints=any(usage == "endpoint" for _, usage in wanted))
    rows = []
    for (instance_type, usage), needs in sorted(wanted.items()):
        name = needs[0].quota_name
        jobs = ", ".join(sorted({n.job for n in needs}))
        need = sum(n.count for n in needs)
        held = running.get((instance_type, usage), 0)
        quota = table.get(name)
        if quota is None and env.emulated:
            # The emulator has no limits of its own: an undeclared quota is not checked, and says so.
            rows.append(Row("quota", jobs, "warn", f"{name!r} is not declared, so not checked (need {need}, "
                            f"in use {held})", f"add `{name}: <limit>` under aws.quotas in "
                            f"{environment_file(env.name).name}", source))
            continue
        if quota is None:
            rows.append(Row("quota", jobs, "block", f"no quota named {name!r} in {aws.region}",
                            f"choose an instance type SageMaker offers for {usage} in {aws.region}", source))
            continue
        limit = float(quota["value"])
        code = f" ({quota['code']})" if quota["code"] != "-" else ""
        detail = f"{name}{code}: limit {limit:g}, in use {held}, these jobs need {need}"
        if held + need <= limit:
            rows.append(Row("quota", jobs, "ok", detail, "", source))
            continue
        wanted_value = held + need
        fix = (f"raise it under aws.quotas in {environment_file(env.name).name}" if env.emulated else
               f"aws service-quotas request-service-quota-increase --service-code sagemaker --quota-code "
               f"{quota['code']} --desired-value {wanted_value:g} --region {aws.region}")
        rows.append(Row("quota", jobs, "block", detail + (" (a new account starts at 0)" if limit == 0 else ""),
                        fix, source))
    return rows


def capacity(env: Environment, client: Client, specs: list[JobSpec]) -> list[Row]:
    """The EC2 instance type behind each ml. type is offered in the region (describe_instance_type_offerings).

    SageMaker has no read API listing its instance types per region; the EC2 offering is necessary for it, and
    the per-type Service Quotas (checked above) exist only for types SageMaker knows in the region."""
    aws = env.require_aws()
    by_type: dict[str, set[str]] = defaultdict(set)
    for spec in specs:
        for need in instance_needs(spec, env):
            by_type[need.instance_type].add(need.job)
    if not by_type:
        return []
    ec2_types = {t: t.removeprefix("ml.") for t in by_type}
    offered = set()
    paginator = client("ec2").get_paginator("describe_instance_type_offerings")
    for page in paginator.paginate(LocationType="region",
                                   Filters=[{"Name": "instance-type", "Values": sorted(set(ec2_types.values()))}]):
        offered.update(o["InstanceType"] for o in page["InstanceTypeOfferings"])
    rows = []
    for ml_type, jobs in sorted(by_type.items()):
        label = ", ".join(sorted(jobs))
        if ec2_types[ml_type] in offered:
            rows.append(Row("capacity", label, "ok", f"{ec2_types[ml_type]} is offered in {aws.region}", "",
                            "ec2:DescribeInstanceTypeOfferings"))
        else:
            rows.append(Row("capacity", label, "block", f"{ec2_types[ml_type]} (for {ml_type}) is not offered in "
                            f"{aws.region}", f"pick another instance type in the job definition, or another region",
                            "ec2:DescribeInstanceTypeOfferings"))
    return rows


# --- deployed state ------------------------------------------------------------------------------------------

def deployed_state(env: Environment, client: Client) -> list[Row]:
    from botocore.exceptions import ClientError

    from infra.aws.outputs import resolved_fields, resolved_from_outputs, stack_name
    from jobs.config.resolved import ResolvedAws, load_resolved, resolved_file
    from jobs.errors import ConfigError

    stack = stack_name(env)
    deploy = f"ftops infra deploy --env {env.name}"
    try:
        stacks = client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return [Row("stack", ENV, "block", f"stack {stack} is not deployed", deploy,
                        "cloudformation:DescribeStacks")]
        raise
    status = stacks[0]["StackStatus"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs") or []}
    rows = []
    if status.endswith("_FAILED") or status.startswith("ROLLBACK") or "IN_PROGRESS" in status:
        rows.append(Row("stack", ENV, "block", f"stack {stack} is {status}", f"wait for it or fix it, then {deploy}",
                        "cloudformation:DescribeStacks"))
    try:
        deployed = resolved_from_outputs(env, outputs, source=f"stack {stack}")
    except ConfigError as exc:
        return rows + [Row("stack", ENV, "block", str(exc), deploy, "cloudformation:DescribeStacks")]
    if not rows:
        rows.append(Row("stack", ENV, "ok", f"stack {stack} is {status}", "", "cloudformation:DescribeStacks"))
    path = resolved_file(env.name, "aws")
    outputs_cmd = f"ftops infra outputs --env {env.name}"
    if not path.exists():
        rows.append(Row("resolved", ENV, "block", f"{path.name} does not exist: rendering uses derived names, not "
                        "the deployed ones", outputs_cmd + ("" if env.emulated else ", then commit the file"),
                        "cloudformation:DescribeStacks"))
    else:
        committed = load_resolved(env, "aws", ResolvedAws)
        drift = [f for f in resolved_fields() if getattr(committed, f) != getattr(deployed, f)]
        if drift:
            rows.append(Row("resolved", ENV, "block", f"{path.name} differs from stack outputs in "
                            f"{', '.join(drift)}", outputs_cmd + ("" if env.emulated else ", then commit the file"),
                            "cloudformation:DescribeStacks"))
        else:
            rows.append(Row("resolved", ENV, "ok", f"{path.name} matches the stack outputs", "",
                            "cloudformation:DescribeStacks"))
    rows += buckets(env, client, deployed)
    return rows


def buckets(env: Environment, client: Client, deployed: Any) -> list[Row]:
    from botocore.exceptions import ClientError

    s3 = client("s3")
    key = deployed.kms_key_arn
    rows = []
    # GetBucketEncryption alone tells existence (NoSuchBucket), reachability (403) and the key: HeadBucket would
    # need s3:ListBucket on the whole bucket, which IAM cannot tell apart from listing every key in it.
    for bucket in (deployed.datasets_bucket, deployed.output_bucket, deployed.checkpoints_bucket):
        try:
            rules = s3.get_bucket_encryption(Bucket=bucket, ExpectedBucketOwner=deployed.account)[
                "ServerSideEncryptionConfiguration"]["Rules"]
        except ClientError as exc:
            code = _code(exc)
            detail = {"404": "does not exist", "NoSuchBucket": "does not exist",
                      "403": "exists but is not reachable with these credentials (or belongs to another account)",
                      "AccessDenied": "exists but is not reachable with these credentials (or belongs to another "
                                      "account)",
                      "ServerSideEncryptionConfigurationNotFoundError": "has no default encryption"
                      }.get(code, f"is not reachable ({code})")
            rows.append(Row("bucket", ENV, "block", f"s3://{bucket} {detail}",
                            f"ftops infra deploy --env {env.name}; check the preflight identity's "
                            "s3:GetEncryptionConfiguration grant", "s3:GetBucketEncryption"))
            continue
        default = (rules[0].get("ApplyServerSideEncryptionByDefault") or {}) if rules else {}
        algorithm, used = default.get("SSEAlgorithm"), default.get("KMSMasterKeyID") or ""
        if algorithm in ("aws:kms", "aws:kms:dsse") and _same_key(used, key):
            rows.append(Row("bucket", ENV, "ok", f"s3://{bucket} exists, reachable, SSE-KMS with the environment's key",
                            "", "s3:GetBucketEncryption"))
        else:
            rows.append(Row("bucket", ENV, "block", f"s3://{bucket} is encrypted with {algorithm or 'nothing'} "
                            f"{used or ''}, not the environment's key {key}".replace("  ", " "),
                            f"ftops infra deploy --env {env.name} (the stack sets SSE-KMS with the key)",
                            "s3:GetBucketEncryption"))
    return rows


def _same_key(used: str, key: str) -> bool:
    """A bucket names its key by ARN or id; the stack outputs the key ARN."""
    return bool(used) and (used == key or key.endswith("/" + used) or used.endswith("/" + key.rsplit("/", 1)[-1]))


# --- costs ---------------------------------------------------------------------------------------------------

def budget(env: Environment, client: Client, specs: list[JobSpec]) -> list[Row]:
    """Remaining monthly budget (AWS Budgets) against the jobs' estimated total; a budget not readable warns."""
    from botocore.exceptions import BotoCoreError, ClientError

    from infra.aws.naming import Names

    aws = env.require_aws()
    name = Names.of(env).budget
    total = sum(s.estimated_cost_usd or 0.0 for s in specs if s.provider == "sagemaker")
    source = "budgets:DescribeBudget"
    try:
        data = client("budgets").describe_budget(AccountId=aws.account, BudgetName=name)["Budget"]
    except ClientError as exc:
        if not (env.emulated and _code(exc) == "NotFoundException"):
            return [Row("budget", ENV, "warn", f"budget {name} not readable ({_code(exc)}); the remaining budget "
                        "is not checked", "grant budgets:ViewBudget to the preflight identity, or deploy the stack",
                        source)]
        # moto's CloudFormation creates no AWS::Budgets::Budget: use the declared limit, with nothing spent.
        data = {"BudgetLimit": {"Amount": str(aws.budget.monthly_limit_usd)}}
        source = f"{environment_file(env.name).name} aws.budget (moto creates no budget)"
    except BotoCoreError as exc:
        return [Row("budget", ENV, "warn", f"budget {name} not readable ({_code(exc)}); the remaining budget is "
                    "not checked", "grant budgets:ViewBudget to the preflight identity, or deploy the stack",
                    "budgets:DescribeBudget")]
    limit = float(data["BudgetLimit"]["Amount"])
    spent = float(((data.get("CalculatedSpend") or {}).get("ActualSpend") or {}).get("Amount") or 0)
    remaining = limit - spent
    detail = (f"budget {name}: ${spent:,.2f} of ${limit:,.2f} spent this month, ${remaining:,.2f} left; "
              f"SageMaker jobs estimate ${total:,.2f}")
    if total > remaining:
        return [Row("budget", ENV, "block", detail, "submit fewer jobs, wait for next month, or raise "
                    f"aws.budget.monthly_limit_usd in {environment_file(env.name).name} and redeploy", source)]
    return [Row("budget", ENV, "ok", detail, "", source)]
