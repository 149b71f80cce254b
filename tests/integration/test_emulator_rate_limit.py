"""The Azure emulator enforces a rate limit as a token bucket (what bench_eval measures against)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

pytestmark = pytest.mark.integration


def _post(url: str, body: dict) -> None:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request).read()


def test_the_emulator_enforces_a_rate_limit_with_a_token_bucket(azure_local):
    """At most burst + rate x seconds requests get through; the rest get 429 with retry-after-ms."""
    endpoint = azure_local.endpoint
    _post(f"{endpoint}/_emulator/rate-limits", {"method": "GET", "path": "^/ratelimited-probe", "per_second": 5,
                                                "burst": 2})
    try:
        codes, waits = [], []
        started = time.monotonic()
        while time.monotonic() - started < 1.0:
            try:
                urllib.request.urlopen(f"{endpoint}/ratelimited-probe")
                codes.append(200)
            except urllib.error.HTTPError as exc:
                codes.append(exc.code)
                if exc.code == 429:
                    waits.append(float(exc.headers["retry-after-ms"]))
        elapsed = time.monotonic() - started
        admitted = sum(code != 429 for code in codes)
        assert 2 <= admitted <= 2 + 5 * elapsed + 1
        assert codes.count(429) > 0 and all(0 < w <= 200 for w in waits)
    finally:
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/_emulator/rate-limits", method="DELETE"))
