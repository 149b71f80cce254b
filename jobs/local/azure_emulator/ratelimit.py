"""Rate limits for the Azure emulator: token buckets checked before the fault rules (see faults.py's docstring).

    POST   /_emulator/rate-limits {"method": "POST", "path": "chat/completions", "per_second": 60, "burst": 60}
    GET    /_emulator/rate-limits  each limit with the requests it admitted and refused
    DELETE /_emulator/rate-limits
"""

from __future__ import annotations

import math
import re
import threading
import time
from dataclasses import dataclass, field

from flask import Response, current_app, jsonify, request

from jobs.local.azure_emulator.faults import bp


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


def rate_limits() -> RateLimits:
    return current_app.extensions.setdefault("ftops_rate_limits", RateLimits())


def refusal(method: str, path: str) -> Response | None:
    """The 429 for a request no token is left for (Azure OpenAI's `retry-after-ms`, and whole-second Retry-After)."""
    wait = rate_limits().wait_for(method, path)
    if wait is None:
        return None
    from jobs.local.azure_emulator.arm import error

    code = "tooManyRequests" if "/openai/" in path else "429"  # the data plane's own ErrorCode value
    response = error(429, code, "Requests to the deployment have exceeded the rate limit")
    response.headers["retry-after-ms"] = str(max(1, math.ceil(wait * 1000)))
    response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
    return response


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
