"""What one evaluation computes, from the job definition's `evaluation` block (plus command-line choices).

Kept as a small frozen dataclass so the evaluation core does not depend on how job definitions are loaded
(tests and the benchmark build it directly).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from jobs.errors import ConfigError
from jobs.eval.targets.base import Generation


@dataclass(frozen=True)
class GateConfig:
    metric: str = "rougeL"
    """The metric that decides."""
    min_improvement: float = 0.0
    """Fine-tuned minus base must be at least this (absolute, on the metric's 0-1 scale)."""
    max_robustness_regression: float = 0.05
    """The fine-tuned model's drop from clean inputs under each perturbation may not exceed this."""
    max_out_of_domain_regression: float | None = None
    """The fine-tuned model's drop on the out-of-domain set may not exceed this (None: reported and warned
    about, not gated)."""


@dataclass(frozen=True)
class JudgeConfig:
    model: str
    """Deployment name of the judge model (in the same Azure OpenAI account)."""
    rubric: str


@dataclass(frozen=True)
class EvalConfig:
    metrics: tuple[str, ...] = ("rougeL", "exact_match")
    custom_metrics: tuple[str, ...] = ()
    classification: bool = False
    json_schema: dict[str, Any] | None = None
    perturbations: tuple[str, ...] = ()
    out_of_domain: bool = True
    """Also ask the shipped out-of-domain set (generative jobs only), reported next to the perturbations."""
    judge: JudgeConfig | None = None
    gate: GateConfig = field(default_factory=GateConfig)
    generation: Generation = field(default_factory=Generation)
    resamples: int = 1000
    confidence: float = 0.95
    seed: int = 0
    """Seeds the bootstrap and the perturbations: the same answers give the same report."""
    worst: int = 5
    """Worst examples shown side by side in the report."""
    limit: int | None = None
    """Evaluate only the first N test examples (a smoke test; the report says so)."""
    source: Path | None = None
    """The job definition file (for error messages)."""

    def fingerprint(self) -> str:
        """Changes when anything that changes the scores changes (promote reuses an evaluation only then)."""
        data = asdict(self)
        data.pop("source")
        data.pop("worst")
        return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()[:16]


def from_job(job: Any, source: Path | None = None, **overrides: Any) -> EvalConfig:
    """EvalConfig from a `JobDefinition` (its `evaluation` block), per-call overrides on top."""
    ev = job.evaluation
    schema = None
    schema_path = getattr(ev, "json_schema", None)
    if schema_path:
        from jobs import paths

        path = paths.project_root() / schema_path
        try:
            schema = orjson.loads(path.read_bytes())
        except (FileNotFoundError, orjson.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read the JSON Schema {schema_path}: {exc}", source=source,
                              field="evaluation.json_schema", hint="point it at a JSON Schema file in the repo") from None
    judge = JudgeConfig(ev.judge.model, ev.judge.rubric) if ev.judge else None
    config = EvalConfig(
        metrics=tuple(ev.metrics), custom_metrics=tuple(ev.custom_metrics),
        classification=getattr(job, "method", None) == "classification", json_schema=schema,
        perturbations=tuple(ev.robustness), out_of_domain=getattr(ev, "out_of_domain", True), judge=judge,
        gate=GateConfig(ev.gate.metric, ev.gate.min_improvement, ev.gate.max_robustness_regression,
                        getattr(ev.gate, "max_out_of_domain_regression", None)), source=source)
    return replace_config(config, **overrides)


def replace_config(config: EvalConfig, **overrides: Any) -> EvalConfig:
    from dataclasses import replace

    return replace(config, **{k: v for k, v in overrides.items() if v is not None})
