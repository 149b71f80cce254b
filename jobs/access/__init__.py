"""The access model: for a rendered job or an environment, every (principal, action, resource, condition
context) the platform's calls imply. One model, read by the IAM evaluation test (against the synthesized
roles and resource policies) and by preflight (iam:SimulatePrincipalPolicy against a live account).

`jobs.access` derives from the rendered requests ftops submits, never from the roles: a role that lacks
something the model lists is the bug the checks exist to find.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jobs.access.model import PRINCIPALS, SAMPLE_OBJECT, Access, Arns, dedupe

if TYPE_CHECKING:
    from jobs.apply.rendered import RenderedJob
    from jobs.config.environment import Environment

__all__ = ["PRINCIPALS", "SAMPLE_OBJECT", "Access", "accesses_for_environment", "accesses_for_job",
           "accesses_for_request", "JOB_KINDS"]

JOB_KINDS = ("training", "sweep", "deploy", "evaluation", "approval", "promotion")
"""`approval`: `ftops models approve` in the environment that trained the model, by its own role; `promotion`:
registering a model here and `ftops promote --from <source>` into this environment (reads the source only)."""


def accesses_for_environment(env: Environment) -> list[Access]:
    """Ledger, dataset and source uploads, listings: what every apply in `env` needs, whatever the job."""
    from jobs.access.environment import environment_accesses

    return dedupe(environment_accesses(env))


def accesses_for_request(env: Environment, target: str, request: dict[str, Any]) -> list[Access]:
    """A rendered `sagemaker` (create_training_job) or `sagemaker-tuning` request: submit, run, watch, results."""
    from jobs.access.jobs import execution_accesses, pipeline_training_accesses, tuning_accesses

    arns = Arns.of(env)
    if target == "sagemaker":
        extra = {k: request.get(k) for k in ("TensorBoardOutputConfig", "ProfilerConfig", "ProfilerRuleConfigurations")}
        return dedupe([*pipeline_training_accesses(arns, request),
                       *execution_accesses(arns, request, request["TrainingJobName"],
                                           hyperparameters=request.get("HyperParameters"), extra=extra)])
    if target == "sagemaker-tuning":
        return dedupe(tuning_accesses(arns, request))
    raise ValueError(f"no access model for target {target!r}")


def accesses_for_job(env: Environment, job: RenderedJob, kinds: tuple[str, ...] = JOB_KINDS) -> list[Access]:
    """Every access a rendered SageMaker job implies: its training (or sweep), deploy, evaluation, approval and
    promotion.

    `kinds` selects among training, sweep, deploy, evaluation, approval, promotion; kinds the job does not have (a sweep
    of a training-only render) add nothing. Azure jobs imply no AWS access.
    """
    from jobs.access.deploy import deploy_accesses, evaluation_accesses, model_artifact
    from jobs.access.environment import approval_accesses, promotion_accesses

    arns = Arns.of(env)
    out: list[Access] = []
    training = job.load_target("sagemaker") if "sagemaker" in job.targets else None
    tuning = job.load_target("sagemaker-tuning") if "sagemaker-tuning" in job.targets else None
    if training is not None and "training" in kinds:
        out += accesses_for_request(env, "sagemaker", training)
    if tuning is not None and "sweep" in kinds:
        out += accesses_for_request(env, "sagemaker-tuning", tuning)
    if training is None and tuning is None:
        return dedupe(out)
    # The model that deploy, evaluation and promotion act on: the training job's, or a sweep's best trial's.
    if training is not None:
        job_name, definition, tags = training["TrainingJobName"], training, training.get("Tags") or []
    else:
        from jobs.access.jobs import trial_name

        job_name, definition, tags = (trial_name(tuning["HyperParameterTuningJobName"]),
                                      tuning["TrainingJobDefinition"], tuning.get("Tags") or [])
    model_data = model_artifact(definition["OutputDataConfig"]["S3OutputPath"], job_name)
    # A tuning job's endpoint is named after the tuning job (the provider deploys its best trial's model).
    endpoint_job = training["TrainingJobName"] if training is not None else tuning["HyperParameterTuningJobName"]
    served = [model_data]
    from jobs.access.environment import promotion_sources

    if promotion_sources(env):  # deploy serves the approved record's promoted copy here
        from jobs.models.artifacts import promoted_key

        served.append(f"s3://{arns.resolved.output_bucket}/{promoted_key(job.job or job.name, '0' * 64)}")
    from jobs.providers.sagemaker import deployment_settings

    if "deploy" in kinds:
        from jobs.providers.sagemaker import inference_image

        settings = deployment_settings(job, env)
        image = settings.get("image") or inference_image(arns.region, settings.get("instance_type"))
        resolved = arns.resolved
        vpc = ({"Subnets": resolved.subnet_ids, "SecurityGroupIds": resolved.security_group_ids}
               if resolved.subnet_ids else None)
        from jobs.providers.sagemaker import KEY_TAG

        tag_map = {**env.all_tags, KEY_TAG: job.idempotency_key}
        out += deploy_accesses(arns, job_name=endpoint_job, model_data=served, image=image, settings=settings,
                               tags=tag_map, role_arn=resolved.endpoint_role_arn, vpc=vpc)
    if "evaluation" in kinds:
        out += evaluation_accesses(arns, job_name=endpoint_job, model_data=model_data)
        base_uri = _base_model_uri(job, arns)
        if base_uri and not env.emulated and not env.require_aws().gate_base_endpoint:
            from jobs.access.deploy import base_model_accesses
            from jobs.eval.gate_run import base_model_requests
            from jobs.providers.sagemaker import inference_image

            resolved = arns.resolved
            requests = base_model_requests(
                env, job.job or job.name, base_uri, image=inference_image(arns.region, None),
                execution_role=resolved.endpoint_role_arn, subnets=resolved.subnet_ids,
                security_groups=resolved.security_group_ids, kms_key=resolved.kms_key_arn,
                instance_type=deployment_settings(job, env).get("instance_type", "ml.g5.xlarge"))
            out += base_model_accesses(arns, requests, {**env.all_tags, "ftops:gate": job.job or job.name})
    if "approval" in kinds:
        out += approval_accesses(arns, env, job.job or job.name)
    if "promotion" in kinds:
        out += promotion_accesses(arns, env, job.job or job.name)
    del tags
    return dedupe(out)


def _base_model_uri(job: RenderedJob, arns: Arns) -> str | None:
    """The definition's `base_model.s3_uri` as the gate reads it (a key in the artifacts bucket, or an S3 URI)."""
    from jobs import paths
    from jobs.config.job import JobDefinition
    from jobs.yamlio import load_model

    path = paths.project_root() / job.definition if job.definition else None
    uri = load_model(path, JobDefinition).base_model.s3_uri if path and path.is_file() else None
    if not uri:
        return None
    return uri if uri.startswith("s3://") else f"s3://{arns.resolved.output_bucket}/{uri}"
