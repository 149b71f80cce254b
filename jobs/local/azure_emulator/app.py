"""The emulator's Flask app: ARM, fault injection, and the Azure OpenAI data plane when present."""

from __future__ import annotations

import importlib
import json
import os
import threading
from pathlib import Path

from flask import Flask, Response, jsonify, request

from jobs.local.azure_emulator import arm, faults


def create_app(state_dir: Path, *, op_delay_s: float = 0.2) -> Flask:
    """An emulator keeping its state under `state_dir`; long-running operations finish after `op_delay_s`."""
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    app = Flask("ftops-azure-emulator")
    app.config.update(FTOPS_STATE_DIR=state_dir, FTOPS_OP_DELAY_S=op_delay_s)
    app.extensions.update(ftops_stores={}, ftops_stores_lock=threading.Lock(), ftops_faults=faults.Faults())
    app.before_request(faults.intercept)
    app.after_request(_log_exchange)
    app.register_blueprint(faults.bp)
    app.register_blueprint(arm.bp)
    try:  # the data plane lives in its own module, added by its own issue
        openai = importlib.import_module("jobs.local.azure_emulator.openai")
    except ModuleNotFoundError as exc:
        if exc.name != "jobs.local.azure_emulator.openai":
            raise
    else:
        # First of all hooks: an account that does not exist answers nothing, not even a fault or a 429.
        app.before_request_funcs.setdefault(None, []).insert(0, openai.refuse_unknown_account)
        app.register_blueprint(openai.bp)
        app.register_blueprint(importlib.import_module("jobs.local.azure_emulator.batch").bp)  # Batch API (ftops eval)

    @app.get("/")
    def health():
        return jsonify({"emulator": "ftops-azure", "blueprints": sorted(app.blueprints)})

    return app


EXCHANGE_LOG = "FTOPS_AZURE_EMULATOR_EXCHANGE_LOG"
"""When set, every API exchange (not `/_emulator/*`) is appended to this JSONL file: the test suite validates each
request and response against Azure's REST specs (the emulator itself never reads them)."""
_LOG_LOCK = threading.Lock()


def _json_or_none(data: bytes, content_type: str | None):
    if not data or "json" not in (content_type or ""):
        return None
    try:
        return json.loads(data)
    except ValueError:
        return "<not JSON>"


def _log_exchange(response: Response) -> Response:
    path = os.environ.get(EXCHANGE_LOG)
    if not path or request.path.startswith("/_emulator/") or request.path == "/":
        return response
    from jobs.local.azure_emulator import NO_SUCH_ACCOUNT_HEADER

    if NO_SUCH_ACCOUNT_HEADER in response.headers:
        return response  # Azure has no host to answer this (see openai.refuse_unknown_account): no spec applies

    record = {"method": request.method, "path": request.path, "query": request.query_string.decode(),
              "request": _json_or_none(request.get_data(cache=True), request.content_type),
              "request_type": request.content_type, "status": response.status_code,
              "response": None if response.direct_passthrough else _json_or_none(response.get_data(),
                                                                                  response.content_type)}
    line = json.dumps(record) + "\n"
    with _LOG_LOCK, open(path, "a", encoding="utf-8") as handle:
        handle.write(line)
    return response
