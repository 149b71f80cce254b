"""Retries on throttling and transient errors, with capped exponential backoff that honours Retry-After.

Shared by every cloud call ftops makes (apply, jobs, evaluation, Azure provisioning): one reading of the
Retry-After headers, one backoff rule.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

T = TypeVar("T")

THROTTLE_CODES = {"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded",
                  "SlowDown", "ProvisionedThroughputExceededException", "ServiceUnavailable",
                  "InternalFailure", "InternalError", "RequestTimeout", "429"}


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    base_s: float = 0.5
    max_delay_s: float = 30.0
    max_retry_after_s: float = 120.0
    """A Retry-After longer than this is not waited for: the error surfaces and a rerun finishes the job."""


def _headers(exc: BaseException) -> dict[str, str]:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):  # botocore ClientError
        return {k.lower(): v for k, v in response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).items()}
    headers = getattr(response, "headers", None)
    return {k.lower(): v for k, v in headers.items()} if headers else {}


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return getattr(exc, "status_code", None) or getattr(response, "status_code", None)


def retry_after_from_headers(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from `retry-after-ms`, `x-ms-retry-after-ms` or `retry-after` (seconds or an HTTP
    date); None when the server gave none."""
    if not headers:
        return None
    lower = {k.lower(): v for k, v in headers.items()}
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        if (ms := lower.get(name)) is not None:
            try:
                return max(0.0, float(ms) / 1000)
            except ValueError:
                pass
    value = lower.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def retry_after_s(exc: BaseException) -> float | None:
    """The Retry-After of a failed call (botocore, openai/httpx or azure.core error)."""
    return retry_after_from_headers(_headers(exc))


def is_transient(exc: BaseException) -> bool:
    """Throttling, 5xx and connection failures; never a validation error (retrying cannot fix those)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and response.get("Error", {}).get("Code") in THROTTLE_CODES:
        return True
    status = _status(exc)
    if status is not None:
        return status in (408, 429) or status >= 500
    name = type(exc).__name__
    return name in {"APIConnectionError", "APITimeoutError", "ServiceRequestError", "ServiceResponseError",
                    "EndpointConnectionError", "ConnectionClosedError", "ReadTimeoutError", "ConnectionError",
                    "ConnectTimeoutError"}


def call(fn: Callable[[], T], policy: RetryPolicy = RetryPolicy(), *, sleep: Callable[[float], Any] = time.sleep,
         on_retry: Callable[[int, float, BaseException], Any] | None = None) -> T:
    """Call `fn`; on a transient error wait (Retry-After if the server gave one, else jittered backoff) and retry."""
    for attempt in range(1, policy.attempts + 1):
        try:
            return fn()
        except Exception as exc:
            if attempt == policy.attempts or not is_transient(exc):
                raise
            hinted = retry_after_s(exc)
            if hinted is not None and hinted > policy.max_retry_after_s:
                raise
            delay = hinted if hinted is not None else min(policy.max_delay_s, policy.base_s * 2 ** (attempt - 1))
            delay = delay if hinted is not None else delay * (0.5 + random.random() / 2)
            if on_retry:
                on_retry(attempt, delay, exc)
            sleep(delay)
    raise AssertionError("unreachable")
