"""Render definition files for one or more environments on every core: the same files, order and errors as
one process.

The unit of work is a definition file: a worker parses and validates it once and renders its jobs for every
environment asked for, so parsing is spread over the cores too and each file is parsed by one process only.
A task is a run of consecutive files, rendered per environment as one batch (engine.render_batch). The parent
renders the first file for every environment, which loads what rendering needs (lazy imports, compiled
templates, the SageMaker image registry, each environment's manifests, cost estimates and resolved values),
then forks one pool whose workers inherit all of it. A result is, per environment and file, the rendered
files (bytes) and index of the file's jobs and the error that stopped it, if any: nothing else crosses the
process boundary. The caller scans results in environment and file order, so the first error it meets is the
one a sequential render raises. Workers only compute: the parent writes everything (engine.write_tree), so
writing stays all-or-nothing.
"""

from __future__ import annotations

import gc
import multiprocessing
from pathlib import Path
from typing import Any

from jobs.config.environment import Environment
from jobs.errors import FtopsError
from jobs.render.definitions import JobVariant, load_variants, one_render
from jobs.render.engine import TARGETS, Documents, RenderedJob, RenderRun, render_batch
from jobs.render.images import preload_registry
from jobs.render.templating import environment

MIN_PARALLEL_JOBS = 32
"""Below this many (definition, environment) pairs, starting processes costs more than the cores win back
(~1 ms of work per job)."""

FileOutcome = tuple[list[RenderedJob], FtopsError | None]
"""The jobs one definition file rendered for one environment, and the error that stopped it (or None)."""

# Set in the parent just before forking; each worker reads (and fills the caches of) its inherited copy.
_work: tuple[list[Environment], list[Path], dict[str, RenderRun]] | None = None


def workers_for(units: int, workers: int | None = None) -> int:
    """How many processes render `units` (definition, environment) pairs: 1 (in-process) for small renders or
    without fork."""
    if units < MIN_PARALLEL_JOBS:  # before counting cores: that import is the only cost of a small render here
        return 1
    from jobs.data.validate import workers_available

    workers = workers or workers_available()
    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return min(workers, units)


def render_batch_of_files(files: list[Path], env: Environment, run: RenderRun) -> list[FileOutcome]:
    """Load `files`' jobs for `env` and render them as one batch; per file, its jobs up to its first error."""
    loaded: list[tuple[list[JobVariant], FtopsError | None]] = []
    for path in files:
        try:
            loaded.append((load_variants(path, env.name), None))
        except FtopsError as err:
            loaded.append(([], err))
    results = iter(render_batch([variant for variants, _ in loaded for variant in variants], env, run))
    outcomes: list[FileOutcome] = []
    for variants, error in loaded:
        rendered: list[RenderedJob] = []
        for _ in variants:  # every result of the file is taken, also those after its first error
            result = next(results)
            if error is None and isinstance(result, FtopsError):
                error = result
            elif error is None:
                rendered.append(result)
        outcomes.append((rendered, error))
    return outcomes


def render_files(envs: list[Environment], files: list[Path], workers: int = 1) -> dict[str, list[FileOutcome]]:
    """Each of `files` rendered for each of `envs`: per environment, one outcome per file, in file order."""
    runs: dict[str, RenderRun] = {}
    for env in envs:  # one set of peers: a production environment's promotion reuses its source's render
        runs[env.name] = RenderRun(env, peers=runs)
    try:
        with one_render():
            return _render_files(envs, files, workers, runs)
    finally:
        # The runs hold one another (their shared peers), and with them every job they rendered: unlinked, the
        # render's objects are freed as soon as the caller drops its results, instead of waiting for (and
        # costing) a full cyclic collection.
        runs.clear()


def _render_files(envs: list[Environment], files: list[Path], workers: int,
                  runs: dict[str, RenderRun]) -> dict[str, list[FileOutcome]]:
    if workers <= 1 or len(files) < 2:
        return {env.name: render_batch_of_files(files, env, runs[env.name]) for env in envs}
    global _work
    # Rendered before forking, the first file loads the lazy imports and caches that the workers then inherit.
    outcomes = {env.name: render_batch_of_files(files[:1], env, runs[env.name]) for env in envs}
    _preload()
    _work = (envs, files, runs)
    try:
        # A few tasks per worker keeps every core busy to the end; a task of many files renders as one batch.
        size = max(1, (len(files) - 1) // (workers * 4))
        tasks = [range(start, min(start + size, len(files))) for start in range(1, len(files), size)]
        # Workers run without the cyclic GC: each lives for this one render (what it leaves dies with it), and a
        # collection would walk, and so copy, the memory pages it shares with the parent.
        with multiprocessing.get_context("fork").Pool(workers, initializer=gc.disable) as pool:
            for per_env in pool.imap(_render_task, tasks):
                for env in envs:
                    outcomes[env.name].extend(
                        ([RenderedJob(index["name"], data, Documents(data), index) for data, index in results], error)
                        for results, error in per_env[env.name])
    finally:
        _work = None
    return outcomes


def _preload() -> None:
    """What the first file may not have loaded: the other provider's templates, the image registry."""
    for template, _ in TARGETS.values():
        environment().get_template(template)
    preload_registry()  # the SageMaker SDK import (~1.7 s); it also freezes the heap the workers share


def _render_task(positions: range) -> dict[str, list[tuple[list[tuple[dict[str, bytes], dict[str, Any]]],
                                                          FtopsError | None]]]:
    envs, files, runs = _work
    result = {}
    for env in envs:
        outcomes = render_batch_of_files([files[i] for i in positions], env, runs[env.name])
        result[env.name] = [([(job.files, job.index) for job in rendered], error) for rendered, error in outcomes]
    return result
