"""What serves in a production environment, rendered for review: `promotion.json`.

In a production environment a job (unless its definition opts into `promotion: retrain`) is not trained: it
serves the model its source environment trained, evaluated and approved (`ftops promote`). So the prod tree
names that model: the source environment, the source job's name and idempotency key (what rendering the same
definition for the source environment produces, so a reviewer can match it with the source's tree), what must
hold before it serves, and the deployment settings it will serve with. `ftops diff` shows a change to any of
them; `ftops apply` submits nothing for such a job; `ftops deploy` serves only a record of that source job.

The source environment is the one naming this environment in `aws.promotion_targets` (the relation the stack
grants cross-account reads for; jobs.access.environment.promotion_sources reads it the same way).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jobs.errors import ConfigError, FtopsError

if TYPE_CHECKING:
    from jobs.config.environment import Environment
    from jobs.render.definitions import JobVariant
    from jobs.render.engine import RenderedJob, RenderRun

FILE = "promotion.json"


def promotes(variant: JobVariant, env: Environment) -> bool:
    """Whether `variant` in `env` serves a promoted model instead of training one."""
    return env.is_production and variant.definition.promotion != "retrain"


def source_environment(env: Environment) -> Environment:
    """The one environment that promotes into `env` (names it in `aws.promotion_targets`)."""
    from jobs.config.environment import environment_file, environment_names, load_environment

    sources = []
    for name in environment_names():
        if name == env.name:
            continue
        other = load_environment(name)
        if other.aws is not None and env.name in other.aws.promotion_targets:
            sources.append(other)
    if len(sources) != 1:
        found = ", ".join(s.name for s in sources) or "none"
        raise ConfigError(f"{env.name} is a production environment: it serves models promoted from one source "
                          f"environment, and {'several name' if sources else 'none names'} it in "
                          f"aws.promotion_targets ({found})", source=environment_file(env.name),
                          hint=f"list {env.name} in aws.promotion_targets of exactly one environment (e.g. staging), "
                               "or give the definitions `promotion: retrain`")
    if sources[0].is_production:
        raise ConfigError(f"{sources[0].name} promotes into {env.name} but is itself a production environment",
                          source=environment_file(sources[0].name), field="aws.promotion_targets",
                          hint="promote from the environment where the model is trained and gated")
    return sources[0]


def document(variant: JobVariant, env: Environment, source_job: RenderedJob) -> bytes:
    """promotion.json: canonical (sorted keys) so equal inputs give equal bytes."""
    from jobs.render.engine import _dump_json

    definition = variant.definition
    provider = definition.provider
    settings = (definition.deployment.azure if provider == "azure-openai" else definition.deployment.sagemaker)
    index = source_job.index
    data: dict[str, Any] = {
        "serves": "promoted",
        "environment": env.name,
        "job": variant.name,
        "source": {"environment": index["environment"], "job_name": index["name"],
                   "idempotency_key": index["idempotency_key"], "definition": index["definition"],
                   "dataset_id": index.get("dataset_id")},
        "requires": {
            "model_record": f"Approved in {index['environment']} by {index['environment']}'s pipeline, after the "
                            "promotion gate passed on the stored evaluation of that exact artifact",
            "gate": "passed",
            "artifact": ("the evaluated model.tar.gz, copied into this environment with its sha256 verified"
                         if provider == "sagemaker" else
                         f"the fine-tuned model of {index['name']}, deployed with its source account named"),
        },
        "deployment": {"provider": provider, **settings.model_dump(mode="json", exclude_none=True)},
    }
    return _dump_json(data)


def add_promotions(variants: list[JobVariant], results: list[RenderedJob | FtopsError],
                   env: Environment, run: RenderRun | None = None) -> list[RenderedJob | FtopsError]:
    """`results` with promotion.json added to every job of a production environment that serves a promoted
    model; a job whose source does not render gets the source's error (the prod tree cannot say what serves)."""
    from jobs.render.engine import INDEX, RenderedJob, RenderRun, _dump_json, render_batch
    from jobs.render.definitions import load_variants

    wanted = [i for i, (v, r) in enumerate(zip(variants, results))
              if not isinstance(r, FtopsError) and promotes(v, env)]
    if not wanted:
        return results
    source = source_environment(env)
    source_variants: list[JobVariant | None] = []
    loaded: dict[str, list[JobVariant]] = {}
    for i in wanted:
        path = variants[i].path
        if str(path) not in loaded:
            loaded[str(path)] = load_variants(path, source.name)
        source_variants.append(next((v for v in loaded[str(path)] if v.name == variants[i].name), None))
    # The source's jobs as the source environment renders them: taken from its run when it rendered in this
    # same render (the same variant, environment and inputs give the same bytes), rendered here otherwise.
    source_run = (run if run is not None and run.env is env else RenderRun(env)).peer(source)
    if source_run.env is not source:  # another Environment object of that name: its inputs may differ
        source_run = RenderRun(source)
    missing = [v for v in source_variants if v is not None and (str(v.path), v.name) not in source_run.jobs]
    if missing:
        render_batch(missing, source, source_run)  # fills source_run.jobs
    rendered = iter([source_run.jobs[(str(v.path), v.name)] for v in source_variants if v is not None])
    out = list(results)
    for i, source_variant in zip(wanted, source_variants):
        variant, job = variants[i], results[i]
        assert isinstance(job, RenderedJob)
        source_job = next(rendered) if source_variant is not None else None
        if source_job is None:
            out[i] = variant.error(f"serves a model promoted from {source.name}, which renders no job "
                                   f"{variant.name}", "promotion", f"render it for {source.name}, or set "
                                   "`promotion: retrain`")
            continue
        if isinstance(source_job, FtopsError):
            out[i] = ConfigError(f"serves the model {source.name} trains, which does not render: {source_job.message}",
                                 source=source_job.source, line=source_job.line, field=source_job.field,
                                 hint=source_job.hint)
            continue
        files = dict(job.files)
        files[FILE] = document(variant, env, source_job)
        index = {**job.index, "promotion": FILE}
        files[INDEX] = _dump_json(index)
        out[i] = RenderedJob(job.name, files, job.documents, index, job._variant)
    return out
