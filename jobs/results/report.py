"""Write a job's results: `metrics.csv`, `loss.png` and `summary.json` in one directory."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict
from pathlib import Path
from typing import Any

import orjson

from jobs.fsutil import atomic_write, atomic_writer, ensure_owned_dir
from jobs.providers.base import JobStatus, Metrics
from jobs.results.analysis import Overfitting, best_checkpoint, detect_overfitting, evaluations, spot_savings

COLUMNS = ["step", "epoch", "train_loss", "valid_loss", "full_valid_loss", "train_accuracy", "valid_accuracy",
           "learning_rate"]


RESULTS_KIND = "job results"
RESULTS_FILES = frozenset({"metrics.csv", "loss.png", "summary.json"})


def write_csv(rows: list[dict[str, float]], path: Path) -> None:
    present = [c for c in COLUMNS if any(c in row for row in rows)] or ["step"]
    extra = sorted({k for row in rows for k in row} - set(COLUMNS))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=present + extra, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, buffer.getvalue())


def plot(rows: list[dict[str, float]], overfitting: Overfitting, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only; never a display
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 4.5), dpi=110)
    train = [(r["step"], r["train_loss"]) for r in rows if r.get("train_loss") is not None]
    if train:
        axes.plot(*zip(*train), label="training loss", color="#1f77b4", linewidth=1.2)
    raw_valid = [(r["step"], r["valid_loss"]) for r in rows if r.get("valid_loss") is not None]
    evals = evaluations(rows)
    if raw_valid and len(raw_valid) != len(evals):
        axes.plot(*zip(*raw_valid), color="#ff7f0e", alpha=0.25, linewidth=0.8)
    if evals:
        axes.plot(*zip(*evals), "o-", label="validation loss", color="#ff7f0e", linewidth=1.5, markersize=4)
    if overfitting.best_step is not None:
        axes.axvline(overfitting.best_step, color="#2ca02c", linestyle="--", linewidth=1,
                     label=f"best validation (step {overfitting.best_step})")
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.set_title(title + ("  [overfitting]" if overfitting.flagged else ""),
                   color="#d62728" if overfitting.flagged else "black")
    axes.grid(alpha=0.3)
    if train or evals:
        axes.legend()
    figure.tight_layout()
    with atomic_writer(path) as handle:
        figure.savefig(handle, format="png")
    plt.close(figure)


def last_step(rows: list[dict[str, float]]) -> int:
    """The last step trained: rows are metric lines (a loss every `logging_steps`), not steps."""
    return max((int(r["step"]) for r in rows if r.get("step") is not None), default=0)


def final_values(rows: list[dict[str, float]]) -> dict[str, float]:
    """Each metric's last value: the last row often holds only an evaluation, or only a training loss."""
    final: dict[str, float] = {}
    for row in rows:
        final.update({k: v for k, v in row.items() if k != "step" and v is not None})
    return final


def write_results(status: JobStatus, metrics: Metrics, out_dir: Path, title: str) -> dict[str, Any]:
    # Only into a folder ftops made for results: `--out ~` must not overwrite a user's summary.json.
    ensure_owned_dir(out_dir, RESULTS_KIND, field="--out", own_files=RESULTS_FILES)
    overfitting = detect_overfitting(metrics.rows)
    best = best_checkpoint(metrics.checkpoints, overfitting)
    csv_path, png_path, summary_path = out_dir / "metrics.csv", out_dir / "loss.png", out_dir / "summary.json"
    write_csv(metrics.rows, csv_path)
    plot(metrics.rows, overfitting, title, png_path)
    summary = {
        "job": title, "job_id": status.job_id, "provider": status.provider, "state": status.state,
        "model": status.model, "source": metrics.source, "steps": last_step(metrics.rows),
        "final": final_values(metrics.rows),
        "overfitting": asdict(overfitting), "best_checkpoint": best, "checkpoints": metrics.checkpoints,
        "spot": spot_savings(status.training_seconds, status.billable_seconds, status.spot),
        "files": {"csv": str(csv_path), "png": str(png_path), "summary": str(summary_path)},
    }
    atomic_write(summary_path, orjson.dumps(summary, option=orjson.OPT_INDENT_2) + b"\n")
    return summary
