"""Data-stage settings of an environment."""

from __future__ import annotations

from pydantic import Field, field_validator

from jobs.config.base import Declaration, Int

MAX_SEED = 2**31 - 1
"""Split seeds run 0..2**31-1, the range of a job definition's `hyperparameters.seed` (Azure OpenAI's fine-tuning
seed is an int32), so one number can seed both the split and the run; a larger one used to end in a traceback
when the manifest was written (orjson writes 64-bit integers only)."""


class DataSettings(Declaration):
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    """Default train/validation/test fractions for `ftops data prepare`; they must add up to 1."""

    seed: Int = Field(42, ge=0, le=MAX_SEED)
    """Default seed for the deterministic split (0 to 2147483647, like a job's `hyperparameters.seed`)."""

    s3_prefix: str = Field("datasets/", pattern=r"^([A-Za-z0-9._-]+/)*$")
    """Key prefix for datasets in the environment's S3 datasets bucket (ends with '/', or empty)."""

    blob_container: str = Field("training-data", pattern=r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
    """Blob container for training data in the environment's storage account."""

    upload_concurrency: Int = Field(8, ge=1, le=64)
    """Parallel part uploads for large files."""

    multipart_threshold_mb: Int = Field(64, ge=5, le=5_000)
    """Files larger than this are uploaded in parts (S3 multipart, Azure block blobs)."""

    price_overrides: dict[str, float] = {}
    """Per-environment price overrides, keyed like the price file (e.g. `azure-openai/gpt-4.1-mini/training_per_1m_tokens`)."""

    @field_validator("split")
    @classmethod
    def check_split_sums_to_one(cls, split: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(part < 0 for part in split) or abs(sum(split) - 1.0) > 1e-6:
            raise ValueError(f"split {list(split)} must be three non-negative fractions adding up to 1, e.g. [0.8, 0.1, 0.1]")
        if split[0] == 0:
            raise ValueError("the train fraction must be above 0")
        return split
