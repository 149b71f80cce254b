"""Reading what `ftops render` wrote: `DIR/ENV/<job-name>/job.json` plus one file per target."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from jobs import paths
from jobs.errors import ConfigError


# A file name beside job.json: no separator, no `..`, no hidden or absolute path.
_PLAIN_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class RenderedJob(BaseModel):
    """The index the renderer writes for one job in one environment."""

    # The renderer may add fields (it is a separate stage); apply reads only these.
    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9](-*[A-Za-z0-9]){0,62}$")
    """The job's name (its directory name): a cloud job name, never a path."""
    job: str | None = None
    """The job definition's name (a rendered name adds the environment and a hash)."""
    definition: str = ""
    """The job definition file it was rendered from."""
    provider: str
    """`sagemaker` or `azure-openai`."""
    environment: str
    idempotency_key: str = Field(pattern=r"^[0-9a-f]{64}$")
    """Content hash (sha256) of everything rendered for this job: equal keys mean the same job. It names the
    job's ledger object, so it can never be a path."""
    manifest: str | None = None
    """The dataset's manifest.json (or its directory), relative to the project root or to job.json."""
    dataset_id: str | None = None
    targets: dict[str, str] = {}
    """Target name -> file name beside job.json."""
    promotion: str | None = None
    """promotion.json in a production environment: the job serves a model promoted from its source environment
    (jobs/render/promotion.py); nothing is trained for it."""
    directory: Path = Path(".")
    """Where job.json lies (set by the loader)."""

    @field_validator("promotion")
    @classmethod
    def promotion_stays_in_the_job_directory(cls, file: str | None) -> str | None:
        if file is not None and not _PLAIN_FILE.match(file):
            raise ValueError(f"promotion names {file!r}: it is a file beside job.json")
        return file

    @field_validator("targets")
    @classmethod
    def targets_stay_in_the_job_directory(cls, targets: dict[str, str]) -> dict[str, str]:
        for target, file in targets.items():
            if not _PLAIN_FILE.match(file):
                raise ValueError(f"target {target!r} names {file!r}: a target is a file beside job.json")
        return targets

    @model_validator(mode="before")
    @classmethod
    def flatten_dataset(cls, data: Any) -> Any:
        # Accept `dataset: {manifest, dataset_id}` as well as flat fields.
        if isinstance(data, dict) and isinstance(data.get("dataset"), dict):
            data = dict(data)
            dataset = data.pop("dataset")
            data.setdefault("manifest", dataset.get("manifest") or dataset.get("manifest_path") or dataset.get("path"))
            data.setdefault("dataset_id", dataset.get("dataset_id") or dataset.get("id"))
        if isinstance(data, dict) and "manifest" not in data and "dataset_manifest" in data:
            data = {**data, "manifest": data["dataset_manifest"]}
        return data

    @property
    def index_file(self) -> Path:
        return self.directory / "job.json"

    def target_path(self, target: str) -> Path:
        if target not in self.targets:
            raise ConfigError(f"job {self.name!r} has no {target!r} target", source=self.index_file,
                              field="targets", hint=f"render it with a definition whose provider is {self.provider}")
        return self.directory / self.targets[target]

    def load_target(self, target: str) -> Any:
        path = self.target_path(target)
        try:
            return orjson.loads(path.read_bytes())
        except FileNotFoundError:
            raise ConfigError("rendered target file is missing", source=path, hint="re-run `ftops render`") from None
        except orjson.JSONDecodeError as exc:
            raise ConfigError(f"not valid JSON ({exc})", source=path, hint="re-run `ftops render`") from None

    def manifest_dir(self) -> Path:
        if not self.manifest:
            raise ConfigError("the rendered job names no dataset manifest", source=self.index_file, field="dataset",
                              hint="re-run `ftops render`")
        candidates = [Path(self.manifest)] if Path(self.manifest).is_absolute() else [
            self.directory / self.manifest, paths.project_root() / self.manifest]
        for candidate in candidates:
            if candidate.exists():
                return candidate if candidate.is_dir() else candidate.parent
        raise ConfigError(f"dataset manifest {self.manifest} not found", source=self.index_file, field="dataset",
                          hint="run `ftops data prepare` for it, or re-render")


def env_dir(directory: Path, env_name: str) -> Path:
    """`DIR/ENV`; DIR may also be the environment's directory itself."""
    directory = directory if directory.is_absolute() else Path.cwd() / directory
    if (directory / env_name).is_dir():
        return directory / env_name
    if directory.name == env_name and directory.is_dir():
        return directory
    raise ConfigError(f"no rendered jobs for environment {env_name!r} here", source=directory,
                      hint=f"run `ftops render --env {env_name}` first (it writes DIR/{env_name}/<job>/job.json)")


def load_rendered(directory: Path, env_name: str, only: list[str] | None = None) -> list[RenderedJob]:
    """Every job rendered for `env_name` under `directory`, sorted by name; `only` selects by name."""
    root = env_dir(directory, env_name)
    jobs = []
    indexes = sorted(root.glob("*/job.json"))
    if not indexes:  # render never writes an environment without jobs: this is not a rendered tree
        raise ConfigError(f"no rendered jobs for environment {env_name!r} here (no <job>/job.json)", source=root,
                          hint=f"run `ftops render --env {env_name}` first, or pass the directory it wrote")
    for index in indexes:
        try:
            data = orjson.loads(index.read_bytes())
            if not isinstance(data, dict):
                raise ConfigError(f"expected a JSON object, found {type(data).__name__}", source=index,
                                  hint="re-run `ftops render`; rendered files are not edited by hand")
            job = RenderedJob.model_validate({**data, "directory": index.parent})
        except orjson.JSONDecodeError as exc:
            raise ConfigError(f"not valid JSON ({exc})", source=index, hint="re-run `ftops render`") from None
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ConfigError(first["msg"], source=index, field=".".join(map(str, first["loc"])),
                              hint="re-run `ftops render`") from None
        if job.name != index.parent.name:
            raise ConfigError(f"job.json names job {job.name!r} but lies in {index.parent.name!r}", source=index,
                              field="name", hint="re-run `ftops render`; rendered files are not edited by hand")
        if job.environment != env_name:
            raise ConfigError(f"rendered for environment {job.environment!r}, not {env_name!r}", source=index,
                              field="environment", hint="pass the matching --env")
        jobs.append(job)
    if only:
        missing = sorted(set(only) - {job.name for job in jobs})
        if missing:
            raise ConfigError(f"no rendered job named {', '.join(missing)}", source=root,
                              hint=f"rendered jobs: {', '.join(j.name for j in jobs) or 'none'}")
        jobs = [job for job in jobs if job.name in only]
    return jobs


def find_rendered(job_name: str, env_name: str, directory: Path | None = None) -> RenderedJob | None:
    """A rendered job by name, from DIR or the default render directory (`rendered/`)."""
    directory = directory or paths.project_root() / "rendered"
    try:
        jobs = load_rendered(directory, env_name)
    except ConfigError:
        return None
    return next((job for job in jobs if job.name == job_name), None)
