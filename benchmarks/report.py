"""Regenerate the summary table of benchmarks/RESULTS.md from the recorded runs (results/history.jsonl).

Each row is the latest run of one benchmark that its goal applies to (or the latest, if none does): its figure, the goal that applies to that figure, whether it was
met, and the run it comes from (`run_id`, commit, time), so nothing in the table is typed by hand. A benchmark
with no recorded run says so. The prose sections below the table are commentary and keep their own dates.

    python benchmarks/report.py            # rewrite the table
    python benchmarks/report.py --check    # exit 1 if the table differs from the recorded runs; writes nothing
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.history import runs  # noqa: E402

RESULTS_MD = Path(__file__).resolve().parent / "RESULTS.md"
START, END = "<!-- summary:start (benchmarks/report.py writes this table) -->", "<!-- summary:end -->"


def _cli(run: dict) -> str:
    rows = {r["command"]: r for r in run["commands"]}
    shown = [f"{name} {rows[name]['median_s']:.2f} s / {rows[name]['peak_rss_mb']:.0f} MB"
             for name in ("render", "diff", "--version", "plan --env local") if name in rows]
    base = rows.get("baseline: python -c pass")
    first = rows.get("render", {}).get("first_run_peak_rss_mb")  # runs since the peak excludes the cold first run
    cold = f"; render's cold first run (token counts not yet cached) {first:.0f} MB" if first is not None else ""
    return "; ".join(shown) + cold + (f" (interpreter alone {base['median_s']:.2f} s)" if base else "")


def _eval(run: dict) -> str:
    concurrent = next(v for k, v in run.items() if k.startswith("concurrency_"))
    return (f"{run.get('sustained_requests_per_s', concurrent['requests_per_s'])} req/s sustained = "
            f"{run['share_of_limit']:.0%} of the "
            f"{run['faults']['rate_limit_per_s']}/s limit; lost {concurrent['lost']}, duplicated "
            f"{concurrent['duplicates']}; 429s {concurrent['emulator_refused_429']}")


def _render(run: dict) -> str:
    return (f"{run['ratio_cpu_single_process']}x CPU, one process ({run['definitions']} definitions x "
            f"{len(run['environments'])} environments); wall on {run['ftops_workers']} processes {run['ratio']}x")


def _apply(run: dict) -> str:
    dup = {k: run["duplicates_after_timed_applies"][k] + run["duplicates_after_concurrent_reapply"][k]
           for k in run["duplicates_after_timed_applies"]}
    return (f"{run['speedup']}x ({run['jobs']} jobs, median of {run['rounds']} alternating rounds); duplicates "
            + ", ".join(f"{k} {v}" for k, v in dup.items()))


def _validate(run: dict) -> str:
    size_mb = run["bytes"] / 1e6
    peak = run["approaches"].get("ftops", {}).get("peak_mb")
    return (f"{run['ftops_cpu_over_bound_cpu']}x CPU ({size_mb:,.0f} MB, {run['cores']} cores); ftops peak {peak} MB; "
            f"tokens equal: {run['tokens_equal']}" + ("" if size_mb >= 1000 else "; no 1 GB run recorded yet"))


def _train(run: dict) -> str:
    arms = run["results"]
    memory = "; ".join(f"{arm} peak {r['peak_gpu_bytes'] / 2**30:.1f} GiB" for arm, r in arms.items()
                       if r.get("peak_gpu_bytes"))
    return (f"{run['speedup_tokens_per_second']}x tokens/s (ftops {arms['ftops']['tokens_per_second']:,.0f} vs TRL "
            f"{arms['trl']['tokens_per_second']:,.0f}), held-out loss delta {run['heldout_loss_delta']:+.4f} on "
            f"{run['device']}" + (f"; {memory}" if memory else "")
            + ("" if run.get("goal_met") is not None else " (CPU smoke run: the goal is for a GPU)"))


def _synth(run: dict) -> str:
    median = run["median_s"]
    return (f"{run['ratio']}x wall ({median['all_environments']:.2f} s for {run['stacks']} stacks vs "
            f"{median['minimal_one_bucket']:.2f} s), CPU {run['cpu_ratio']}x; median of {run['runs']} alternating runs")


SUMMARY = {
    "cli": ("`bench_cli.py`", "render and diff of the shipped definitions < 0.5 s and < 120 MB each", _cli),
    "eval": ("`bench_eval.py`", ">= 90% of the enforced rate limit, nothing lost or duplicated", _eval),
    "render": ("`bench_render.py`", "<= 2x bare Jinja in CPU time, one process", _render),
    "validate": ("`bench_validate.py`", "<= 1.2x the tokenizer bound in CPU time; < 300 MB at 1 GB", _validate),
    "apply": ("`bench_apply.py`", ">= 4x one at a time (wall, median), no duplicate on either provider", _apply),
    "train": ("`bench_train.py`", ">= 1.3x plain TRL's tokens/s on a GPU, held-out loss no worse", _train),
    "synth": ("`bench_synth.py`", "<= 1.5x a one-bucket CDK app (wall, median), every environment", _synth),
}


def table() -> str:
    lines = ["| benchmark | goal (on the figure shown) | latest recorded figure | met | run |",
             "| --- | --- | --- | --- | --- |"]
    for name, (label, goal, describe) in SUMMARY.items():
        recorded = runs(name)
        if not recorded:
            lines.append(f"| {label} | {goal} | no recorded run | - | - |")
            continue
        # The latest run the goal applies to (a CPU run of bench_train is a smoke test), else the latest.
        run = next((r for r in reversed(recorded) if r.get("goal_met") is not None), recorded[-1])
        met = {True: "yes", False: "no"}.get(run.get("goal_met"), "-")
        lines.append(f"| {label} | {goal} | {describe(run)} | {met} | `{run['run_id']}` {run.get('commit') or '?'} "
                     f"{run['at']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Regenerate the summary table of benchmarks/RESULTS.md from "
                                                 "benchmarks/results/history.jsonl.")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if RESULTS.md's table differs from the recorded runs; write nothing")
    options = parser.parse_args(argv)
    current = RESULTS_MD.read_text()
    block = f"{START}\n{table()}\n{END}"
    if START in current and END in current:
        head, rest = current.split(START, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        title, _, body = current.partition("\n")
        text = f"{title}\n\n{block}\n{body}"
    if options.check:
        if text != current:
            print(f"{RESULTS_MD}: the summary table is stale; run python benchmarks/report.py", file=sys.stderr)
            return 1
        print(f"{RESULTS_MD}: the summary table matches the recorded runs")
        return 0
    RESULTS_MD.write_text(text)
    print(f"wrote the summary of {RESULTS_MD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
