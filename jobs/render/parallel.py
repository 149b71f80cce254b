"""Render an environment's job variants on every core: the same files, order and errors as one process.

Variants render independently. The parent parses and validates the definitions (cheap, and cached across
environments) and renders the first variant, which loads what rendering needs (lazy imports, compiled
templates, the SageMaker image registry, the environment's manifests and cost estimates), then forks workers
that inherit all of it and render the other variants. A task is a variant's position, a result is its files
(bytes) and index, so nothing else crosses the process boundary. Results are taken in variant order, so the
first error met is the one a sequential render raises. Workers only compute: the parent writes everything
(engine.write_tree), so writing stays all-or-nothing.
"""

from __future__ import annotations

import multiprocessing
from typing import Any

from jobs.config.environment import Environment
from jobs.render.definitions import JobVariant
from jobs.render.engine import TARGETS, Documents, RenderedJob, RenderRun, render_variant
from jobs.render.images import preload_registry
from jobs.render.templating import environment

MIN_PARALLEL_JOBS = 32
"""Below this many variants, starting processes costs more than the cores win back (~1 ms of work per job)."""

# Set in the parent just before forking; each worker reads (and fills the caches of) its inherited copy.
_work: tuple[Environment, list[JobVariant], RenderRun] | None = None


def workers_for(jobs: int, workers: int | None = None) -> int:
    """How many processes to render `jobs` variants with: 1 (in-process) for small renders or without fork."""
    from jobs.data.validate import workers_available

    workers = workers or workers_available()
    if workers <= 1 or jobs < MIN_PARALLEL_JOBS or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return min(workers, jobs)


def render_variants(variants: list[JobVariant], env: Environment, workers: int = 1) -> list[RenderedJob]:
    """`render_variant` for each of `variants`, in order; raises the first error in that order."""
    run = RenderRun(env)
    if workers <= 1:
        return [render_variant(variant, env, run) for variant in variants]
    global _work
    # Rendered before forking, the first job loads the lazy imports and caches that the workers then inherit.
    rendered = [render_variant(variants[0], env, run)]
    _preload()
    _work = (env, variants, run)
    try:
        rest = range(1, len(variants))
        # A few tasks per worker keeps every core busy to the end without a message per job.
        chunk = max(1, len(rest) // (workers * 4))
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            results = pool.imap(_render_one, rest, chunksize=chunk)
            # imap re-raises a worker's exception at its position: the first in order wins, as sequentially.
            return rendered + [RenderedJob(index["name"], variant, files, Documents(files), index)
                               for variant, (files, index) in zip(variants[1:], results)]
    finally:
        _work = None


def _preload() -> None:
    """What the first variant may not have loaded: the other provider's templates, the image registry."""
    for template, _ in TARGETS.values():
        environment().get_template(template)
    preload_registry()  # the SageMaker SDK import (~1.7 s); it also freezes the heap the workers share


def _render_one(position: int) -> tuple[dict[str, bytes], dict[str, Any]]:
    env, variants, run = _work
    job = render_variant(variants[position], env, run)
    return job.files, job.index
