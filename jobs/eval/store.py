"""The answer store: one append-only JSONL file; each answer is written (and fsynced) the moment it arrives.

Keyed by (target, example id, variant). An interrupted evaluation reopens the file and asks only for the
answers that are missing; a torn last line (a kill mid-write) is ignored and asked again. The file also
records submitted Batch API jobs, so a resumed evaluation polls the batch it already paid for instead of
submitting a new one.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

Key = tuple[str, str, str]


@dataclass(frozen=True)
class Answer:
    text: str
    latency_ms: float = 0.0
    attempts: int = 1
    """Requests it took (1 + retries after throttling or transient errors)."""


class AnswerStore:
    def __init__(self, path: Path, *, fsync: bool = True) -> None:
        self.path = path
        self._fsync = fsync
        self._lock = threading.Lock()
        self._answers: dict[Key, Answer] = {}
        self._batches: dict[str, dict[str, Any]] = {}
        self.torn_lines = 0
        """Lines that could not be read back (a write cut short by a kill); they are asked again."""
        self._load()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(path, "ab")

    def _load(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        for line in data.splitlines():
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                self.torn_lines += 1
                continue
            if record.get("kind") == "batch":
                self._batches.setdefault(record["target"], {})[record["batch_id"]] = record
            elif record.get("kind") == "batch-done":
                self._batches.get(record["target"], {}).pop(record["batch_id"], None)
            else:
                key = (record["target"], record["id"], record["variant"])
                self._answers.setdefault(key, Answer(record["answer"], record.get("latency_ms", 0.0),
                                                     record.get("attempts", 1)))
        if data and not data.endswith(b"\n"):
            # Terminate a torn line so the next record starts on a line of its own.
            with open(self.path, "ab") as handle:
                handle.write(b"\n")

    def _append(self, record: dict[str, Any]) -> None:
        self._handle.write(orjson.dumps(record) + b"\n")
        self._handle.flush()
        if self._fsync:
            os.fsync(self._handle.fileno())

    def get(self, key: Key) -> Answer | None:
        return self._answers.get(key)

    def __contains__(self, key: Key) -> bool:
        return key in self._answers

    def __len__(self) -> int:
        return len(self._answers)

    def put(self, key: Key, answer: Answer) -> bool:
        """Persist one answer; False (and nothing written) if the key already has one."""
        with self._lock:
            if key in self._answers:
                return False
            target, example_id, variant = key
            self._append({"target": target, "id": example_id, "variant": variant, "answer": answer.text,
                          "latency_ms": round(answer.latency_ms, 1), "attempts": answer.attempts,
                          "at": round(time.time(), 3)})
            self._answers[key] = answer
            return True

    def answers_for(self, target: str, variant: str) -> dict[str, Answer]:
        return {k[1]: a for k, a in self._answers.items() if k[0] == target and k[2] == variant}

    # --- Batch API jobs in flight ----------------------------------------------------------------

    def record_batch(self, target: str, batch_id: str, custom_ids: list[str]) -> None:
        with self._lock:
            record = {"kind": "batch", "target": target, "batch_id": batch_id, "custom_ids": custom_ids,
                      "at": round(time.time(), 3)}
            self._append(record)
            self._batches.setdefault(target, {})[batch_id] = record

    def finish_batch(self, target: str, batch_id: str) -> None:
        with self._lock:
            self._append({"kind": "batch-done", "target": target, "batch_id": batch_id})
            self._batches.get(target, {}).pop(batch_id, None)

    def pending_batches(self, target: str) -> dict[str, list[str]]:
        """Batch id -> the custom ids it answers, for batches submitted but not yet collected."""
        return {bid: rec["custom_ids"] for bid, rec in self._batches.get(target, {}).items()}

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> AnswerStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
