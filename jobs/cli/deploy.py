"""`ftops deploy` / `ftops undeploy`: serve a fine-tuned model (Azure OpenAI deployment, SageMaker endpoint)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from jobs.cli.output import EnvOption, JsonOption, console, emit, err_console, path_option

JobArgument = typer.Argument(..., help="The job definition's name (definitions/JOB.yaml) or the rendered job's name; "
                                             "its deployment settings come from the rendering.")
DirOption = path_option(None, "--dir", "-d", help="The rendered tree (default: rendered/).")


def reviewed(environment, rendered):
    """`rendered` (read from a tree) once it is exactly what its definition renders now: a hand-edited
    deployment (SKU, capacity, role, image, a `deployment` added to job.json) is refused naming the file and
    field, before any cloud call."""
    from jobs.apply import verify

    (checked,) = verify.verified(environment, [rendered])
    return checked


def reviewed_job(environment, job: str, directory: Path | None):
    """The job in the rendered tree, verified against its definition; None when the tree does not hold it."""
    from jobs.apply.lookup import rendered_jobs

    candidates = rendered_jobs(environment, directory)
    by_definition = [r for r in candidates if r.job == job]
    for rendered in candidates:
        if job in {rendered.name, rendered.idempotency_key} or (len(by_definition) == 1 and rendered is by_definition[0]):
            return reviewed(environment, rendered)
    return None


def trained_ref(environment, job: str, checked):
    """The trained job behind the verified rendered job `checked` (raises when it was not submitted here)."""
    from jobs.apply.lookup import trusted_ref
    from jobs.errors import FtopsError

    if checked is None:
        raise FtopsError(f"{job!r} is not a rendered job of {environment.name}", field="job",
                         hint="deploy by the rendered job name; its deployment settings come from the definition")
    ref = trusted_ref(environment, checked)
    if ref is None:
        raise FtopsError(f"job {checked.name} has not been submitted in {environment.name}",
                         hint=f"run `ftops apply --env {environment.name}` first")
    return ref


def _rendered_for(environment, job: str, checked):
    """The job as rendered for the environment (the reviewed tree, else rendered in memory): its deployment
    settings and names, without needing a training job there."""
    import tempfile

    from jobs.apply.rendered import load_rendered
    from jobs.errors import FtopsError

    if checked is not None:
        return checked
    from jobs.render.engine import render_environment

    try:
        found = [r for r in render_environment(environment, job) if job in {r.name, r.variant.name}]
    except FtopsError:
        found = []
    if not found:
        raise FtopsError(f"{job!r} is not a job of {environment.name}", field="job",
                         hint="deploy by the job definition's name")
    root = Path(tempfile.mkdtemp(prefix="ftops-deploy-"))
    target = root / environment.name / found[0].name
    target.mkdir(parents=True)
    for name, data in found[0].files.items():
        (target / name).write_bytes(data)
    return next(r for r in load_rendered(root, environment.name) if r.name == found[0].name)


def _deploy_record(environment, job: str, checked) -> dict:
    """Serve the approved model record of `job` (a promoted artifact): refuses an unapproved one."""
    from jobs import providers
    from jobs.models.lifecycle import approved_record, note_serving
    from jobs.providers.base import JobStatus

    rendered = _rendered_for(environment, job, checked)
    name = rendered.job or job
    source = None
    if rendered.promotion:  # verified with the tree: the source job the reviewer saw is the one that serves
        import orjson

        source = orjson.loads((rendered.directory / rendered.promotion).read_bytes())["source"]
    record, etag, store = approved_record(environment, name, rendered.provider, source)
    artifact = record.artifact
    status = JobStatus(provider=rendered.provider, job_id=rendered.name, state="succeeded",
                       provider_status="Approved", model=artifact.uri if artifact.kind == "s3" else artifact.model_id)
    provider = providers.get(rendered.provider)
    with err_console.status(f"deploying {rendered.name} from its model record..."):
        if artifact.kind == "s3":
            result = provider.deploy(environment, rendered, status)
        else:
            from jobs.config.resolved import resolved_azure

            own = resolved_azure(environment).openai_account_id
            source = artifact.source_resource_id if artifact.source_resource_id != own else None
            result = provider.deploy(environment, rendered, status, source=source)
    where = result.get("deployment") or result.get("endpoint")
    note_serving(store, record, etag, environment, str(where))
    result["record"] = store.url(record)
    result["artifact"] = artifact.identity()
    result["approved_by"], result["approved_at"] = record.approval.by, record.approval.at
    result["promoted_from"] = (record.promoted_from or {}).get("env")
    return result


def _note_trained_serving(environment, rendered, job: str, result: dict) -> None:
    """The model record of what now serves says so (`ftops models list|show`), as for a promoted model."""
    from jobs.models.lifecycle import note_deployed

    where = str(result.get("deployment") or result.get("endpoint"))
    served = str(result.get("model_data") or result.get("model"))  # SageMaker: the S3 URI; Azure: the model id
    try:
        note_deployed(environment, rendered.provider, rendered.job or job, where, served)
    except Exception as exc:  # the deployment serves either way; say the record could not follow
        err_console.print(f"[yellow]note[/]: deployed, but its model record does not list it as serving: "
                          f"{escape((str(exc).splitlines() or [type(exc).__name__])[0])}")


def deploy(job: str = JobArgument, env: str = EnvOption, directory: Path | None = DirOption,
           checkpoint: str | None = typer.Option(None, "--checkpoint", help="Deploy this checkpoint instead of the "
                                                 "final model (Azure checkpoint id, or a SageMaker model S3 URI)."),
           gitops: Path | None = path_option(None, "--gitops", help="Azure: write the deployment's ASO manifest under "
                                              "DIR/<env>/ for a reviewed commit instead of creating it."),
           as_json: bool = JsonOption) -> None:
    """Create or update the deployment that serves the job's fine-tuned model.

    In a production environment (and wherever the job was not trained) only an approved model record is
    served: the artifact `ftops promote` made available, never a model trained there without its gate.
    """
    from jobs import providers
    from jobs.config.environment import load_environment
    from jobs.errors import FtopsError

    if checkpoint is not None and not checkpoint.strip():  # often an unset variable: not "the final model"
        raise FtopsError("is empty", field="--checkpoint",
                         hint="pass the checkpoint id (`ftops jobs results` names the best one), or leave "
                              "--checkpoint out to deploy the final model")
    if gitops is not None and gitops.exists() and not gitops.is_dir():
        raise FtopsError("is not a directory", source=gitops, field="--gitops",
                         hint="pass the directory of your GitOps repository the manifests go under")
    environment = load_environment(env)
    checked = reviewed_job(environment, job, directory)  # before any cloud call: only what review saw is served
    from_record = environment.is_production
    if not from_record:
        try:
            ref = trained_ref(environment, job, checked)
        except FtopsError as exc:
            if "has not been submitted" not in str(exc) and "is not a rendered job" not in str(exc):
                raise
            from_record = True  # not trained here: a promoted model, if one was approved
    if from_record:
        if checkpoint:
            raise FtopsError("--checkpoint does not apply to a promoted model", field="--checkpoint",
                             hint="choose the checkpoint where it was trained, then promote it")
        result = _deploy_record(environment, job, checked)

        def human_record(_):
            where = result.get("deployment") or result.get("endpoint")
            console.print(f"[green]deployed[/] {escape(job)} in {escape(env)} as [bold]{escape(str(where))}[/] "
                          f"from model record {escape(result['record'])}")
            console.print(f"artifact {escape(result['artifact'])}, approved by {escape(str(result['approved_by']))}"
                          + (f", promoted from {escape(result['promoted_from'])}" if result["promoted_from"] else ""))
            for note in result.get("notes", []):
                console.print(f"[yellow]note[/]: {escape(note)}")

        emit(result, as_json, human_record)
        return
    provider = providers.get(ref.provider)
    with err_console.status(f"deploying {ref.label}..."):
        current = provider.describe(environment, ref.job_id)
        if gitops is not None:
            from jobs.errors import FtopsError

            if not hasattr(provider, "gitops"):
                raise FtopsError(f"--gitops is not supported for {ref.provider}", field="--gitops")
            result = provider.gitops(environment, ref.rendered, current, gitops, checkpoint=checkpoint)
        else:
            result = provider.deploy(environment, ref.rendered, current, checkpoint=checkpoint)
            _note_trained_serving(environment, ref.rendered, job, result)

    def human(_):
        where = result.get("deployment") or result.get("endpoint")
        if result.get("manifest"):
            console.print(f"[green]wrote[/] {escape(result['manifest'])} (commit it; ASO creates {escape(str(where))})")
        else:
            console.print(f"[green]deployed[/] {escape(ref.label)} as [bold]{escape(str(where))}[/] "
                          f"(model {escape(str(result.get('model')))})")
        for note in result.get("notes", []):
            console.print(f"[yellow]note[/]: {escape(note)}")

    emit(result, as_json, human)


def undeploy(job: str = JobArgument, env: str = EnvOption, directory: Path | None = DirOption,
             as_json: bool = JsonOption) -> None:
    """Remove what `ftops deploy` created for the job (nothing to remove is not an error)."""
    from jobs import providers

    from jobs.config.environment import load_environment
    from jobs.errors import FtopsError

    environment = load_environment(env)
    checked = reviewed_job(environment, job, directory)  # removes only what the reviewed definition names
    try:
        ref = trained_ref(environment, job, checked)
        rendered, label = ref.rendered, ref.label
    except FtopsError as exc:
        if "has not been submitted" not in str(exc) and "is not a rendered job" not in str(exc):
            raise
        rendered = _rendered_for(environment, job, checked)  # a promoted model: nothing was trained here
        label = rendered.name
    result = providers.get(rendered.provider).undeploy(environment, rendered)
    if result["removed"]:
        from jobs.models.lifecycle import forget_serving

        try:
            forget_serving(environment, rendered.provider, rendered.job or job,
                           str(result.get("deployment") or result.get("endpoint")))
        except Exception as exc:  # the deployment is gone either way; say the record could not follow
            err_console.print(f"[yellow]note[/]: removed, but the model record still lists it as serving: "
                              f"{escape(str(exc).splitlines()[0])}")
    emit(result, as_json, lambda _: console.print(
        f"removed {', '.join(result['removed']) or 'nothing (already gone)'} for {escape(label)}"))
