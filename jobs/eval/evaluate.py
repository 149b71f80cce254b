"""One evaluation: ask both models every question, score, bootstrap, measure robustness, apply the gate.

The result is a plain JSON-able dict (what `--json` prints, what `evaluation.json` holds, what the report
renders and what `ftops promote` reads back).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from jobs.errors import ConfigError, FtopsError
from jobs.eval import gate as gating
from jobs.eval.config import EvalConfig
from jobs.eval.examples import Example
from jobs.eval.judge import grading_sets, parse_grade
from jobs.eval.metrics import TRAINING_ONLY, Metric, resolve_metrics
from jobs.eval.perturb import CLEAN, OUT_OF_DOMAIN, perturbed_set
from jobs.eval.runner import RunStats, raise_on_failures, run_target
from jobs.eval.stats import bootstrap, paired_difference
from jobs.eval.store import AnswerStore
from jobs.eval.targets.base import Target

ROLES = ("fine_tuned", "base")
SCHEMA_VERSION = 1


@dataclass
class Targets:
    fine_tuned: Target
    base: Target
    judge: Target | None = None

    def by_role(self) -> dict[str, Target]:
        return {"fine_tuned": self.fine_tuned, "base": self.base}


def variant_sets(config: EvalConfig, examples: list[Example], ood: Sequence[Example] | None) -> dict[str, list[Example]]:
    sets = {CLEAN: examples}
    for name in config.perturbations:
        sets[name] = perturbed_set(examples, name, config.seed)
    if ood and config.out_of_domain and not config.classification:
        sets[OUT_OF_DOMAIN] = list(ood)
    return sets


def _predictions(store: AnswerStore, target: Target, variant: str, examples: Sequence[Example]) -> list[str]:
    out = []
    for example in examples:
        answer = store.get((target.identity, example.id, variant))
        if answer is None:  # run_target raised already if anything failed; this is a bug guard
            raise FtopsError(f"{target.identity}: no answer for {variant}/{example.id}")
        out.append(answer.text)
    return out


def _judge_metric(config: EvalConfig, targets: Targets, store: AnswerStore, examples: list[Example],
                  clean: dict[str, list[str]], batch: bool, on_answer: Callable[[str], None] | None) -> Metric:
    assert targets.judge is not None and config.judge is not None
    sets = grading_sets(examples, clean, config.judge.rubric)
    stats = run_target(targets.judge, sets, store, config.generation, batch=batch,
                       on_answer=(lambda: on_answer("judge")) if on_answer else None)
    raise_on_failures(targets.judge, stats)
    grades: dict[tuple[str, str], float] = {}
    for role, preds in clean.items():
        replies = _predictions(store, targets.judge, f"judge-{role}", sets[f"judge-{role}"])
        for example, pred, reply in zip(examples, preds, replies):
            grades[(example.id, pred)] = parse_grade(reply)
    return Metric("judge", f"LLM judge ({config.judge.model}) against the rubric",
                  lambda pred, ex: grades[(ex.id, pred)])


def evaluate(config: EvalConfig, examples: list[Example], targets: Targets, store: AnswerStore, *,
             job: str, env: str, dataset_id: str | None = None, ood: Sequence[Example] | None = None,
             batch: bool = False, on_answer: Callable[[str], None] | None = None) -> dict[str, Any]:
    started = time.monotonic()
    metrics = resolve_metrics(config.metrics, custom=config.custom_metrics, classification=config.classification,
                              schema=config.json_schema, source=config.source)
    if config.judge is not None and targets.judge is None:
        raise ConfigError("the job names a judge but no judge target was given", source=config.source,
                          field="evaluation.judge")
    sets = variant_sets(config, examples, ood)
    requests: dict[str, dict[str, int]] = {}
    for role, target in targets.by_role().items():
        stats: RunStats = run_target(target, sets, store, config.generation, batch=batch,
                                     on_answer=(lambda role=role: on_answer(role)) if on_answer else None)
        raise_on_failures(target, stats)
        requests[role] = {"asked": stats.answered, "reused": stats.reused}
    answers = {role: {variant: _predictions(store, t, variant, exs) for variant, exs in sets.items()}
               for role, t in targets.by_role().items()}
    if targets.judge is not None and config.judge is not None:
        clean = {role: answers[role][CLEAN] for role in ROLES}
        metrics.append(_judge_metric(config, targets, store, examples, clean, batch, on_answer))

    boot = {"resamples": config.resamples, "confidence": config.confidence, "seed": config.seed}
    scores: dict[str, Any] = {}
    for metric in metrics:
        ft, base = answers["fine_tuned"][CLEAN], answers["base"][CLEAN]
        scores[metric.name] = {
            "description": metric.description,
            "fine_tuned": bootstrap(metric, ft, examples, **boot).as_dict(),
            "base": bootstrap(metric, base, examples, **boot).as_dict(),
            "delta": paired_difference(metric, ft, base, examples, **boot).as_dict(),
        }

    robustness: dict[str, Any] = {}
    for variant, exs in sets.items():
        if variant == CLEAN:
            continue
        robustness[variant] = {}
        for metric in metrics:
            if metric.name == "judge":
                continue  # the judge grades clean answers only (its cost grows with every variant)
            row = {}
            for role in ROLES:
                value = metric.value(answers[role][variant], exs)
                row[role] = round(value, 6)
                row[f"drop_{role}"] = round(scores[metric.name][role]["value"] - value, 6)
            robustness[variant][metric.name] = row

    result: dict[str, Any] = {
        "version": SCHEMA_VERSION,
        "job": job, "env": env, "dataset_id": dataset_id,
        "config_fingerprint": config.fingerprint(),
        "examples": len(examples), "limited": config.limit is not None,
        "targets": {role: t.identity for role, t in targets.by_role().items()}
        | ({"judge": targets.judge.identity} if targets.judge else {}),
        "bootstrap": boot,
        "metrics": scores,
        "training_only_metrics": [m for m in config.metrics if m in TRAINING_ONLY],
        "robustness": robustness,
        "worst": worst_examples(metrics, config, examples, answers),
        "requests": requests,
        "seconds": round(time.monotonic() - started, 2),
    }
    result["gate"] = gating.decide(config.gate, result, source=config.source)
    return result


def worst_examples(metrics: list[Metric], config: EvalConfig, examples: list[Example],
                   answers: dict[str, dict[str, list[str]]]) -> list[dict[str, Any]]:
    """The clean examples where the fine-tuned model does worst (ties: where it loses most to the base)."""
    ranker = next((m for m in metrics if m.name == config.gate.metric and m.per_example), None) \
        or next((m for m in metrics if m.per_example), None)
    if ranker is None or config.worst <= 0:
        return []
    ft = ranker.scores(answers["fine_tuned"][CLEAN], examples)
    base = ranker.scores(answers["base"][CLEAN], examples)
    order = sorted(range(len(examples)), key=lambda i: (ft[i], ft[i] - base[i], examples[i].id))
    return [{"id": examples[i].id, "metric": ranker.name, "fine_tuned_score": round(ft[i], 4),
             "base_score": round(base[i], 4), "prompt": examples[i].prompt_text, "expected": examples[i].expected,
             "fine_tuned": answers["fine_tuned"][CLEAN][i], "base": answers["base"][CLEAN][i]}
            for i in order[:config.worst]]
