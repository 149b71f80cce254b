"""Azure OpenAI: fine-tuning jobs through the data plane (openai SDK), deployments through ARM."""

from __future__ import annotations

import base64
import binascii
import csv
import inspect
import io
import re
import time
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs import clients
from jobs.apply import uploads as upload_steps
from jobs.apply.ledger import BlobLedger
from jobs.buckets import missing_container, require_container
from jobs.config.resolved import resolved_azure
from jobs.errors import CloudError, ConfigError
from jobs.providers import register
from jobs.providers.base import JobEvent, JobStatus, Metrics, Provider, Submission

if TYPE_CHECKING:
    from jobs.apply.rendered import RenderedJob
    from jobs.config.environment import Environment

# The classic data-plane API with fine-tuning `method` and `trainingType` (the v1 API lacks the training type).
API_VERSION = "2025-04-01-preview"
KEY_FIELD = "ftops-idempotency-key"
LEDGER_PREFIX = "ftops-ledger/"
PLACEHOLDER = "ftops-file:"
# The data-plane spec's FineTuningState (2025-04-01-preview). pausing/resuming are still in motion; paused waits
# for a person (`jobs wait` ends on it). OpenAI's validating_files/queued are kept for older API versions.
STATES = {"created": "pending", "pending": "pending", "validating_files": "pending", "queued": "pending",
          "running": "running", "pausing": "running", "resuming": "running", "paused": "paused",
          "succeeded": "succeeded", "failed": "failed", "cancelled": "cancelled"}
FILE_WAIT_S = 600.0
SOURCE_ACCOUNT = re.compile(r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.CognitiveServices/"
                            r"accounts/[^/]+$", re.IGNORECASE)
"""`properties.model.source` of a cross-resource (or cross-region) deployment of a fine-tuned model."""


def hosting_notice(sku: str) -> str:
    """What a fine-tuned deployment of this type costs and how long it lives (models.yaml, with its sources)."""
    from jobs.reference import azure_models

    facts = azure_models().deployment_types.get(sku)  # type: ignore[call-overload]
    if facts is None:
        return f"check the hosting price and lifetime of {sku} fine-tuned deployments before leaving one up"
    if not facts.hosting_fee:
        return (f"a {sku} deployment has no hosting fee (tokens only), no SLA, and Azure deletes it "
                f"{facts.lifetime_hours} hours after creation; redeploy with `ftops deploy`")
    return (f"a fine-tuned {sku} deployment is billed per hour while it exists, even when idle, and Azure deletes "
            f"one that has had no traffic for {facts.idle_delete_days} days; `ftops undeploy` removes it")


COLUMNS = {"step": "step", "train_loss": "train_loss", "valid_loss": "valid_loss",
           "full_valid_loss": "full_valid_loss", "train_mean_token_accuracy": "train_accuracy",
           "valid_mean_token_accuracy": "valid_accuracy"}


def endpoint(env: Environment) -> str:
    """The account's data-plane endpoint: the emulator's per-account path locally, the account's host in Azure."""
    return clients.azure_openai_endpoint(env, resolved_azure(env).openai_account)  # checked there


@lru_cache(maxsize=16)
def _client(env_name: str, url: str):
    import openai
    from azure.identity import get_bearer_token_provider

    from jobs.config.environment import load_environment

    env = load_environment(env_name)
    token = get_bearer_token_provider(clients.azure_credential(env), "https://cognitiveservices.azure.com/.default")
    # Our own retry policy (jobs.retry) honours Retry-After across every call; the SDK's would stack on it.
    # The HTTP client turns an account that does not exist into one line (clients.azure_openai_http_client).
    return openai.AzureOpenAI(azure_endpoint=url, api_version=API_VERSION, azure_ad_token_provider=token,
                              max_retries=0, timeout=120, http_client=clients.azure_openai_http_client(
                                  env, resolved_azure(env).openai_account))


def client(env: Environment):
    return _client(env.name, endpoint(env))


@lru_cache(maxsize=16)
def _mgmt(env_name: str, base_url: str | None):
    from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient

    from jobs.config.environment import load_environment

    env = load_environment(env_name)
    kwargs: dict[str, Any] = {"base_url": base_url} if base_url else {}
    return CognitiveServicesManagementClient(clients.azure_credential(env), env.require_azure().subscription_id,
                                             **kwargs)


def mgmt(env: Environment):
    return _mgmt(env.name, clients.arm_endpoint(env))


def arm_deployment(env: Environment, name: str) -> Any:
    """The account's deployment `name` as ARM describes it (model, version, SKU), or None when there is none."""
    from azure.core.exceptions import ResourceNotFoundError

    resolved = resolved_azure(env)
    try:
        return mgmt(env).deployments.get(resolved.resource_group, resolved.openai_account, name,
                                         **({"enforce_https": False} if env.emulated else {}))
    except ResourceNotFoundError:
        return None


REUSE_VERIFY_BYTES = 64 << 20
"""A Files-API file found by name is reused only after its content is read back and hashed; larger ones are
uploaded again rather than trusted."""


def _holds(env: Environment, found: Any, path) -> bool:
    """Whether the Files-API file `found` (found by its content-addressed name, which anyone with access to the
    account can choose) holds exactly the bytes of `path`."""
    import hashlib

    from jobs.fsutil import sha256_file

    size = path.stat().st_size
    if getattr(found, "bytes", None) not in (None, size) or size > REUSE_VERIFY_BYTES:
        return False
    content = client(env).files.content(found.id).read()
    return len(content) == size and hashlib.sha256(content).hexdigest() == sha256_file(path)


def _lro_kwargs(env: Environment) -> dict[str, Any]:
    # The emulator speaks plain HTTP on loopback and answers at once.
    return {"enforce_https": False, "polling_interval": 0} if env.emulated else {}


def _iso(stamp: int | None) -> str | None:
    return datetime.fromtimestamp(stamp, timezone.utc).isoformat() if stamp else None


def _substitute(value: Any, files: dict[str, str]) -> Any:
    if isinstance(value, str) and value.startswith(PLACEHOLDER):
        return files[value.removeprefix(PLACEHOLDER)]
    if isinstance(value, dict):
        return {k: _substitute(v, files) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, files) for v in value]
    return value


def _placeholders(value: Any) -> set[str]:
    if isinstance(value, str) and value.startswith(PLACEHOLDER):
        return {value.removeprefix(PLACEHOLDER)}
    if isinstance(value, dict):
        return set().union(*(_placeholders(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_placeholders(v) for v in value)) if value else set()
    return set()


def decode_results(raw: bytes) -> str:
    """results.csv as text; Azure sometimes returns it base64-encoded."""
    text = raw.decode("utf-8-sig", errors="replace").strip()
    if not text or text.startswith("step") or "," in text.splitlines()[0]:
        return text
    try:
        return base64.b64decode(text, validate=True).decode("utf-8-sig")
    except (binascii.Error, ValueError):
        return text


def parse_results(text: str) -> list[dict[str, float]]:
    rows = []
    for record in csv.DictReader(io.StringIO(text)):
        row: dict[str, float] = {}
        for column, name in COLUMNS.items():
            value = (record.get(column) or "").strip()
            if value:
                try:
                    row[name] = float(value)
                except ValueError:
                    continue
        if "step" in row:
            row["step"] = int(row["step"])
            rows.append(row)
    return rows


@register
class AzureOpenAI(Provider):
    name = "azure-openai"
    target = "azure-openai"

    def ledger(self, env: Environment) -> BlobLedger:
        container = _container(env)
        require_container(env, container)  # one line, not ContainerNotFound, for every command that reads it
        return BlobLedger(container, f"{LEDGER_PREFIX}{env.name}/",
                          lambda: missing_container(env, env.data.blob_container))

    def check_storage(self, env: Environment) -> None:
        if env.emulated:  # real environments are not checked up front (jobs.buckets); nor is a client built there,
            require_container(env, _container(env))  # whose token fetch would precede the lookup's login line

    # --- submit ---------------------------------------------------------------------------------

    def prepare(self, env: Environment, job: RenderedJob, *, uploads: Any, dry_run: bool = False) -> dict[str, Any]:
        from jobs import retry
        from jobs.data.manifest import read_manifest

        body = job.load_target(self.target)
        manifest_dir = job.manifest_dir()
        manifest = read_manifest(manifest_dir)
        uploads.once(f"dataset:azure:{manifest_dir}", lambda: upload_steps.upload_dataset(env, manifest_dir, ["azure"]))
        files = {}
        for split in sorted(_placeholders(body)):
            if split not in manifest.files:
                raise ConfigError(f"the dataset has no {split} split", source=job.target_path(self.target),
                                  field=f"{PLACEHOLDER}{split}", hint="prepare the dataset with that split")
            entry = manifest.files[split]
            path = manifest_dir / entry.path
            filename = f"ftops-{entry.sha256[:16]}-{split}.jsonl"
            files[split] = uploads.once(f"azure-file:{env.name}:{filename}", lambda p=path, n=filename: retry.call(
                lambda: self._file_id(env, uploads, p, n)))
        return _substitute(body, files)

    def _file_id(self, env: Environment, uploads: Any, path, filename: str) -> str:
        """The processed Files-API id for this content: found by its content-addressed name (and its bytes
        checked), else uploaded."""
        listing = uploads.once(f"azure-files:{env.name}", lambda: {
            f.filename: f for f in client(env).files.list(purpose="fine-tune") if f.status != "error"})
        found = listing.get(filename)
        if found is not None:
            try:
                found = self._processed(env, found, filename, path)
            except CloudError:
                found = None  # someone else's upload under our name that failed: not ours to wait for
            if found is not None and _holds(env, found, path):
                return found.id
            # A file under our content-addressed name with other bytes: upload ours, never reuse it.
        with open(path, "rb") as handle:
            created = client(env).files.create(file=(filename, handle), purpose="fine-tune")
        return self._processed(env, created, filename, path).id

    def _processed(self, env: Environment, found: Any, filename: str, path) -> Any:
        deadline = time.monotonic() + FILE_WAIT_S
        while found.status not in {"processed", "error"}:
            if time.monotonic() > deadline:
                raise CloudError(f"file {found.id} ({filename}) is still {found.status} after {FILE_WAIT_S:.0f}s",
                                 hint="rerun apply later; the upload is kept")
            time.sleep(0.2)
            found = client(env).files.retrieve(found.id)
        if found.status == "error":
            raise CloudError(f"Azure OpenAI refused {filename}: {found.status_details}", source=str(path),
                             hint="run `ftops data validate` on the dataset")
        return found

    def submit(self, env: Environment, job: RenderedJob, request: dict[str, Any], *,
               options: dict[str, Any] | None = None) -> Submission:
        from openai.resources.fine_tuning.jobs import Jobs

        known = set(inspect.signature(Jobs.create).parameters) - {"self", "extra_headers", "extra_query",
                                                                 "extra_body", "timeout"}
        params = {k: v for k, v in request.items() if k in known}
        extra = {k: v for k, v in request.items() if k not in known}
        try:
            created = client(env).fine_tuning.jobs.create(**params, extra_body=extra or None)
        except Exception as exc:
            status = getattr(exc, "status_code", None)
            if status in (401, 403):
                from jobs.access.azure import missing_role

                hint = missing_role("Microsoft.CognitiveServices/accounts/OpenAI/fine-tunes/write",
                                    resolved_azure(env).openai_account_id, data=True, identity="pipeline")
                raise CloudError(f"Azure OpenAI refused the job: {_message(exc)}", hint=hint) from None
            if status is not None and 400 <= status < 500 and status not in (408, 409, 429):
                raise CloudError(f"Azure OpenAI refused the job: {_message(exc)}", source=job.target_path(self.target),
                                 hint="fix the job definition and re-render") from None
            raise
        return Submission(created.id)

    def existing(self, env: Environment, jobs: list[RenderedJob]) -> dict[str, tuple[str, str | None]]:
        """Submitted jobs found by what Azure keeps: suffix (it carries the idempotency key), base model and
        training file (content-addressed name). The job schema has no `metadata`, so nothing relies on it."""
        wanted: dict[tuple[str, str], tuple[RenderedJob, str]] = {}
        for job in jobs:
            identity = _identity(job, self.target)
            if identity is not None:
                suffix, model, filename = identity
                wanted[(suffix, model)] = (job, filename)
        if not wanted:
            return {}
        file_ids: dict[str, set[str]] = {}
        for item in client(env).files.list(purpose="fine-tune"):
            file_ids.setdefault(item.filename, set()).add(item.id)
        found: dict[str, tuple[str, str | None]] = {}
        for remote in client(env).fine_tuning.jobs.list(limit=100):
            hit = wanted.get((_suffix_of(remote) or "", remote.model))
            if hit is None or remote.status == "failed":  # a failed job may be submitted again
                continue
            job, filename = hit
            if remote.training_file in file_ids.get(filename, ()) and job.name not in found:
                found[job.name] = (remote.id, job.idempotency_key)
        return found

    def find(self, env: Environment, job: RenderedJob) -> tuple[str, str | None] | None:
        return self.existing(env, [job]).get(job.name)

    # --- watch ----------------------------------------------------------------------------------

    def _retrieve(self, env: Environment, job_id: str) -> Any:
        try:
            return client(env).fine_tuning.jobs.retrieve(job_id)
        except Exception as exc:
            if getattr(exc, "status_code", None) == 404:
                raise CloudError(f"no Azure OpenAI fine-tuning job {job_id!r}", field="job",
                                 hint="`ftops jobs list` shows the jobs of this environment") from None
            raise

    def key_of(self, env: Environment, job_id: str) -> str | None:
        job = self._retrieve(env, job_id)
        metadata = job.metadata or {}
        # Rendered bodies carry `ftops-idempotency-key`; prepare adds KEY_FIELD to bodies that carry none.
        return metadata.get("ftops-idempotency-key") or metadata.get(KEY_FIELD)

    def identifies(self, env: Environment, job_id: str, job: RenderedJob) -> bool:
        """Azure keeps no key tag on a fine-tuning job (the spec's job has no `metadata`): the job is ours when its
        suffix (which carries the key), base model and content-addressed training file are the rendered job's."""
        identity = _identity(job, self.target)
        if identity is None:
            return False
        suffix, model, filename = identity
        try:
            remote = client(env).fine_tuning.jobs.retrieve(job_id)
        except Exception as exc:
            if getattr(exc, "status_code", None) == 404:
                return False
            raise
        if (_suffix_of(remote), remote.model) != (suffix, model) or not remote.training_file:
            return False
        return client(env).files.retrieve(remote.training_file).filename == filename

    def describe(self, env: Environment, job_id: str) -> JobStatus:
        job = self._retrieve(env, job_id)
        status = JobStatus(
            provider=self.name, job_id=job.id, state=STATES.get(job.status, "pending"), provider_status=job.status,
            idempotency_key=_key_of(job),
            failure_reason=(f"{job.error.code}: {job.error.message}" if job.error and job.error.message else None),
            created_at=_iso(job.created_at), finished_at=_iso(job.finished_at), model=job.fine_tuned_model)
        if status.state in {"running", "succeeded"}:
            for event in client(env).fine_tuning.jobs.list_events(job_id, limit=20):
                data = getattr(event, "data", None) or {}
                if isinstance(data, dict) and "step" in data:
                    status.step = int(data["step"])
                    status.metrics = {k: float(v) for k, v in data.items()
                                      if k in {"train_loss", "valid_loss"} and v is not None}
                    status.secondary_status = f"step {data['step']}/{data.get('total_steps', '?')}"
                    break
        return status

    def list(self, env: Environment, limit: int = 50) -> list[JobStatus]:
        out = []
        for job in client(env).fine_tuning.jobs.list(limit=min(limit, 100)):
            out.append(JobStatus(provider=self.name, job_id=job.id, state=STATES.get(job.status, "pending"),
                                 provider_status=job.status, created_at=_iso(job.created_at),
                                 finished_at=_iso(job.finished_at), model=job.fine_tuned_model,
                                 idempotency_key=_key_of(job)))
            if len(out) >= limit:
                break
        return out

    def cancel(self, env: Environment, job_id: str) -> JobStatus:
        try:
            client(env).fine_tuning.jobs.cancel(job_id)
        except Exception as exc:
            if getattr(exc, "status_code", None) in (400, 404):
                raise CloudError(f"cannot cancel {job_id}: {_message(exc)}", field="job") from None
            raise
        return self.describe(env, job_id)

    def events(self, env: Environment, job_id: str, limit: int = 100) -> list[JobEvent]:
        page = client(env).fine_tuning.jobs.list_events(job_id, limit=limit)
        return [JobEvent(_iso(e.created_at) or "", e.message, e.level) for e in reversed(page.data)]

    # --- results --------------------------------------------------------------------------------

    def metrics(self, env: Environment, job_id: str) -> Metrics:
        api = client(env)
        job = api.fine_tuning.jobs.retrieve(job_id)
        if not job.result_files:
            raise CloudError(f"job {job_id} has no results file yet (status {job.status})", field="job",
                             hint="wait until it succeeds: `ftops jobs wait`")
        raw = api.files.content(job.result_files[0]).read()
        rows = parse_results(decode_results(raw))
        # metrics.step is a float in the API (60.0); step_number is the checkpoint's integer step.
        checkpoints = [{"id": c.id, "step": c.step_number, "model": c.fine_tuned_model_checkpoint,
                        **{k: v for k, v in (c.metrics.model_dump() if c.metrics else {}).items()
                           if v is not None and k != "step"}}
                       for c in api.fine_tuning.jobs.checkpoints.list(job_id)]
        return Metrics(rows=rows, source=f"{job.result_files[0]} (results.csv)", checkpoints=checkpoints)

    # --- deploy ---------------------------------------------------------------------------------

    def deployment_settings(self, job: RenderedJob) -> dict[str, Any]:
        settings: dict[str, Any] = {}
        if "azure-openai-deployment" in job.targets:
            settings = job.load_target("azure-openai-deployment")
        # The rendered file holds the ARM body (`body.sku`); older hand-written files put `sku` at the top.
        body = settings.get("body") if isinstance(settings.get("body"), dict) else {}
        sku = next((s for s in (body.get("sku"), settings.get("sku")) if isinstance(s, dict)), {})
        return {"name": settings.get("name") or settings.get("deployment_name") or job.name,
                "sku": sku.get("name") or settings.get("sku_name") or "Standard",
                "capacity": int(sku.get("capacity") or settings.get("capacity") or 1)}

    def planned_deployment(self, env: Environment, job: RenderedJob, status: JobStatus, *,
                           checkpoint: str | None = None, source: str | None = None) -> dict[str, Any]:
        """The deployment `deploy` would create, after every check that needs no write: the job succeeded, the
        checkpoint exists (deployed by its id, as Azure documents), and the fine-tuned deployment table offers
        the SKU for this model in this region. `source`: the resource id of the account that trained the model,
        for a deployment in another account or region (`properties.model.source`)."""
        from jobs.reference import azure_models

        if source is not None and not SOURCE_ACCOUNT.match(source):
            raise ConfigError(f"{source!r} is not an Azure OpenAI account resource id", field="source",
                              hint="/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.CognitiveServices/"
                                   "accounts/<name>: the account that trained the model")
        if status.state != "succeeded" or not status.model:
            raise CloudError(f"job {status.job_id} has no fine-tuned model to deploy (state {status.state})",
                             field="job", hint="wait until it succeeds: `ftops jobs wait`")
        model = status.model
        if checkpoint:
            known = {c.id: c.fine_tuned_model_checkpoint
                     for c in client(env).fine_tuning.jobs.checkpoints.list(status.job_id)}
            if checkpoint not in known:
                raise ConfigError(f"job {status.job_id} has no checkpoint {checkpoint}", field="--checkpoint",
                                  hint=f"deployable checkpoints: {', '.join(known) or 'none'}")
            model = checkpoint
        settings = self.deployment_settings(job)
        resolved = resolved_azure(env)
        location = env.require_azure().location
        base = str(job.load_target(self.target).get("model") or "")
        found = azure_models().find(base)
        if found is not None:
            problem = found[1].deployment_problem(settings["sku"], location)
            if problem:
                raise ConfigError(problem, source=job.target_path("azure-openai-deployment"), field="body.sku.name",
                                  hint="change deployment.azure.sku in the definition and re-render")
        return {"name": settings["name"], "model": model, "sku": settings["sku"], "capacity": settings["capacity"],
                "account": resolved.openai_account, "account_id": resolved.openai_account_id,
                "resource_group": resolved.resource_group, "source": source, "job_id": status.job_id,
                "idempotency_key": job.idempotency_key, "environment": env.name}

    def deploy(self, env: Environment, job: RenderedJob, status: JobStatus, *,
               checkpoint: str | None = None, source: str | None = None) -> dict[str, Any]:
        from azure.mgmt.cognitiveservices.models import Deployment, DeploymentModel, DeploymentProperties, Sku

        planned = self.planned_deployment(env, job, status, checkpoint=checkpoint, source=source)
        deployment = Deployment(sku=Sku(name=planned["sku"], capacity=planned["capacity"]),
                                properties=DeploymentProperties(model=DeploymentModel(
                                    format="OpenAI", name=planned["model"], version="1", source=source)),
                                tags={**env.all_tags, "ftops-idempotency-key": job.idempotency_key})
        try:
            result = mgmt(env).deployments.begin_create_or_update(
                planned["resource_group"], planned["account"], planned["name"], deployment,
                **_lro_kwargs(env)).result()
        except Exception as exc:
            if getattr(exc, "status_code", None) == 403:
                from jobs.access.azure import missing_role

                hint = missing_role("Microsoft.CognitiveServices/accounts/deployments/write", planned["account_id"],
                                    identity="pipeline")
                raise CloudError(f"not allowed to deploy {planned['name']} on {planned['account']}: "
                                 f"{str(exc).splitlines()[0]}", hint=hint) from None
            raise
        return {"provider": self.name, "deployment": planned["name"], "account": planned["account"],
                "model": planned["model"], "source": source, "sku": planned["sku"],
                "capacity": planned["capacity"], "state": getattr(result.properties, "provisioning_state", None),
                "endpoint": endpoint(env), "notes": [hosting_notice(planned["sku"])]}

    def gitops(self, env: Environment, job: RenderedJob, status: JobStatus, directory: Path, *,
               checkpoint: str | None = None, source: str | None = None) -> dict[str, Any]:
        """Write the Azure Service Operator `Deployment` for this model under `directory` (for a reviewed commit),
        instead of creating it through ARM. Written only once the model exists: never a placeholder."""
        from jobs.providers.azure_gitops import write_manifest

        planned = self.planned_deployment(env, job, status, checkpoint=checkpoint, source=source)
        path = write_manifest(planned, directory)
        return {"provider": self.name, "deployment": planned["name"], "account": planned["account"],
                "model": planned["model"], "sku": planned["sku"], "capacity": planned["capacity"],
                "manifest": str(path), "notes": [hosting_notice(planned["sku"])]}

    def undeploy(self, env: Environment, job: RenderedJob) -> dict[str, Any]:
        settings = self.deployment_settings(job)
        resolved = resolved_azure(env)
        # ARM answers a delete of a missing deployment with 204 too: look first, so the report is true.
        if arm_deployment(env, settings["name"]) is None:
            return {"provider": self.name, "deployment": settings["name"], "removed": []}
        mgmt(env).deployments.begin_delete(resolved.resource_group, resolved.openai_account, settings["name"],
                                           **_lro_kwargs(env)).result()
        removed = ["deployment"]
        return {"provider": self.name, "deployment": settings["name"], "removed": removed}


def _identity(job: RenderedJob, target: str) -> tuple[str, str, str] | None:
    """(suffix, base model, content-addressed training file name) of a rendered job: how Azure knows it."""
    from jobs.data.manifest import read_manifest

    body = job.load_target(target)
    split = str(body.get("training_file") or "").removeprefix(PLACEHOLDER)
    manifest = read_manifest(job.manifest_dir())
    if not body.get("suffix") or split not in manifest.files:
        return None
    return str(body["suffix"]), str(body.get("model")), f"ftops-{manifest.files[split].sha256[:16]}-{split}.jsonl"


def _suffix_of(remote: Any) -> str | None:
    """The job's suffix (in the spec's FineTuningJob; the openai SDK keeps it as an extra field)."""
    suffix = getattr(remote, "suffix", None) or (getattr(remote, "model_extra", None) or {}).get("suffix")
    return str(suffix) if suffix else None


def _key_of(remote: Any) -> str | None:
    metadata = getattr(remote, "metadata", None) or {}
    return metadata.get(KEY_FIELD) if isinstance(metadata, dict) else None


def _message(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    return str(exc).splitlines()[0]


def _container(env: Environment) -> Any:
    """The environment's data container (datasets, ledger, model records): `ftops infra apply --cloud azure`
    provisions it; ftops never creates it (jobs.buckets)."""
    return clients.blob_service(env).get_container_client(env.data.blob_container)
