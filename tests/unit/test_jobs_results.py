"""Results: overfitting on crafted curves, the best checkpoint, spot savings, CSV and PNG files."""

from __future__ import annotations

import csv

from jobs.providers.azure_openai import decode_results, parse_results
from jobs.providers.base import JobStatus, Metrics
from jobs.results.analysis import best_checkpoint, detect_overfitting, spot_savings
from jobs.results.report import write_results


def _curve(valid: list[float], train_start: float = 2.0) -> list[dict[str, float]]:
    rows = []
    for i, v in enumerate(valid):
        step = (i + 1) * 10
        rows.append({"step": step, "train_loss": train_start - 0.1 * i, "valid_loss": v})
    return rows


def test_rising_validation_with_falling_training_is_overfitting():
    result = detect_overfitting(_curve([1.9, 1.5, 1.2, 1.1, 1.15, 1.25, 1.4]))
    assert result.flagged and result.best_step == 40 and "rose" in result.reason


def test_a_curve_still_improving_is_not_overfitting():
    assert not detect_overfitting(_curve([1.9, 1.5, 1.3, 1.2, 1.15, 1.1])).flagged
    assert not detect_overfitting(_curve([1.9, 1.5])).flagged, "two points are no trend"


def test_validation_rising_with_training_rising_is_divergence_not_overfitting():
    rows = _curve([1.0, 1.1, 1.2, 1.3])
    for i, row in enumerate(rows):
        row["train_loss"] = 1.0 + 0.1 * i
    assert not detect_overfitting(rows).flagged


def test_noisy_per_step_validation_is_smoothed_before_judging():
    # 100 steps, valid loss falling with +-5% alternating noise: no trend once smoothed.
    rows = [{"step": s, "train_loss": 2 - s / 100, "valid_loss": (2 - s / 120) * (1.05 if s % 2 else 0.95)}
            for s in range(1, 101)]
    assert not detect_overfitting(rows).flagged


def test_best_checkpoint_is_lowest_validation_loss():
    checkpoints = [{"id": "a", "step": 10, "valid_loss": 1.3}, {"id": "b", "step": 20, "valid_loss": 1.1},
                   {"id": "c", "step": 30, "valid_loss": 1.2}]
    assert best_checkpoint(checkpoints, detect_overfitting([]))["id"] == "b"


def test_spot_savings():
    assert spot_savings(1000, 300, True) == {"training_seconds": 1000, "billable_seconds": 300, "savings": 0.7}
    assert spot_savings(1000, 1000, False) is None


def test_base64_results_csv_is_decoded():
    import base64

    text = "step,train_loss,train_mean_token_accuracy,valid_loss,valid_mean_token_accuracy,full_valid_loss\n" \
           "1,2.0,0.5,2.1,0.4,\n2,1.5,0.6,1.7,0.5,1.6\n"
    for raw in (text.encode(), base64.b64encode(text.encode())):
        rows = parse_results(decode_results(raw))
        assert rows == [{"step": 1, "train_loss": 2.0, "train_accuracy": 0.5, "valid_loss": 2.1, "valid_accuracy": 0.4},
                        {"step": 2, "train_loss": 1.5, "train_accuracy": 0.6, "valid_loss": 1.7, "valid_accuracy": 0.5,
                         "full_valid_loss": 1.6}]


def test_write_results_makes_csv_png_and_summary(tmp_path):
    rows = _curve([1.9, 1.5, 1.2, 1.1, 1.15, 1.25, 1.4])
    status = JobStatus(provider="sagemaker", job_id="faq-1", state="succeeded", provider_status="Completed",
                       training_seconds=600, billable_seconds=180, spot=True)
    summary = write_results(status, Metrics(rows=rows, source="test"), tmp_path, "faq")
    with open(tmp_path / "metrics.csv") as handle:
        assert len(list(csv.DictReader(handle))) == 7
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert summary["overfitting"]["flagged"] and summary["spot"]["savings"] == 0.7


def test_results_report_the_last_step_and_each_metrics_last_value(tmp_path):
    # A loss every 10 steps over a 12-step run, an evaluation at the end: 4 rows, not 4 steps.
    rows = [{"step": 1, "train_loss": 2.0}, {"step": 10, "train_loss": 1.5, "epoch": 0.4},
            {"step": 12, "valid_loss": 1.7}, {"step": 12, "epoch": 0.5}]
    status = JobStatus(provider="sagemaker", job_id="faq-1", state="succeeded", provider_status="Completed")
    summary = write_results(status, Metrics(rows=rows, source="test"), tmp_path, "faq")
    assert summary["steps"] == 12
    assert summary["final"] == {"train_loss": 1.5, "epoch": 0.5, "valid_loss": 1.7}


def test_azure_checkpoint_steps_are_integers(tmp_path, monkeypatch):
    # The API's checkpoint metrics carry `step` as a float; the report said "(step 60.0)".
    from types import SimpleNamespace

    from openai.types.fine_tuning.jobs import FineTuningJobCheckpoint

    from jobs.providers import azure_openai

    checkpoint = FineTuningJobCheckpoint.model_validate({
        "id": "ftchkpt-1", "object": "fine_tuning.job.checkpoint", "created_at": 1, "fine_tuning_job_id": "ftjob-1",
        "fine_tuned_model_checkpoint": "gpt-4.1-mini.ft-1:ckpt-step-60", "step_number": 60,
        "metrics": {"step": 60.0, "train_loss": 0.39, "valid_loss": 0.49, "full_valid_loss": 0.49}})
    api = SimpleNamespace(
        fine_tuning=SimpleNamespace(jobs=SimpleNamespace(
            retrieve=lambda job_id: SimpleNamespace(result_files=["file-1"], status="succeeded"),
            checkpoints=SimpleNamespace(list=lambda job_id: [checkpoint]))),
        files=SimpleNamespace(content=lambda file_id: SimpleNamespace(
            read=lambda: b"step,train_loss,valid_loss\n60,0.39,0.49\n")))
    monkeypatch.setattr(azure_openai, "client", lambda env: api)
    metrics = azure_openai.AzureOpenAI().metrics(None, "ftjob-1")
    status = JobStatus(provider="azure-openai", job_id="ftjob-1", state="succeeded", provider_status="succeeded")
    summary = write_results(status, metrics, tmp_path, "helpdesk")
    assert summary["best_checkpoint"]["step"] == 60 and isinstance(summary["best_checkpoint"]["step"], int)
    assert '"step": 60.0' not in (tmp_path / "summary.json").read_text()


def test_the_best_checkpoint_hint_deploys_in_the_same_environment_and_tree(ftops, monkeypatch, tmp_path):
    """The hint said `ftops deploy NAME --checkpoint ID`: run as shown, it deployed in `local` (the default)."""
    from jobs.apply.lookup import JobRef

    class Trained:
        def describe(self, env, job_id):
            return JobStatus(provider="azure-openai", job_id=job_id, state="succeeded", provider_status="succeeded")

        def metrics(self, env, job_id):
            return Metrics(rows=_curve([1.9, 1.5, 1.2, 1.1, 1.15, 1.25, 1.4]), source="test",
                           checkpoints=[{"id": "ftchkpt-a", "step": 4, "valid_loss": 1.1},
                                        {"id": "ftchkpt-b", "step": 7, "valid_loss": 1.4}])

    monkeypatch.setattr("jobs.apply.lookup.resolve", lambda env, job, directory: JobRef("azure-openai", "ftjob-1"))
    monkeypatch.setattr("jobs.providers.get", lambda name: Trained())
    tree = tmp_path / "my tree"
    result = ftops("jobs", "results", "faq", "--env", "dev", "--dir", tree, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    assert f"-> `ftops deploy ftjob-1 --env dev --dir '{tree}' --checkpoint ftchkpt-a`" in result.stdout
