"""The one metric-line format the training script prints and the rendered MetricDefinitions match.

A line looks like: `ftops-metrics step=120 epoch=1.5 train_loss=0.8123 learning_rate=0.0002`.
transformers 5 prints its own log dicts with quoted values, so we never rely on those lines.
This module must stay importable without torch: the renderer imports it.
"""

from __future__ import annotations

import re

PREFIX = "ftops-metrics"

METRICS: dict[str, str] = {
    "train_loss": "training loss of the latest logging window",
    "eval_loss": "loss on the validation channel",
    "learning_rate": "current learning rate",
    "grad_norm": "gradient norm",
    "epoch": "fractional epoch",
    "tokens_per_second": "training throughput",
    "eval_accuracy": "classification accuracy on the validation channel",
    "eval_f1": "classification macro-F1 on the validation channel",
}

_NUMBER = r"(-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)"


def regex(name: str) -> str:
    """The MetricDefinitions regex for `name` (one capture group, as SageMaker requires)."""
    return rf"{PREFIX} .*\b{name}={_NUMBER}"


def metric_definitions() -> list[dict[str, str]]:
    return [{"Name": name, "Regex": regex(name)} for name in METRICS]


def format_line(step: int, values: dict[str, float]) -> str:
    parts = [f"step={step}"] + [f"{k}={float(v):.6g}" for k, v in values.items() if k in METRICS]
    return f"{PREFIX} " + " ".join(parts)


def parse_line(line: str) -> dict[str, float] | None:
    if not line.startswith(PREFIX + " "):
        return None
    out: dict[str, float] = {}
    for key, value in re.findall(r"(\w+)=" + _NUMBER, line):
        out[key] = float(value)
    return out
