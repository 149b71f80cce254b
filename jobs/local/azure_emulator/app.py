"""The emulator's Flask app: ARM, fault injection, and the Azure OpenAI data plane when present."""

from __future__ import annotations

import importlib
import threading
from pathlib import Path

from flask import Flask, jsonify

from jobs.local.azure_emulator import arm, faults


def create_app(state_dir: Path, *, op_delay_s: float = 0.2) -> Flask:
    """An emulator keeping its state under `state_dir`; long-running operations finish after `op_delay_s`."""
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    app = Flask("ftops-azure-emulator")
    app.config.update(FTOPS_STATE_DIR=state_dir, FTOPS_OP_DELAY_S=op_delay_s)
    app.extensions.update(ftops_stores={}, ftops_stores_lock=threading.Lock(), ftops_faults=faults.Faults())
    app.before_request(faults.intercept)
    app.register_blueprint(faults.bp)
    app.register_blueprint(arm.bp)
    try:  # the data plane lives in its own module, added by its own issue
        openai = importlib.import_module("jobs.local.azure_emulator.openai")
    except ModuleNotFoundError as exc:
        if exc.name != "jobs.local.azure_emulator.openai":
            raise
    else:
        app.register_blueprint(openai.bp)
        app.register_blueprint(importlib.import_module("jobs.local.azure_emulator.batch").bp)  # Batch API (ftops eval)

    @app.get("/")
    def health():
        return jsonify({"emulator": "ftops-azure", "blueprints": sorted(app.blueprints)})

    return app
