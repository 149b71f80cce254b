"""Fault injection, switchable per test from another process over HTTP.

    POST   /_emulator/faults   {"rules": [{"method": "PUT", "path": "accounts/ftops", "status": 429,
                                           "retry_after": 1, "times": 1}]}
    GET    /_emulator/faults   the rules still armed (with the count of requests each one hit)
    DELETE /_emulator/faults   disarm everything

A rule matches a request by method (`*` for any) and a regular expression searched in the path
(case-insensitive). Per match, in this order: sleep `delay_s` (slow operations); answer `status` with an ARM
error body `{code, message}` and a `Retry-After` header; or, with `fail_operation`, let the request through
but make the long-running operation it starts end Failed with `{code, message}`; with `op_delay_s`, make
that operation stay in progress that long (slow provisioning). `times` bounds how often a
rule fires (0: until deleted). Rules live in memory: a restart disarms them.

A rate limit is a token bucket, checked before the rules above:

    POST   /_emulator/rate-limits {"method": "POST", "path": "chat/completions", "per_second": 60, "burst": 60}
    GET    /_emulator/rate-limits  each limit with the requests it admitted and refused
    DELETE /_emulator/rate-limits

A matching request takes one token (the bucket refills at `per_second`, holding at most `burst`); without one it
gets 429 with `retry-after-ms` (when the next token is due, as Azure OpenAI sends it) and `Retry-After` (whole
seconds, rounded up). Over any interval the admitted requests are at most burst + per_second x seconds.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import asdict, dataclass, field

from flask import Blueprint, Response, current_app, g, jsonify, request

bp = Blueprint("faults", __name__)


@dataclass
class FaultRule:
    path: str = ""
    method: str = "*"
    status: int | None = None
    code: str = "InjectedFault"
    message: str = "fault injected by the ftops Azure emulator"
    retry_after: float | None = None
    delay_s: float = 0.0
    fail_operation: bool = False
    op_delay_s: float | None = None
    times: int = 1
    hits: int = field(default=0)

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method) and re.search(self.path, path, re.IGNORECASE) is not None


class Faults:
    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()

    def add(self, rules: list[dict]) -> None:
        parsed = [FaultRule(**{k: v for k, v in rule.items() if k != "hits"}) for rule in rules]
        for rule in parsed:
            re.compile(rule.path)
        with self._lock:
            self._rules.extend(parsed)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def list(self) -> list[dict]:
        with self._lock:
            return [asdict(rule) for rule in self._rules]

    def take(self, method: str, path: str) -> FaultRule | None:
        """The first armed rule matching the request, counted as fired (spent rules are dropped)."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path):
                    rule.hits += 1
                    if rule.times and rule.hits >= rule.times:
                        self._rules.remove(rule)
                    return rule
        return None


DATA_PLANE_CODES = frozenset({"conflict", "invalidPayload", "forbidden", "notFound", "unexpectedEntityState",
                              "itemDoesAlreadyExist", "serviceUnavailable", "internalFailure", "quotaExceeded",
                              "jsonlValidationFailed", "fileImportFailed", "tooManyRequests", "unauthorized",
                              "contentFilter"})
"""The data-plane spec's ErrorCode enum (a test keeps this equal to the spec)."""
DATA_PLANE_BY_STATUS = {401: "unauthorized", 403: "forbidden", 404: "notFound", 409: "conflict",
                        429: "tooManyRequests", 500: "internalFailure", 502: "serviceUnavailable",
                        503: "serviceUnavailable", 504: "serviceUnavailable"}


def faults() -> Faults:
    return current_app.extensions["ftops_faults"]


def intercept() -> Response | None:
    """App-wide `before_request` hook: apply the first matching rule."""
    if request.path.startswith("/_emulator/"):
        return None
    if (limited := ratelimit.refusal(request.method, request.path)) is not None:
        return limited
    rule = faults().take(request.method, request.path)
    if rule is None:
        return None
    if rule.delay_s:
        time.sleep(rule.delay_s)
    if rule.status:
        from jobs.local.azure_emulator.arm import error

        code = rule.code
        if "/openai/" in request.path and code not in DATA_PLANE_CODES:
            # The data plane answers with its own ErrorCode values (data-plane spec 2025-04-01-preview).
            code = DATA_PLANE_BY_STATUS.get(rule.status, "invalidPayload")
        response = error(rule.status, code, rule.message)
        if rule.retry_after is not None:
            response.headers["Retry-After"] = str(int(rule.retry_after) if float(rule.retry_after).is_integer()
                                                  else rule.retry_after)
        return response
    if rule.fail_operation:
        g.ftops_fail_operation = {"code": rule.code, "message": rule.message}
    if rule.op_delay_s is not None:
        g.ftops_op_delay_s = rule.op_delay_s
    return None


def pending_operation_failure() -> dict | None:
    """The error an injected `fail_operation` rule wants the operation started by this request to end with."""
    return g.pop("ftops_fail_operation", None)


def pending_operation_delay(default: float) -> float:
    """How long the operation started by this request stays in progress (`op_delay_s` rule, else default)."""
    return g.pop("ftops_op_delay_s", default)


@bp.post("/_emulator/faults")
def add_faults():
    body = request.get_json(force=True, silent=True) or {}
    rules = body.get("rules", [body] if body else [])
    try:
        faults().add(rules)
    except (TypeError, re.error) as exc:
        return jsonify({"error": {"code": "InvalidFaultRule", "message": str(exc)}}), 400
    return jsonify({"rules": faults().list()}), 201


@bp.get("/_emulator/faults")
def list_faults():
    return jsonify({"rules": faults().list()})


@bp.delete("/_emulator/faults")
def clear_faults():
    faults().clear()
    return "", 204



from jobs.local.azure_emulator import ratelimit  # noqa: E402  (its routes join this blueprint)
