"""The one small interface every answer source implements, and the shared rate-limit handling.

A target answers one prompt (`answer`); targets that have a bulk path (the Azure OpenAI Batch API) also
implement `answer_batch`, which writes answers into the store itself. `identity` names the model behind the
target (deployment, endpoint, artifact): stored answers are reused only for the same identity.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

from jobs import retry
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

    def serves(self) -> str | None:
        """What the cloud says is behind this target (a fine-tuned model id, a model artifact's S3 URI), for an
        evaluation that records which artifact it scored; None where the target loads its artifact itself."""
        return None


# --- throttling ---------------------------------------------------------------------------------

def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from the Retry-After headers; None when absent (one reading for all of ftops: jobs.retry)."""
    return retry_after_from_headers(headers)


class Throttle:
    """Shared by a target's workers: one 429 pauses them all until its Retry-After has passed (a `jobs.retry.Gate`).

    Without this, N workers each discover the limit on their own and the storm goes on N times longer. The retry
    loop and its defaults are `jobs.retry`'s; the arguments override a default only where given.
    """

    def __init__(self, *, max_attempts: int | None = None, max_wait_s: float | None = None,
                 base_backoff_s: float | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        default = retry.RetryPolicy()
        self.policy = replace(default, attempts=max_attempts or default.attempts,
                              max_retry_after_s=default.max_retry_after_s if max_wait_s is None else max_wait_s,
                              base_s=default.base_s if base_backoff_s is None else base_backoff_s)
        self.gate = retry.Gate()
        self._sleep = sleep
        self._lock = threading.Lock()
        self.throttled = 0
        """429s seen (for reports and benchmarks)."""
        self.retried = 0

    def call(self, fn: Callable[[], T], classify: Callable[[BaseException], tuple[bool, bool, float | None]],
             what: str) -> tuple[T, int]:
        """Run `fn` until it succeeds; `classify(exc)` -> (retryable, throttled, retry_after). Returns (result, attempts)."""
        attempts = 0

        def attempt() -> T:
            nonlocal attempts
            attempts += 1
            return fn()

        def counted(_n: int, _delay: float, exc: BaseException) -> None:
            with self._lock:
                self.retried += 1
                self.throttled += int(classify(exc)[1])

        try:
            result = retry.call(attempt, self.policy, sleep=self._sleep, on_retry=counted, gate=self.gate,
                                retryable=lambda exc: classify(exc)[0], retry_after=lambda exc: classify(exc)[2],
                                throttled=lambda exc: classify(exc)[1])
        except Exception as exc:  # noqa: BLE001 - worded here when retrying could not help; the rest as is
            retryable, _throttled, after = classify(exc)
            if not retryable:
                raise
            if after is not None and after > self.policy.max_retry_after_s:
                raise CloudError(f"{what}: the service asks to wait {after:.0f}s, over the "
                                 f"{self.policy.max_retry_after_s:.0f}s limit",
                                 hint="retry later, or use the Batch API (--batch)") from exc
            raise CloudError(f"{what}: still failing after {attempts} attempts ({exc})",
                             hint="lower evaluation.concurrency or use the Batch API (--batch)") from exc
        return result, attempts


def content_of_chat_completion(body: Any) -> str:
    """The answer text of an OpenAI-shaped chat completion body (dict or SDK object)."""
    if hasattr(body, "choices"):
        return body.choices[0].message.content or ""
    return (body.get("choices") or [{}])[0].get("message", {}).get("content") or ""
