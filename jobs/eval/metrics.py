"""Metrics: per-example scores in [0, 1] (averaged) or corpus scores (macro-F1), all higher-is-better.

Built in (names as the job definition's `evaluation.metrics` writes them): exact_match, rougeL (the
rouge-score package), f1 (token-level F1 for generated answers, macro-F1 for classification jobs), token_f1,
macro_f1, accuracy, json_valid, json_schema. `loss` and `perplexity` are training metrics: they come from the
job's results (`ftops jobs results`), not from generated answers, and are listed as such in the report. Custom metrics are plain Python functions named by dotted path (`package.module:function` or
`package.module.function`), called as `fn(prediction, expected)` or `fn(prediction, expected, example)` and
returning a number (True/False count as 1/0).
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
import string
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jobs import paths
from jobs.errors import ConfigError
from jobs.eval.examples import Example

PerExample = Callable[[str, Example], float]
Corpus = Callable[[Sequence[str], Sequence[Example]], float]


@dataclass(frozen=True)
class Metric:
    name: str
    description: str
    per_example: PerExample | None = None
    """Score of one answer; the metric is their mean."""
    corpus: Corpus | None = None
    """Score of a whole answer set (for metrics that are not means, like macro-F1)."""

    def value(self, predictions: Sequence[str], examples: Sequence[Example]) -> float:
        if self.corpus is not None:
            return self.corpus(predictions, examples)
        scores = self.scores(predictions, examples)
        return sum(scores) / len(scores) if scores else 0.0

    def scores(self, predictions: Sequence[str], examples: Sequence[Example]) -> list[float]:
        assert self.per_example is not None
        return [float(self.per_example(p, e)) for p, e in zip(predictions, examples, strict=True)]


# --- text normalisation --------------------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.IGNORECASE)
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize_light(text: str) -> str:
    """Exact match and labels: case and runs of whitespace do not matter, everything else does."""
    return " ".join(text.split()).casefold()


def normalize_tokens(text: str) -> list[str]:
    """SQuAD-style tokens for F1: lower case, no punctuation, no articles."""
    return _ARTICLES.sub(" ", text.casefold().translate(_PUNCT)).split()


# --- built-in metrics ----------------------------------------------------------------------------

def exact_match(prediction: str, example: Example) -> float:
    return float(normalize_light(prediction) == normalize_light(example.expected))


def token_f1(prediction: str, example: Example) -> float:
    pred, gold = normalize_tokens(prediction), normalize_tokens(example.expected)
    if not pred or not gold:
        return float(pred == gold)
    common = sum((Counter(pred) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


@cache
def _rouge_scorer():
    try:
        from rouge_score import rouge_scorer
    except ImportError:
        raise ConfigError("the rouge_l metric needs the rouge-score package",
                          hint="install ftops with the eval extra: pip install 'finetune-ops[eval]'") from None
    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l(prediction: str, example: Example) -> float:
    return _rouge_scorer().score(example.expected, prediction)["rougeL"].fmeasure


def _parse_json(text: str) -> tuple[bool, Any]:
    try:
        return True, json.loads(text)
    except (ValueError, TypeError):
        return False, None


def json_valid(prediction: str, example: Example) -> float:
    return float(_parse_json(prediction.strip())[0])


def json_schema_metric(schema: dict[str, Any]) -> PerExample:
    """Conformance to `schema`: the answer parses as JSON and validates (invalid JSON scores 0)."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schema)

    def conforms(prediction: str, example: Example) -> float:
        ok, value = _parse_json(prediction.strip())
        return float(ok and validator.is_valid(value))

    return conforms


def _label(example: Example) -> str:
    return normalize_light(example.label if example.label is not None else example.expected)


def accuracy(prediction: str, example: Example) -> float:
    return float(normalize_light(prediction) == _label(example))


def macro_f1(predictions: Sequence[str], examples: Sequence[Example]) -> float:
    """Macro-F1 over the labels of the evaluated examples (an invented label only lowers recall)."""
    gold = [_label(e) for e in examples]
    pred = [normalize_light(p) for p in predictions]
    labels = sorted(set(gold))
    if not labels:
        return 0.0
    total = 0.0
    for label in labels:
        tp = sum(1 for g, p in zip(gold, pred) if g == label and p == label)
        fp = sum(1 for g, p in zip(gold, pred) if g != label and p == label)
        fn = sum(1 for g, p in zip(gold, pred) if g == label and p != label)
        total += 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)
    return total / len(labels)


BUILTIN: dict[str, Metric] = {
    "exact_match": Metric("exact_match", "answer equals the reference (ignoring case and whitespace)", exact_match),
    "token_f1": Metric("token_f1", "token-level F1 against the reference (SQuAD normalisation)", token_f1),
    "rougeL": Metric("rougeL", "ROUGE-L F-measure with stemming (rouge-score)", rouge_l),
    "json_valid": Metric("json_valid", "the answer parses as JSON", json_valid),
    "accuracy": Metric("accuracy", "predicted label equals the gold label", accuracy),
    "macro_f1": Metric("macro_f1", "macro-averaged F1 over the gold labels", corpus=macro_f1),
}
ALIASES = {"rouge_l": "rougeL", "rougel": "rougeL"}
TRAINING_ONLY = ("loss", "perplexity")
"""Named in job definitions but measured during training (validation loss), not on generated answers."""


# --- custom metrics by dotted path ---------------------------------------------------------------

def import_callable(dotted: str, *, source: Path | None = None, field: str | None = None) -> Callable[..., Any]:
    """`pkg.mod:fn` or `pkg.mod.fn`, importable from the project root (the fork) or the installed packages."""
    module_name, _, attr = dotted.partition(":") if ":" in dotted else dotted.rpartition(".")
    if not module_name or not attr:
        raise ConfigError(f"{dotted!r} is not a dotted path to a function", source=source, field=field,
                          hint="write it as package.module:function")
    root = str(paths.project_root())
    if root not in sys.path:
        sys.path.append(root)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import {module_name!r}: {exc}", source=source, field=field,
                          hint="the module must be importable from the project root") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ConfigError(f"{module_name!r} has no function {attr!r}", source=source, field=field,
                          hint="check the function name")
    return fn


def custom_metric(name: str, dotted: str, *, source: Path | None = None, field: str | None = None) -> Metric:
    fn = import_callable(dotted, source=source, field=field)
    try:
        takes_example = len(inspect.signature(fn).parameters) >= 3
    except (TypeError, ValueError):
        takes_example = False

    def score(prediction: str, example: Example) -> float:
        if takes_example:
            record = {"id": example.id, "messages": list(example.messages), "expected": example.expected,
                      "label": example.label, **example.extra}
            value = fn(prediction, example.expected, record)
        else:
            value = fn(prediction, example.expected)
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"custom metric {name!r} returned {value!r}, not a number", source=source,
                              field=field, hint=f"make {dotted} return a float") from None

    doc = (inspect.getdoc(fn) or "").split("\n")[0]
    return Metric(name, doc or f"custom metric {dotted}", score)


def custom_name(dotted: str) -> str:
    """A custom metric is named after its function (what the gate's `metric` refers to)."""
    return re.split(r"[:.]", dotted)[-1]


def resolve_metrics(names: Sequence[str], *, custom: Sequence[str] = (), classification: bool = False,
                    schema: dict[str, Any] | None = None, source: Path | None = None) -> list[Metric]:
    """The metrics an evaluation computes, in the order named, then the custom ones; unknown names fail."""
    metrics: list[Metric] = []
    custom_by_name = {custom_name(d): d for d in custom}
    for name in names:
        name = ALIASES.get(name, name)
        if name in TRAINING_ONLY or any(m.name == name for m in metrics):
            continue
        if name == "f1":
            base = BUILTIN["macro_f1" if classification else "token_f1"]
            metrics.append(Metric("f1", base.description, base.per_example, base.corpus))
        elif name == "json_schema":
            if schema is None:
                raise ConfigError("json_schema needs a JSON Schema", source=source, field="evaluation.metrics",
                                  hint="set evaluation.json_schema to a schema file, or drop json_schema")
            metrics.append(Metric("json_schema", "the answer conforms to the job's JSON Schema",
                                  json_schema_metric(schema)))
        elif name in BUILTIN:
            metrics.append(BUILTIN[name])
        elif name in custom_by_name:
            continue  # added below, once
        else:
            known = ", ".join([*BUILTIN, "f1", "json_schema", *custom_by_name])
            raise ConfigError(f"unknown metric {name!r}", source=source, field="evaluation.metrics",
                              hint=f"known metrics: {known}")
    for name, dotted in custom_by_name.items():
        metrics.append(custom_metric(name, dotted, source=source, field="evaluation.custom_metrics"))
    if not metrics:
        raise ConfigError("no metric to compute", source=source, field="evaluation.metrics",
                          hint="list at least one of exact_match, rougeL, f1, accuracy")
    return metrics
