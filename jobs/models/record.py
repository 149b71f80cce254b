"""A model record: one trained artifact, where it came from, how it scored, who approved it and where it serves.

It answers an auditor's question "what serves in prod, and why": the artifact (a `model.tar.gz` with its
sha256, or an Azure fine-tuned model id with the account that trained it), the definition and its rendered
hash, the dataset, the base model, the training metrics, the evaluation that gated it, the approval, the
environments it was promoted through and the deployments that serve it.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Approval = Literal["PendingManualApproval", "Approved", "Rejected"]


class Artifact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["s3", "azure-model"]
    uri: str | None = None
    """`s3://bucket/key/model.tar.gz` (SageMaker)."""
    sha256: str | None = None
    bytes: int | None = None
    model_id: str | None = None
    """The fine-tuned model id (Azure OpenAI), e.g. `gpt-4.1-mini-2025-04-14.ft-abc`."""
    source_resource_id: str | None = None
    """The Azure OpenAI account that trained it (a deployment elsewhere names it as `properties.model.source`)."""
    checkpoint: str | None = None
    """A chosen checkpoint instead of the final model, if any."""

    def identity(self) -> str:
        """What makes two artifacts the same model: the bytes' digest, or the fine-tuned model id."""
        if self.kind == "s3":
            return f"sha256:{self.sha256}"
        return f"azure-model:{self.model_id}"

    @property
    def digest(self) -> str:
        """A short, stable id for storage keys."""
        return hashlib.sha256(self.identity().encode()).hexdigest()[:16]


class EvaluationSummary(BaseModel):
    model_config = ConfigDict(extra="ignore")

    fingerprint: str
    """Covers the evaluation settings, the test data, the artifact and the base target (see `fingerprint`)."""
    config_fingerprint: str
    dataset_id: str
    passed: bool
    reasons: list[str] = []
    warnings: list[str] = []
    metrics: dict[str, Any] = {}
    """Gate metric values: fine-tuned, base, delta."""
    evaluated_at: float
    env: str


class ApprovalRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: Approval = "PendingManualApproval"
    by: str | None = None
    """Who approved: the source environment's pipeline run (GitHub actor and run id) or a local user."""
    at: float | None = None
    reason: str | None = None
    env: str | None = None
    """The environment whose identity recorded the approval (where the model was trained and gated)."""
    evaluation: str | None = None
    """The evaluation fingerprint the approval rests on (its stored evaluation passed the gate)."""
    artifact: str | None = None
    """The artifact approved: `sha256:<digest>` of model.tar.gz, or `azure-model:<fine-tuned model id>`."""


class Serving(BaseModel):
    model_config = ConfigDict(extra="ignore")

    env: str
    where: str
    """The deployment or endpoint name."""
    at: float


class ModelRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")

    job: str
    """The job definition (variant) name."""
    env: str
    provider: str
    artifact: Artifact
    rendered_name: str | None = None
    training_job_id: str | None = None
    """The SageMaker job name or Azure `ftjob-...` that trained it (None for a promoted copy)."""
    definition: str
    definition_sha256: str
    rendered_sha256: str
    """The rendered job's idempotency key: sha256 of every rendered target."""
    dataset_id: str | None = None
    base_model: str
    metrics: dict[str, float] = {}
    """The training job's final metrics (losses, accuracy)."""
    evaluation: EvaluationSummary | None = None
    approval: ApprovalRecord = Field(default_factory=ApprovalRecord)
    promoted_from: dict[str, Any] | None = None
    """For a promoted copy: {env, record, artifact uri or model id, package arn}."""
    registry: dict[str, Any] | None = None
    """SageMaker Model Registry: {group, package_arn}."""
    serving: list[Serving] = []
    created_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)

    @property
    def approved(self) -> bool:
        return self.approval.status == "Approved"

    def summary(self) -> dict[str, Any]:
        """One row for `ftops models list`."""
        return {"job": self.job, "env": self.env, "provider": self.provider, "artifact": self.artifact.identity(),
                "approval": self.approval.status,
                "gate": None if self.evaluation is None else ("passed" if self.evaluation.passed else "failed"),
                "promoted_from": (self.promoted_from or {}).get("env"),
                "serving": [s.where for s in self.serving], "created_at": self.created_at}


def evaluation_fingerprint(config_fingerprint: str, dataset_id: str, artifact_identity: str | None,
                           base_spec: str | None, examples: int) -> str:
    """The evaluation of exactly this artifact, with these settings, on this data, against this base."""
    parts = [config_fingerprint, dataset_id, artifact_identity or "-", base_spec or "-", str(examples)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]
