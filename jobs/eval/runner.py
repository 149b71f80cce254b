"""Ask each target for every answer the store does not have yet, with bounded concurrency.

Answers are persisted one by one as they arrive; a failure of some requests does not discard the others, it
is reported after the rest have finished, and running again asks only for what is still missing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from jobs.errors import CloudError
from jobs.eval.examples import Example
from jobs.eval.store import AnswerStore
from jobs.eval.targets.base import Generation, Request, Target


def custom_id(variant: str, example_id: str) -> str:
    return f"{variant}/{example_id}"


def split_custom_id(value: str) -> tuple[str, str]:
    """`variant/example id` -> (example id, variant)."""
    variant, _, example_id = value.partition("/")
    return example_id, variant


@dataclass
class RunStats:
    requested: int = 0
    """Answers that were missing when the run started."""
    answered: int = 0
    reused: int = 0
    """Answers already in the store (a resumed run)."""
    failures: list[str] = field(default_factory=list)


def run_target(target: Target, sets: Mapping[str, Sequence[Example]], store: AnswerStore, generation: Generation,
               *, batch: bool = False, on_answer: Callable[[], None] | None = None) -> RunStats:
    """Fill the store with `target`'s answers to every example of every variant set."""
    stats = RunStats()
    requests = []
    for variant, examples in sets.items():
        for example in examples:
            if (target.identity, example.id, variant) in store:
                stats.reused += 1
            else:
                requests.append(Request(custom_id(variant, example.id), example.messages))
    stats.requested = len(requests)
    lock = threading.Lock()

    def answered() -> None:
        with lock:
            stats.answered += 1
        if on_answer:
            on_answer()

    if not requests:
        return stats
    if batch and target.supports_batch:
        target.answer_batch(requests, generation, store, split_custom_id, answered)
        return stats

    def one(request: Request) -> None:
        example_id, variant = split_custom_id(request.custom_id)
        answer = target.answer(request.messages, generation)
        if store.put((target.identity, example_id, variant), answer):
            answered()

    # A bounded window of futures: memory stays flat for large sets and Ctrl-C stops promptly.
    pending: set[Future] = set()
    queue = iter(requests)
    with ThreadPoolExecutor(max_workers=max(1, target.concurrency), thread_name_prefix="ftops-eval") as pool:
        try:
            for request in queue:
                pending.add(pool.submit(one, request))
                if len(pending) >= target.concurrency * 4:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    _collect(done, stats)
            done, _ = wait(pending)
            _collect(done, stats)
        except BaseException:
            for future in pending:
                future.cancel()
            raise
    return stats


def _collect(done: set[Future], stats: RunStats) -> None:
    for future in done:
        exc = future.exception()
        if exc is not None:
            stats.failures.append(str(exc))


def raise_on_failures(target: Target, stats: RunStats) -> None:
    if stats.failures:
        raise CloudError(f"{target.identity}: {len(stats.failures)} request(s) failed, first: {stats.failures[0]}",
                         hint="run the same command again: answers already received are kept and not asked again")
