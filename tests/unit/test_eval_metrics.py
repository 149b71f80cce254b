"""Metrics, bootstrap intervals and perturbations: the numbers a user reads in the report."""

from __future__ import annotations

import pytest

from jobs.errors import ConfigError
from jobs.eval.examples import Example, parse_record
from jobs.eval.metrics import BUILTIN, json_schema_metric, macro_f1, resolve_metrics
from jobs.eval.perturb import PERTURBATIONS, perturb_example
from jobs.eval.stats import bootstrap, paired_difference


def ex(expected: str, label: str | None = None, i: int = 0, prompt: str = "q") -> Example:
    return Example(f"{i:05d}-x", ({"role": "user", "content": prompt},), expected, label=label)


def test_exact_match_ignores_case_and_whitespace_only():
    em = BUILTIN["exact_match"].per_example
    assert em("  Restart   the printer. ", ex("restart the printer.")) == 1.0
    assert em("Restart the printer", ex("restart the printer.")) == 0.0


def test_token_f1_partial_overlap():
    f1 = BUILTIN["token_f1"].per_example
    assert f1("reset your password", ex("Use the portal to reset your password.")) == pytest.approx(2 * 1 * 0.5 / 1.5)  # "the" is dropped: 3 of 6 gold tokens
    assert f1("nothing in common", ex("reset password")) == 0.0


def test_rouge_l_uses_the_package_with_stemming():
    rouge = BUILTIN["rougeL"].per_example
    assert rouge("restarting printers", ex("restart the printer")) > 0.7  # stemming matches restart/restarting
    assert rouge("completely different words", ex("restart the printer")) == 0.0


def test_json_validity_and_schema_conformance():
    schema = {"type": "object", "required": ["category"], "properties": {"category": {"enum": ["network", "account"]}}}
    conforms = json_schema_metric(schema)
    assert BUILTIN["json_valid"].per_example('{"category": "printer"}', ex("")) == 1.0
    assert BUILTIN["json_valid"].per_example("category: printer", ex("")) == 0.0
    assert conforms('{"category": "network"}', ex("")) == 1.0
    assert conforms('{"category": "printer"}', ex("")) == 0.0
    assert conforms("not json", ex("")) == 0.0


def test_accuracy_and_macro_f1_on_labels():
    examples = [ex("a", "network", 0), ex("b", "network", 1), ex("c", "account", 2), ex("d", "hardware", 3)]
    preds = ["Network", "account", "account", "hardware"]
    assert sum(BUILTIN["accuracy"].scores(preds, examples)) == 3
    # network: P=1 R=.5 F=.667; account: P=.5 R=1 F=.667; hardware: 1
    assert macro_f1(preds, examples) == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)


def test_f1_means_macro_f1_for_classification_and_token_f1_otherwise():
    gen = resolve_metrics(["f1"])[0]
    cls = resolve_metrics(["f1"], classification=True)[0]
    assert gen.per_example is not None and cls.corpus is not None


def test_custom_metric_by_dotted_path(tmp_path, monkeypatch):
    pkg = tmp_path / "mymetrics.py"
    pkg.write_text("def mentions_portal(prediction, reference):\n    '''Says portal.'''\n"
                   "    return 'portal' in prediction\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    metric = resolve_metrics(["exact_match"], custom=["mymetrics:mentions_portal"])[-1]
    assert metric.name == "mentions_portal"
    assert metric.value(["use the portal", "call us"], [ex("x"), ex("y", i=1)]) == 0.5


def test_unknown_metric_names_the_known_ones():
    with pytest.raises(ConfigError, match="unknown metric 'bleu'.*known metrics: exact_match"):
        resolve_metrics(["bleu"])


def test_bootstrap_interval_is_seeded_and_brackets_the_value():
    examples = [ex("yes", i=i) for i in range(40)]
    preds = ["yes" if i % 4 else "no" for i in range(40)]
    metric = BUILTIN["exact_match"]
    first = bootstrap(metric, preds, examples, seed=7)
    assert first == bootstrap(metric, preds, examples, seed=7)
    assert first.low < first.value == 0.75 < first.high
    assert first.high - first.low < 0.4


def test_paired_difference_of_a_clear_win_excludes_zero():
    examples = [ex("yes", i=i) for i in range(50)]
    better = ["yes"] * 45 + ["no"] * 5
    worse = ["yes"] * 10 + ["no"] * 40
    diff = paired_difference(BUILTIN["exact_match"], better, worse, examples)
    assert diff.value == pytest.approx(0.7) and diff.low > 0


def test_perturbations_are_deterministic_and_touch_only_the_prompt():
    example = parse_record({"messages": [
        {"role": "system", "content": "You are the IT help desk. Answer in one sentence. Be polite."},
        {"role": "user", "content": "Hi, this is alice. My laptop screen flickers constantly today."},
        {"role": "assistant", "content": "Update the display driver."}]}, 0, None, 1)
    for name in PERTURBATIONS:
        once, again = perturb_example(example, name, seed=1), perturb_example(example, name, seed=1)
        assert once == again, name
        assert once.messages != example.messages, name
        assert once.expected == example.expected and once.id == example.id
    reordered = perturb_example(example, "reorder", seed=1)
    assert reordered.messages[1] == example.messages[1]  # the system instructions are shuffled, not the question
    assert sorted(reordered.messages[0]["content"].split()) == sorted(example.messages[0]["content"].split())
