"""The Azure OpenAI Batch API subset the evaluation uses, on top of the emulator's files and deployments.

    POST /accounts/<a>/openai/batches   {input_file_id, endpoint: "/chat/completions", completion_window: "24h"}
    GET  .../openai/batches[/<id>]      validating -> in_progress -> finalizing -> completed over `batch_duration_s`
    POST .../openai/batches/<id>/cancel

The input file is uploaded with purpose `batch` (the files routes of the data plane); each line is
`{custom_id, method: POST, url: /chat/completions, body: {model: <deployment>, messages, ...}}`. When the
batch completes, every line is answered with the same deterministic chat function that
`/deployments/<d>/chat/completions` uses, into an output file (and an error file for lines that failed,
such as an unknown deployment), read back through `GET /openai/files/<id>/content`. Like the fine-tuning
jobs, nothing runs in the background: a batch is settled the first time it is read after its end. Batches, like
files, belong to the account they were created in (its own store): another account answers 404 for them.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from typing import Any

import orjson
from flask import Blueprint, Response, jsonify, request

from jobs.local.azure_emulator import openai as data_plane
from jobs.local.azure_emulator import store

bp = Blueprint("batch", __name__)

NS = "batch"
DEFAULTS = {"batch_duration_s": 2.0}
"""Seconds from creation to completion (overridable per app with FTOPS_BATCH_DURATION_S or at run time)."""
ENDPOINTS = {"/chat/completions", "/v1/chat/completions"}
MAX_REQUESTS = 100_000
"""Azure's limit of requests per batch file."""


def _route(rule: str, **options: Any):
    """Per account only, like the rest of the data plane (`openai.refuse_unknown_account` guards it)."""
    def decorator(view):
        bp.add_url_rule(f"/accounts/<account>/openai{rule}", view_func=view, **options)
        return view
    return decorator


def _duration() -> float:
    return store.settings(NS, DEFAULTS, "FTOPS_")["batch_duration_s"]


def _parse_input(raw: bytes) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The request lines, or the validation errors Azure reports for the file (line-numbered)."""
    lines, errors, seen = [], [], set()
    for number, line in enumerate(raw.decode("utf-8-sig", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError:
            errors.append({"code": "invalid_json_line", "message": "not valid JSON", "line": number})
            continue
        if not isinstance(item, dict) or not item.get("custom_id") or not isinstance(item.get("body"), dict):
            errors.append({"code": "invalid_request", "message": "each line needs custom_id and body", "line": number})
            continue
        if item["custom_id"] in seen:
            errors.append({"code": "duplicate_custom_id", "message": f"custom_id {item['custom_id']!r} repeats",
                           "line": number})
            continue
        if item.get("method", "POST") != "POST" or item.get("url") not in ENDPOINTS:
            errors.append({"code": "invalid_url", "message": "method must be POST and url /chat/completions",
                           "line": number})
            continue
        seen.add(item["custom_id"])
        lines.append(item)
    if len(lines) > MAX_REQUESTS:
        errors.append({"code": "too_many_requests", "message": f"at most {MAX_REQUESTS} requests per batch", "line": None})
    if not lines and not errors:
        errors.append({"code": "empty_file", "message": "the input file has no requests", "line": None})
    return lines, errors


def _status_at(batch: dict[str, Any], now: float) -> str:
    if batch.get("_final"):
        return batch["_final"]
    elapsed = now - batch["_created_f"]
    duration = batch["_duration_s"]
    if elapsed < 0.1 * duration:
        return "validating"
    if elapsed < 0.9 * duration:
        return "in_progress"
    if elapsed < duration:
        return "finalizing"
    return "completed"


def completion(deployment: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """One chat completion, answered exactly as the deployment's chat route answers it (the batch's own
    account's deployments only: the request's account, whose store holds the batch)."""
    found = data_plane._deployment_model(deployment)
    if found is None:
        return 404, {"error": {"code": "DeploymentNotFound", "message": f"the API deployment {deployment} does not exist"}}
    model, model_account = found
    if ".ft-" in model or model.startswith("ftchkpt-"):
        # Azure's Batch API does not serve fine-tuned models (it needs a GlobalBatch deployment of a base model).
        return 400, {"error": {"code": "OperationNotSupported",
                               "message": f"the deployment {deployment} serves a fine-tuned model; the Batch API "
                                          "does not support fine-tuned models"}}
    prompt = data_plane._last_user(body.get("messages", []))
    answer = data_plane._answer(model, model_account, prompt)
    prompt_tokens = sum(len(str(m.get("content", "")).split()) + 4 for m in body.get("messages", []))
    digest = hashlib.sha256(f"{model}:{prompt}".encode()).hexdigest()[:24]
    return 200, {"id": f"chatcmpl-{digest}", "object": "chat.completion", "created": int(time.time()), "model": model,
                 "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                              "message": {"role": "assistant", "content": answer, "refusal": None}}],
                 "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(answer.split()),
                           "total_tokens": prompt_tokens + len(answer.split())}}


def _write_file(content: bytes, filename: str, purpose: str) -> str:
    file_id = f"file-{uuid.uuid4().hex}"
    data_plane._blob(file_id).write_bytes(content)
    with data_plane._store().transaction() as files_data:
        files_data.setdefault("files", {})[file_id] = {
            "id": file_id, "object": "file", "bytes": len(content), "created_at": int(time.time()),
            "filename": filename, "purpose": purpose, "status": "processed", "status_details": None,
            "_ready_at": 0, "_examples": 0, "_final_status": "processed", "_error": None}
    return file_id


def _settle(batch: dict[str, Any], now: float) -> None:
    """Answer every line once the batch has reached its end (called under the batch store's lock)."""
    if batch.get("_final") or _status_at(batch, now) != "completed":
        return
    raw = data_plane._blob(batch["input_file_id"]).read_bytes()
    lines, _ = _parse_input(raw)
    out, err = [], []
    for item in lines:
        status, body = completion(str(item["body"].get("model", "")), item["body"])
        request_id = hashlib.sha256(f"{batch['id']}:{item['custom_id']}".encode()).hexdigest()[:24]
        record = {"id": f"batch_req_{request_id}", "custom_id": item["custom_id"],
                  "response": {"status_code": status, "request_id": request_id, "body": body}, "error": None}
        (out if status == 200 else err).append(orjson.dumps(record))
    end = batch["_created_f"] + batch["_duration_s"]
    batch.update(_final="completed", status="completed", finalizing_at=int(end - 0.1 * batch["_duration_s"]),
                 completed_at=int(end), request_counts={"total": len(lines), "completed": len(out), "failed": len(err)})
    batch["output_file_id"] = _write_file(b"\n".join(out) + b"\n", "batch_output.jsonl", "batch_output") if out else None
    batch["error_file_id"] = _write_file(b"\n".join(err) + b"\n", "batch_error.jsonl", "batch_output") if err else None


def _view(batch: dict[str, Any], now: float) -> dict[str, Any]:
    # The spec marks no batch property nullable: an unset one is left out rather than sent as null.
    view = {k: v for k, v in batch.items() if not k.startswith("_") and v is not None}
    view["status"] = _status_at(batch, now)
    if view["status"] in {"in_progress", "finalizing"}:
        view["in_progress_at"] = int(batch["_created_f"] + 0.1 * batch["_duration_s"])
        done = min(1.0, (now - batch["_created_f"]) / batch["_duration_s"])
        view["request_counts"] = {**batch["request_counts"], "completed": int(batch["request_counts"]["total"] * done)}
    return view


def _error(status: int, code: str, message: str, param: str | None = None) -> Response:
    return data_plane._error(status, code, message, param)


@_route("/batches", methods=["POST"])
def create_batch(account: str | None = None):
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        return _error(400, "invalidPayload", "the body must be a JSON object")
    file_id = body.get("input_file_id")
    record = data_plane._store().snapshot().get("files", {}).get(file_id or "")
    if record is None:
        return _error(404, "notFound", f"file {file_id} does not exist", "input_file_id")
    if record["purpose"] != "batch":
        return _error(400, "invalidPayload", f"file {file_id} has purpose {record['purpose']!r}; upload with "
                      "purpose batch", "input_file_id")
    if body.get("endpoint") not in ENDPOINTS:
        return _error(400, "invalidPayload", "endpoint must be /chat/completions", "endpoint")
    if body.get("completion_window") != "24h":
        return _error(400, "invalidPayload", "completion_window must be 24h", "completion_window")
    lines, errors = _parse_input(data_plane._blob(file_id).read_bytes())
    now = time.time()
    batch_id = f"batch_{uuid.uuid4()}"
    batch = {"id": batch_id, "object": "batch", "endpoint": body["endpoint"], "input_file_id": file_id,
             "completion_window": "24h", "status": "validating", "output_file_id": None, "error_file_id": None,
             "created_at": int(now), "in_progress_at": None, "expires_at": int(now) + 86_400, "finalizing_at": None,
             "completed_at": None, "failed_at": None, "expired_at": None, "cancelling_at": None, "cancelled_at": None,
             "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
             "metadata": body.get("metadata"), "errors": None, "_created_f": now, "_duration_s": _duration()}
    if errors:  # Azure validates the whole file first; a bad file fails the batch, nothing is answered
        batch.update(_final="failed", status="failed", failed_at=int(now),
                     errors={"object": "list", "data": errors[:100]})
    with data_plane._store(NS).transaction() as data:
        data.setdefault("batches", {})[batch_id] = batch
    return jsonify(_view(batch, now)), 201  # the spec's Batches_Create answers 201


@_route("/batches/<batch_id>", methods=["GET"])
def get_batch(batch_id: str, account: str | None = None):
    now = time.time()
    with data_plane._store(NS).transaction() as data:
        batch = data.get("batches", {}).get(batch_id)
        if batch is None:
            return _error(404, "notFound", f"batch {batch_id} does not exist")
        _settle(batch, now)
        view = _view(batch, now)
    return jsonify(view)


@_route("/batches", methods=["GET"])
def list_batches(account: str | None = None):
    now = time.time()
    with data_plane._store(NS).transaction() as data:
        batches = list(data.get("batches", {}).values())
        for batch in batches:
            _settle(batch, now)
        views = sorted((_view(b, now) for b in batches), key=lambda b: b["created_at"], reverse=True)
    limit = int(request.args.get("limit", 20))
    after = request.args.get("after")
    if after:
        ids = [v["id"] for v in views]
        views = views[ids.index(after) + 1:] if after in ids else []
    page = views[:limit]
    ends = {"first_id": page[0]["id"], "last_id": page[-1]["id"]} if page else {}
    return jsonify({"object": "list", "data": page, "has_more": len(views) > limit, **ends})


@_route("/batches/<batch_id>/cancel", methods=["POST"])
def cancel_batch(batch_id: str, account: str | None = None):
    now = time.time()
    with data_plane._store(NS).transaction() as data:
        batch = data.get("batches", {}).get(batch_id)
        if batch is None:
            return _error(404, "notFound", f"batch {batch_id} does not exist")
        _settle(batch, now)
        if not batch.get("_final"):
            batch.update(_final="cancelled", status="cancelled", cancelling_at=int(now), cancelled_at=int(now))
        view = _view(batch, now)
    return jsonify(view)


@bp.post("/_emulator/batch/settings")
def set_settings():
    """Tests and the benchmark set how long a batch takes (kept across restarts)."""
    unknown = store.update_settings(NS, DEFAULTS, request.get_json(force=True, silent=True) or {})
    if unknown:
        return _error(400, "invalidSetting", f"unknown settings {unknown}; known: {sorted(DEFAULTS)}")
    return jsonify(store.settings(NS, DEFAULTS, "FTOPS_"))
