"""The promotion gate: a fine-tuned model is promoted only if it beats its base by the required margin on
the gate metric and does not lose more than allowed under the robustness perturbations.

Every refusal names the metric and the numbers, e.g.
`rougeL: fine-tuned 0.412 vs base 0.405 (+0.007), below the required +0.020`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jobs.errors import ConfigError
from jobs.eval.config import GateConfig
from jobs.eval.perturb import OUT_OF_DOMAIN


def decide(gate: GateConfig, evaluation: dict[str, Any], *, source: Path | None = None) -> dict[str, Any]:
    """{passed, metric, checks: [{check, passed, message, ...numbers}], reasons: [messages of failed checks]}."""
    scores = evaluation["metrics"]
    if gate.metric not in scores:
        raise ConfigError(f"the gate's metric {gate.metric!r} is not computed", source=source,
                          field="evaluation.gate.metric",
                          hint=f"use one of {', '.join(scores)} or add it to evaluation.metrics")
    row = scores[gate.metric]
    ft, base, delta = row["fine_tuned"]["value"], row["base"]["value"], row["delta"]
    checks = [{
        "check": "improvement", "metric": gate.metric, "fine_tuned": ft, "base": base,
        "improvement": round(ft - base, 6), "required": gate.min_improvement,
        "improvement_ci": [delta["low"], delta["high"]],
        "passed": ft - base >= gate.min_improvement - 1e-12,
        "message": (f"{gate.metric}: fine-tuned {ft:.3f} vs base {base:.3f} ({ft - base:+.3f}), "
                    + ("meets" if ft - base >= gate.min_improvement - 1e-12 else "below")
                    + f" the required {gate.min_improvement:+.3f}"),
    }]
    warnings: list[str] = []
    for variant, per_metric in evaluation.get("robustness", {}).items():
        if gate.metric not in per_metric:
            continue
        row_v = per_metric[gate.metric]
        if "base" in row_v and row_v["fine_tuned"] < row_v["base"] - 1e-12:
            # Fine-tuning made the model worse than what it started from on these inputs: worth a human look
            # even where no threshold refuses it.
            warnings.append(f"{gate.metric} on {variant}: fine-tuned {row_v['fine_tuned']:.3f} is below the base "
                            f"model's {row_v['base']:.3f}")
        if variant == OUT_OF_DOMAIN:
            if gate.max_out_of_domain_regression is None:
                continue  # reported (and warned about), gated only when the definition sets a threshold
            drop = row_v["drop_fine_tuned"]
            ok = drop <= gate.max_out_of_domain_regression + 1e-12
            checks.append({
                "check": "out_of_domain", "metric": gate.metric, "clean": ft, "out_of_domain": row_v["fine_tuned"],
                "drop": drop, "allowed": gate.max_out_of_domain_regression, "passed": ok,
                "message": (f"{gate.metric} out of domain: fine-tuned drops {drop:.3f} from clean "
                            f"({ft:.3f} -> {row_v['fine_tuned']:.3f}), " + ("within" if ok else "over")
                            + f" the allowed {gate.max_out_of_domain_regression:.3f}"),
            })
            continue
        drop = per_metric[gate.metric]["drop_fine_tuned"]
        ok = drop <= gate.max_robustness_regression + 1e-12
        checks.append({
            "check": f"robustness:{variant}", "metric": gate.metric, "perturbation": variant,
            "clean": ft, "perturbed": per_metric[gate.metric]["fine_tuned"], "drop": drop,
            "allowed": gate.max_robustness_regression, "passed": ok,
            "message": (f"{gate.metric} under {variant}: fine-tuned drops {drop:.3f} from clean "
                        f"({ft:.3f} -> {per_metric[gate.metric]['fine_tuned']:.3f}), "
                        + ("within" if ok else "over") + f" the allowed {gate.max_robustness_regression:.3f}"),
        })
    failed = [c["message"] for c in checks if not c["passed"]]
    return {"passed": not failed, "metric": gate.metric, "min_improvement": gate.min_improvement,
            "max_robustness_regression": gate.max_robustness_regression,
            "max_out_of_domain_regression": gate.max_out_of_domain_regression, "checks": checks, "reasons": failed,
            "warnings": warnings}
