"""The one small interface every answer source implements, and the shared rate-limit handling.

A target answers one prompt (`answer`); targets that have a bulk path (the Azure OpenAI Batch API) also
implement `answer_batch`, which writes answers into the store itself. `identity` names the model behind the
target (deployment, endpoint, artifact): stored answers are reused only for the same identity.
"""

from __future__ import annotations

import random
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from jobs.errors import CloudError
from jobs.retry import retry_after_from_headers

if TYPE_CHECKING:
    from jobs.eval.store import Answer, AnswerStore

T = TypeVar("T")
Messages = Sequence[Mapping[str, str]]


@dataclass(frozen=True)
class Request:
    custom_id: str
    """`<variant>/<example id>`: unique within one target's evaluation."""
    messages: tuple[dict[str, str], ...]


@dataclass(frozen=True)
class Generation:
    """Decoding settings shared by every target: greedy, so answers are reproducible where the model is."""

    max_tokens: int = 256
    temperature: float = 0.0
    seed: int = 0


class Target(ABC):
    kind: str = "target"
    concurrency: int = 1
    """How many requests may be in flight at once against this target."""

    @property
    @abstractmethod
    def identity(self) -> str:
        """`<kind>:<model>`: the store key of this target's answers."""

    @abstractmethod
    def answer(self, messages: Messages, generation: Generation) -> Answer: ...

    supports_batch: bool = False

    def answer_batch(self, requests: Sequence[Request], generation: Generation, store: AnswerStore,
                     variant_of: Callable[[str], tuple[str, str]], on_answer: Callable[[], None]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release clients or loaded models."""


# --- throttling ---------------------------------------------------------------------------------

def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from the Retry-After headers; None when absent (one reading for all of ftops: jobs.retry)."""
    return retry_after_from_headers(headers)


class Throttle:
    """Shared by a target's workers: one 429 pauses them all until its Retry-After has passed.

    Without this, N workers each discover the limit on their own and the storm goes on N times longer.
    """

    def __init__(self, *, max_attempts: int = 12, max_wait_s: float = 120.0, base_backoff_s: float = 0.5,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.max_attempts = max_attempts
        self.max_wait_s = max_wait_s
        self.base_backoff_s = base_backoff_s
        self._sleep = sleep
        self._not_before = 0.0
        self._lock = threading.Lock()
        self.throttled = 0
        """429s seen (for reports and benchmarks)."""
        self.retried = 0

    def wait_turn(self) -> None:
        while (delay := self._not_before - time.monotonic()) > 0:
            self._sleep(delay)

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._not_before = max(self._not_before, time.monotonic() + seconds)

    def call(self, fn: Callable[[], T], classify: Callable[[BaseException], tuple[bool, bool, float | None]],
             what: str) -> tuple[T, int]:
        """Run `fn` until it succeeds; `classify(exc)` -> (retryable, throttled, retry_after). Returns (result, attempts)."""
        attempt = 0
        while True:
            attempt += 1
            self.wait_turn()
            try:
                return fn(), attempt
            except Exception as exc:  # noqa: BLE001 - classify decides; the rest is re-raised
                retryable, throttled, after = classify(exc)
                if not retryable or attempt >= self.max_attempts:
                    if retryable:
                        raise CloudError(f"{what}: still failing after {attempt} attempts ({exc})",
                                         hint="lower evaluation.concurrency or use the Batch API (--batch)") from exc
                    raise
                if after is not None and after > self.max_wait_s:
                    raise CloudError(f"{what}: the service asks to wait {after:.0f}s, over the {self.max_wait_s:.0f}s "
                                     "limit", hint="retry later, or use the Batch API (--batch)") from exc
                # No Retry-After: exponential backoff with full jitter, capped.
                delay = after if after is not None else random.uniform(0, min(30.0, self.base_backoff_s * 2 ** attempt))
                with self._lock:
                    self.retried += 1
                    self.throttled += int(throttled)
                if throttled:
                    self.pause(delay)
                else:
                    self._sleep(delay)


def content_of_chat_completion(body: Any) -> str:
    """The answer text of an OpenAI-shaped chat completion body (dict or SDK object)."""
    if hasattr(body, "choices"):
        return body.choices[0].message.content or ""
    return (body.get("choices") or [{}])[0].get("message", {}).get("content") or ""
