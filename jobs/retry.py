"""Every retry ftops makes: throttling and transient errors, capped exponential backoff that honours Retry-After.

The one retry loop (DEVELOPERS.md: "retries from jobs.retry"): apply, jobs, evaluation targets and Azure
provisioning all call `call`, each with its own idea of which errors are transient (`retryable`) and, where many
workers share a limit, a `Gate` that one 429 closes for all of them. One set of defaults (`RetryPolicy()`); a
caller changes a field only with a reason next to it.
"""

from __future__ import annotations

import random
import threading
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
    attempts: int = 8
    """Tries in all, the first included."""
    base_s: float = 0.5
    """Backoff without a Retry-After: base_s * 2**(retry - 1), jittered to 50-100 %, capped at max_delay_s."""
    max_delay_s: float = 30.0
    max_retry_after_s: float = 120.0
    """A Retry-After longer than this is not waited for: the error surfaces and a rerun finishes the job."""
    unreachable_attempts: int = 4
    """Tries in all when the endpoint cannot be reached at all: waiting minutes on a dead emulator helps nobody."""


class Gate:
    """Shared by workers that share one limit: a 429 closes it for all of them until its Retry-After has passed
    (N workers discovering the limit on their own would prolong the storm N times)."""

    def __init__(self) -> None:
        self._not_before = 0.0
        self._lock = threading.Lock()

    def wait_turn(self, sleep: Callable[[float], Any] = time.sleep) -> None:
        while (delay := self._not_before - time.monotonic()) > 0:
            sleep(delay)

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._not_before = max(self._not_before, time.monotonic() + seconds)


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


UNREACHABLE = {"APIConnectionError", "ServiceRequestError", "EndpointConnectionError", "ConnectionError",
               "ConnectTimeoutError", "ConnectionRefusedError"}
"""Errors that mean nothing answered at all (as opposed to a timeout or a 5xx from a live service)."""


def backoff_s(retry: int, policy: RetryPolicy) -> float:
    """The jittered wait before retry number `retry` (1-based) when the server gave no Retry-After."""
    return min(policy.max_delay_s, policy.base_s * 2 ** (retry - 1)) * (0.5 + random.random() / 2)


def call(fn: Callable[[], T], policy: RetryPolicy = RetryPolicy(), *, sleep: Callable[[float], Any] = time.sleep,
         on_retry: Callable[[int, float, BaseException], Any] | None = None,
         retryable: Callable[[BaseException], bool] = is_transient,
         retry_after: Callable[[BaseException], float | None] = retry_after_s,
         gate: Gate | None = None, throttled: Callable[[BaseException], bool] | None = None) -> T:
    """Call `fn`; on an error `retryable` accepts, wait (the server's Retry-After, else jittered backoff) and retry.

    The last error is re-raised as is when the tries run out, it is not retryable, or its Retry-After is over
    `policy.max_retry_after_s` (the caller words it: `retry_after(exc)` tells which). With a `gate`, every try waits its turn and a
    throttled error (`throttled`, default: any retryable one) closes the gate for everyone sharing it."""
    for attempt in range(1, policy.attempts + 1):
        if gate is not None:
            gate.wait_turn(sleep)
        try:
            return fn()
        except Exception as exc:
            limit = policy.unreachable_attempts if type(exc).__name__ in UNREACHABLE else policy.attempts
            if attempt >= min(limit, policy.attempts) or not retryable(exc):
                raise
            hinted = retry_after(exc)
            if hinted is not None and hinted > policy.max_retry_after_s:
                raise
            delay = hinted if hinted is not None else backoff_s(attempt, policy)
            if on_retry:
                on_retry(attempt, delay, exc)
            if gate is not None and (throttled is None or throttled(exc)):
                gate.pause(delay)
            else:
                sleep(delay)
    raise AssertionError("unreachable")
