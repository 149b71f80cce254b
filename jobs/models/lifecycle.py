"""A trained model's life: registered when it is evaluated, approved and promoted when its stored evaluation
passes the gate, deployed from its record.

Nothing here retrains: promotion copies the evaluated artifact (SageMaker) or deploys the same fine-tuned
model from the account that trained it (Azure OpenAI, `properties.model.source`).
"""

from __future__ import annotations

import getpass
import hashlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs import paths
from jobs.errors import ConfigError, FtopsError
from jobs.models.record import Artifact, EvaluationSummary, ModelRecord, Serving, evaluation_fingerprint
from jobs.models.store import RecordStore, store_for

if TYPE_CHECKING:
    from jobs.config.environment import Environment


def actor() -> str:
    """Who approved: the pipeline's actor (GitHub sets it) or the local user."""
    if os.environ.get("GITHUB_ACTOR"):
        return f"github:{os.environ['GITHUB_ACTOR']} run {os.environ.get('GITHUB_RUN_ID', '?')}"
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "unknown"


def _base_model(definition: Any) -> str:
    base = definition.base_model
    if definition.provider == "azure-openai":
        return f"{base.azure_model}@{base.version}" if base.version else str(base.azure_model)
    return base.hf_model_id or base.jumpstart_id or str(base.s3_uri)


# --- register -----------------------------------------------------------------------------------------------

def register_trained(env: Environment, job: str) -> tuple[ModelRecord, RecordStore]:
    """The record of the model the job's training run produced in `env` (created on first call)."""
    from jobs import providers
    from jobs.eval.plan import _rendered

    rendered = _rendered(env, job)
    if rendered is None:
        raise ConfigError(f"{job!r} renders no job for {env.name}", field="job")
    index = rendered.index
    provider = providers.get(index["provider"])
    entry = provider.ledger(env).get(index["idempotency_key"])
    if entry is None or entry.state != "submitted" or not entry.job_id:
        raise FtopsError(f"job {rendered.name} has not been trained in {env.name}",
                         hint=f"run `ftops apply --env {env.name}` and `ftops jobs wait --env {env.name}` first")
    status = provider.describe(env, entry.job_id)
    if status.state != "succeeded" or not status.model:
        raise FtopsError(f"job {rendered.name} has no model yet (state {status.state})",
                         hint=f"wait for it: `ftops jobs wait --env {env.name}`")
    if index["provider"] == "sagemaker":
        from jobs.models.artifacts import s3_sha256
        from jobs.providers.sagemaker import client

        sha, size = s3_sha256(client(env, "s3"), status.model)
        artifact = Artifact(kind="s3", uri=status.model, sha256=sha, bytes=size)
    else:
        from jobs.config.resolved import resolved_azure

        artifact = Artifact(kind="azure-model", model_id=status.model,
                            source_resource_id=resolved_azure(env).openai_account_id)
    store = store_for(env, index["provider"])
    found = store.get(rendered.variant.name, artifact.digest)
    if found is not None:
        return found[0], store
    definition_path = paths.project_root() / index["definition"]
    record = ModelRecord(
        job=rendered.variant.name, env=env.name, provider=index["provider"], artifact=artifact,
        rendered_name=rendered.name, training_job_id=entry.job_id, definition=index["definition"],
        definition_sha256=hashlib.sha256(definition_path.read_bytes()).hexdigest(),
        rendered_sha256=index["idempotency_key"], dataset_id=index.get("dataset_id"),
        base_model=_base_model(rendered.variant.definition),
        metrics={k: float(v) for k, v in (status.metrics or {}).items() if isinstance(v, (int, float))})
    if record.provider == "sagemaker":
        record.registry = _register_package(env, record, "PendingManualApproval")
    store.put(record)
    return record, store


def _register_package(env: Environment, record: ModelRecord, approval: str) -> dict[str, str]:
    from jobs.config.resolved import resolved_aws
    from jobs.models import registry
    from jobs.providers.sagemaker import client, inference_image

    from jobs.access.registry import promotion_readers

    aws = resolved_aws(env)
    return registry.register(client(env), client(env, "s3"), aws.output_bucket, record,
                             image=inference_image(aws.region, None), tags=env.all_tags, approval=approval,
                             readers=promotion_readers(env))


def attach_evaluation(env: Environment, record: ModelRecord, store: RecordStore, result: dict[str, Any]) -> ModelRecord:
    """Keep the gate's verdict on the record (the evaluation itself stays where `ftops eval` wrote it)."""
    gate = result["gate"]
    metric = result["metrics"].get(gate["metric"], {})
    record.evaluation = EvaluationSummary(
        fingerprint=result["evaluation_fingerprint"], config_fingerprint=result["config_fingerprint"],
        dataset_id=result["dataset_id"], passed=gate["passed"], reasons=gate["reasons"],
        warnings=gate.get("warnings", []),
        metrics={gate["metric"]: {"fine_tuned": metric.get("fine_tuned", {}).get("value"),
                                  "base": metric.get("base", {}).get("value")}},
        evaluated_at=time.time(), env=env.name)
    found = store.get(record.job, record.artifact.digest)
    store.put(record, found[1] if found else None)
    if record.provider == "sagemaker" and record.registry:
        from jobs.config.resolved import resolved_aws
        from jobs.models import registry
        from jobs.providers.sagemaker import client

        bucket = resolved_aws(env).output_bucket  # ModelMetrics points here: refresh it with the verdict
        client(env, "s3").put_object(Bucket=bucket, Key=registry.metrics_key(record),
                                     Body=registry.metrics_document(record), ContentType="application/json")
    return record


def loss_plot(env: Environment, record: ModelRecord, out_dir: Path) -> Path | None:
    """Draw the training curve for the evaluation report, from the provider (wherever `jobs results` wrote)."""
    from jobs import providers
    from jobs.results.analysis import detect_overfitting
    from jobs.results.report import plot

    if not record.training_job_id:
        return None
    try:
        metrics = providers.get(record.provider).metrics(env, record.training_job_id)
    except FtopsError:
        return None
    if not metrics.rows:
        return None
    # Drawn in ftops' state directory, not in `out_dir`: the evaluation writes (and marks as its own) that
    # directory afterwards, and refuses one that something else created first. The report embeds the image.
    path = paths.state_dir() / "loss-plots" / env.name / f"{record.job}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    plot(metrics.rows, detect_overfitting(metrics.rows), f"{record.job} ({env.name})", path)
    return path


# --- promote: the offline check first -----------------------------------------------------------------------

def check_evaluation(job: str, env: Environment, evaluation: Path, *, judge: bool) -> dict[str, Any]:
    """The stored evaluation of `job` in `env`, if it still describes the definition and data as they are now.

    Reads local files only: a refusal here makes no network call and touches no credential.
    """
    import orjson

    from jobs.eval.gate import decide
    from jobs.eval.plan import definition_eval

    expected = definition_eval(job, env, judge=judge)
    rerun = f"ftops eval {job} --env {env.name}" + ("" if judge else " --no-judge")
    if not evaluation.is_file():
        raise ConfigError(f"no stored evaluation of {job} in {env.name}", source=evaluation,
                          hint=f"evaluate it first: `{rerun}`")
    try:
        result = orjson.loads(evaluation.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"cannot read the evaluation: {exc}", source=evaluation, hint=rerun) from None
    if not isinstance(result, dict) or "evaluation_fingerprint" not in result:
        raise ConfigError("not an evaluation written by `ftops eval` (no evaluation_fingerprint)", source=evaluation,
                          hint=f"pass the evaluation.json that `{rerun}` writes")
    stale = None
    if result.get("job") != job:
        stale = f"it is of job {result.get('job')!r}"
    elif result.get("env") != env.name:
        stale = f"it was made in {result.get('env')!r}, not {env.name}"
    elif result.get("limited"):
        stale = "it used --limit (a smoke test cannot promote a model)"
    elif result.get("config_fingerprint") != expected.config.fingerprint():
        if result.get("config_fingerprint") == _judged_otherwise(job, env, expected, judge=judge):
            # Not stale: the same settings, evaluated with the judge on where approval has it off, or the reverse.
            made, checked = ("without", "with") if judge else ("with", "without")
            approve_as = f"ftops models approve {job} --env {env.name}" + (" --no-judge" if judge else "")
            raise ConfigError(f"the stored evaluation of {job} in {env.name} was made {made} the job's LLM judge, "
                              f"and approval checks it {checked} the judge", source=evaluation, field="--no-judge",
                              hint=f"approve it as it was evaluated: `{approve_as}`, or evaluate again: `{rerun}`")
        stale = "the evaluation settings in the definition changed since"
    elif result.get("dataset_id") != expected.manifest.dataset_id or result.get("examples") != len(expected.examples):
        stale = "the dataset changed since"
    elif not result.get("artifact"):
        stale = "it scored a target given by hand, not the job's trained model"
    else:
        identity = Artifact(**result["artifact"]).identity()
        recomputed = evaluation_fingerprint(result["config_fingerprint"], result["dataset_id"], identity,
                                            (result.get("target_specs") or {}).get("base"), result["examples"])
        if recomputed != result.get("evaluation_fingerprint"):
            stale = "its fingerprint does not match its contents (edited by hand?)"
    if stale:
        raise ConfigError(f"the stored evaluation of {job} in {env.name} is stale: {stale}", source=evaluation,
                          hint=f"evaluate again: `{rerun}`")
    # The gate comes from the definition as it is now, not from what the stored evaluation recorded.
    result["gate"] = decide(expected.config.gate, result, source=expected.path)
    return result


def _judged_otherwise(job: str, env: Environment, expected: Any, *, judge: bool) -> str | None:
    """The evaluation settings' fingerprint with the judge switched the other way (None: the job has no judge)."""
    from dataclasses import replace

    from jobs.eval.plan import definition_eval

    if judge:
        return replace(expected.config, judge=None).fingerprint() if expected.config.judge is not None else None
    judged = definition_eval(job, env, judge=True).config
    return judged.fingerprint() if judged.judge is not None else None


# --- approve: in the source environment, by its own identity ------------------------------------------------

def variant_of(job: str, env_name: str) -> Any:
    from jobs.render.definitions import find_definition, load_variants

    try:
        path = find_definition(job)
    except ConfigError:
        path = find_definition(job.rsplit("-g", 1)[0])  # a grid trial, `<name>-g<N>`
    found = next((v for v in load_variants(path, env_name) if v.name == job), None)
    if found is None:
        raise ConfigError(f"{path.name} defines no job {job!r} for {env_name}", source=path, field="name")
    return found


def approve(job: str, env: Environment, result: dict[str, Any]) -> dict[str, Any]:
    """Record, in `env` and with `env`'s credentials, that the model `result` evaluated passed the gate.

    `result` is what check_evaluation returned (the stored evaluation, checked offline, with the gate decided
    from the definition as it is now). The approval names the evaluation and the artifact it rests on, so a
    promotion elsewhere can show an auditor who approved which bytes on which evaluation.
    """
    if not result["gate"]["passed"]:
        raise FtopsError(f"refusing to approve {job} in {env.name}: " + "; ".join(result["gate"]["reasons"]),
                         field="evaluation.gate")
    artifact = Artifact(**result["artifact"])
    provider = "sagemaker" if artifact.kind == "s3" else "azure-openai"
    store = store_for(env, provider)
    found = store.get(job, artifact.digest)
    if found is None:
        raise FtopsError(f"no model record of {job} in {env.name} for {artifact.identity()}",
                         hint=f"evaluate the trained model: `ftops eval {job} --env {env.name}`")
    record, etag = found
    if record.evaluation is None or record.evaluation.fingerprint != result["evaluation_fingerprint"]:
        raise FtopsError(f"the model record of {job} in {env.name} carries another evaluation than the one read",
                         source=store.url(record), hint=f"evaluate again: `ftops eval {job} --env {env.name}`")
    fingerprint = record.evaluation.fingerprint
    if not (record.approved and record.approval.evaluation == fingerprint):
        reason = f"gate passed in {env.name} (evaluation {fingerprint})"
        record.approval.status, record.approval.by, record.approval.at = "Approved", actor(), time.time()
        record.approval.reason, record.approval.env = reason, env.name
        record.approval.evaluation, record.approval.artifact = fingerprint, artifact.identity()
        if record.registry:
            from jobs.models import registry
            from jobs.providers.sagemaker import client

            registry.set_approval(client(env), record.registry["package_arn"], "Approved", reason)
        store.put(record, etag)
    return {"job": job, "env": env.name, "approved": True, "gate": result["gate"], "record": store.url(record),
            "artifact": artifact.identity(), "evaluation": fingerprint, "approved_by": record.approval.by,
            "approved_at": record.approval.at, "package_arn": (record.registry or {}).get("package_arn")}


# --- promote: in the target, reading the source's approved record ------------------------------------------

def source_approved(job: str, source: Environment, provider: str) -> tuple[ModelRecord, RecordStore]:
    """The newest record of `job` in `source` that `source` approved on a passed evaluation of that very artifact
    (read only: the target never writes into the source environment)."""
    store = store_for(source, provider)
    records = store.records(job)
    approved = sorted((r for r in records if r.approved), key=lambda r: r.approval.at or 0, reverse=True)
    for record in approved:
        a, e = record.approval, record.evaluation
        if e is not None and e.passed and a.evaluation == e.fingerprint and a.artifact == record.artifact.identity():
            break
    else:
        hint = f"in {source.name}, after its gate: `ftops models approve {job} --env {source.name}`"
        if approved:
            raise FtopsError(f"the approved record of {job} in {source.name} does not name the passed evaluation and "
                             "artifact it rests on", source=store.url(approved[0]), hint=hint)
        raise FtopsError(f"no approved model record of {job} in {source.name}: nothing to promote", hint=hint)
    if record.registry:
        from jobs.providers.sagemaker import client

        package = record.registry["package_arn"]  # readable by the target (the group's resource policy)
        status = client(source).describe_model_package(ModelPackageName=package)["ModelApprovalStatus"]
        if status != "Approved":
            raise FtopsError(f"model package {package} in {source.name} is {status}, not Approved",
                             source=store.url(record), hint=f"approve it in {source.name}: `ftops models approve "
                                                            f"{job} --env {source.name}`")
    return record, store


def promote(job: str, source: Environment, target: Environment) -> dict[str, Any]:
    """Make the model `source` approved available in `target`, with `target`'s credentials: read the source's
    record and artifact, copy the bytes (sha256 verified) or name the fine-tuned model's source account, and
    register it approved here with the source's approval (who, when, which evaluation, which bytes)."""
    variant = variant_of(job, target.name)
    provider = "azure-openai" if variant.definition.provider == "azure-openai" else "sagemaker"
    if variant.definition.promotion == "retrain":
        return _promote_retrained(job, source, target, provider, actor())
    record, source_store = source_approved(job, source, provider)
    target_record = _copy_into(record, source_store, source, target, actor())
    evaluation = record.evaluation
    return {"job": job, "from": source.name, "to": target.name, "promoted": True, "mode": "promote",
            "gate": {"passed": evaluation.passed, "reasons": evaluation.reasons, "warnings": evaluation.warnings},
            "artifact": target_record.artifact.identity(), "approved_by": record.approval.by,
            "approved_in": record.approval.env, "evaluation": record.approval.evaluation,
            "source_record": source_store.url(record), "target_record": store_for(target, provider).url(target_record),
            "target": target_record.artifact.uri or target_record.artifact.model_id,
            "source_resource_id": target_record.artifact.source_resource_id}


def _copy_into(record: ModelRecord, source_store: RecordStore, source: Environment, target: Environment,
               who: str) -> ModelRecord:
    store = store_for(target, record.provider)
    artifact = record.artifact.model_copy()
    if record.provider == "sagemaker":
        from jobs.config.resolved import resolved_aws
        from jobs.models.artifacts import copy_verified
        from jobs.providers.sagemaker import client

        aws = resolved_aws(target)
        # Both clients carry the caller's credentials, the target's pipeline role: the source's bucket and key
        # policies grant it read (aws.promotion_targets); nothing is written in the source.
        artifact.uri = copy_verified(client(source, "s3"), record.artifact.uri, client(target, "s3"),
                                     aws.output_bucket, record.job, record.artifact.sha256,
                                     kms_key=None if target.emulated else aws.kms_key_arn)
    # Azure: the same fine-tuned model id; the deployment names the account that trained it as its source.
    found = store.get(record.job, artifact.digest)
    copy = found[0] if found else record.model_copy(deep=True)
    copy.env, copy.artifact, copy.serving, copy.training_job_id = target.name, artifact, copy.serving if found else [], None
    copy.evaluation = record.evaluation
    copy.approval = record.approval.model_copy()  # the source's approval, as recorded there by its identity
    copy.promoted_from = {"env": source.name, "record": source_store.url(record),
                          "artifact": record.artifact.uri or record.artifact.model_id,
                          "sha256": record.artifact.sha256, "package_arn": (record.registry or {}).get("package_arn"),
                          "training_job_id": record.training_job_id, "promoted_by": who, "promoted_at": time.time()}
    if record.provider == "sagemaker" and not found:
        copy.registry = _register_package(target, copy, "Approved")
    store.put(copy, found[1] if found else None)
    return copy


def _promote_retrained(job: str, source: Environment, target: Environment, provider: str,
                       who: str) -> dict[str, Any]:
    """`promotion: retrain`: the target trains its own model; it serves only once it passed the gate there
    (approved here by the target's identity, as `ftops models approve` does in a source environment)."""
    store = store_for(target, provider)
    candidates = [r for r in store.records(job) if r.training_job_id and r.evaluation and r.evaluation.env == target.name]
    passed = [r for r in candidates if r.evaluation.passed]
    if not passed:
        raise FtopsError(f"{job} opts into `promotion: retrain`: its model trained in {target.name} has not passed "
                         f"the gate there", hint=f"`ftops apply --env {target.name}`, then `ftops eval {job} --env "
                         f"{target.name} --gate`, then promote again")
    chosen, etag = store.get(job, passed[0].artifact.digest)
    reason = f"retrained in {target.name}; gate passed there (evaluation {chosen.evaluation.fingerprint})"
    chosen.approval.status, chosen.approval.by, chosen.approval.at = "Approved", who, time.time()
    chosen.approval.reason, chosen.approval.env = reason, target.name
    chosen.approval.evaluation, chosen.approval.artifact = chosen.evaluation.fingerprint, chosen.artifact.identity()
    if chosen.registry:
        from jobs.models import registry
        from jobs.providers.sagemaker import client

        registry.set_approval(client(target), chosen.registry["package_arn"], "Approved", reason)
    store.put(chosen, etag)
    gate = {"passed": True, "reasons": chosen.evaluation.reasons, "warnings": chosen.evaluation.warnings}
    return {"job": job, "from": source.name, "to": target.name, "promoted": True, "mode": "retrain",
            "gate": gate, "artifact": chosen.artifact.identity(), "target_record": store.url(chosen)}


# --- deploy -------------------------------------------------------------------------------------------------

def approved_record(env: Environment, job: str, provider: str,
                    source: dict[str, Any] | None = None) -> tuple[ModelRecord, str, RecordStore]:
    """The most recently approved record of `job` in `env`; refuses when there is none.

    `source` (promotion.json's `source` in a production tree): only a record of that source environment's job
    serves, the one the reviewed tree names."""
    store = store_for(env, provider)
    records = store.records(job)
    if source is not None:
        named = [r for r in records if r.rendered_name == source["job_name"]
                 and (r.promoted_from or {}).get("env") == source["environment"]]
        if records and not named:
            raise FtopsError(f"no model record of {job} in {env.name} comes from {source['job_name']} in "
                             f"{source['environment']}, the job the reviewed promotion.json names",
                             source=store.url(records[0]), field="source.job_name",
                             hint=f"train, gate and approve it in {source['environment']}, then `ftops promote "
                                  f"{job} --from {source['environment']} --to {env.name}`")
        records = named
    approved = sorted((r for r in records if r.approved), key=lambda r: r.approval.at or 0, reverse=True)
    if not approved:
        pending = [r for r in records if not r.approved]
        if pending:
            raise FtopsError(f"the model record of {job} in {env.name} is {pending[0].approval.status}, not Approved",
                             source=store.url(pending[0]),
                             hint=f"promote it after its gate passed: {_promote_command(job, env, source)}")
        raise FtopsError(f"no model record of {job} in {env.name}: nothing was promoted here",
                         hint=_promote_command(job, env, source))
    record = approved[0]
    if record.registry:
        from jobs.providers.sagemaker import client

        status = client(env).describe_model_package(ModelPackageName=record.registry["package_arn"])
        if status["ModelApprovalStatus"] != "Approved":  # the registry is what IAM and auditors see
            raise FtopsError(f"model package {record.registry['package_arn']} is {status['ModelApprovalStatus']}",
                             hint="approve it in the registry or promote again")
    found = store.get(record.job, record.artifact.digest)
    return record, found[1], store


def _promote_command(job: str, env: Environment, source: dict[str, Any] | None) -> str:
    """`ftops promote` into `env` from where its promotions come from: the environment the reviewed
    promotion.json names, else the one listing `env` in `aws.promotion_targets`."""
    if source is not None:
        sources = [source["environment"]]
    else:
        from jobs.access.environment import promotion_sources

        try:
            sources = [e.name for e in promotion_sources(env)]
        except FtopsError:  # another environment file is broken: its own command names it
            sources = []
    if len(sources) == 1:
        return f"`ftops promote {job} --from {sources[0]} --to {env.name}`"
    declared = f"one of {', '.join(sources)}" if sources else "where it was trained and approved"
    return f"`ftops promote {job} --from SOURCE --to {env.name}`, SOURCE being {declared}"


def note_serving(store: RecordStore, record: ModelRecord, etag: str, env: Environment, where: str) -> None:
    record.serving = [s for s in record.serving if not (s.env == env.name and s.where == where)]
    record.serving.append(Serving(env=env.name, where=where, at=time.time()))
    store.put(record, etag)


def note_deployed(env: Environment, provider: str, job: str, where: str, served: str) -> bool:
    """After a deploy of a model trained in `env`: the record of the artifact now at `where` (`served`: its
    S3 URI or fine-tuned model id) says it serves there, and no other record of `job` still claims `where`.
    False when no record is that artifact (a checkpoint, or not evaluated yet: records are made by `ftops eval`)."""
    store = store_for(env, provider)
    noted = False
    for record in store.records(job):
        serves = served in (record.artifact.uri, record.artifact.model_id)
        claims = any(s.env == env.name and s.where == where for s in record.serving)
        noted |= serves
        if serves == claims:  # already says so (keep its "since"), or unrelated
            continue
        found = store.get(record.job, record.artifact.digest)
        if found is None:
            continue
        current, etag = found
        if serves:
            note_serving(store, current, etag, env, where)
        else:  # the endpoint or deployment moved on to another artifact
            current.serving = [s for s in current.serving if not (s.env == env.name and s.where == where)]
            store.put(current, etag)
    return noted


def forget_serving(env: Environment, provider: str, job: str, where: str) -> None:
    """After an undeploy: no record of `job` in `env` says it still serves there."""
    store = store_for(env, provider)
    for record in store.records(job):
        if any(s.env == env.name and s.where == where for s in record.serving):
            found = store.get(record.job, record.artifact.digest)
            if found is not None:
                current, etag = found
                current.serving = [s for s in current.serving if not (s.env == env.name and s.where == where)]
                store.put(current, etag)
