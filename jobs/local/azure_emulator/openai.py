"""The Azure OpenAI data plane, as the openai SDK's `AzureOpenAI` client calls it.

Files (upload, processing status, content), fine-tuning jobs (validation as Azure does it, then the spec's
FineTuningState: pending -> running -> succeeded/failed over a configurable time, pause -> pausing/paused,
resume -> resuming/running, with events, checkpoints and a base64 `results.csv`), cancel, list with pagination,
and chat completions on a deployed fine-tuned model. Request bodies are checked the way the data-plane spec
(2025-04-01-preview) defines them: only its FineTuningJobCreation fields plus the documented `trainingType`,
spelled exactly; errors carry the spec's ErrorCode values.

What the emulator decides by itself (never evidence of the client's logic; see README "What the emulator
invents"): chat answers (the training example nearest to the prompt), loss and accuracy curves (a formula over
the data's size and hash), job and file timings, checkpoint ids (`ftchkpt-` + 32 hex, as Microsoft's deploy
documentation shows; the spec's own example uses OpenAI's `ftckpt_` form), trained token counts.

Nothing runs in the background: a job's state is computed from its creation time whenever it is read, so an
emulator restarted mid-job carries on where it was. Every route is served at `/accounts/<host>/openai/...`, the
emulator's stand-in for the account's own host `https://<host>.openai.azure.com/openai/...`, where `<host>` is the
account's custom subdomain (`resolve_host` says how an account is found); a route answers only for an account
its ARM side holds (`refuse_unknown_account`). Each account's files, jobs (with their events and checkpoints) and batches
are its own, as on Azure: they live in that account's store (`store.account_store`), so an id of one account is
404 on every other; deployments are looked up in that account only. Fault injection comes from the app-wide hook
in `faults`.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import time
import uuid
from typing import Any

import orjson
from flask import Blueprint, Response, g, jsonify, request

from jobs.local.azure_emulator import faults, store
from jobs.local.azure_emulator.store import Store, account_store, get_store
from jobs.local.azure_emulator import catalog

bp = Blueprint("openai", __name__)

NS = "openai"
SUFFIX = re.compile(rf"^[A-Za-z0-9_-]{{1,{catalog.SUFFIX_MAX}}}$")  # the spec: a-z, A-Z, 0-9, - and _ (no `.`)
# FineTuningJobCreation's properties in the spec, plus `trainingType` (documented by Microsoft's fine-tuning
# how-to, absent from the spec); anything else is refused like a schema violation. A test keeps this set equal to
# the spec's.
JOB_FIELDS = {"model", "training_file", "validation_file", "hyperparameters", "suffix", "seed", "integrations",
              "method", "trainingType"}
DEFAULTS = {"job_duration_s": 6.0, "file_processing_s": 0.3}
"""Seconds a fine-tuning job takes end to end, and a file takes to process (overridable at run time)."""
PHASES = (("pending", 0.2), ("running", 0.8))


def _route(rule: str, **options: Any):
    """Register a view at `/accounts/<account>/openai<rule>`: there is no account-less data plane on Azure (the
    host is the account), so there is none here either."""
    def decorator(view):
        bp.add_url_rule(f"/accounts/<account>/openai{rule}", view_func=view, **options)
        return view
    return decorator


def _error(status: int, code: str, message: str, param: str | None = None) -> Response:
    """The spec's ErrorResponse: `code` from its ErrorCode enum, `target` naming the field."""
    error = {"code": code, "message": message, **({"target": param} if param else {})}
    response = jsonify({"error": error})
    response.status_code = status
    return response


def _settings() -> dict[str, float]:
    return store.settings(NS, DEFAULTS, "FTOPS_OPENAI_")


def _store(kind: str = NS) -> Store:
    """This request's account's store of `kind` (its files and jobs; "batch": its batches)."""
    return account_store(g.ftops_account["id"], kind)


def _blob(file_id: str, account_id: str | None = None):
    """Where a file's content lives: in its account's store (this request's account unless named)."""
    return (account_store(account_id, NS) if account_id else _store()).blob_dir() / file_id


# --- accounts and deployments, read from the ARM side's store ------------------------------------

def _arm() -> dict[str, Any]:
    """The ARM state as ARM itself would report it now: operations whose time has come are settled first (an
    account whose delete finished is gone even if no ARM request has been made since). Takes only the ARM
    store's lock; callers hold no other store's lock (ARM's deployment checks read this data plane's store
    under the ARM lock, so the reverse order could deadlock)."""
    from jobs.local.azure_emulator.arm import settle

    if "ftops_arm_view" not in g:  # once per request: the account check and the deployment lookup share it
        with get_store("arm").transaction() as data:
            settle(data)
        g.ftops_arm_view = get_store("arm").snapshot()
    return g.ftops_arm_view


ACCOUNT_TYPE = "microsoft.cognitiveservices/accounts"


def resolve_host(host: str, arm: dict[str, Any] | None = None) -> tuple[dict[str, Any] | None, str]:
    """The Cognitive Services account whose data-plane host is `host` (`<host>.openai.azure.com`), with why none
    is when none is. Compared without case, as DNS compares host names. An account whose create is still in
    progress counts (ftops waits for the create before using it); a deleted or purged one does not.

    Azure: the data plane's host is the account's `{endpoint}` (data-plane spec:
    "https://aoairesource.openai.azure.com"; ARM spec: `properties.customSubDomainName`, "used for token-based
    authentication", and `properties.endpoint`).
    A custom subdomain is global: whichever subscription and resource group hold the account, no other account may
    claim it (the ARM side refuses a second claim, `arm.account`), so it names at most one account. An account
    without one has only its region's shared endpoint on Azure; the emulator, whose path must name some account,
    then falls back to the account's name, among accounts without a subdomain only (a subdomain claimed by one
    account is never read as another's name), and only when that name is unique: two such accounts of one name in
    different resource groups or subscriptions have no host of their own here either."""
    resources = (arm if arm is not None else _arm()).get("resources", {})
    wanted = host.lower()
    accounts = [r for _, r in sorted(resources.items()) if str(r.get("type", "")).lower() == ACCOUNT_TYPE]
    for resource in accounts:
        if str((resource.get("properties") or {}).get("customSubDomainName") or "").lower() == wanted:
            return resource, ""
    named = [r for r in accounts if not (r.get("properties") or {}).get("customSubDomainName")
             and str(r.get("name", "")).lower() == wanted]
    if len(named) == 1:
        return named[0], ""
    if named:
        return None, (f"{len(named)} accounts without a custom subdomain are named {host!r} "
                      f"({', '.join(r['id'] for r in named)}); give each its own customSubDomainName")
    return None, "the emulator's ARM state holds no account with that custom subdomain (or, without one, that name)"


NO_SUCH_ACCOUNT_STATUS = 421
NO_SUCH_ACCOUNT_CODE = "ftopsEmulatorNoSuchAccount"


def refuse_unknown_account() -> Response | None:
    """App-wide `before_request` hook (before faults and rate limits): a data-plane request for an account the
    ARM side does not hold is refused.

    Real Azure: the data plane of an account is its own host, `https://<customSubDomainName>.openai.azure.com`
    (the spec's `{endpoint}/openai` host template); an account never created (or deleted) has no such host, so
    the client fails resolving the name and no HTTP exchange happens at all (openai raises APIConnectionError
    from the resolver's error). That a never-created subdomain gets no DNS answer rather than, say, a wildcard
    record is what Microsoft's endpoint-per-resource design implies; it was not checked against a live
    lookup or a Microsoft page for this change (no internet here).
    The emulator: one loopback host for every account cannot fail name resolution, so it answers
    421 Misdirected Request ("this server does not answer for that authority", the nearest HTTP meaning),
    with an error code of its own (not an Azure code: Azure sends none) and the header below, so ftops maps it
    to the same line it prints for the DNS failure (`jobs.clients`). The exchange is kept out of the REST-spec
    validation log: no Azure operation answers it."""
    if request.blueprint not in {"openai", "batch"} or not request.view_args or "account" not in request.view_args:
        return None
    account = request.view_args["account"]
    found, why = resolve_host(account)
    if found is not None:
        g.ftops_account = found  # the views read and write this account's store only
        return None
    from jobs.local.azure_emulator import NO_SUCH_ACCOUNT_HEADER

    response = _error(NO_SUCH_ACCOUNT_STATUS, NO_SUCH_ACCOUNT_CODE,
                      f"no Azure OpenAI account answers at {account!r}: {why} (real Azure has no host for it, so a "
                      f"client fails resolving its name); create it through ARM first "
                      f"(`ftops infra apply --cloud azure --env ENV`)")
    response.headers[NO_SUCH_ACCOUNT_HEADER] = account
    return response


def _deployment_model(deployment: str) -> tuple[str, str] | None:
    """The model this request's account's deployment serves and the resource id of the account holding that
    model (the deployment's `properties.model.source` for a model trained elsewhere, else the account itself), or
    None when the account has no such deployment (Azure answers 404 DeploymentNotFound: a deployment of another
    account, even of the same name, does not count)."""
    own = str(g.ftops_account["id"])
    resource = _arm().get("resources", {}).get(f"{own.lower()}/deployments/{deployment.lower()}")
    model = ((resource or {}).get("properties") or {}).get("model") or {}
    if not model.get("name"):
        return None
    return model["name"], str(model.get("source") or own)


# --- files -----------------------------------------------------------------------------------------

def _parse_examples(raw: bytes) -> tuple[list[dict], str | None]:
    """The examples of a chat or preference JSONL file, or the first reason Azure would reject it."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return [], "the file is not UTF-8"
    examples = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            example = orjson.loads(line)
        except orjson.JSONDecodeError:
            return [], f"line {number} is not valid JSON"
        if not isinstance(example, dict) or not ("messages" in example or "input" in example):
            return [], f"line {number} has neither `messages` nor `input`"
        examples.append(example)
    return examples, None


def _file_view(record: dict[str, Any]) -> dict[str, Any]:
    view = {k: v for k, v in record.items() if not k.startswith("_") and v is not None}
    if view["status"] == "pending" and time.time() >= record["_ready_at"]:
        view["status"] = record["_final_status"]
        if record.get("_error"):
            view["status_details"] = record["_error"]
    return view


@_route("/files", methods=["POST"])
def upload_file(account: str | None = None):
    upload = request.files.get("file")
    purpose = request.form.get("purpose")
    if upload is None:
        return _error(400, "invalidPayload", "a multipart `file` part is required", "file")
    if purpose not in {"fine-tune", "assistants", "batch"}:
        return _error(400, "invalidPayload", f"purpose {purpose!r} is not supported; use fine-tune", "purpose")
    raw = upload.read()
    limit = catalog.FILE_LIMIT_BYTES
    if len(raw) > limit:
        return _error(413, "invalidPayload", f"files above {limit} bytes go through blob import, not the Files API")
    examples, problem = _parse_examples(raw) if purpose == "fine-tune" else ([], None)
    file_id = f"file-{uuid.uuid4().hex}"
    _blob(file_id).write_bytes(raw)
    now = int(time.time())
    record = {"id": file_id, "object": "file", "bytes": len(raw), "created_at": now, "filename": upload.filename,
              "purpose": purpose, "status": "pending", "status_details": None,
              "_ready_at": time.time() + _settings()["file_processing_s"], "_examples": len(examples),
              "_final_status": "error" if problem else "processed", "_error": problem}
    with _store().transaction() as data:
        data.setdefault("files", {})[file_id] = record
    return jsonify(_file_view(record)), 201


def _page(items: list[dict[str, Any]], *, default: int, most: int) -> tuple[list[dict[str, Any]], bool]:
    """The page a list request asks for: the items after the id `after`, `limit` of them (1..most)."""
    after = request.args.get("after")
    if after:
        ids = [item["id"] for item in items]
        items = items[ids.index(after) + 1:] if after in ids else []
    limit = max(1, min(int(request.args.get("limit", default)), most))
    return items[:limit], len(items) > limit


@_route("/files", methods=["GET"])
def list_files(account: str | None = None):
    files = _store().snapshot().get("files", {})
    purpose = request.args.get("purpose")
    items = sorted((_file_view(r) for r in files.values() if not purpose or r["purpose"] == purpose),
                   key=lambda f: (f["created_at"], f["id"]), reverse=True)
    page, has_more = _page(items, default=10000, most=10000)
    return jsonify({"object": "list", "data": page, "has_more": has_more})


@_route("/files/<file_id>", methods=["GET"])
def get_file(file_id: str, account: str | None = None):
    record = _store().snapshot().get("files", {}).get(file_id)
    if record is None:
        return _error(404, "notFound", f"file {file_id} does not exist")
    return jsonify(_file_view(record))


@_route("/files/<file_id>", methods=["DELETE"])
def delete_file(file_id: str, account: str | None = None):
    with _store().transaction() as data:
        if data.get("files", {}).pop(file_id, None) is None:
            return _error(404, "notFound", f"file {file_id} does not exist")
    _blob(file_id).unlink(missing_ok=True)
    return jsonify({"id": file_id, "object": "file", "deleted": True})


@_route("/files/<file_id>/content", methods=["GET"])
def file_content(file_id: str, account: str | None = None):
    if file_id not in _store().snapshot().get("files", {}):
        return _error(404, "notFound", f"file {file_id} does not exist")
    return Response(_blob(file_id).read_bytes(), mimetype="application/octet-stream")


# --- fine-tuning jobs ------------------------------------------------------------------------------

# The wire spelling of the training types, exactly as Microsoft's fine-tuning how-to writes them (no other casing,
# no `training_type` alias: an unknown field or value is refused).
WIRE_TRAINING_TYPES = ("standard", "globalstandard", "developerTier")


def _training_type(body: dict[str, Any]) -> str:
    return str(body.get("trainingType", "standard"))


def _method(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    method = body.get("method") or {}
    kind = method.get("type", "supervised")
    hyper = (method.get(kind) or {}).get("hyperparameters") or body.get("hyperparameters") or {}
    return kind, hyper


def _validate(body: dict[str, Any], location: str | None, files: dict[str, Any]) -> Response | None:
    """What Azure checks before it accepts a fine-tuning job."""
    unknown = sorted(set(body) - JOB_FIELDS)
    if unknown:
        return _error(400, "invalidPayload", f"unknown properties {unknown}; a fine-tuning job takes "
                      f"{sorted(JOB_FIELDS)}", unknown[0])
    model_name = body.get("model")
    if not model_name or not isinstance(model_name, str):
        return _error(400, "invalidPayload", "`model` is required", "model")
    model = catalog.find_fine_tunable(model_name)
    if model is None:
        return _error(400, "invalidPayload", f"the model {model_name!r} is not fine-tunable", "model")
    training_type = _training_type(body)
    if training_type not in WIRE_TRAINING_TYPES:
        return _error(400, "invalidPayload", f"trainingType {training_type!r} is not one of "
                      f"{', '.join(WIRE_TRAINING_TYPES)}", "trainingType")
    regions = model["training"].get(training_type, ())
    if location and location not in regions:
        return _error(400, "invalidPayload", f"{model_name} cannot be fine-tuned with {training_type} training in "
                      f"{location}; regions: {', '.join(regions) or 'none'}", "model")
    kind, hyper = _method(body)
    if kind not in model["methods"]:
        return _error(400, "invalidPayload", f"method {kind!r} is not supported for {model_name}", "method")
    suffix = body.get("suffix")
    if suffix is not None and not SUFFIX.match(str(suffix)):
        return _error(400, "invalidPayload", f"suffix must be 1-{catalog.SUFFIX_MAX} letters, digits, "
                      "'-' or '_'", "suffix")
    for field in ("training_file", "validation_file"):
        file_id = body.get(field)
        if file_id is None and field == "validation_file":
            continue
        record = files.get(file_id or "")
        if record is None:
            return _error(400, "invalidPayload", f"{field} {file_id!r} does not exist", field)
        view = _file_view(record)
        if view["purpose"] != "fine-tune":
            return _error(400, "invalidPayload", f"{field} {file_id} was not uploaded for fine-tune", field)
        if view["status"] != "processed":
            return _error(400, "invalidPayload", f"{field} {file_id} is {view['status']}, not processed"
                          + (f": {record['_error']}" if record.get("_error") else ""), field)
    examples = files[body["training_file"]]["_examples"]
    if examples < catalog.MIN_TRAINING_EXAMPLES:
        return _error(400, "invalidPayload", f"the training file has {examples} examples; at least "
                      f"{catalog.MIN_TRAINING_EXAMPLES} are required", "training_file")
    n_epochs = hyper.get("n_epochs", "auto")
    if n_epochs != "auto" and not (isinstance(n_epochs, int) and 1 <= n_epochs <= 50):
        return _error(400, "invalidPayload", "n_epochs must be 1-50 or auto", "hyperparameters.n_epochs")
    return None


def _curve(job: dict[str, Any], files: dict[str, Any]) -> list[dict[str, float]]:
    """Plausible per-step losses, derived from the data: its size sets the steps, its hash the noise, and
    more epochs than the data supports make the validation loss turn up (overfitting)."""
    train = files[job["training_file"]]
    examples = max(1, train["_examples"])
    seed = int(hashlib.sha256(f"{job['training_file']}:{train['bytes']}:{job.get('seed')}".encode()).hexdigest()[:8], 16)
    _, hyper = _method(job["request"])
    epochs = hyper.get("n_epochs", "auto")
    epochs = 3 if epochs == "auto" else int(epochs)
    batch = hyper.get("batch_size", "auto")
    batch = max(1, math.ceil(examples * 0.002)) if batch == "auto" else int(batch)
    per_epoch = max(1, math.ceil(examples / batch))
    total = per_epoch * epochs
    start = 2.2 + (seed % 50) / 100
    floor = 0.35 + (seed % 17) / 100
    rows = []
    for step in range(1, total + 1):
        progress = step / total
        epoch = step / per_epoch
        noise = (((seed * step * 2654435761) >> 7) % 1000) / 1000 - 0.5
        train_loss = floor + (start - floor) * math.exp(-4.5 * progress) * (1 - 0.15 * (epoch - 1) / epochs) \
            + 0.04 * noise
        # Past ~2 epochs the model memorises: validation loss rises again, more so on small data.
        memorise = max(0.0, epoch - 2.0) * 0.12 * (1 + 50 / examples)
        valid_loss = floor + 0.08 + (start - floor) * math.exp(-4.0 * progress) + memorise + 0.02 * noise
        rows.append({"step": step, "epoch": round(epoch, 4), "train_loss": round(max(0.01, train_loss), 5),
                     "train_mean_token_accuracy": round(min(0.99, 1.05 - train_loss / start * 0.7), 5),
                     "valid_loss": round(max(0.01, valid_loss), 5),
                     "valid_mean_token_accuracy": round(min(0.99, 1.02 - valid_loss / start * 0.7), 5)})
    for row in rows:
        row["full_valid_loss"] = row["valid_loss"] if row["epoch"] == int(row["epoch"]) else None
        row["full_valid_mean_token_accuracy"] = row["valid_mean_token_accuracy"] if row["full_valid_loss"] else None
    job["_per_epoch"], job["_epochs"] = per_epoch, epochs
    return rows


def _results_csv(rows: list[dict[str, Any]]) -> bytes:
    columns = ["step", "train_loss", "train_mean_token_accuracy", "valid_loss", "valid_mean_token_accuracy",
               "full_valid_loss", "full_valid_mean_token_accuracy"]
    lines = [",".join(columns)] + [",".join("" if row.get(c) is None else str(row[c]) for c in columns) for row in rows]
    return ("\n".join(lines) + "\n").encode()


def _status_at(job: dict[str, Any], now: float) -> tuple[str, float]:
    """The job's status at `now` and its training progress (0-1)."""
    if job.get("_final"):
        return job["_final"], 1.0
    if job.get("_paused_at") is not None:
        return "paused", 0.0
    elapsed = now - job["created_at_f"]
    duration = job["_duration_s"]
    edge = 0.0
    for name, share in PHASES:
        if elapsed < edge + share * duration:
            progress = (elapsed - edge) / (share * duration) if name == "running" else 0.0
            return name, progress
        edge += share * duration
    return ("failed" if job.get("_fail") else "succeeded"), 1.0


def _advance(job: dict[str, Any], files: dict[str, Any], data: dict[str, Any], now: float) -> None:
    """Settle a job that has reached its end: fine-tuned model, checkpoints and the results file."""
    status, _ = _status_at(job, now)
    if job.get("_final") or status not in {"succeeded", "failed"}:
        return
    job["_final"] = status
    job["finished_at"] = int(job["created_at_f"] + job["_duration_s"])
    if status == "failed":
        job["error"] = job["_fail"]
        return
    rows = _curve(job, files)
    job["fine_tuned_model"] = f"{job['model']}.ft-{job['id'].removeprefix('ftjob-')}" + (
        f"-{job['suffix']}" if job.get("suffix") else "")
    results_id = f"file-{uuid.uuid4().hex}"
    content = base64.b64encode(_results_csv(rows))  # Azure returns this file base64-encoded
    _blob(results_id).write_bytes(content)
    data.setdefault("files", {})[results_id] = {
        "id": results_id, "object": "file", "bytes": len(content), "created_at": job["finished_at"],
        "filename": "results.csv", "purpose": "fine-tune-results", "status": "processed", "status_details": None,
        "_ready_at": 0, "_examples": 0, "_final_status": "processed", "_error": None}
    job["result_files"] = [results_id]
    job["trained_tokens"] = files[job["training_file"]]["bytes"] // 4 * job["_epochs"]
    per_epoch = job["_per_epoch"]
    job["_checkpoints"] = [
        {"id": "ftchkpt-" + hashlib.sha256(f"{job['id']}:{e}".encode()).hexdigest()[:32],
         "object": "fine_tuning.job.checkpoint", "created_at": job["finished_at"],
         "fine_tuned_model_checkpoint": f"{job['fine_tuned_model']}:ckpt-step-{e * per_epoch}",
         "fine_tuning_job_id": job["id"], "step_number": e * per_epoch,
         "metrics": _checkpoint_metrics(rows[e * per_epoch - 1])}
        for e in range(max(1, job["_epochs"] - 2), job["_epochs"] + 1)]  # Azure keeps the last three epochs


def _resolved(value: Any, default: Any) -> Any:
    """The spec's hyperparameters are numbers: `auto` (or absent) reads back as what the emulator chose."""
    return default if value in (None, "auto") else value


def _checkpoint_metrics(row: dict[str, Any]) -> dict[str, float]:
    """The metric names of the spec's checkpoint example (step, losses and token accuracies), all numbers."""
    names = ("step", "train_loss", "train_mean_token_accuracy", "valid_loss", "valid_mean_token_accuracy",
             "full_valid_loss", "full_valid_mean_token_accuracy")
    fallback = {"full_valid_loss": row["valid_loss"], "full_valid_mean_token_accuracy": row["valid_mean_token_accuracy"]}
    return {k: float(row[k] if row.get(k) is not None else fallback[k]) for k in names}


def _job_view(job: dict[str, Any], now: float, transition: str | None = None) -> dict[str, Any]:
    # The spec marks no property nullable: an unset one is left out rather than sent as null.
    view = {k: v for k, v in job.items() if not k.startswith("_") and k not in {"request", "created_at_f", "account"}
            and v is not None}
    status, _ = _status_at(job, now)
    view["status"] = transition or status
    if status not in {"succeeded", "failed", "cancelled"}:
        view["estimated_finish"] = int(job["created_at_f"] + job["_duration_s"])
    return view


def _settle_all(data: dict[str, Any]) -> None:
    now = time.time()
    for job in data.get("jobs", {}).values():
        _advance(job, data.get("files", {}), data, now)


@_route("/fine_tuning/jobs", methods=["POST"])
def create_job(account: str | None = None):
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        return _error(400, "invalidPayload", "the body must be a JSON object")
    failure = faults.pending_operation_failure()
    location = g.ftops_account.get("location")  # ARM's, read before taking this store's lock (see `_arm`)
    with _store().transaction() as data:
        files = data.setdefault("files", {})
        problem = _validate(body, location, files)
        if problem is not None:
            return problem
        now = time.time()
        job_id = f"ftjob-{uuid.uuid4().hex}"
        kind, hyper = _method(body)
        job = {"id": job_id, "object": "fine_tuning.job", "model": body["model"], "created_at": int(now),
               "created_at_f": now, "finished_at": None, "fine_tuned_model": None, "organisation_id": "org-emulator",
               "result_files": [], "status": "pending", "training_file": body["training_file"],
               "validation_file": body.get("validation_file"), "hyperparameters": {
                   "n_epochs": _resolved(hyper.get("n_epochs"), 3), "batch_size": _resolved(hyper.get("batch_size"), 1),
                   "learning_rate_multiplier": float(_resolved(hyper.get("learning_rate_multiplier"), 1.0))},
               "method": {"type": kind, kind: {"hyperparameters": hyper}}, "seed": body.get("seed", 0),
               "suffix": body.get("suffix"), "trained_tokens": None,
               "error": None, "integrations": None, "trainingType": _training_type(body), "account": account,
               "request": body, "_duration_s": _settings()["job_duration_s"],
               "_fail": {"code": failure["code"], "message": failure["message"], "param": None} if failure else None}
        data.setdefault("jobs", {})[job_id] = job
    return jsonify(_job_view(job, now)), 201


def _job_or_404(data: dict[str, Any], job_id: str):
    job = data.get("jobs", {}).get(job_id)
    if job is None:
        return None, _error(404, "notFound", f"fine-tuning job {job_id} does not exist")
    return job, None


def _settled_job_or_404(data: dict[str, Any], job_id: str, now: float):
    """The job brought up to `now` (status, files, checkpoints), or the 404 answer."""
    job, missing = _job_or_404(data, job_id)
    if job is not None:
        _advance(job, data.get("files", {}), data, now)
    return job, missing


@_route("/fine_tuning/jobs", methods=["GET"])
def list_jobs(account: str | None = None):
    with _store().transaction() as data:
        _settle_all(data)
    now = time.time()
    jobs = sorted(_store().snapshot().get("jobs", {}).values(), key=lambda j: (j["created_at_f"], j["id"]),
                  reverse=True)
    page, has_more = _page(jobs, default=20, most=100)
    return jsonify({"object": "list", "data": [_job_view(j, now) for j in page], "has_more": has_more})


@_route("/fine_tuning/jobs/<job_id>", methods=["GET"])
def get_job(job_id: str, account: str | None = None):
    with _store().transaction() as data:
        job, missing = _settled_job_or_404(data, job_id, time.time())
        if missing:
            return missing
    return jsonify(_job_view(job, time.time()))


@_route("/fine_tuning/jobs/<job_id>/cancel", methods=["POST"])
def cancel_job(job_id: str, account: str | None = None):
    with _store().transaction() as data:
        now = time.time()
        job, missing = _settled_job_or_404(data, job_id, now)
        if missing:
            return missing
        status, _ = _status_at(job, now)
        if status in {"succeeded", "failed", "cancelled"}:
            return _error(400, "unexpectedEntityState", f"job {job_id} is already {status}")
        job["_final"], job["finished_at"] = "cancelled", int(now)
    return jsonify(_job_view(job, now))


@_route("/fine_tuning/jobs/<job_id>/pause", methods=["POST"])
def pause_job(job_id: str, account: str | None = None):
    """Running jobs pause: the answer says `pausing`, every later read `paused` (until resumed)."""
    with _store().transaction() as data:
        now = time.time()
        job, missing = _settled_job_or_404(data, job_id, now)
        if missing:
            return missing
        status, _ = _status_at(job, now)
        if status != "running":
            return _error(409, "unexpectedEntityState", f"job {job_id} is {status}; only a running job pauses")
        job["_paused_at"] = now
    return jsonify(_job_view(job, now, "pausing"))


@_route("/fine_tuning/jobs/<job_id>/resume", methods=["POST"])
def resume_job(job_id: str, account: str | None = None):
    """A paused job resumes where it stopped: its clock moves on by the time it spent paused."""
    with _store().transaction() as data:
        job, missing = _job_or_404(data, job_id)
        if missing:
            return missing
        now = time.time()
        if job.get("_paused_at") is None or job.get("_final"):
            return _error(409, "unexpectedEntityState", f"job {job_id} is not paused")
        job["created_at_f"] += now - job.pop("_paused_at")
    return jsonify(_job_view(job, now, "resuming"))


@_route("/fine_tuning/jobs/<job_id>", methods=["DELETE"])
def delete_job(job_id: str, account: str | None = None):
    with _store().transaction() as data:
        if data.get("jobs", {}).pop(job_id, None) is None:
            return _error(404, "notFound", f"fine-tuning job {job_id} does not exist")
    return "", 204


def _events(job: dict[str, Any], files: dict[str, Any], now: float) -> list[dict[str, Any]]:
    """Oldest first: status changes, then per-step metrics up to the current progress."""
    start = job["created_at_f"]
    duration = job["_duration_s"]
    events, edge = [], start
    status, progress = _status_at(job, now)
    for name, share in PHASES:
        if edge > now or (job.get("_final") == "cancelled" and edge > job["finished_at"]):
            break
        events.append({"created_at": int(edge), "level": "info", "message": f"Job entered status {name}",
                       "type": "message"})
        edge += share * duration
    if status in {"running", "succeeded", "failed"} or job.get("_final") == "succeeded":
        rows = _curve(dict(job), files)
        shown = len(rows) if status == "succeeded" else int(len(rows) * progress)
        run_start = start + 0.2 * duration
        for row in rows[:shown]:
            at = run_start + 0.8 * duration * row["step"] / len(rows)
            events.append({"created_at": int(at), "level": "info", "type": "metrics",
                           "message": f"Step {row['step']}/{len(rows)}: training loss={row['train_loss']:.4f}, "
                                      f"validation loss={row['valid_loss']:.4f}",
                           "data": {"step": row["step"], "train_loss": row["train_loss"],
                                    "valid_loss": row["valid_loss"], "total_steps": len(rows)}})
    final = job.get("_final")
    if final:
        message = {"succeeded": "The job has successfully completed", "cancelled": "The job was cancelled",
                   "failed": f"The job failed: {(job.get('error') or {}).get('message', '')}"}[final]
        events.append({"created_at": job["finished_at"], "level": "error" if final == "failed" else "info",
                       "message": message, "type": "message"})
    for number, event in enumerate(events):
        event.update(id=f"ftevent-{job['id'][6:18]}{number:06d}", object="fine_tuning.job.event")
    return events


@_route("/fine_tuning/jobs/<job_id>/events", methods=["GET"])
def job_events(job_id: str, account: str | None = None):
    with _store().transaction() as data:
        job, missing = _settled_job_or_404(data, job_id, time.time())
        if missing:
            return missing
    events = list(reversed(_events(job, data.get("files", {}), time.time())))  # newest first, as the API does
    page, has_more = _page(events, default=20, most=1000)
    return jsonify({"object": "list", "data": page, "has_more": has_more})


@_route("/fine_tuning/jobs/<job_id>/checkpoints", methods=["GET"])
def job_checkpoints(job_id: str, account: str | None = None):
    with _store().transaction() as data:
        job, missing = _settled_job_or_404(data, job_id, time.time())
        if missing:
            return missing
    checkpoints = list(reversed(job.get("_checkpoints", [])))
    return jsonify({"object": "list", "data": checkpoints, "has_more": False,
                    "first_id": checkpoints[0]["id"] if checkpoints else None,
                    "last_id": checkpoints[-1]["id"] if checkpoints else None})


@bp.post("/_emulator/openai/settings")
def set_settings():
    """Tests and the benchmark change job and file timing here (kept across restarts)."""
    unknown = store.update_settings(NS, DEFAULTS, request.get_json(force=True, silent=True) or {})
    if unknown:
        return _error(400, "invalidPayload", f"unknown settings {unknown}; known: {sorted(DEFAULTS)}")
    return jsonify(_settings())


# --- chat completions on a deployment --------------------------------------------------------------

def _last_user(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages or []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
            return str(content or "")
    return ""


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


def _answer(model: str, model_account: str, prompt: str) -> str:
    """Deterministic: the training example whose user turn is closest to the prompt (exact match first), from
    the job that made the model in `model_account` (the account holding it: see `_deployment_model`)."""
    data = account_store(model_account, NS).snapshot()
    job = next((j for j in data.get("jobs", {}).values()
                if (j.get("fine_tuned_model") and model.split(":ckpt-")[0] == j["fine_tuned_model"])
                or any(c["id"] == model for c in j.get("_checkpoints", []))), None)  # a checkpoint, by its id
    if job is None:
        return f"[{model}] {prompt}"
    raw = _blob(job["training_file"], model_account).read_bytes()
    examples, _ = _parse_examples(raw)
    best, best_score = None, -1.0
    asked = _words(prompt)
    for example in examples:
        messages = example.get("messages") or example.get("input", {}).get("messages", [])
        reply = next((m.get("content") for m in messages if m.get("role") == "assistant"), None)
        if reply is None and isinstance(example.get("preferred_output"), list):
            reply = example["preferred_output"][0].get("content")
        question = _last_user(messages)
        if reply is None:
            continue
        if question.strip() == prompt.strip():
            return str(reply)
        union = asked | _words(question)
        score = len(asked & _words(question)) / len(union) if union else 0.0
        if score > best_score:
            best, best_score = str(reply), score
    return best if best is not None else ""


@_route("/deployments/<deployment>/chat/completions", methods=["POST"])
def chat_completions(deployment: str, account: str | None = None):
    body = request.get_json(force=True, silent=True) or {}
    found = _deployment_model(deployment)
    if found is None:
        return _error(404, "DeploymentNotFound", f"the API deployment {deployment} does not exist in account "
                      f"{account}; deploy it with `ftops deploy` (an inactive fine-tuned deployment is deleted after "
                      "15 days)")
    model, model_account = found
    prompt = _last_user(body.get("messages", []))
    answer = _answer(model, model_account, prompt)
    prompt_tokens = sum(len(str(m.get("content", "")).split()) + 4 for m in body.get("messages", []))
    completion_tokens = len(answer.split())
    digest = hashlib.sha256(f"{model}:{prompt}".encode()).hexdigest()[:24]
    return jsonify({
        "id": f"chatcmpl-{digest}", "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                     "message": {"role": "assistant", "content": answer, "refusal": None}}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
        "system_fingerprint": None,
    })
