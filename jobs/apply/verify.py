"""Reviewed = applied: `plan` and `apply` act only on a rendered tree that is exactly what the definitions and
the environment render now.

The committed tree is what a reviewer saw; a hand edit after review (another role, more instances, spot off,
another image, a target or manifest pointing elsewhere, a chosen key) would otherwise be submitted as is.
So every job is rendered again in memory (the render engine's own entry points, no subprocess) and each file
of the job must equal, byte for byte, what the render produces; the jobs apply works on are then built from
the render itself, so keys are recomputed, never read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import yaml

from jobs import paths
from jobs.apply.rendered import RenderedJob
from jobs.config.environment import Environment
from jobs.errors import ConfigError
from jobs.render.cost import split_files_required

_HINT = "re-run `ftops render --env {env}` and commit the result through review; rendered files are never edited"


def verified(env: Environment, jobs: list[RenderedJob]) -> list[RenderedJob]:
    """`jobs` (read from a rendered tree) checked against a fresh render; raises on the first difference."""
    if not jobs:
        return jobs
    from jobs.render import parallel

    files: dict[str, Path] = {}
    for job in jobs:
        files.setdefault(job.definition, _definition_path(job))
    ordered = sorted(set(files.values()))
    with split_files_required():  # the counts behind the cost ceiling come from the files apply uploads
        outcomes = parallel.render_files([env], ordered, parallel.workers_for(len(ordered)))[env.name]
    fresh: dict[str, Any] = {}
    by_variant: dict[tuple[str, str], str] = {}
    for rendered_jobs, error in outcomes:
        if error is not None:
            raise error  # the definitions no longer render here: nothing in this tree can be applied as reviewed
        for rendered in rendered_jobs:
            fresh[rendered.name] = rendered
            by_variant[(rendered.index["definition"], rendered.index["job"])] = rendered.name
    result = []
    for job in jobs:
        rendered = fresh.get(job.name)
        if rendered is None:
            now = by_variant.get((job.definition, job.job or ""))
            raise ConfigError(
                f"{job.definition} does not render job {job.name} for {env.name}" +
                (f" (it renders {now}: the tree is out of date or was edited)" if now else ""),
                source=job.index_file, field="name", hint=_HINT.format(env=env.name))
        for name, expected in rendered.files.items():
            path = job.directory / name
            try:
                actual = path.read_bytes()
            except FileNotFoundError:
                raise ConfigError("missing from the rendered tree", source=path,
                                  hint=_HINT.format(env=env.name)) from None
            if actual != expected:
                raise ConfigError(f"differs from what {job.definition} renders for {env.name}", source=path,
                                  field=first_difference(name, actual, expected), hint=_HINT.format(env=env.name))
        result.append(RenderedJob.model_validate({**rendered.index, "directory": job.directory}))
    return result


def _definition_path(job: RenderedJob) -> Path:
    from jobs.render.definitions import definitions_dir

    directory = definitions_dir()
    candidate = (paths.project_root() / job.definition).resolve()
    if not job.definition or candidate.parent != directory.resolve() or candidate.suffix != ".yaml" \
            or not candidate.is_file():
        raise ConfigError(f"names definition {job.definition!r}, which is not a file in definitions/",
                          source=job.index_file, field="definition", hint=_HINT.format(env=job.environment))
    return directory / candidate.name  # the form `ftops render` reads it in (its relative path is in job.json)


def first_difference(name: str, actual: bytes, expected: bytes) -> str:
    """The first field (dotted path) where two renderings of file `name` differ; a line for unreadable text."""
    try:
        if name.endswith(".json"):
            old, new = orjson.loads(actual), orjson.loads(expected)
        else:
            old, new = yaml.safe_load(actual), yaml.safe_load(expected)
    except (orjson.JSONDecodeError, yaml.YAMLError, UnicodeDecodeError):
        old = new = None
    found = _walk(old, new, "") if old is not None else None
    if found:
        return found
    old_lines, new_lines = actual.splitlines(), expected.splitlines()
    line = next((i for i, (a, b) in enumerate(zip(old_lines, new_lines)) if a != b), min(len(old_lines),
                                                                                             len(new_lines)))
    return f"line {line + 1}"


def _walk(old: Any, new: Any, path: str) -> str | None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            where = f"{path}.{key}" if path else str(key)
            if key not in old or key not in new:
                return where
            found = _walk(old[key], new[key], where)
            if found:
                return found
        return None
    if isinstance(old, list) and isinstance(new, list):
        for index, (a, b) in enumerate(zip(old, new)):
            found = _walk(a, b, f"{path}[{index}]")
            if found:
                return found
        return f"{path}[{min(len(old), len(new))}]" if len(old) != len(new) else None
    if old != new or type(old) is not type(new):
        return path or "(document)"
    return None
