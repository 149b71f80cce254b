"""SageMaker: training jobs from rendered `create_training_job` requests; endpoints from their artifacts."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

import orjson

from jobs import clients
from jobs.apply import uploads as upload_steps
from jobs.apply.ledger import S3Ledger
from jobs.buckets import require_buckets, stack_buckets
from jobs.config.resolved import resolved_aws
from jobs.errors import CloudError, ConfigError
from jobs.providers import register
from jobs.providers.base import JobEvent, JobStatus, Metrics, Provider, Submission
from jobs.training import metrics as metric_lines

if TYPE_CHECKING:
    from jobs.apply.rendered import RenderedJob
    from jobs.config.environment import Environment

KEY_TAG = "ftops:idempotency-key"
LEDGER_PREFIX = "ftops-ledger/"
STATES = {"InProgress": "running", "Completed": "succeeded", "Failed": "failed", "Stopping": "running",
          "Stopped": "cancelled"}
# Hugging Face inference DLC (sagemaker-core's offline image table); deployment settings may override it.
HF_INFERENCE = {"version": "4.49.0", "base_framework_version": "pytorch2.6.0", "py_version": "py312"}
# Our metric names -> the columns `ftops jobs results` writes.
SERIES = {"train_loss": "train_loss", "eval_loss": "valid_loss", "eval_accuracy": "valid_accuracy", "epoch": "epoch",
          "learning_rate": "learning_rate"}


@lru_cache(maxsize=32)
def _client(env_name: str, endpoint: str | None, service: str):
    from jobs.config.environment import load_environment

    return clients.aws_client(load_environment(env_name), service)


def client(env: Environment, service: str = "sagemaker"):
    """boto3 clients are thread-safe and slow to build: one per environment, endpoint and service."""
    return _client(env.name, clients.aws_endpoint(env), service)


def key_tag(sm: Any, arn: str) -> str | None:
    """The idempotency key a job was tagged with at create, or None."""
    tags = sm.list_tags(ResourceArn=arn).get("Tags", [])
    return next((tag["Value"] for tag in tags if tag["Key"] == KEY_TAG), None)


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


def _submit_directory(request: dict[str, Any]) -> str | None:
    """The S3 URI of the job's source archive: `sagemaker_submit_directory`, or, for a network-isolated job
    (which reads its code from the `code` channel's directory), that channel's S3 URI."""
    body = request.get("TrainingJobDefinition", request)
    hyperparameters = body.get("StaticHyperParameters") or body.get("HyperParameters") or {}
    value = hyperparameters.get("sagemaker_submit_directory")
    # Script-mode hyperparameters are JSON-encoded strings in some renderings.
    value = value.strip('"') if value else None
    if value and not value.startswith("s3://"):
        from jobs.render.sagemaker_rules import CODE_CHANNEL

        value = next((c["DataSource"]["S3DataSource"]["S3Uri"] for c in body.get("InputDataConfig", [])
                      if c.get("ChannelName") == CODE_CHANNEL), None)
    return value


def _split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


@register
class SageMaker(Provider):
    name = "sagemaker"
    target = "sagemaker"
    job_name_field = "TrainingJobName"
    """The request field naming the job (and, through `endpoint_names`, its endpoint)."""

    def ledger(self, env: Environment) -> S3Ledger:
        bucket = resolved_aws(env).output_bucket
        s3 = client(env, "s3")
        require_buckets(env, s3, [bucket])  # one line, not NoSuchBucket, for every command that reads the ledger
        return S3Ledger(s3, bucket, f"{LEDGER_PREFIX}{env.name}/")

    def check_storage(self, env: Environment) -> None:
        require_buckets(env, client(env, "s3"), stack_buckets(env))

    # --- submit ---------------------------------------------------------------------------------

    def prepare(self, env: Environment, job: RenderedJob, *, uploads: Any, dry_run: bool = False) -> dict[str, Any]:
        request = job.load_target(self.target)
        s3 = client(env, "s3")
        manifest_dir = job.manifest_dir()
        uploads.once(f"dataset:aws:{manifest_dir}", lambda: upload_steps.upload_dataset(env, manifest_dir, ["aws"]))
        source = _submit_directory(request)
        if source:
            uploads.once(f"source:{source}", lambda: self._upload_source(env, s3, job, source))
        return request

    def _upload_source(self, env: Environment, s3: Any, job: RenderedJob, uri: str) -> bool:
        from jobs.training.archive import source_archive

        archive = next((a for a in (source_archive(), source_archive(offline=True)) if a.sha256 in uri),
                       source_archive())
        bucket, key = _split_s3(uri)
        if archive.sha256 not in key:
            raise ConfigError(f"rendered with training source {key.split('/')[-2][:12]}, but the code here is "
                              f"{archive.sha256[:12]}", source=job.target_path(self.target),
                              field="HyperParameters.sagemaker_submit_directory",
                              hint="re-run `ftops render` from this commit")
        return upload_steps.put_if_absent(s3, bucket, key, archive.data)

    def submit(self, env: Environment, job: RenderedJob, request: dict[str, Any], *,
               options: dict[str, Any] | None = None) -> Submission:
        sm = client(env)
        name = request[self.job_name_field]
        hit = self.find(env, job)
        if hit:  # real SageMaker refuses a second job with the same name; moto does not, so look first
            return Submission(hit[0], adopted=True)
        try:
            self._create(sm, request)
        except sm.exceptions.ResourceInUse:
            return Submission(name, adopted=True)
        options = options or {}
        if env.emulated and options.get("local_runner", True):
            # moto completes jobs at once without running anything; the local runner really trains, writes
            # model.tar.gz and the metric series where SageMaker would, and records the real outcome that
            # `describe` reports instead of moto's.
            self._run_locally(env, request, options)
        return Submission(name)

    def _create(self, sm: Any, request: dict[str, Any]) -> None:
        sm.create_training_job(**request)

    def _run_locally(self, env: Environment, request: dict[str, Any], options: dict[str, Any]) -> None:
        from jobs.runlocal import record

        record.run(env, request, max_steps=options.get("local_max_steps"))

    def find(self, env: Environment, job: RenderedJob) -> tuple[str, str | None] | None:
        sm = client(env)
        name = job.load_target(self.target)["TrainingJobName"]
        try:
            described = sm.describe_training_job(TrainingJobName=name)
        except Exception as exc:
            if _not_found(exc):
                return None
            raise
        return name, key_tag(sm, described["TrainingJobArn"])

    # --- watch ----------------------------------------------------------------------------------

    def key_of(self, env: Environment, job_id: str) -> str | None:
        sm = client(env)
        return key_tag(sm, _training_job(sm, job_id)["TrainingJobArn"])

    def describe(self, env: Environment, job_id: str) -> JobStatus:
        job = _training_job(client(env), job_id)
        final = {m["MetricName"]: m["Value"] for m in job.get("FinalMetricDataList", [])}
        latest = {SERIES.get(k, k): v for k, v in final.items() if k in SERIES or k.endswith("loss")}
        status = JobStatus(
            provider=self.name, job_id=job_id, state=STATES.get(job["TrainingJobStatus"], "pending"),
            provider_status=job["TrainingJobStatus"], name=job_id, secondary_status=job.get("SecondaryStatus"),
            failure_reason=job.get("FailureReason"), created_at=_iso(job.get("CreationTime")),
            finished_at=_iso(job.get("TrainingEndTime")), metrics=latest,
            model=job.get("ModelArtifacts", {}).get("S3ModelArtifacts"),
            training_seconds=job.get("TrainingTimeInSeconds"), billable_seconds=job.get("BillableTimeInSeconds"),
            spot=bool(job.get("EnableManagedSpotTraining")),
        )
        if status.secondary_status in {"Starting", "Pending", "Downloading"} and status.state == "running":
            status.state = "pending"
        if "epoch" in final:
            status.epoch = final["epoch"]
        if env.emulated:
            _apply_local_run(status, self._local_run(env, job))
        return status

    def _local_run(self, env: Environment, job: dict[str, Any]) -> dict[str, Any] | None:
        """The local runner's record of this job (emulated environments), or None if moto alone ran it."""
        from jobs.runlocal import record

        return record.read(client(env, "s3"), job)

    def list(self, env: Environment, limit: int = 50) -> list[JobStatus]:
        sm = client(env)
        out = []
        for page in sm.get_paginator("list_training_jobs").paginate(SortBy="CreationTime", SortOrder="Descending"):
            for summary in page["TrainingJobSummaries"]:
                out.append(JobStatus(provider=self.name, job_id=summary["TrainingJobName"],
                                     name=summary["TrainingJobName"],
                                     state=STATES.get(summary["TrainingJobStatus"], "pending"),
                                     provider_status=summary["TrainingJobStatus"],
                                     created_at=_iso(summary.get("CreationTime")),
                                     finished_at=_iso(summary.get("TrainingEndTime"))))
                if env.emulated:  # summaries lack the output path: describe the (few) local jobs
                    out[-1] = self.describe(env, summary["TrainingJobName"])
                if len(out) >= limit:
                    return out
        return out

    def cancel(self, env: Environment, job_id: str) -> JobStatus:
        if env.emulated:  # moto server has no StopTrainingJob: it answers 500, retried at length, then a traceback
            current = self.describe(env, job_id)  # a job that does not exist is named as missing
            if current.done:
                raise CloudError(f"training job {job_id} already ended ({current.state}); nothing to cancel",
                                 field="job", hint="`ftops jobs results` shows its metrics")
            raise CloudError("the AWS emulator (moto) does not implement StopTrainingJob", field="job",
                             hint="cancel works against real SageMaker; local jobs complete at once")
        sm = client(env)
        try:
            sm.stop_training_job(TrainingJobName=job_id)
        except Exception as exc:
            if _not_found(exc):
                raise _no_job("training", job_id) from None
            if "not been implemented" in str(exc):
                raise CloudError("the AWS emulator (moto) does not implement StopTrainingJob", field="job",
                                 hint="cancel works against real SageMaker; local jobs complete at once") from None
            raise
        return self.describe(env, job_id)

    def events(self, env: Environment, job_id: str, limit: int = 100) -> list[JobEvent]:
        job = _training_job(client(env), job_id)
        events = [JobEvent(_iso(t.get("StartTime")) or "", f"{t['Status']}: {t.get('StatusMessage', '')}".strip(": "))
                  for t in job.get("SecondaryStatusTransitions", [])]
        if job.get("FailureReason"):
            events.append(JobEvent(_iso(job.get("TrainingEndTime")) or "", job["FailureReason"], "error"))
        local = self._local_run(env, job) if env.emulated else None
        if local:
            events.append(JobEvent(local["started_at"], "local runner: training started"
                                   + (f" (capped at {local['max_steps']} steps)" if local.get("max_steps") else "")))
            if local["status"] == "Completed":
                events.append(JobEvent(local["finished_at"], f"local runner: completed {local.get('steps')} steps in "
                                                             f"{local.get('training_seconds')} s; log {local.get('log')}"))
            elif local["status"] == "Failed":
                events.append(JobEvent(local["finished_at"], f"local runner: {local['failure_reason']}", "error"))
        return events[-limit:]

    # --- results --------------------------------------------------------------------------------

    def metrics(self, env: Environment, job_id: str) -> Metrics:
        job = _training_job(client(env), job_id)
        rows, source = self._metrics_file(env, job)
        if not rows:
            rows, source = self._cloudwatch(env, job)
        if not rows:
            final = {m["MetricName"]: m["Value"] for m in job.get("FinalMetricDataList", [])}
            row = {SERIES[k]: v for k, v in final.items() if k in SERIES}
            rows, source = ([{"step": 0, **row}] if row else []), "FinalMetricDataList"
        return Metrics(rows=rows, source=source)

    def _metrics_file(self, env: Environment, job: dict[str, Any]) -> tuple[list[dict[str, float]], str]:
        """The metrics JSONL the training script (and the local runner) writes beside the model."""
        s3 = client(env, "s3")
        bucket, prefix = _split_s3(job["OutputDataConfig"]["S3OutputPath"].rstrip("/") + f"/{job['TrainingJobName']}/")
        try:
            listing = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        except Exception:
            return [], ""
        files = [obj["Key"] for obj in listing if obj["Key"].endswith(".jsonl") and "metric" in obj["Key"]]
        if not files:
            return [], ""
        body = s3.get_object(Bucket=bucket, Key=files[0])["Body"].read().decode()
        return _rows_from_jsonl(body), f"s3://{bucket}/{files[0]}"

    def _cloudwatch(self, env: Environment, job: dict[str, Any]) -> tuple[list[dict[str, float]], str]:
        """The series SageMaker extracts with the job's MetricDefinitions (namespace /aws/sagemaker/TrainingJobs)."""
        names = [d["Name"] for d in job["AlgorithmSpecification"].get("MetricDefinitions", []) if d["Name"] in SERIES]
        if not names or not job.get("TrainingStartTime"):
            return [], ""
        cw = client(env, "cloudwatch")
        end = job.get("TrainingEndTime") or datetime.now(job["TrainingStartTime"].tzinfo)
        queries = [{"Id": f"m{i}", "Label": name, "MetricStat": {
            "Metric": {"Namespace": "/aws/sagemaker/TrainingJobs", "MetricName": name,
                       "Dimensions": [{"Name": "Host", "Value": f"{job['TrainingJobName']}/algo-1"}]},
            "Period": 60, "Stat": "Average"}} for i, name in enumerate(names)]
        try:
            data = cw.get_metric_data(MetricDataQueries=queries, StartTime=job["TrainingStartTime"], EndTime=end,
                                      ScanBy="TimestampAscending")
        except Exception:
            return [], ""
        by_time: dict[Any, dict[str, float]] = {}
        for result in data.get("MetricDataResults", []):
            for stamp, value in zip(result["Timestamps"], result["Values"]):
                by_time.setdefault(stamp, {})[SERIES[result["Label"]]] = value
        rows = [{"step": i, **by_time[t]} for i, t in enumerate(sorted(by_time))]
        return rows, "CloudWatch /aws/sagemaker/TrainingJobs"

    # --- deploy ---------------------------------------------------------------------------------

    def deploy(self, env: Environment, job: RenderedJob, status: JobStatus, *,
               checkpoint: str | None = None) -> dict[str, Any]:
        if status.state != "succeeded" or not status.model:
            raise CloudError(f"job {status.job_id} has no model to deploy (state {status.state})", field="job",
                             hint="wait until it succeeds: `ftops jobs wait`")
        settings = deployment_settings(job, env)
        aws = resolved_aws(env)
        if settings.get("serverless") and aws.subnet_ids:
            # Serverless endpoints take no VPC configuration or network isolation (AWS "Serverless Inference:
            # feature exclusions", read 2026-11): the model would run outside the environment's VPC.
            raise ConfigError(f"{env.name} runs models in its VPC (aws.subnet_ids), which a serverless endpoint "
                              "cannot join", field="deployment.sagemaker.serverless",
                              hint="serve it on instances in this environment: an override of "
                                   "deployment.sagemaker with instance_type and no serverless")
        sm = client(env)
        model_data = checkpoint or status.model
        container = {"Image": settings.get("image") or inference_image(aws.region, settings.get("instance_type")),
                     "ModelDataUrl": model_data,
                     "Environment": {"HF_TASK": "text-generation", "SAGEMAKER_CONTAINER_LOG_LEVEL": "20"}}
        model_args: dict[str, Any] = {"PrimaryContainer": container,
                                      "ExecutionRoleArn": aws.endpoint_role_arn,  # not the training role
                                      "Tags": _tags(env, job)}
        if aws.subnet_ids:  # instance-backed only (refused above for serverless)
            model_args["VpcConfig"] = {"Subnets": aws.subnet_ids, "SecurityGroupIds": aws.security_group_ids}
            model_args["EnableNetworkIsolation"] = True
        variant: dict[str, Any] = {"VariantName": "AllTraffic"}
        config_args: dict[str, Any] = {"Tags": _tags(env, job)}
        if settings.get("serverless"):
            serverless = settings["serverless"] if isinstance(settings["serverless"], dict) else {}
            variant["ServerlessConfig"] = {"MemorySizeInMB": int(serverless.get("memory_mb", 6144)),
                                           "MaxConcurrency": int(serverless.get("max_concurrency", 5))}
        else:
            variant.update(InstanceType=settings.get("instance_type", "ml.g5.xlarge"),
                           InitialInstanceCount=int(settings.get("instance_count", 1)))
            config_args["KmsKeyId"] = aws.kms_key_arn  # serverless variants do not take a volume key
        names = endpoint_names(status.job_id, serving_digests(model_args, variant, config_args))
        model_args["ModelName"] = variant["ModelName"] = names["model"]
        config_args |= {"EndpointConfigName": names["config"], "ProductionVariants": [variant]}
        created: list[str] = []
        previous = None
        try:
            if not _exists(lambda: sm.describe_model(ModelName=names["model"])):
                sm.create_model(**model_args)
                created.append("model")
            if not _exists(lambda: sm.describe_endpoint_config(EndpointConfigName=names["config"])):
                sm.create_endpoint_config(**config_args)
                created.append("endpoint-config")
            if _exists(lambda: sm.describe_endpoint(EndpointName=names["endpoint"])):
                current = sm.describe_endpoint(EndpointName=names["endpoint"])["EndpointConfigName"]
                if current != names["config"]:  # a new model or settings: the endpoint moves to their config
                    sm.update_endpoint(EndpointName=names["endpoint"], EndpointConfigName=names["config"])
                    previous = current
            else:
                sm.create_endpoint(EndpointName=names["endpoint"], EndpointConfigName=names["config"],
                                   Tags=_tags(env, job))
                created.append("endpoint")
        except Exception as exc:
            # Nothing serves what this deploy created before the refusal, and `undeploy` looks only at what an
            # endpoint serves: remove it now or it is left behind unseen.
            left = _remove_created(sm, names, created)
            refusal = _deploy_refusal(exc, env, job, names["endpoint"], variant, left)
            login = clients.credential_error(exc, env) if refusal is None and left else None
            if login is not None:  # an expired login fails the clean-up too: say what stays behind
                raise CloudError(f"{login.message}; nothing was deployed{_leftover(left)}", hint=login.hint) from None
            if refusal is None:
                raise
            raise refusal from None
        endpoint = sm.describe_endpoint(EndpointName=names["endpoint"])
        return {"provider": self.name, "endpoint": names["endpoint"], "endpoint_arn": endpoint["EndpointArn"],
                "status": endpoint.get("EndpointStatus"), "model": names["model"], "config": names["config"],
                "model_data": model_data, "image": container["Image"], "created": created,
                "previous_config": previous,
                "serverless": bool(settings.get("serverless")),
                "notes": ["an instance-backed endpoint is billed per instance-hour until `ftops undeploy`"]}

    def undeploy(self, env: Environment, job: RenderedJob) -> dict[str, Any]:
        sm = client(env)
        names = endpoint_names(job.load_target(self.target)[self.job_name_field])
        # What serves now (its config and models carry a digest of what they hold), then the names ftops gave
        # them before versions had digests. Versions an endpoint served before its current one stay: they are
        # definitions, and the endpoint's instances are what is billed (README, `ftops deploy`).
        configs, models = [], []
        try:
            current = sm.describe_endpoint(EndpointName=names["endpoint"])["EndpointConfigName"]
            configs.append(current)
            variants = sm.describe_endpoint_config(EndpointConfigName=current)["ProductionVariants"]
            models += [v["ModelName"] for v in variants]
        except Exception as exc:
            if not _not_found(exc):
                raise
        calls = [("endpoint", lambda: sm.delete_endpoint(EndpointName=names["endpoint"]))]
        calls += [("endpoint-config", lambda c=c: sm.delete_endpoint_config(EndpointConfigName=c))
                  for c in dict.fromkeys([*configs, names["config"]])]
        calls += [("model", lambda m=m: sm.delete_model(ModelName=m)) for m in dict.fromkeys([*models, names["model"]])]
        removed = []
        for kind, call in calls:
            try:
                call()
                if kind not in removed:
                    removed.append(kind)
            except Exception as exc:
                if not _not_found(exc):
                    raise
        return {"provider": self.name, "endpoint": names["endpoint"], "removed": removed}


def _remove_created(sm: Any, names: dict[str, str], created: list[str]) -> list[str]:
    """Delete the endpoint config and model a failed deploy created (the endpoint never took them); returns
    what could not be deleted, as `KIND NAME`."""
    deletes = {"endpoint-config": lambda: sm.delete_endpoint_config(EndpointConfigName=names["config"]),
               "model": lambda: sm.delete_model(ModelName=names["model"])}
    left = []
    for kind, name in (("endpoint-config", names["config"]), ("model", names["model"])):
        if kind not in created:
            continue
        try:
            deletes[kind]()
        except Exception as exc:
            if not _not_found(exc):
                left.append(f"{kind} {name}")
    return left


def _leftover(left: list[str]) -> str:
    return (f"; could not remove {', '.join(left)}: delete it with `aws sagemaker delete-endpoint-config` / "
            "`delete-model`") if left else ""


def _deploy_refusal(exc: Exception, env: Environment, job: RenderedJob, endpoint: str, variant: dict[str, Any],
                    left: list[str]) -> CloudError | None:
    """One line for SageMaker (or moto) refusing a deploy request; None for anything else, a missing login or
    a denied permission included (the CLI root names those)."""
    error = _error(exc)
    if not error or clients.credential_error(exc, env) is not None:
        return None
    operation = getattr(exc, "operation_name", None) or "the request"
    message = " ".join(str(error.get("Message") or "").split())
    leftover = _leftover(left)
    definition = job.definition or None
    instance_type = variant.get("InstanceType")
    if env.emulated and instance_type and f"'{instance_type}'" in message and \
            instance_type in sagemaker_endpoint_instance_types():
        # moto validates against an instance list older than SageMaker's own (botocore's service model).
        return CloudError(f"the AWS emulator (moto) cannot serve endpoint instance type {instance_type}, which "
                          f"real SageMaker accepts; nothing was deployed{leftover}", source=definition,
                          field="deployment.sagemaker.instance_type",
                          hint=f"to serve on the emulator, override it in overrides.{env.name}.deployment.sagemaker: "
                               "an instance_type moto knows (e.g. ml.m5.xlarge) or serverless; `ftops eval` scores "
                               f"the local runner's model.tar.gz in {env.name} without an endpoint")
    if len(message) > 300:
        message = message[:300] + "..."
    # Not pinned on a field: the refusal may be about the artifact, the role or the image as well as the settings.
    return CloudError(f"SageMaker refused {operation} for endpoint {endpoint} ({error.get('Code')}): {message}; "
                      f"nothing was deployed{leftover}",
                      hint=f"the endpoint settings come from deployment.sagemaker (and overrides.{env.name}) in "
                           f"{definition or 'the definition'}; `ftops preflight --env {env.name}` checks quotas "
                           "and permissions")


@cache
def sagemaker_endpoint_instance_types() -> frozenset[str]:
    """SageMaker's ProductionVariantInstanceType enum from botocore's bundled service model (offline)."""
    import botocore.session

    shape = botocore.session.get_session().get_service_model("sagemaker").shape_for("ProductionVariantInstanceType")
    return frozenset(shape.enum)


def deployment_settings(job: RenderedJob, env: Environment) -> dict[str, Any]:
    """`deployment.sagemaker` of the job definition (with the environment's override). Never read from the
    rendered tree: what serves follows the reviewed definition, not an edit of job.json."""
    from jobs import paths
    from jobs.config.job import JobDefinition
    from jobs.yamlio import load_model

    path = paths.project_root() / job.definition
    if not job.definition or not path.is_file():
        return {}
    definition = load_model(path, JobDefinition)
    settings = definition.deployment.sagemaker.model_dump()
    override = (definition.overrides.get(env.name, {}).get("deployment") or {}).get("sagemaker") or {}
    return {**settings, **override}


def _apply_local_run(status: JobStatus, local: dict[str, Any] | None) -> None:
    """What the local runner really did replaces moto's instant `Completed`."""
    if not local:
        return
    status.provider_status = local["status"]
    status.state = STATES.get(local["status"], "pending")
    status.secondary_status = local.get("secondary_status")
    status.failure_reason = local.get("failure_reason")
    status.finished_at = local.get("finished_at")
    status.model = local.get("model_artifacts")
    status.training_seconds = status.billable_seconds = local.get("training_seconds")  # no spot discount locally
    final = local.get("final_metrics") or {}
    status.metrics = {SERIES[k]: v for k, v in final.items() if k in SERIES and k.endswith("loss")}
    status.epoch = final.get("epoch", status.epoch)
    status.step = local.get("steps", status.step)


def endpoint_names(job_name: str, digests: tuple[str, str] | None = None) -> dict[str, str]:
    """The endpoint of a job, and the model and endpoint config that serve on it.

    `digests`: of what the model holds and of what the config holds (`serving_digests`). SageMaker models and
    endpoint configs cannot be changed, and "to update an endpoint, you must create a new EndpointConfig"
    (botocore's UpdateEndpoint documentation): each served version gets its own names, so a checkpoint, a
    re-promoted artifact or new instance settings reach the endpoint instead of the config it already has.
    Names are at most 63 characters.
    """
    base = job_name[:59].rstrip("-")
    if digests is None:
        return {"model": base, "config": f"{base}-cfg", "endpoint": base}
    short = job_name[:50].rstrip("-")
    return {"model": f"{short}-{digests[0]}", "config": f"{short}-{digests[1]}-cfg", "endpoint": base}


def serving_digests(model: dict[str, Any], variant: dict[str, Any], config: dict[str, Any]) -> tuple[str, str]:
    """Eight hex digits of what CreateModel would hold, and of what CreateEndpointConfig would hold (its model
    included), names and tags aside (tags can change in place)."""
    held_model = {k: v for k, v in model.items() if k not in ("ModelName", "Tags")}
    held_config = {"model": held_model, "variant": {k: v for k, v in variant.items() if k != "ModelName"},
                   "config": {k: v for k, v in config.items()
                              if k not in ("EndpointConfigName", "Tags", "ProductionVariants")}}
    return _digest8(held_model), _digest8(held_config)


def _digest8(held: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(held, option=orjson.OPT_SORT_KEYS)).hexdigest()[:8]


def inference_image(region: str, instance_type: str | None) -> str:
    from sagemaker.core import image_uris

    return image_uris.retrieve(framework="huggingface", region=region, image_scope="inference",
                               instance_type=instance_type or "ml.g5.xlarge", **HF_INFERENCE)


def _tags(env: Environment, job: RenderedJob) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in {**env.all_tags, KEY_TAG: job.idempotency_key}.items()]


def _exists(call) -> bool:
    try:
        call()
        return True
    except Exception as exc:
        if _not_found(exc):
            return False
        raise


def _error(exc: Exception) -> dict[str, Any]:
    """The `Error` of a botocore ClientError's response ({} for any other exception)."""
    response = getattr(exc, "response", None)
    error = response.get("Error") if isinstance(response, dict) else None
    return error if isinstance(error, dict) else {}


NOT_FOUND_WORDS = ("not found", "could not find", "can't find", "cannot find", "does not exist")


def _not_found(exc: Exception) -> bool:
    """Whether SageMaker said the resource does not exist. Its API model declares ResourceNotFound (tuning
    jobs answer with it: "can't find a tuning job"), but DescribeTrainingJob answers a ValidationException
    ("Requested resource not found", aws/aws-sdk#165), a missing model, config or endpoint one saying
    "Could not find ..." (moto: "Could not find training job ..."). Anything else (no login, AccessDenied,
    throttling, a malformed name) is not "missing" and must not read as such."""
    error = _error(exc)
    code, message = error.get("Code"), str(error.get("Message") or "").lower()
    if code in ("ResourceNotFound", "ResourceNotFoundException"):
        return True
    return code == "ValidationException" and any(words in message for words in NOT_FOUND_WORDS)


JOBS_LIST_HINT = "`ftops jobs list` shows the jobs of this environment"


def _no_job(kind: str, job_id: str) -> CloudError:
    return CloudError(f"no SageMaker {kind} job {job_id!r}", field="job", hint=JOBS_LIST_HINT)


def _training_job(sm: Any, job_id: str) -> dict[str, Any]:
    return describe_job("training", job_id, lambda: sm.describe_training_job(TrainingJobName=job_id))


def describe_job(kind: str, job_id: str, call: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A Describe call for a job the user named: a missing job or a name SageMaker refuses is one line;
    anything else propagates (no login or AccessDenied: jobs.clients.credential_error, at the CLI root)."""
    try:
        return call()
    except Exception as exc:
        if _not_found(exc):
            raise _no_job(kind, job_id) from None
        error = _error(exc)
        if error.get("Code") == "ValidationException":
            raise CloudError(f"SageMaker refused the {kind} job name {job_id!r}: {error.get('Message')}",
                             field="job", hint=JOBS_LIST_HINT) from None
        raise


def _rows_from_jsonl(body: str) -> list[dict[str, float]]:
    """Rows from JSON lines or `ftops-metrics` lines; `eval_loss` becomes `valid_loss`."""
    rows: dict[int, dict[str, float]] = {}
    for line in body.splitlines():
        line = line.strip()
        if not line:
            continue
        values = metric_lines.parse_line(line) if line.startswith(metric_lines.PREFIX) else json.loads(line)
        if not values or "step" not in values:
            continue
        step = int(values["step"])
        row = rows.setdefault(step, {"step": step})
        for key, value in values.items():
            if key in SERIES and isinstance(value, (int, float)):
                row[SERIES[key]] = float(value)
    return [rows[step] for step in sorted(rows)]
