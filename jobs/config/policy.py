"""Policy an environment enforces on every job before anything is rendered (`ftops render` checks it)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from jobs.config.base import Declaration, Int

AzureTrainingType = Literal["Standard", "GlobalStandard", "Developer"]


class PolicySettings(Declaration):
    """Limits a job definition must respect in this environment; a violation names file, field and environment."""

    require_spot: bool = True
    """SageMaker jobs must use managed spot training (with checkpoints). Only prod should set this to false."""

    max_cost_per_job_usd: float | None = Field(None, gt=0)
    """Ceiling on the estimated cost of one job (a sweep counts each of its jobs); null means no ceiling."""

    required_tags: list[str] = ["cost-center"]
    """Tag keys every job must carry (from the job's `tags` or the environment's `tags`)."""

    max_instance_count: Int = Field(4, ge=1, le=64)
    """Most instances one SageMaker training job may use."""

    allowed_azure_training_types: list[AzureTrainingType] = ["Standard", "GlobalStandard", "Developer"]
    """Azure OpenAI training types jobs may use here (GlobalStandard may train outside the data's region)."""

    max_sweep_jobs: Int = Field(20, ge=1, le=500)
    """Most jobs one sweep may start (grid size, or a tuning job's max_jobs)."""

    allowed_s3_buckets: list[str] = []
    """Buckets (shell-style patterns, e.g. `acme-models-*`) a job's `base_model.s3_uri` may name besides the
    environment's own datasets, artifacts and checkpoints buckets. Empty (the default): only its own."""

    allowed_image_registries: list[str] = []
    """ECR registries (`ACCOUNT.dkr.ecr.REGION.amazonaws.com`, patterns allowed) a job's `compute.image_uri` may
    come from besides the environment's own account in its region and the AWS Deep Learning Containers
    registry of the pinned Hugging Face image in that region. Empty (the default): only those two."""
