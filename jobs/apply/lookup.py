"""From what a user types (`ftops jobs status faq-local-1a2b3c4d`) to a provider and its job id."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from jobs import paths, providers
from jobs.apply.rendered import RenderedJob, load_rendered
from jobs.config.environment import Environment
from jobs.errors import ConfigError, FtopsError


@dataclass
class JobRef:
    provider: str
    job_id: str
    rendered: RenderedJob | None = None

    @property
    def label(self) -> str:
        return self.rendered.name if self.rendered else self.job_id


def default_dir() -> Path:
    return paths.project_root() / "rendered"


def rendered_jobs(env: Environment, directory: Path | None) -> list[RenderedJob]:
    try:
        return load_rendered(directory or default_dir(), env.name)
    except ConfigError:
        if directory is not None:
            raise
        return []


def resolve(env: Environment, ref: str, directory: Path | None = None) -> JobRef:
    """A rendered job name (looked up in the ledger), an Azure job id (`ftjob-...`), or a SageMaker job name."""
    candidates = rendered_jobs(env, directory)
    by_definition = [job for job in candidates if job.job == ref]
    for job in candidates:
        if ref in {job.name, job.idempotency_key} or (len(by_definition) == 1 and job is by_definition[0]):
            ref_found = trusted_ref(env, job)
            if ref_found is None:
                raise FtopsError(f"job {job.name} has not been submitted in {env.name}",
                                 hint=f"run `ftops apply --env {env.name}` first")
            return ref_found
    if ref.startswith("ftjob-"):
        return JobRef("azure-openai", ref)
    if env.aws is None:
        raise FtopsError(f"no rendered job or Azure job id {ref!r} in {env.name}",
                         hint="`ftops jobs list` shows the jobs")
    return JobRef("sagemaker", ref)


def submitted(env: Environment, directory: Path | None) -> list[JobRef]:
    """Every rendered job of `env` that the ledger says was submitted."""
    refs = []
    for job in rendered_jobs(env, directory):
        ref = trusted_ref(env, job)
        if ref is not None:
            refs.append(ref)
    return refs


def trusted_ref(env: Environment, job: RenderedJob) -> JobRef | None:
    """The cloud job the ledger records for `job`, once both ends agree (None: not submitted).

    The ledger entry must carry the key and job name of the object it sits in, and the cloud job it names must
    carry the same key tag: a hand-edited entry (`job_id: some-other-job`) never makes status, cancel, results
    or deploy act on another job.
    """
    provider = providers.get(job.provider)
    ledger = provider.ledger(env)
    entry = ledger.get(job.idempotency_key)
    if entry is None or entry.state != "submitted" or not entry.job_id:
        return None
    where = f"{ledger.location}{job.idempotency_key}.json"
    problem = entry.problem(job.idempotency_key, job.name)
    if problem:
        raise FtopsError(f"{problem}: not trusted", source=where, field="job_name" if "names job" in problem else "key",
                         hint="delete the entry and rerun `ftops apply`, which finds the job in the cloud by its key")
    if not provider.identifies(env, entry.job_id, job):
        raise FtopsError(f"the ledger names cloud job {entry.job_id!r}, which is not the job of key "
                         f"{job.idempotency_key[:12]} (its key tag or identity differs): not trusted",
                         source=where, field="job_id",
                         hint="delete the entry and rerun `ftops apply`, which finds the job in the cloud by its key")
    return JobRef(job.provider, entry.job_id, job)
