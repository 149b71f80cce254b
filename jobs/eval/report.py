"""The evaluation report: Markdown (for pull requests and terminals) and one self-contained HTML page.

The HTML page has no external references: inline CSS, and the job's loss plot embedded as a base64 PNG,
so it can be attached to a pipeline run or mailed as it is.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from jobs.fsutil import atomic_write

ROLE_NAMES = {"fine_tuned": "fine-tuned", "base": "base"}


def _ci(score: dict[str, float]) -> str:
    return f"{score['value']:.3f} [{score['low']:.3f}, {score['high']:.3f}]"


def _delta(score: dict[str, float]) -> str:
    return f"{score['value']:+.3f} [{score['low']:+.3f}, {score['high']:+.3f}]"


def _md_cell(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    text = text if len(text) <= limit else text[:limit - 1] + "…"
    return text.replace("|", "\\|")


def markdown(ev: dict[str, Any]) -> str:
    gate = ev["gate"]
    conf = int(ev["bootstrap"]["confidence"] * 100)
    lines = [f"# Evaluation: {ev['job']} in {ev['env']}", "",
             f"Test split: {ev['examples']} examples" + (" (limited: a smoke test, not a verdict)" if ev["limited"] else "")
             + (f", dataset {ev['dataset_id']}" if ev.get("dataset_id") else ""),
             f"Fine-tuned: `{ev['targets']['fine_tuned']}`; base: `{ev['targets']['base']}`", "",
             f"**Gate: {'PASSED' if gate['passed'] else 'FAILED'}** on `{gate['metric']}`", ""]
    lines += [f"- {'✅' if c['passed'] else '❌'} {c['message']}" for c in gate["checks"]]
    lines += [f"- ⚠️ warning: {w}" for w in gate.get("warnings", [])]
    lines += ["", f"## Metrics ({conf}% bootstrap intervals, {ev['bootstrap']['resamples']} resamples, "
                  f"seed {ev['bootstrap']['seed']})", "",
              "| metric | fine-tuned | base | fine-tuned − base |", "|---|---|---|---|"]
    for name, row in ev["metrics"].items():
        lines.append(f"| {name} | {_ci(row['fine_tuned'])} | {_ci(row['base'])} | {_delta(row['delta'])} |")
    if ev.get("training_only_metrics"):
        lines += ["", f"Training metrics ({', '.join(ev['training_only_metrics'])}) come from the job's results: "
                      "`ftops jobs results`."]
    if ev["robustness"]:
        lines += ["", "## Robustness (drop from clean inputs; positive = worse)", "",
                  "| input set | metric | fine-tuned | drop | base | drop |", "|---|---|---|---|---|---|"]
        for variant, per_metric in ev["robustness"].items():
            for name, row in per_metric.items():
                lines.append(f"| {variant} | {name} | {row['fine_tuned']:.3f} | {row['drop_fine_tuned']:+.3f} | "
                             f"{row['base']:.3f} | {row['drop_base']:+.3f} |")
    if ev["worst"]:
        lines += ["", f"## Worst examples (by {ev['worst'][0]['metric']})", "",
                  "| id | prompt | expected | base answer | fine-tuned answer |", "|---|---|---|---|---|"]
        for w in ev["worst"]:
            lines.append(f"| {w['id']} | {_md_cell(w['prompt'])} | {_md_cell(w['expected'])} | "
                         f"{_md_cell(w['base'])} ({w['base_score']:.2f}) | "
                         f"{_md_cell(w['fine_tuned'])} ({w['fine_tuned_score']:.2f}) |")
    lines += ["", f"Requests: " + ", ".join(f"{ROLE_NAMES.get(r, r)} {s['asked']} asked, {s['reused']} reused"
                                            for r, s in ev["requests"].items()), ""]
    return "\n".join(lines)


CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1200px;color:#1b1f24;padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #d0d7de;padding-bottom:.3rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0}th,td{border:1px solid #d0d7de;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.num{font-variant-numeric:tabular-nums;white-space:nowrap}
.pass{color:#1a7f37;font-weight:600}.fail{color:#cf222e;font-weight:600}
.verdict{padding:.75rem 1rem;border-radius:6px;margin:1rem 0}.verdict.ok{background:#dafbe1}.verdict.no{background:#ffebe9}
pre{white-space:pre-wrap;word-break:break-word;margin:0;font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace}
.meta{color:#57606a}img{max-width:100%;border:1px solid #d0d7de}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def html_page(ev: dict[str, Any], loss_plot: Path | None = None) -> str:
    gate = ev["gate"]
    conf = int(ev["bootstrap"]["confidence"] * 100)
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Evaluation: {_e(ev['job'])} "
             f"({_e(ev['env'])})</title><style>{CSS}</style></head><body>",
             f"<h1>Evaluation: {_e(ev['job'])} in {_e(ev['env'])}</h1>",
             f"<p class=meta>{ev['examples']} test examples"
             + (" (limited: a smoke test, not a verdict)" if ev["limited"] else "")
             + f" · fine-tuned <code>{_e(ev['targets']['fine_tuned'])}</code>"
             f" · base <code>{_e(ev['targets']['base'])}</code></p>",
             f"<div class='verdict {'ok' if gate['passed'] else 'no'}'><strong>Gate "
             f"{'passed' if gate['passed'] else 'failed'}</strong> on <code>{_e(gate['metric'])}</code><ul>"]
    for c in gate["checks"]:
        parts.append(f"<li class={'pass' if c['passed'] else 'fail'}>{_e(c['message'])}</li>")
    for w in gate.get("warnings", []):
        parts.append(f"<li class=fail>warning: {_e(w)}</li>")
    parts.append("</ul></div>")
    parts.append(f"<h2>Metrics</h2><p class=meta>{conf}% bootstrap intervals ({ev['bootstrap']['resamples']} "
                 f"resamples, seed {ev['bootstrap']['seed']}).</p><table><tr><th>metric</th><th>fine-tuned</th>"
                 "<th>base</th><th>fine-tuned − base</th><th>what it measures</th></tr>")
    for name, row in ev["metrics"].items():
        parts.append(f"<tr><td>{_e(name)}</td><td class=num>{_ci(row['fine_tuned'])}</td>"
                     f"<td class=num>{_ci(row['base'])}</td><td class=num>{_delta(row['delta'])}</td>"
                     f"<td>{_e(row['description'])}</td></tr>")
    parts.append("</table>")
    if ev["robustness"]:
        parts.append("<h2>Robustness</h2><p class=meta>Scores on perturbed inputs and the out-of-domain set; "
                     "drop from clean inputs (positive = worse).</p><table><tr><th>input set</th><th>metric</th>"
                     "<th>fine-tuned</th><th>drop</th><th>base</th><th>drop</th></tr>")
        for variant, per_metric in ev["robustness"].items():
            for name, row in per_metric.items():
                parts.append(f"<tr><td>{_e(variant)}</td><td>{_e(name)}</td><td class=num>{row['fine_tuned']:.3f}</td>"
                             f"<td class=num>{row['drop_fine_tuned']:+.3f}</td><td class=num>{row['base']:.3f}</td>"
                             f"<td class=num>{row['drop_base']:+.3f}</td></tr>")
        parts.append("</table>")
    if loss_plot is not None and loss_plot.is_file():
        encoded = base64.b64encode(loss_plot.read_bytes()).decode()
        parts.append(f"<h2>Training and validation loss</h2><img alt='loss per step' "
                     f"src='data:image/png;base64,{encoded}'>")
    if ev["worst"]:
        parts.append(f"<h2>Worst examples</h2><p class=meta>Ranked by the fine-tuned model's "
                     f"{_e(ev['worst'][0]['metric'])}.</p><table><tr><th>prompt</th><th>expected</th>"
                     "<th>base answer</th><th>fine-tuned answer</th></tr>")
        for w in ev["worst"]:
            parts.append(f"<tr><td><pre>{_e(w['prompt'])}</pre><span class=meta>{_e(w['id'])}</span></td>"
                         f"<td><pre>{_e(w['expected'])}</pre></td>"
                         f"<td><pre>{_e(w['base'])}</pre><span class=meta>{w['base_score']:.2f}</span></td>"
                         f"<td><pre>{_e(w['fine_tuned'])}</pre><span class=meta>{w['fine_tuned_score']:.2f}</span></td></tr>")
        parts.append("</table>")
    parts.append("</body></html>\n")
    return "".join(parts)


def write_reports(ev: dict[str, Any], directory: Path, loss_plot: Path | None = None) -> dict[str, Path]:
    import orjson

    out = {"markdown": directory / "report.md", "html": directory / "report.html",
           "json": directory / "evaluation.json"}
    atomic_write(out["markdown"], markdown(ev))
    atomic_write(out["html"], html_page(ev, loss_plot))
    atomic_write(out["json"], orjson.dumps(ev, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
    return out
