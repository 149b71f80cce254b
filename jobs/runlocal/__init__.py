"""Run a rendered SageMaker CreateTrainingJob request on this machine, without Docker (`ftops run-local`)."""

from jobs.runlocal.runner import RunResult, run_training_job

__all__ = ["RunResult", "run_training_job"]
