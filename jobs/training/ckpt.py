"""Checkpoints that survive spot interruptions.

SageMaker uploads `/opt/ml/checkpoints` while files are still being written and restores whatever reached S3,
so a restarted job can find a `checkpoint-N` that is missing its optimizer state or has a truncated file.
transformers' `get_last_checkpoint` only looks at the directory name and would resume from it. We write a
manifest (file names and sizes) after the Trainer has finished a checkpoint and resume only from a
checkpoint whose manifest matches what is on disk.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

MANIFEST = "ftops-complete.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def _files(directory: Path) -> dict[str, int]:
    return {str(p.relative_to(directory)): p.stat().st_size
            for p in sorted(directory.rglob("*")) if p.is_file() and p.name != MANIFEST}


def mark_complete(checkpoint: Path) -> None:
    """Record every file and its size; written last and atomically (temp file + rename)."""
    payload = json.dumps({"files": _files(checkpoint)}, sort_keys=True).encode()
    tmp = checkpoint / f".{MANIFEST}.partial"
    with open(tmp, "wb") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, checkpoint / MANIFEST)


def is_complete(checkpoint: Path) -> bool:
    try:
        listed = json.loads((checkpoint / MANIFEST).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if not listed:
        return False
    for name, size in listed.items():
        path = checkpoint / name
        if not path.is_file() or path.stat().st_size != size:
            return False
    return True


def step_of(checkpoint: Path) -> int:
    match = _CHECKPOINT.match(checkpoint.name)
    return int(match.group(1)) if match else -1


def latest_complete(root: Path) -> Path | None:
    """The complete checkpoint with the highest step under `root`, or None (fresh start)."""
    if not root.is_dir():
        return None
    candidates = sorted((p for p in root.iterdir() if p.is_dir() and step_of(p) >= 0), key=step_of, reverse=True)
    return next((p for p in candidates if is_complete(p)), None)


def incomplete(root: Path) -> list[Path]:
    """Checkpoint directories that cannot be resumed from (reported, and skipped)."""
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if p.is_dir() and step_of(p) >= 0 and not is_complete(p)),
                  key=step_of)
