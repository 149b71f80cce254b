"""The evaluation core with in-memory targets: gate verdicts, resume from the store, the reports."""

from __future__ import annotations

import base64
import re
import threading

import pytest

from jobs.errors import CloudError, ConfigError
from jobs.eval.config import EvalConfig, GateConfig
from jobs.eval.evaluate import Targets, evaluate
from jobs.eval.examples import Example
from jobs.eval.gate import decide
from jobs.eval.report import html_page, markdown, write_reports
from jobs.eval.store import Answer, AnswerStore
from jobs.eval.targets.base import Generation, Target

ISSUES = {"printer is jammed": "Open tray two and remove the paper.",
          "forgot my password": "Use the self-service portal to reset it.",
          "vpn drops hourly": "Update the VPN client and renew your certificate.",
          "screen flickers": "Update the display driver and check the cable."}


def examples(n: int = 20) -> list[Example]:
    items = list(ISSUES.items())
    return [Example(f"{i:05d}-t", ({"role": "system", "content": "You are the IT help desk. Be brief."},
                                   {"role": "user", "content": f"Ticket {i}: my {items[i % 4][0]}."}),
                    items[i % 4][1]) for i in range(n)]


class Memorised(Target):
    """Knows the answer when the issue appears in the prompt (case-insensitively): a model that learned the task."""

    kind = "fake"
    concurrency = 4

    def __init__(self, name: str = "ft", fail_first: int = 0) -> None:
        self.name, self.calls, self.fail_first = name, 0, fail_first
        self._lock = threading.Lock()

    @property
    def identity(self) -> str:
        return f"fake:{self.name}"

    def answer(self, messages, generation: Generation) -> Answer:
        with self._lock:
            self.calls += 1
            if self.calls <= self.fail_first:
                raise CloudError("transient outage")
        prompt = " ".join(" ".join(m["content"] for m in messages).split()).lower()
        return Answer(next((a for q, a in ISSUES.items() if q in prompt), "I do not know."))


class Generic(Memorised):
    """A base model: polite, generic, never the reference."""

    def answer(self, messages, generation):
        with self._lock:
            self.calls += 1
        return Answer("Please contact the IT help desk for assistance with your issue.")


CONFIG = EvalConfig(metrics=("rougeL", "exact_match", "f1"), perturbations=("case", "whitespace"),
                    gate=GateConfig("exact_match", 0.5, 0.1), out_of_domain=False)


def run(tmp_path, config=CONFIG, ft=None, base=None, exs=None):
    with AnswerStore(tmp_path / "answers.jsonl") as store:
        return evaluate(config, exs or examples(), Targets(ft or Memorised(), base or Generic("base")), store,
                        job="helpdesk", env="local")


def test_a_model_that_learned_the_task_passes_the_gate(tmp_path):
    result = run(tmp_path)
    assert result["gate"]["passed"], result["gate"]["reasons"]
    em = result["metrics"]["exact_match"]
    assert em["fine_tuned"]["value"] == 1.0 and em["base"]["value"] == 0.0
    assert em["delta"]["low"] > 0.5
    assert result["robustness"]["case"]["exact_match"]["drop_fine_tuned"] == 0.0


def test_a_model_that_did_not_learn_fails_naming_metric_and_numbers(tmp_path):
    result = run(tmp_path, ft=Generic("ft"))
    gate = result["gate"]
    assert not gate["passed"]
    assert gate["reasons"] == ["exact_match: fine-tuned 0.000 vs base 0.000 (+0.000), below the required +0.500"]


def test_a_model_that_breaks_under_perturbation_fails_the_robustness_check(tmp_path):
    class CaseSensitive(Memorised):
        def answer(self, messages, generation):
            prompt = " ".join(" ".join(m["content"] for m in messages).split())
            return Answer(next((a for q, a in ISSUES.items() if q in prompt), "I do not know."))

    result = run(tmp_path, ft=CaseSensitive())
    assert not result["gate"]["passed"]
    [reason] = result["gate"]["reasons"]
    assert reason.startswith("exact_match under case: fine-tuned drops") and "over the allowed 0.100" in reason


def test_gate_on_a_metric_not_computed_is_a_config_error(tmp_path):
    config = EvalConfig(metrics=("rougeL",), gate=GateConfig("accuracy"), out_of_domain=False)
    with pytest.raises(ConfigError, match="evaluation.gate.metric: the gate's metric 'accuracy' is not computed"):
        run(tmp_path, config=config)


def test_an_interrupted_evaluation_resumes_without_asking_again(tmp_path):
    ft = Memorised(fail_first=7)
    with pytest.raises(CloudError, match=r"7 request\(s\) failed"):
        run(tmp_path, ft=ft, base=Generic("base"))
    asked_first = ft.calls
    again_ft, again_base = Memorised(), Generic("base")
    result = run(tmp_path, ft=again_ft, base=again_base)
    assert again_ft.calls == 7  # only the failed ones; everything that arrived was kept
    assert again_base.calls == 60  # the base model's turn never came in the interrupted run
    assert asked_first == 60
    assert result["requests"]["fine_tuned"] == {"asked": 7, "reused": 53}
    lines = (tmp_path / "answers.jsonl").read_text().splitlines()
    keys = [re.search(r'"target":"([^"]+)","id":"([^"]+)","variant":"([^"]+)"', line).groups() for line in lines]
    assert len(keys) == len(set(keys)) == 120  # 20 examples x 3 input sets x 2 models, none twice


def test_a_torn_last_line_is_asked_again(tmp_path):
    run(tmp_path)
    path = tmp_path / "answers.jsonl"
    data = path.read_bytes()
    path.write_bytes(data[:-20])  # the last answer was cut off mid-write by a kill
    base = Generic("base")
    with AnswerStore(path) as store:
        assert store.torn_lines == 1
        evaluate(CONFIG, examples(), Targets(Memorised(), base), store, job="helpdesk", env="local")
    assert base.calls == 1


def test_reports_show_verdict_cis_and_worst_examples_side_by_side(tmp_path):
    result = run(tmp_path, ft=Generic("ft"))
    png = b"\x89PNG\r\n\x1a\nfake"
    (tmp_path / "loss.png").write_bytes(png)
    paths = write_reports(result, tmp_path / "report", tmp_path / "loss.png")
    md = paths["markdown"].read_text()
    assert "**Gate: FAILED** on `exact_match`" in md
    assert re.search(r"\| exact_match \| 0\.000 \[0\.000, 0\.000\] \| 0\.000 \[0\.000, 0\.000\] \|", md)
    assert "| prompt | expected | base answer | fine-tuned answer |" in md
    page = paths["html"].read_text()
    assert f"data:image/png;base64,{base64.b64encode(png).decode()}" in page
    assert "http://" not in page and "https://" not in page and "<link" not in page and "<script" not in page
    assert "Open tray two and remove the paper." in page
    assert html_page(result).count("<tr>") > 5 and markdown(result).startswith("# Evaluation: helpdesk in local")


def test_decide_refuses_with_all_failed_checks():
    evaluation = {"metrics": {"rougeL": {"fine_tuned": {"value": 0.6}, "base": {"value": 0.5},
                                         "delta": {"value": 0.1, "low": 0.02, "high": 0.18}}},
                  "robustness": {"typos": {"rougeL": {"fine_tuned": 0.4, "drop_fine_tuned": 0.2}},
                                 "out_of_domain": {"rougeL": {"fine_tuned": 0.1, "drop_fine_tuned": 0.5}}}}
    verdict = decide(GateConfig("rougeL", 0.2, 0.05), evaluation)
    assert verdict["reasons"] == [
        "rougeL: fine-tuned 0.600 vs base 0.500 (+0.100), below the required +0.200",
        "rougeL under typos: fine-tuned drops 0.200 from clean (0.600 -> 0.400), over the allowed 0.050"]
