"""The one small provider interface: stateless classes, one per cloud, registered by name.

A provider turns a rendered job into a cloud job and answers questions about it. It keeps no state between
calls: clients come from the environment (`jobs.clients`), identity comes from the rendered job's
idempotency key, and the record of what was submitted lives in the environment's ledger (`ledger()`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:
    from jobs.apply.ledger import Ledger
    from jobs.apply.rendered import RenderedJob
    from jobs.config.environment import Environment

State = Literal["pending", "running", "paused", "succeeded", "failed", "cancelled"]
"""`paused`: stopped by a person (Azure OpenAI pause); it does not move again on its own, so waits end on it."""
TERMINAL: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})


@dataclass
class JobStatus:
    """A provider job, normalised so that `ftops jobs` treats SageMaker and Azure OpenAI alike."""

    provider: str
    job_id: str
    state: State
    provider_status: str
    """The cloud's own status word (e.g. `InProgress`, `validating_files`)."""
    name: str | None = None
    idempotency_key: str | None = None
    secondary_status: str | None = None
    failure_reason: str | None = None
    created_at: str | None = None
    finished_at: str | None = None
    step: int | None = None
    epoch: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    """The latest value of each metric (losses, accuracy)."""
    model: str | None = None
    """What a deployment serves: the fine-tuned model name (Azure) or the model.tar.gz URI (SageMaker)."""
    training_seconds: int | None = None
    billable_seconds: int | None = None
    spot: bool = False

    @property
    def done(self) -> bool:
        return self.state in TERMINAL

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class JobEvent:
    at: str
    message: str
    level: str = "info"


@dataclass
class Metrics:
    """A job's training curve: one row per step, plus what the provider reports about cost."""

    rows: list[dict[str, float]]
    """Each row has `step` and any of train_loss, valid_loss, train_accuracy, valid_accuracy, epoch."""
    source: str
    """Where the rows came from (a file id, an S3 URI, CloudWatch), for the report."""
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    """Deployable checkpoints: {id, step, valid_loss?, model?}."""


@dataclass
class Submission:
    job_id: str
    adopted: bool = False
    """True when the cloud already had this job (a previous apply submitted it) and nothing new was created."""


class Provider(ABC):
    """Subclasses set `name` (the `provider` value rendered jobs carry) and `target` (their target file key)."""

    name: ClassVar[str]
    target: ClassVar[str]

    @abstractmethod
    def ledger(self, env: Environment) -> Ledger:
        """The ledger in this provider's cloud storage for `env` (S3 for SageMaker, Blob for Azure)."""

    def check_storage(self, env: Environment) -> None:
        """Raise FtopsError (one line) when storage this provider's jobs write to is missing and ftops may not
        create it; `plan` and `apply` ask before anything is written, so a run never stops half-way on it."""

    @abstractmethod
    def prepare(self, env: Environment, job: RenderedJob, *, uploads: Any, dry_run: bool = False) -> dict[str, Any]:
        """Upload what the job needs (content-addressed, so a second call uploads nothing) and return the
        exact request `submit` sends. `uploads` is the run's shared UploadCache."""

    @abstractmethod
    def submit(self, env: Environment, job: RenderedJob, request: dict[str, Any], *,
               options: dict[str, Any] | None = None) -> Submission:
        """Create the cloud job. Raises on failure; retries are the caller's. `options`: provider switches
        from the command line (e.g. `local_runner`)."""

    @abstractmethod
    def find(self, env: Environment, job: RenderedJob) -> tuple[str, str | None] | None:
        """The cloud job this rendered job would create, if it exists: (job id, the idempotency key it carries)."""

    def existing(self, env: Environment, jobs: list[RenderedJob]) -> dict[str, tuple[str, str | None]]:
        """`find` for many jobs at once, keyed by job name (providers override this with one listing)."""
        found = {}
        for job in jobs:
            hit = self.find(env, job)
            if hit:
                found[job.name] = hit
        return found

    @abstractmethod
    def key_of(self, env: Environment, job_id: str) -> str | None:
        """The idempotency key the cloud job `job_id` carries (its tag or metadata); None if it carries none.
        Commands check it against the ledger before acting on a job (an edited ledger cannot redirect them)."""

    def identifies(self, env: Environment, job_id: str, job: RenderedJob) -> bool:
        """Whether cloud job `job_id` is the one `job` creates: by the key it carries, where the cloud keeps one
        (providers whose jobs carry no key tag override this with what the cloud does keep)."""
        return self.key_of(env, job_id) == job.idempotency_key

    @abstractmethod
    def describe(self, env: Environment, job_id: str) -> JobStatus: ...

    @abstractmethod
    def list(self, env: Environment, limit: int = 50) -> list[JobStatus]: ...

    @abstractmethod
    def cancel(self, env: Environment, job_id: str) -> JobStatus: ...

    @abstractmethod
    def events(self, env: Environment, job_id: str, limit: int = 100) -> list[JobEvent]: ...

    @abstractmethod
    def metrics(self, env: Environment, job_id: str) -> Metrics: ...

    @abstractmethod
    def deploy(self, env: Environment, job: RenderedJob, status: JobStatus, *,
               checkpoint: str | None = None) -> dict[str, Any]: ...

    @abstractmethod
    def undeploy(self, env: Environment, job: RenderedJob) -> dict[str, Any]: ...
