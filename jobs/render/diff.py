"""`ftops diff`: what a change to definitions, templates or environments does to a committed rendered tree.

Jobs are paired by (definition, job) rather than by directory name: a changed job gets a new content-hash
name, and the reviewer wants to see the field that changed, not a deleted and an added directory.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from jobs.errors import ConfigError
from jobs.render.engine import INDEX, RenderedJob

Key = tuple[str, str]


@dataclass
class JobChange:
    kind: str
    """added, removed or changed."""
    job: str
    definition: str
    old_name: str | None
    new_name: str | None
    files: list[str] = field(default_factory=list)
    diff: str = ""


def read_tree(directory: Path) -> dict[Key, tuple[str, dict[str, bytes]]]:
    """The rendered jobs under `directory` (one environment's tree), keyed by (definition, job)."""
    jobs: dict[Key, tuple[str, dict[str, bytes]]] = {}
    if not directory.is_dir():
        return jobs
    for job_dir in sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith(".")):
        index_path = job_dir / INDEX
        if not index_path.is_file():
            continue
        try:
            index = orjson.loads(index_path.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise ConfigError(f"not valid JSON ({exc})", source=index_path, hint="restore it from git, or re-render "
                              "that tree") from None
        if not isinstance(index, dict) or not isinstance(index.get("definition"), str) \
                or not isinstance(index.get("job"), str):
            raise ConfigError("not a rendered job index (expected an object with definition and job)",
                              source=index_path, hint="restore it from git, or re-render that tree")
        files = {p.name: p.read_bytes() for p in sorted(job_dir.iterdir()) if p.is_file()}
        jobs[(index["definition"], index["job"])] = (job_dir.name, files)
    return jobs


def _unified(old: bytes, new: bytes, old_label: str, new_label: str) -> str:
    # errors="replace": a committed file with bytes that are not UTF-8 still shows as a difference, not a crash.
    return "".join(difflib.unified_diff(old.decode(errors="replace").splitlines(keepends=True),
                                        new.decode(errors="replace").splitlines(keepends=True),
                                        fromfile=old_label, tofile=new_label, n=2))


def diff_jobs(old_tree: dict[Key, tuple[str, dict[str, bytes]]], rendered: list[RenderedJob],
              old_label: str, new_label: str, definitions: set[str] | None = None) -> list[JobChange]:
    new_tree = {(r.index["definition"], r.index["job"]): (r.name, r.files) for r in rendered}
    if definitions is not None:
        old_tree = {k: v for k, v in old_tree.items() if k[0] in definitions}
    changes: list[JobChange] = []
    for key in sorted(set(old_tree) | set(new_tree)):
        old_name, old_files = old_tree.get(key, (None, {}))
        new_name, new_files = new_tree.get(key, (None, {}))
        if old_files == new_files:
            continue
        kind = "added" if old_name is None else "removed" if new_name is None else "changed"
        change = JobChange(kind, key[1], key[0], old_name, new_name)
        texts = []
        for file in sorted(set(old_files) | set(new_files)):
            old, new = old_files.get(file, b""), new_files.get(file, b"")
            if old != new:
                change.files.append(file)
                texts.append(_unified(old, new, f"{old_label}/{old_name or '-'}/{file}",
                                      f"{new_label}/{new_name or '-'}/{file}"))
        change.diff = "".join(texts)
        changes.append(change)
    return changes
