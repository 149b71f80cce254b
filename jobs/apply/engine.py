"""Plan and apply: compare rendered jobs with the ledger and the cloud, then submit what is missing.

Each job converges on its own (in a bounded thread pool): read its ledger entry; if nothing was submitted,
upload what it needs, claim the key with a conditional write, look in the cloud once more (a dead applier may
have submitted before it could record), submit with retries, and record the job id. A failure is recorded
too, so a rerun claims the key again and finishes the rest.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from jobs import providers
from jobs import retry
from jobs.apply.ledger import DEFAULT_LEASE_S, LedgerEntry
from jobs.apply.rendered import RenderedJob
from jobs.clients import credential_error
from jobs.config.environment import Environment
from jobs.errors import CloudError, FtopsError
from jobs.providers.base import Submission

Action = Literal["create", "submitted", "in-progress", "conflict"]
Result = Literal["created", "adopted", "already-submitted", "would-create", "in-progress", "conflict", "failed"]


@dataclass
class PlanItem:
    job: str
    provider: str
    key: str
    action: Action
    job_id: str | None = None
    detail: str = ""


@dataclass
class ApplyItem:
    job: str
    provider: str
    key: str
    result: Result
    job_id: str | None = None
    detail: str = ""
    attempts: int = 1


@dataclass
class ApplyOptions:
    concurrency: int = 8
    dry_run: bool = False
    lease_s: float = DEFAULT_LEASE_S
    wait_for_others_s: float = 60.0
    """How long to wait for a key another applier holds before reporting it as in progress."""
    retry: retry.RetryPolicy = field(default_factory=retry.RetryPolicy)
    extra: dict[str, Any] = field(default_factory=dict)
    """Provider options (e.g. `local_runner`), passed through the upload cache."""


class UploadCache:
    """Uploads shared by the jobs of one run: each content address is uploaded (or found) once, even when
    many jobs need it at the same moment."""

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        self.options = options or {}
        self._done: dict[str, Any] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def once(self, address: str, upload: Callable[[], Any]) -> Any:
        with self._guard:
            lock = self._locks.setdefault(address, threading.Lock())
        with lock:
            if address not in self._done:
                self._done[address] = upload()
            return self._done[address]


UNTRUSTED_ENTRY = "not trusted (edited or copied from another job); delete it and rerun apply, which looks the job up"


def _mismatch(job: RenderedJob, found_key: str | None) -> str | None:
    if found_key and found_key != job.idempotency_key:
        return (f"a cloud job with this name carries key {found_key[:12]}, not {job.idempotency_key[:12]}: "
                "rename the job or remove the other one")
    return None


def plan(env: Environment, jobs: list[RenderedJob], *, lease_s: float = DEFAULT_LEASE_S,
         concurrency: int = 8) -> list[PlanItem]:
    """What apply would do, per job. Reads the ledger and the cloud; writes nothing."""
    by_provider: dict[str, list[RenderedJob]] = {}
    for job in jobs:
        by_provider.setdefault(job.provider, []).append(job)
    for name in by_provider:  # a missing bucket: one line naming it, as apply says, not a failed read per job
        providers.get(name).check_storage(env)
    found: dict[str, tuple[str, str | None]] = {}
    for name, group in by_provider.items():
        try:
            found.update(providers.get(name).existing(env, group))
        except FtopsError:
            raise
        except Exception as exc:  # one line naming the provider, not a traceback
            reason, hint = _reason(exc, env, "rerun `ftops plan` once the cloud answers")
            raise CloudError(f"looking up {len(group)} {name} jobs in the cloud failed: {reason}", field=name,
                             hint=hint) from None

    def one(job: RenderedJob) -> PlanItem:
        provider = providers.get(job.provider)
        ledger = provider.ledger(env)
        try:
            entry = ledger.get(job.idempotency_key)
        except FtopsError:
            raise
        except Exception as exc:  # one line naming the ledger, not a traceback
            reason, hint = _reason(exc, env, "rerun `ftops plan` once the storage answers")
            raise CloudError(f"reading the ledger entry of {job.name} failed: {reason}", source=ledger.location,
                             hint=hint) from None
        item = PlanItem(job.name, job.provider, job.idempotency_key, "create")
        problem = entry.problem(job.idempotency_key, job.name) if entry else None
        if problem:
            item.action, item.detail = "conflict", f"{problem} ({ledger.location}): {UNTRUSTED_ENTRY}"
        elif entry and entry.state == "submitted":
            item.action, item.job_id = "submitted", entry.job_id
        elif entry and entry.state == "claimed" and not entry.is_stale(lease_s):
            item.action, item.detail = "in-progress", f"claimed by run {entry.run_id} on {entry.host}"
        elif job.name in found:
            job_id, key = found[job.name]
            conflict = _mismatch(job, key)
            item.action, item.job_id = ("conflict", job_id) if conflict else ("submitted", job_id)
            item.detail = conflict or "in the cloud but not in the ledger: apply records it"
        elif entry and entry.state == "failed":
            item.detail = f"last attempt failed: {entry.error}"
        return item

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        return list(pool.map(one, jobs))


def apply(env: Environment, jobs: list[RenderedJob], options: ApplyOptions | None = None,
          on_done: Callable[[ApplyItem], Any] | None = None) -> list[ApplyItem]:
    """Submit every job that is not yet submitted; returns one item per job, in the input order."""
    options = options or ApplyOptions()
    run_id = uuid.uuid4().hex[:12]
    uploads = UploadCache(options.extra)
    by_provider: dict[str, list[RenderedJob]] = {}
    for job in jobs:
        by_provider.setdefault(job.provider, []).append(job)
    for name in by_provider:  # a missing bucket refuses the whole run in one line, before anything is written
        providers.get(name).check_storage(env)
    found: dict[str, tuple[str, str | None]] = {}
    lookup_failed: dict[str, str] = {}
    for name, group in by_provider.items():
        try:
            found.update(retry.call(lambda: providers.get(name).existing(env, group), options.retry))
        except Exception as exc:
            # Without the lookup, a job a dead applier submitted but never recorded could be submitted twice:
            # this provider's jobs fail (each with the reason), the other providers' jobs go ahead.
            lookup_failed[name] = str(exc) if isinstance(exc, FtopsError) else _failure(exc, env)

    def one(job: RenderedJob) -> ApplyItem:
        if job.provider in lookup_failed:
            item = ApplyItem(job.name, job.provider, job.idempotency_key, "failed",
                             detail=f"looking up {job.provider} jobs in the cloud failed: {lookup_failed[job.provider]}"
                                    "; nothing submitted, rerun to finish")
            if on_done:
                on_done(item)
            return item
        try:
            item = _converge(env, job, found.get(job.name), options, uploads, run_id)
        except FtopsError as exc:
            item = ApplyItem(job.name, job.provider, job.idempotency_key, "failed", detail=str(exc))
        except Exception as exc:  # a cloud error for one job must not stop the others
            item = ApplyItem(job.name, job.provider, job.idempotency_key, "failed", detail=_failure(exc, env))
        if on_done:
            on_done(item)
        return item

    with ThreadPoolExecutor(max_workers=max(1, options.concurrency)) as pool:
        return list(pool.map(one, jobs))


def _reason(exc: BaseException, env: Environment, retry_hint: str) -> tuple[str, str]:
    """Why a cloud call failed, and the fix: waiting does not fix a missing login, so that says what does."""
    login = credential_error(exc, env)
    return (login.message, login.hint or retry_hint) if login else (_describe(exc), retry_hint)


def _failure(exc: BaseException, env: Environment) -> str:
    """A job's failure as its row shows it: a missing or expired login with its fix, else the cloud's code."""
    login = credential_error(exc, env)
    return str(login) if login else _describe(exc)


def _describe(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        return f"{response['Error'].get('Code')}: {response['Error'].get('Message')}"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:400]


def _converge(env: Environment, job: RenderedJob, found: tuple[str, str | None] | None, options: ApplyOptions,
              uploads: UploadCache, run_id: str) -> ApplyItem:
    provider = providers.get(job.provider)
    ledger = provider.ledger(env)
    key = job.idempotency_key
    item = ApplyItem(job.name, job.provider, key, "already-submitted")
    policy = options.retry

    entry = retry.call(lambda: ledger.get(key), policy)
    deadline = time.monotonic() + options.wait_for_others_s
    while entry and entry.state == "claimed" and not entry.is_stale(options.lease_s):
        if time.monotonic() > deadline:
            item.result, item.detail = "in-progress", f"another apply (run {entry.run_id} on {entry.host}) holds it"
            return item
        time.sleep(0.25)
        entry = retry.call(lambda: ledger.get(key), policy)
    problem = entry.problem(key, job.name) if entry else None
    if problem:
        item.result, item.detail = "conflict", f"{problem} ({ledger.location}): {UNTRUSTED_ENTRY}"
        return item
    if entry and entry.state == "submitted":
        item.job_id = entry.job_id
        return item
    if found:
        conflict = _mismatch(job, found[1])
        if conflict:
            item.result, item.job_id, item.detail = "conflict", found[0], conflict
            return item

    request = provider.prepare(env, job, uploads=uploads, dry_run=options.dry_run)
    if options.dry_run:
        item.result = "adopted" if found else "would-create"
        item.job_id = found[0] if found else None
        item.detail = "dry run: uploads done, nothing submitted"
        return item

    claim = LedgerEntry(key=key, job_name=job.name, provider=job.provider, state="claimed", run_id=run_id)
    held = retry.call(lambda: ledger.create(claim) if entry is None else ledger.replace(claim, entry.etag), policy)
    if held is None:
        # Another applier claimed it between our read and our write: theirs to finish.
        return _after_lost_race(ledger, job, item, options)

    try:
        hit = found or (provider.find(env, job) if entry is not None else None)
        if hit:
            submission = Submission(hit[0], adopted=True)
        else:
            attempts = [0]

            def submit():
                attempts[0] += 1
                return provider.submit(env, job, request, options=options.extra)

            submission = retry.call(submit, policy)
            item.attempts = attempts[0]
    except BaseException as exc:
        failed = LedgerEntry(key=key, job_name=job.name, provider=job.provider, state="failed", run_id=run_id,
                             error=_describe(exc) if not isinstance(exc, FtopsError) else str(exc))
        try:
            ledger.replace(failed, held.etag)
        except Exception:
            pass  # the claim stays; it turns stale when this process is gone, and a rerun takes it over
        raise
    done = LedgerEntry(key=key, job_name=job.name, provider=job.provider, state="submitted", run_id=run_id,
                       job_id=submission.job_id)
    retry.call(lambda: ledger.replace(done, held.etag), policy)
    item.result = "adopted" if submission.adopted else "created"
    item.job_id = submission.job_id
    if submission.adopted:
        item.detail = "found in the cloud (a previous apply submitted it); recorded in the ledger"
    return item


def _after_lost_race(ledger, job: RenderedJob, item: ApplyItem, options: ApplyOptions) -> ApplyItem:
    deadline = time.monotonic() + options.wait_for_others_s
    while True:
        entry = ledger.get(job.idempotency_key)
        if entry and entry.state == "submitted":
            item.result, item.job_id = "already-submitted", entry.job_id
            return item
        if entry is None or entry.state == "failed" or time.monotonic() > deadline:
            item.result = "in-progress"
            item.detail = "another apply claimed it at the same moment" + (
                f" and failed: {entry.error}" if entry and entry.state == "failed" else "")
            return item
        time.sleep(0.25)


def summary(items: list[ApplyItem]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item.result] = counts.get(item.result, 0) + 1
    return counts


def as_json(items: list[PlanItem] | list[ApplyItem]) -> list[dict[str, Any]]:
    return [asdict(item) for item in items]
