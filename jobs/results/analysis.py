"""What a training curve says: overfitting, the best checkpoint, and what managed spot saved."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SMOOTH_ABOVE = 20
"""More evaluation points than this (Azure logs a mini-batch validation loss every step) are averaged into
windows first, so noise alone never looks like a trend."""


@dataclass
class Overfitting:
    flagged: bool
    reason: str
    best_step: int | None = None
    best_valid_loss: float | None = None


def evaluations(rows: list[dict[str, float]]) -> list[tuple[int, float]]:
    """(step, validation loss) points: full-validation passes when there are enough, else every logged one."""
    full = [(int(r["step"]), r["full_valid_loss"]) for r in rows if r.get("full_valid_loss") is not None]
    if len(full) >= 3:
        return full
    points = [(int(r["step"]), r["valid_loss"]) for r in rows if r.get("valid_loss") is not None]
    if len(points) <= SMOOTH_ABOVE:
        return points
    size = len(points) // 10
    return [(points[i + size - 1][0], sum(v for _, v in points[i:i + size]) / size)
            for i in range(0, size * 10, size)]


def _slope(points: list[tuple[float, float]]) -> float:
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((x - mean_x) ** 2 for x, _ in points)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / var if var else 0.0


def detect_overfitting(rows: list[dict[str, float]], last: int = 3, min_rise: float = 0.01) -> Overfitting:
    """Flag when validation loss rose across the last `last` evaluations (by more than `min_rise`, relative)
    while training loss kept falling over the same steps."""
    evals = evaluations(rows)
    if not evals:
        return Overfitting(False, "no validation loss was logged")
    best_step, best = min(evals, key=lambda p: p[1])
    if len(evals) < last:
        return Overfitting(False, f"only {len(evals)} evaluations; need {last} to see a trend", best_step, best)
    tail = evals[-last:]
    rising = all(b[1] >= a[1] for a, b in zip(tail, tail[1:])) and tail[-1][1] > tail[0][1] * (1 + min_rise)
    train = [(int(r["step"]), r["train_loss"]) for r in rows
             if r.get("train_loss") is not None and tail[0][0] <= r["step"] <= tail[-1][0]]
    falling = len(train) >= 2 and _slope(train) < 0
    if rising and falling:
        return Overfitting(True, f"validation loss rose {tail[0][1]:.4f} -> {tail[-1][1]:.4f} over steps "
                                 f"{tail[0][0]}-{tail[-1][0]} while training loss fell; best was {best:.4f} at "
                                 f"step {best_step}", best_step, best)
    why = "validation loss is not rising" if not rising else "training loss is not falling either"
    return Overfitting(False, why, best_step, best)


def best_checkpoint(checkpoints: list[dict[str, Any]], overfitting: Overfitting) -> dict[str, Any] | None:
    """The deployable checkpoint with the lowest validation loss (else the one nearest the best step)."""
    if not checkpoints:
        return None
    scored = [c for c in checkpoints if c.get("full_valid_loss") is not None or c.get("valid_loss") is not None]
    if scored:
        return min(scored, key=lambda c: c.get("full_valid_loss") if c.get("full_valid_loss") is not None
                   else c["valid_loss"])
    if overfitting.best_step is not None:
        return min(checkpoints, key=lambda c: abs((c.get("step") or 0) - overfitting.best_step))
    return None


def spot_savings(training_seconds: int | None, billable_seconds: int | None, spot: bool) -> dict[str, Any] | None:
    """SageMaker managed spot: savings = 1 - billable / training seconds."""
    if not spot or not training_seconds or billable_seconds is None:
        return None
    return {"training_seconds": training_seconds, "billable_seconds": billable_seconds,
            "savings": round(1 - billable_seconds / training_seconds, 4)}
