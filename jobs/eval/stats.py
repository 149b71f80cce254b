"""Bootstrap confidence intervals with a fixed seed: the same answers always give the same intervals.

Paired: the fine-tuned and base answers to the same examples are resampled with the same indices, so the
interval of their difference reflects the examples, not two independent draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from jobs.eval.examples import Example
from jobs.eval.metrics import Metric


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return {"value": round(self.value, 6), "low": round(self.low, 6), "high": round(self.high, 6)}


def _indices(n: int, resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def _bounds(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = (1 - confidence) / 2
    low, high = np.quantile(samples, [alpha, 1 - alpha])
    return float(low), float(high)


def _resampled(metric: Metric, predictions: Sequence[str], examples: Sequence[Example], idx: np.ndarray) -> np.ndarray:
    if metric.corpus is None:
        scores = np.asarray(metric.scores(predictions, examples), dtype=float)
        return scores[idx].mean(axis=1)
    return np.array([metric.corpus([predictions[i] for i in row], [examples[i] for i in row]) for row in idx])


def bootstrap(metric: Metric, predictions: Sequence[str], examples: Sequence[Example], *,
              resamples: int = 1000, confidence: float = 0.95, seed: int = 0) -> Interval:
    value = metric.value(predictions, examples)
    if len(examples) < 2:
        return Interval(value, value, value)
    low, high = _bounds(_resampled(metric, predictions, examples, _indices(len(examples), resamples, seed)), confidence)
    return Interval(value, low, high)


def paired_difference(metric: Metric, candidate: Sequence[str], baseline: Sequence[str], examples: Sequence[Example],
                      *, resamples: int = 1000, confidence: float = 0.95, seed: int = 0) -> Interval:
    """candidate - baseline on the same examples, with a paired bootstrap interval."""
    value = metric.value(candidate, examples) - metric.value(baseline, examples)
    if len(examples) < 2:
        return Interval(value, value, value)
    idx = _indices(len(examples), resamples, seed)
    diff = _resampled(metric, candidate, examples, idx) - _resampled(metric, baseline, examples, idx)
    low, high = _bounds(diff, confidence)
    return Interval(value, low, high)
