"""Every benchmark run is kept: `results/<name>.json` holds the latest, `results/history.jsonl` every run (one JSON
object a line: benchmark, when, git commit, the payload), so each figure quoted in RESULTS.md can be traced to the
run that produced it (`run_id`)."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
HISTORY = RESULTS / "history.jsonl"


def _commit() -> str | None:
    """The checkout's commit (+dirty); FTOPS_BENCH_COMMIT names it where the run has a copy with no git history
    (a GPU machine sent the working tree of that commit)."""
    if os.environ.get("FTOPS_BENCH_COMMIT"):
        return os.environ["FTOPS_BENCH_COMMIT"]
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10,
                              cwd=RESULTS.parent)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=10, cwd=RESULTS.parent).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (done.stdout.strip() + ("+dirty" if dirty else "")) if done.returncode == 0 else None


def record(name: str, payload: dict) -> dict:
    """Write results/<name>.json and append the run to results/history.jsonl; returns the entry."""
    from jobs.fsutil import atomic_write

    entry = {"benchmark": name, "run_id": uuid.uuid4().hex[:12],
             "at": datetime.now(UTC).isoformat(timespec="seconds"), "commit": _commit(), **payload}
    if os.environ.get("FTOPS_BENCH_DRY_RUN"):  # a smoke run of the benchmark code itself: nothing recorded
        return entry
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write(RESULTS / f"{name}.json", json.dumps(entry, indent=2) + "\n")
    with HISTORY.open("a", encoding="utf-8") as handle:  # one write of one line: appends do not interleave
        handle.write(json.dumps(entry, sort_keys=True) + "\n")
    return entry


def runs(name: str) -> list[dict]:
    if not HISTORY.is_file():
        return []
    return [row for line in HISTORY.read_text().splitlines() if line.strip()
            for row in [json.loads(line)] if row.get("benchmark") == name]
