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


@dataclass
class TokenBucket:
    per_second: float
    burst: float
    path: str = ""
    method: str = "*"
    admitted: int = 0
    refused: int = 0
    _tokens: float = field(default=-1.0, repr=False)
    _at: float = field(default=0.0, repr=False)

    def take(self, now: float) -> float | None:
        """None when a token was taken; else the seconds until the next one."""
        if self._tokens < 0:  # a new bucket starts full
            self._tokens, self._at = self.burst, now
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.per_second)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            self.admitted += 1
            return None
        self.refused += 1
        return (1 - self._tokens) / self.per_second

    def public(self) -> dict:
        return {"method": self.method, "path": self.path, "per_second": self.per_second, "burst": self.burst,
                "admitted": self.admitted, "refused": self.refused}


class RateLimits:
    def __init__(self) -> None:
        self._buckets: list[TokenBucket] = []
        self._lock = threading.Lock()

    def add(self, spec: dict) -> None:
        bucket = TokenBucket(per_second=float(spec["per_second"]),
                             burst=float(spec.get("burst", spec["per_second"])),
                             path=str(spec.get("path", "")), method=str(spec.get("method", "*")))
        if bucket.per_second <= 0 or bucket.burst < 1:
            raise ValueError("per_second must be > 0 and burst >= 1")
        re.compile(bucket.path)
        with self._lock:
            self._buckets.append(bucket)

    def clear(self) -> None:
        with self._lock:
            self._buckets.clear()

    def list(self) -> list[dict]:
        with self._lock:
            return [b.public() for b in self._buckets]

    def wait_for(self, method: str, path: str) -> float | None:
        """None when every matching bucket admits the request; else the longest wait among those that refuse."""
        now = time.monotonic()
        with self._lock:
            waits = [w for b in self._buckets
                     if b.method in ("*", method) and re.search(b.path, path, re.IGNORECASE)
                     for w in [b.take(now)] if w is not None]
        return max(waits) if waits else None


def faults() -> Faults:
    return current_app.extensions["ftops_faults"]


def rate_limits() -> RateLimits:
    return current_app.extensions.setdefault("ftops_rate_limits", RateLimits())


def intercept() -> Response | None:
    """App-wide `before_request` hook: apply the first matching rule."""
    if request.path.startswith("/_emulator/"):
        return None
    wait = rate_limits().wait_for(request.method, request.path)
    if wait is not None:
        import math

        from jobs.local.azure_emulator.arm import error

        response = error(429, "429", "Requests to the deployment have exceeded the rate limit")
        response.headers["retry-after-ms"] = str(max(1, math.ceil(wait * 1000)))
        response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        return response
    rule = faults().take(request.method, request.path)
    if rule is None:
        return None
    if rule.delay_s:
        time.sleep(rule.delay_s)
    if rule.status:
        from jobs.local.azure_emulator.arm import error

        response = error(rule.status, rule.code, rule.message)
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


@bp.post("/_emulator/rate-limits")
def add_rate_limit():
    try:
        rate_limits().add(request.get_json(force=True, silent=True) or {})
    except (KeyError, TypeError, ValueError, re.error) as exc:
        return jsonify({"error": {"code": "InvalidRateLimit", "message": str(exc)}}), 400
    return jsonify({"limits": rate_limits().list()}), 201


@bp.get("/_emulator/rate-limits")
def list_rate_limits():
    return jsonify({"limits": rate_limits().list()})


@bp.delete("/_emulator/rate-limits")
def clear_rate_limits():
    rate_limits().clear()
    return "", 204
