"""Run a rendered SageMaker CreateTrainingJob request on this machine, without Docker (`ftops run-local`).

The runner is imported on first use: `jobs.runlocal.tiny_model` (the offline model builder that tests,
benchmarks and `ftops local seed-model` share) must not pull in the runner's config models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jobs.runlocal.runner import RunResult, run_training_job

__all__ = ["RunResult", "run_training_job"]


def __getattr__(name: str):
    if name in __all__:
        from jobs.runlocal import runner

        return getattr(runner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
