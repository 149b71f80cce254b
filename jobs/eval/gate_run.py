"""`ftops eval JOB --env ENV --gate`: the promotion gate as one step that cleans up after itself.

It deploys what the evaluation needs and did not exist (the candidate; for SageMaker in a cloud environment
also the base model, serverless, unless the environment names an endpoint serving it), evaluates and records
the verdict on the model record, and removes what it deployed when it ends, passed, failed or interrupted
(unless the definition sets `evaluation.keep_deployments`). Deployments are billed per hour; a gate must not
leave any behind.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jobs.config.environment import Environment
from jobs.errors import FtopsError

Undo = tuple[str, Callable[[], Any]]


def base_model_names(job: str) -> dict[str, str]:
    digest = hashlib.sha256(job.encode()).hexdigest()[:8]
    base = f"ftops-gate-base-{job}"[:50].rstrip("-") + f"-{digest}"
    return {"model": base, "config": f"{base}-cfg", "endpoint": base}


def base_model_requests(env: Environment, job: str, s3_uri: str, *, image: str, execution_role: str,
                        subnets: list[str], security_groups: list[str], instance_type: str = "ml.g5.xlarge",
                        kms_key: str | None = None, memory_mb: int = 6144,
                        max_concurrency: int = 2) -> dict[str, dict[str, Any]]:
    """CreateModel / CreateEndpointConfig / CreateEndpoint for the base weights (an uncompressed S3 prefix).

    Serverless where possible (billed per request, nothing idles while the gate waits). Serverless endpoints
    take no VPC configuration or network isolation (AWS's list of features serverless inference does not
    support, read 2026-11; not checked against a live account here), so an environment with a training VPC
    gets one instance of the job's serving type in that VPC instead, removed as soon as the gate ends."""
    names = base_model_names(job)
    tags = [{"Key": k, "Value": v} for k, v in {**env.all_tags, "ftops:gate": job}.items()]
    model: dict[str, Any] = {
        "ModelName": names["model"], "ExecutionRoleArn": execution_role, "Tags": tags,
        "PrimaryContainer": {"Image": image, "Environment": {"HF_TASK": "text-generation"},
                             "ModelDataSource": {"S3DataSource": {"S3Uri": s3_uri.rstrip("/") + "/",
                                                                  "S3DataType": "S3Prefix",
                                                                  "CompressionType": "None"}}}}
    if subnets:
        model["VpcConfig"] = {"Subnets": subnets, "SecurityGroupIds": security_groups}
        model["EnableNetworkIsolation"] = True
    variant: dict[str, Any] = {"VariantName": "AllTraffic", "ModelName": names["model"]}
    config: dict[str, Any] = {"EndpointConfigName": names["config"], "Tags": tags, "ProductionVariants": [variant]}
    if subnets:
        variant.update(InstanceType=instance_type, InitialInstanceCount=1)
        if kms_key:
            config["KmsKeyId"] = kms_key
    else:
        variant["ServerlessConfig"] = {"MemorySizeInMB": memory_mb, "MaxConcurrency": max_concurrency}
    endpoint = {"EndpointName": names["endpoint"], "EndpointConfigName": names["config"], "Tags": tags}
    return {"model": model, "config": config, "endpoint": endpoint}


def _deploy_base(env: Environment, job: str, definition: Any) -> tuple[str, Undo | None]:
    """The base model target for a SageMaker gate in a cloud environment, and how to remove it."""
    if env.aws and env.aws.gate_base_endpoint:
        return f"sagemaker:{env.aws.gate_base_endpoint}", None
    uri = definition.base_model.s3_uri
    if not uri:
        raise FtopsError("the gate needs the base model to compare with: the job has no base_model.s3_uri and the "
                         f"environment names no endpoint", field="base_model.s3_uri",
                         hint=f"upload the base weights and set base_model.s3_uri, or set aws.gate_base_endpoint in "
                              f"environments/{env.name}.yaml")
    from jobs.config.resolved import resolved_aws
    from jobs.providers.sagemaker import client, inference_image

    aws = resolved_aws(env)
    if not uri.startswith("s3://"):
        uri = f"s3://{aws.output_bucket}/{uri}"
    requests = base_model_requests(env, job, uri, image=inference_image(aws.region, None),
                                   execution_role=aws.endpoint_role_arn, subnets=aws.subnet_ids,
                                   security_groups=aws.security_group_ids, kms_key=aws.kms_key_arn,
                                   instance_type=definition.deployment.sagemaker.instance_type)
    sm = client(env)
    names = base_model_names(job)

    def remove() -> None:
        for call, arg in ((sm.delete_endpoint, {"EndpointName": names["endpoint"]}),
                          (sm.delete_endpoint_config, {"EndpointConfigName": names["config"]}),
                          (sm.delete_model, {"ModelName": names["model"]})):
            try:
                call(**arg)
            except Exception as exc:
                if "Could not find" not in str(exc) and "does not exist" not in str(exc):
                    raise

    try:
        sm.create_model(**requests["model"])
        sm.create_endpoint_config(**requests["config"])
        sm.create_endpoint(**requests["endpoint"])
        sm.get_waiter("endpoint_in_service").wait(EndpointName=names["endpoint"])
    except BaseException:
        remove()
        raise
    return f"sagemaker:{names['endpoint']}", ("base model endpoint " + names["endpoint"], remove)


def _deploy_candidate(env: Environment, ref: Any) -> Undo | None:
    """Deploy the candidate unless it already serves; returns how to remove it when the gate created it."""
    from jobs import providers

    provider = providers.get(ref.provider)
    status = provider.describe(env, ref.job_id)
    existed = False
    if ref.provider == "azure-openai":
        from jobs.providers.azure_openai import arm_deployment

        existed = arm_deployment(env, provider.deployment_settings(ref.rendered)["name"]) is not None
    result = provider.deploy(env, ref.rendered, status)
    if ref.provider == "sagemaker":
        existed = "endpoint" not in result.get("created", [])
        if not env.emulated:
            from jobs.providers.sagemaker import client

            client(env).get_waiter("endpoint_in_service").wait(EndpointName=result["endpoint"])
    if existed:
        return None
    where = result.get("deployment") or result.get("endpoint")
    return f"candidate {where}", lambda: provider.undeploy(env, ref.rendered)


def run_gate(job: str, env: Environment, directory: Path | None, evaluate: Callable[..., dict[str, Any]],
             *, keep: bool | None = None) -> dict[str, Any]:
    """Deploy what is missing, `evaluate(base=...)`, and remove what was deployed here whatever happens."""
    from jobs.cli.deploy import reviewed_job, trained_ref
    from jobs.eval.plan import definition_eval

    local = definition_eval(job, env)
    definition = local.variant.definition
    keep = definition.evaluation.keep_deployments if keep is None else keep
    # Deploy only what the definition renders: a hand-edited tree is refused before any cloud call.
    ref = trained_ref(env, local.variant.name, reviewed_job(env, local.variant.name, directory))
    created: list[Undo] = []
    base = None
    outcome: dict[str, Any] = {}
    try:
        if not (ref.provider == "sagemaker" and env.emulated):  # emulated SageMaker evaluates the local model
            undo = _deploy_candidate(env, ref)
            if undo:
                created.append(undo)
        if ref.provider == "sagemaker" and not env.emulated:
            base, undo = _deploy_base(env, local.variant.name, definition)
            if undo:
                created.append(undo)
        outcome = evaluate(base=base)
    finally:
        removed, failed = [], []
        if not keep:
            for what, remove in reversed(created):
                try:
                    remove()
                    removed.append(what)
                except Exception as exc:  # report every leftover by name; one failure must not hide another
                    failed.append(f"{what}: {str(exc).splitlines()[0]}")
        outcome["gate_deployments"] = {"created": [w for w, _ in created], "removed": removed,
                                       "kept": [w for w, _ in created] if keep else [], "not_removed": failed}
    if failed:
        raise FtopsError("the gate could not remove what it deployed: " + "; ".join(failed),
                         hint="remove them by hand (`ftops undeploy`); they are billed while they exist")
    return outcome
