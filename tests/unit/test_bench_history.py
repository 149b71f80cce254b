"""Benchmark figures are traceable: every run is appended to a history, and RESULTS.md's table comes from it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import history, report  # noqa: E402


def test_runs_append_and_the_table_quotes_the_latest_with_its_run_id(tmp_path, monkeypatch):
    monkeypatch.setattr(history, "RESULTS", tmp_path)
    monkeypatch.setattr(history, "HISTORY", tmp_path / "history.jsonl")
    monkeypatch.delenv("FTOPS_BENCH_DRY_RUN", raising=False)
    base = {"faults": {"rate_limit_per_s": 60}, "share_of_limit": 0.5, "sustained_requests_per_s": 30.0,
            "concurrency_16": {"requests_per_s": 30.5, "lost": 0, "duplicates": 0, "emulator_refused_429": 9},
            "goal_met": False}
    first = history.record("eval", base)
    second = history.record("eval", {**base, "share_of_limit": 0.97, "sustained_requests_per_s": 58.2,
                                     "goal_met": True})
    lines = (tmp_path / "history.jsonl").read_text().splitlines()
    assert [json.loads(line)["run_id"] for line in lines] == [first["run_id"], second["run_id"]]
    assert json.loads((tmp_path / "eval.json").read_text())["run_id"] == second["run_id"]

    table = report.table()
    row = next(line for line in table.splitlines() if line.startswith("| `bench_eval.py`"))
    assert "58.2 req/s sustained = 97% of the 60/s limit" in row and second["run_id"] in row and "| yes |" in row
    assert "| `bench_cli.py` | " in table and "no recorded run" in table


def test_a_dry_run_records_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(history, "RESULTS", tmp_path)
    monkeypatch.setattr(history, "HISTORY", tmp_path / "history.jsonl")
    monkeypatch.setenv("FTOPS_BENCH_DRY_RUN", "1")
    history.record("apply", {"goal_met": True})
    assert not (tmp_path / "history.jsonl").exists()


def test_a_cpu_training_run_meets_no_goal_and_a_copied_checkout_names_its_commit(tmp_path, monkeypatch):
    monkeypatch.setattr(history, "RESULTS", tmp_path)
    monkeypatch.setattr(history, "HISTORY", tmp_path / "history.jsonl")
    monkeypatch.delenv("FTOPS_BENCH_DRY_RUN", raising=False)
    monkeypatch.setenv("FTOPS_BENCH_COMMIT", "abc1234")  # a GPU machine's copy of the tree has no git history
    arms = {"trl": {"tokens_per_second": 100.0, "peak_gpu_bytes": None},
            "ftops": {"tokens_per_second": 400.0, "peak_gpu_bytes": None}}
    entry = history.record("train", {"results": arms, "speedup_tokens_per_second": 4.0, "heldout_loss_delta": -0.01,
                                     "device": "CPU (2 cores)", "goal_met": None})
    assert entry["commit"] == "abc1234"
    row = next(line for line in report.table().splitlines() if line.startswith("| `bench_train.py`"))
    assert "4.0x tokens/s" in row and "CPU smoke run" in row and "| - |" in row and entry["run_id"] in row

    gpu = history.record("train", {"results": arms, "speedup_tokens_per_second": 1.5, "heldout_loss_delta": 0.0,
                                   "device": "NVIDIA H200", "goal_met": True})
    history.record("train", {"results": arms, "speedup_tokens_per_second": 4.0, "heldout_loss_delta": -0.01,
                             "device": "CPU (2 cores)", "goal_met": None})
    row = next(line for line in report.table().splitlines() if line.startswith("| `bench_train.py`"))
    assert gpu["run_id"] in row and "on NVIDIA H200" in row and "| yes |" in row  # a later smoke run hides nothing


def test_every_recorded_benchmark_has_a_row_with_its_latest_run():
    table = report.table()
    for name in report.SUMMARY:
        recorded = history.runs(name)
        if recorded:
            row = next(line for line in table.splitlines() if line.startswith(f"| `bench_{name}.py`"))
            assert recorded[-1]["run_id"] in row


def test_every_benchmark_script_has_a_row():
    scripts = {path.stem.removeprefix("bench_") for path in (ROOT / "benchmarks").glob("bench_*.py")}
    assert scripts == set(report.SUMMARY)


def test_check_says_whether_the_committed_table_is_current(tmp_path, monkeypatch, capsys):
    assert report.main(["--check"]) == 0, "run python benchmarks/report.py and commit RESULTS.md"
    stale = tmp_path / "RESULTS.md"
    text = report.RESULTS_MD.read_text().replace("| `bench_render.py` |", "| `bench_render.py` (edited) |")
    stale.write_text(text)
    monkeypatch.setattr(report, "RESULTS_MD", stale)
    assert report.main(["--check"]) == 1
    assert stale.read_text() == text  # --check writes nothing
    assert "stale" in capsys.readouterr().err
    assert report.main([]) == 0 and report.main(["--check"]) == 0
