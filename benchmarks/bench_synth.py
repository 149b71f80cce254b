"""Synth time of every environment's stack versus a minimal one-bucket CDK app, synthesized the same way.

Both run as `python <app>` subprocesses (what `cdk synth` runs) with the same feature flags and jsii cache, so
the minimal app measures the floor (Python + jsii start-up + aws-cdk-lib load). Goal: all environments <= 1.5x.
For context only, a third arm adds cdk-nag's AwsSolutions checks to the one-bucket app (ftops runs them on every
synth): the part of the gap that is cdk-nag's fixed cost.
Runs alternate (A B B A ...) so drift in machine load hits both alike; the ratio is of wall-clock medians. CPU time
(user + sys of Python and node) is reported beside it: on a shared machine it moves far less than wall time.
Run: .venv/bin/python benchmarks/bench_synth.py [--runs N]. Writes benchmarks/results/synth.json and appends
the run to benchmarks/results/history.jsonl; exits 1 when the goal is missed.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOAL = 1.5

MINIMAL_APP = """
import json, sys
from aws_cdk import App, Stack, aws_s3 as s3
context = json.load(open(sys.argv[1])).get("context", {})
app = App(context=context, builtin_cloud_formation_validation=False)  # as infra/aws/app.py
stack = Stack(app, "minimal")
s3.Bucket(stack, "Bucket")
if len(sys.argv) > 2:  # the same app with cdk-nag's AwsSolutions checks added, as ftops adds them
    from aws_cdk import Validations
    from cdk_nag import AwsSolutionsChecks
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
try:
    app.synth()
except RuntimeError as exc:  # a bare bucket has findings: the checks ran, which is what this arm times
    if "ValidationFailed" not in str(exc):
        raise
"""


def timed(command: list[str], outdir: Path) -> tuple[float, float]:
    """Wall seconds and CPU seconds (the app and its node child) of one synth."""
    env = {**os.environ, "CDK_OUTDIR": str(outdir)}
    env.setdefault("JSII_RUNTIME_PACKAGE_CACHE_ROOT", str(ROOT / ".ftops" / "jsii-cache"))
    env.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    env.pop("CDK_CONTEXT_JSON", None)
    before = os.times()
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = os.times()
    if result.returncode != 0:
        sys.exit(f"synth failed: {' '.join(command)}\n{result.stderr[-2000:]}")
    return elapsed, (after.children_user - before.children_user) + (after.children_system - before.children_system)


def jsii_node() -> str:
    """Version and path of the node jsii starts: $JSII_NODE, else the first `node` on PATH (jsii's own rule)."""
    node = os.environ.get("JSII_NODE") or shutil.which("node") or "node"
    try:
        version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except OSError:
        version = "not found"
    return f"{version} ({node})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ftops-bench-synth-") as tmp:
        tmp_path = Path(tmp)
        minimal = tmp_path / "minimal_app.py"
        minimal.write_text(MINIMAL_APP)
        commands = {"all_environments": [sys.executable, str(ROOT / "app.py")],
                    "minimal_one_bucket": [sys.executable, str(minimal), str(ROOT / "cdk.json")],
                    # Context only, not the goal: how much of the gap is cdk-nag's fixed cost.
                    "minimal_one_bucket_with_nag": [sys.executable, str(minimal), str(ROOT / "cdk.json"), "nag"]}
        times: dict[str, list[float]] = {name: [] for name in commands}
        cpu: dict[str, list[float]] = {name: [] for name in commands}
        for name, command in commands.items():  # warm-up: fills the jsii package cache and .pyc files
            timed(command, tmp_path / f"warm-{name}")
        load_before = os.getloadavg()[0]
        for i in range(args.runs):  # interleaved, order alternating, so machine noise hits both alike
            for name in (list(commands) if i % 2 == 0 else list(reversed(commands))):
                wall, cpu_s = timed(commands[name], tmp_path / f"{name}-{i}")
                times[name].append(wall)
                cpu[name].append(cpu_s)
        load_after = os.getloadavg()[0]
        stacks = len(list((tmp_path / "all_environments-0").glob("*.template.json")))
    medians = {name: statistics.median(values) for name, values in times.items()}
    cpu_medians = {name: statistics.median(values) for name, values in cpu.items()}
    ratio = medians["all_environments"] / medians["minimal_one_bucket"]
    cpu_ratio = cpu_medians["all_environments"] / cpu_medians["minimal_one_bucket"]
    ratio_nag = medians["all_environments"] / medians["minimal_one_bucket_with_nag"]
    report = {
        "benchmark": "synth", "runs": args.runs, "stacks": stacks,
        "seconds": {name: [round(v, 3) for v in values] for name, values in times.items()},
        "median_s": {name: round(v, 3) for name, v in medians.items()},
        "ratio": round(ratio, 3), "goal": GOAL, "met": ratio <= GOAL,
        "ratio_vs_minimal_with_nag": round(ratio_nag, 3),
        "cpu_seconds": {name: [round(v, 3) for v in values] for name, values in cpu.items()},
        "cpu_median_s": {name: round(v, 3) for name, v in cpu_medians.items()},
        "cpu_ratio": round(cpu_ratio, 3),
        "load_average_1m": [round(load_before, 2), round(load_after, 2)],
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "node": jsii_node(), "node_compile_cache": os.environ.get("NODE_COMPILE_CACHE"),
        "jsii_cache": os.environ.get("JSII_RUNTIME_PACKAGE_CACHE_ROOT", str(ROOT / ".ftops" / "jsii-cache")),
    }
    report |= {"figure": "wall-clock median of `python app.py` (every environment) over the one-bucket app's, "
                         "alternating runs, one process each (CPU ratio beside it)",
               "baseline": "a minimal one-bucket CDK app, same flags and jsii cache, same run",
               "goal_ratio": GOAL, "goal_met": ratio <= GOAL}
    sys.path.insert(0, str(ROOT))  # benchmarks.history
    from benchmarks.history import record

    entry = record("synth", report)
    print(f"synth, median of {args.runs}: all {stacks} environments {medians['all_environments']:.2f}s, "
          f"minimal one-bucket app {medians['minimal_one_bucket']:.2f}s -> {ratio:.2f}x (goal <= {GOAL}x) "
          f"{'met' if ratio <= GOAL else 'NOT met'}; CPU {cpu_medians['all_environments']:.2f}s vs "
          f"{cpu_medians['minimal_one_bucket']:.2f}s -> {cpu_ratio:.2f}x (load {load_before:.1f} -> {load_after:.1f}); "
          f"versus the one-bucket app with cdk-nag ({medians['minimal_one_bucket_with_nag']:.2f}s): {ratio_nag:.2f}x")
    print(f"recorded run {entry['run_id']} in benchmarks/results/synth.json and history.jsonl")
    return 0 if report["goal_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
