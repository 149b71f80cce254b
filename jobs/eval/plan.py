"""From `ftops eval JOB --env ENV` to an evaluation: which definition, test split, targets and output folder.

Defaults per provider (each overridable on the command line with a target spec):
- azure-openai: the fine-tuned deployment `ftops deploy` creates (its name comes from rendering the job for
  the environment, so it is the same name deploy used), the base model's deployment (named after the base
  model unless `--base` says otherwise) and the judge's deployment (`evaluation.judge.model`).
- sagemaker: the endpoint `ftops deploy` creates; in an emulated environment the local runner's
  `model.tar.gz` in S3, with the base weights from `base_model.s3_uri`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobs import paths
from jobs.config.environment import Environment
from jobs.errors import ConfigError, FtopsError
from jobs.eval.config import EvalConfig, from_job
from jobs.eval.evaluate import Targets, evaluate
from jobs.eval.examples import Example, load_out_of_domain, load_test_split
from jobs.eval.report import write_reports
from jobs.eval.store import AnswerStore
from jobs.eval import targets as target_specs
from jobs.fsutil import ensure_owned_dir, resolve_under

EVAL_KIND = "evaluation"
EVAL_FILES = frozenset({"answers.jsonl", "report.md", "report.html", "evaluation.json", "loss.png"})
"""What ftops writes into an evaluation folder (loss.png: earlier versions drew the training curve there)."""


@dataclass
class EvalPlan:
    job: str
    """The job definition's name (or grid trial)."""
    env: Environment
    definition_path: Path
    config: EvalConfig
    examples: list[Example]
    dataset_id: str
    fine_tuned: str
    base: str | None
    judge: str | None
    out_dir: Path
    rendered_name: str | None = None
    notes: list[str] = field(default_factory=list)
    artifact: dict[str, Any] | None = None
    """The model record's artifact being evaluated (when the target is the job's own model), so promote can
    match the evaluation to exactly that artifact."""

    @property
    def store_path(self) -> Path:
        return self.out_dir / "answers.jsonl"

    @property
    def evaluation_path(self) -> Path:
        return self.out_dir / "evaluation.json"


def default_out_dir(env: Environment, job: str) -> Path:
    return resolve_under(paths.state_dir() / "eval" / env.name, job, what="job name")


def _rendered(env: Environment, job: str) -> Any | None:
    """The job as rendered for `env` (in memory): its name is what apply and deploy used."""
    from jobs.render.engine import render_environment

    rendered = render_environment(env, job)
    return next((r for r in rendered if r.variant.name == job), rendered[0] if rendered else None)


def _s3_output_uri(rendered: Any) -> str | None:
    request = rendered.documents.get("sagemaker.json")
    if not request:
        return None
    output = request["OutputDataConfig"]["S3OutputPath"].rstrip("/")
    return f"{output}/{request['TrainingJobName']}/output/model.tar.gz"


@dataclass
class DefinitionEval:
    """What an evaluation of a job computes, read from local files only (no cloud call, no credentials)."""

    path: Path
    variant: Any
    config: EvalConfig
    examples: list[Example]
    manifest: Any


def definition_eval(job: str, env: Environment, *, judge: bool = True, limit: int | None = None,
                    perturbations: list[str] | None = None) -> DefinitionEval:
    from dataclasses import replace

    from jobs.render.definitions import find_definition, load_variants

    try:
        path = find_definition(job)
    except ConfigError:
        if "-g" not in job:
            raise
        path = find_definition(job.rsplit("-g", 1)[0])  # a grid trial, `<name>-g<N>`
    variants = load_variants(path, env.name)
    variant = next((v for v in variants if v.name == job), variants[0])
    definition = variant.definition
    config = from_job(definition, source=path, limit=limit,
                      perturbations=tuple(perturbations) if perturbations is not None else None)
    if not judge and config.judge is not None:
        config = replace(config, judge=None)
    manifest_path = paths.project_root() / definition.dataset
    examples, manifest = load_test_split(manifest_path.parent, limit)
    if manifest.format == "classification":
        config = replace(config, classification=True)
    return DefinitionEval(path, variant, config, examples, manifest)


def make_plan(job: str, env: Environment, *, fine_tuned: str | None = None, base: str | None = None,
              judge: bool = True, limit: int | None = None, out_dir: Path | None = None,
              perturbations: list[str] | None = None) -> EvalPlan:
    for spec, option in ((fine_tuned, "--fine-tuned"), (base, "--base")):
        if spec is not None:
            target_specs.parse_spec(spec, option=option)  # a typo is one line before anything is loaded
    local = definition_eval(job, env, judge=judge, limit=limit, perturbations=perturbations)
    path, variant, config, examples, manifest = (local.path, local.variant, local.config, local.examples,
                                                 local.manifest)
    definition = variant.definition
    rendered_name = None
    notes: list[str] = []
    if fine_tuned is None or (base is None and definition.provider == "sagemaker"):
        rendered = _rendered(env, variant.name)
        rendered_name = rendered.name if rendered else None
        if definition.provider == "azure-openai":
            document = rendered.documents.get("azure-openai-deployment.json", {}) if rendered else {}
            fine_tuned = fine_tuned or f"azure:{document.get('deployment_name') or rendered_name}"
        elif fine_tuned is None:
            if env.emulated:
                uri = _s3_output_uri(rendered) if rendered else None
                if uri is None:
                    raise ConfigError("cannot tell where the local runner put this job's model", source=path,
                                      hint="pass --fine-tuned local:s3://BUCKET/KEY/model.tar.gz")
                fine_tuned = f"local:{uri}"
            else:
                from jobs.providers.sagemaker import endpoint_names

                fine_tuned = f"sagemaker:{endpoint_names(rendered_name)['endpoint']}"
    if base is None:
        if definition.provider == "azure-openai":
            base = f"azure:{_declared_deployment(env, definition.base_model.azure_model, definition.base_model.version)}"
        elif env.emulated and definition.base_model.s3_uri:
            uri = definition.base_model.s3_uri
            if not uri.startswith("s3://"):
                from jobs.config.resolved import resolved_aws

                uri = f"s3://{resolved_aws(env).output_bucket}/{uri}"
            base = f"local:{uri}"
        else:
            raise ConfigError("no base model endpoint to compare with", source=path, field="base_model",
                              hint="deploy the base model and pass --base sagemaker:ENDPOINT")
    judge_spec = f"azure:{_declared_deployment(env, config.judge.model)}" if config.judge else None
    return EvalPlan(variant.name, env, path, config, examples, manifest.dataset_id, fine_tuned, base, judge_spec,
                    out_dir or default_out_dir(env, variant.name), rendered_name, notes)


def _declared_deployment(env: Environment, model: str | None, version: str | None = None) -> str:
    """The deployment the environment declares for `model` (by deployment name, or by model and version);
    the model's own name when none is declared."""
    openai = getattr(env.azure, "openai", None) if env.azure else None
    declared = list(getattr(openai, "deployments", []) or [])
    for deployment in declared:
        if deployment.name == model:
            return deployment.name
    for deployment in declared:
        if deployment.model == model and (version is None or deployment.version == version):
            return deployment.name
    return str(model)


def find_loss_plot(plan: EvalPlan) -> Path | None:
    """The loss plot `ftops jobs results` wrote for this job, if any (looked up where results are written)."""
    names = [n for n in (plan.rendered_name, plan.job) if n]
    roots = [paths.state_dir() / "results" / plan.env.name, paths.state_dir() / "results",
             paths.project_root() / "results" / plan.env.name, paths.project_root() / "results"]
    for root in roots:
        for name in names:
            candidate = root / name / "loss.png"
            if candidate.is_file():
                return candidate
    return None


def run_plan(plan: EvalPlan, *, batch: bool = False, concurrency: int = 8, poll_interval_s: float = 5.0,
             loss_plot: Path | None = None, on_answer: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Evaluate, write answers/report/evaluation.json under the plan's folder, and return the evaluation."""
    # Answers and reports go only into a folder ftops made for them (never overwrite a user's report.md).
    ensure_owned_dir(plan.out_dir, EVAL_KIND, field="--out", own_files=EVAL_FILES)
    built: list[target_specs.Target] = []

    def make(spec: str, option: str, base_dir: Path | None = None) -> target_specs.Target:
        target = target_specs.build(spec, plan.env, concurrency=concurrency, batch=batch,
                                    poll_interval_s=poll_interval_s, option=option, base_model_dir=base_dir)
        built.append(target)
        return target

    try:
        base_dir, base_spec = None, plan.base
        if plan.base and plan.base.startswith("local:s3://") and plan.base.endswith("/"):
            base_dir = download_prefix(plan.env, plan.base.removeprefix("local:"))
            base_spec = f"local:{base_dir}"
        # The fine-tuned target first: its refusal (Batch never serves a fine-tuned model) is the one that matters.
        fine_tuned_target = make(plan.fine_tuned, "--fine-tuned", base_dir)
        serving_at = check_serves_artifact(plan, fine_tuned_target)
        targets = Targets(fine_tuned_target, make(base_spec, "--base"),
                          make(plan.judge, "evaluation.judge.model") if plan.judge else None)
        ood = load_out_of_domain() if plan.config.out_of_domain and plan.config.perturbations else None
        with AnswerStore(plan.store_path) as store:
            result = evaluate(plan.config, plan.examples, targets, store, job=plan.job, env=plan.env.name,
                              dataset_id=plan.dataset_id, ood=ood, batch=batch, on_answer=on_answer)
    finally:
        for target in built:
            target.close()
    loss_plot = loss_plot or find_loss_plot(plan)
    result["target_specs"] = {"fine_tuned": plan.fine_tuned, "base": plan.base, "judge": plan.judge}
    result["serving_at"] = serving_at
    result["artifact"] = plan.artifact
    result["evaluation_fingerprint"] = None
    if plan.artifact is not None:
        from jobs.models.record import Artifact, evaluation_fingerprint

        result["evaluation_fingerprint"] = evaluation_fingerprint(
            result["config_fingerprint"], plan.dataset_id, Artifact(**plan.artifact).identity(), plan.base,
            len(plan.examples))
    result["loss_plot"] = str(loss_plot) if loss_plot else None
    files = write_reports(result, plan.out_dir, loss_plot)
    result["files"] = {k: str(v) for k, v in files.items()} | {"answers": str(plan.store_path)}
    return result


def check_serves_artifact(plan: EvalPlan, target: target_specs.Target) -> str | None:
    """An evaluation recorded on a model record must have scored that record's artifact: a deployment serving a
    checkpoint, or an earlier model, is refused before any request (its scores would be credited to the model
    the record names, which approval and promotion then trust). Returns the deployment or endpoint found
    serving the artifact, if any (the record then says where it serves)."""
    if plan.artifact is None:
        return None
    artifact = plan.artifact
    expected = artifact.get("model_id") if artifact["kind"] == "azure-model" else artifact.get("uri")
    serving = target.serves()
    if serving is None:
        return None
    if serving == expected:
        return getattr(target, "deployment", None) or getattr(target, "endpoint_name", None)
    raise FtopsError(f"{plan.fine_tuned} serves {serving}, not {expected}, the model {plan.job} trained in "
                     f"{plan.env.name} that this evaluation would be recorded on", field="--fine-tuned",
                     hint=f"deploy the trained model (`ftops deploy {plan.job} --env {plan.env.name}`) and evaluate "
                          f"again; to score what serves now, pass `--fine-tuned {plan.fine_tuned}` (not recorded, so it "
                          "cannot be approved or promoted)")


def download_prefix(env: Environment, uri: str) -> Path:
    """Download every object under an S3 prefix (a model directory) into a temp folder."""
    from jobs import clients

    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    s3 = clients.aws_client(env, "s3")
    into = Path(tempfile.mkdtemp(prefix="ftops-eval-base-"))
    found = False
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            target = into / obj["Key"][len(prefix):]
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, obj["Key"], str(target))
            found = True
    if not found:
        raise ConfigError(f"no base model under {uri}", field="base_model.s3_uri",
                          hint="upload the base weights there first")
    return into
