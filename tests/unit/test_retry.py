"""One retry module: every retry in ftops goes through jobs.retry.call with one set of defaults (issue 16 item 9)."""

from __future__ import annotations

import importlib.util
import time

import pytest

from jobs import retry


class Throttled(Exception):
    def __init__(self, after: str | None = None) -> None:
        super().__init__("429")
        self.status_code = 429
        self.response = type("R", (), {"headers": {"Retry-After": after} if after else {}, "status_code": 429})()


def test_there_is_one_retry_module():
    assert importlib.util.find_spec("infra.azure.retry") is None


def test_the_azure_boundary_and_the_eval_throttle_use_the_shared_loop_and_defaults(monkeypatch):
    from infra.azure import errors
    from jobs.eval.targets.base import Throttle

    seen = []
    real = retry.call

    def spy(fn, policy=retry.RetryPolicy(), **kwargs):
        seen.append(policy)
        return real(fn, policy, **kwargs)

    monkeypatch.setattr(retry, "call", spy)
    assert errors.call("read x", lambda: "ok") == "ok"
    assert Throttle().call(lambda: "ok", lambda exc: (False, False, None), "x") == ("ok", 1)
    assert seen == [retry.RetryPolicy(), retry.RetryPolicy()]


def test_retry_after_is_honoured_then_backoff_is_capped_and_jittered():
    waits: list[float] = []
    failures = iter([Throttled("3"), Throttled(), Throttled()])

    def fn():
        exc = next(failures, None)
        if exc:
            raise exc
        return "done"

    assert retry.call(fn, retry.RetryPolicy(base_s=1.0, max_delay_s=1.5), sleep=waits.append) == "done"
    # retries 2 and 3: 1.0 * 2**1 and 2**2, both capped at 1.5, then jittered to 50-100 % (never above the cap)
    assert waits[0] == 3.0 and 0.75 <= waits[1] <= 1.5 and 0.75 <= waits[2] <= 1.5


def test_tries_are_bounded_and_the_last_error_surfaces():
    waits: list[float] = []
    with pytest.raises(Throttled):
        retry.call(lambda: (_ for _ in ()).throw(Throttled("1")), retry.RetryPolicy(attempts=3), sleep=waits.append)
    assert waits == [1.0, 1.0]


def test_an_unreachable_endpoint_gets_a_few_tries_only():
    class EndpointConnectionError(Exception):
        pass

    calls = []

    def fn():
        calls.append(1)
        raise EndpointConnectionError("nothing listens")

    with pytest.raises(EndpointConnectionError):
        retry.call(fn, sleep=lambda s: None)
    assert len(calls) == retry.RetryPolicy().unreachable_attempts < retry.RetryPolicy().attempts


def test_a_retry_after_over_the_limit_is_not_waited_for():
    waits: list[float] = []
    with pytest.raises(Throttled):
        retry.call(lambda: (_ for _ in ()).throw(Throttled("600")), sleep=waits.append)
    assert waits == []


def test_a_gate_holds_every_worker_after_one_throttle():
    gate = retry.Gate()
    failures = iter([Throttled("0.2")])

    def fn():
        exc = next(failures, None)
        if exc:
            raise exc
        return "ok"

    started = time.monotonic()
    assert retry.call(fn, gate=gate, sleep=time.sleep) == "ok"
    assert time.monotonic() - started >= 0.2
    # Another worker arriving now waits for the same pause to end before its first try.
    gate.pause(0.3)
    before = time.monotonic()
    assert retry.call(lambda: "ok", gate=gate) == "ok"
    assert time.monotonic() - before >= 0.25
