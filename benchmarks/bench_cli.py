"""Benchmark: how long interactive commands take and how much memory they use, as a user runs them.

Each command runs as its own process (`python -m jobs.cli.main ...`, what the `ftops` script runs), `--repeat`
times; the figure per command is the median wall-clock time of those runs and the largest peak RSS of the runs
after the first (the process's own `ru_maxrss`, from wait4). Baseline: the bare interpreter (`python -c pass`),
which every command pays, measured the same way in the same run. All runs share one state dir and one user cache
(both empty at the start), so the first render compiles the templates into Jinja's bytecode cache and counts the
split files' tokens with tiktoken into the user cache, and later ones reuse both, as on a user's machine after
its first render. The first, cold run is in `runs_s`, and its peak RSS is `first_run_peak_rss_mb` (loading the
tokenizer is most of it). Children run with Python's bytecode cache on (as installed code runs), whatever the
calling shell's PYTHONDONTWRITEBYTECODE says.

Commands: `ftops --version`; `render` and `diff` of the shipped definitions (`definitions/`) for `local`; `data
validate` of the sample dataset (datasets/it-helpdesk/support-chat.jsonl); `plan --env local` of that render
against emulators started for the benchmark (moto, Azurite, the Azure emulator; empty, so plan reads the ledger
and finds nothing; provisioned first as a user provisions `local`, since plan refuses an unprovisioned one).

Goal (issue 16): render and diff of the shipped definitions under 0.5 s (median wall) and 120 MB (peak RSS)
each. Before image URIs came from a committed file, render took 1.9 s and 213 MB, 1.4 s of it importing the
SageMaker SDK. Writes benchmarks/results/cli.json and appends the run to benchmarks/results/history.jsonl.

    .venv/bin/python benchmarks/bench_cli.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.history import record  # noqa: E402

GOAL_S = 0.5
GOAL_MB = 120.0
GOAL_COMMANDS = ("render", "diff")


def run(args: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in MB, exit code) of one process."""
    started = time.perf_counter()
    proc = subprocess.Popen(args, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.stderr:
        proc.stderr.close()
    return wall, usage.ru_maxrss / 1024, proc.returncode  # Linux: ru_maxrss in KiB


def measure(name: str, args: list[str], env: dict[str, str], repeat: int) -> dict:
    walls, peaks, codes = [], [], set()
    for _ in range(repeat):
        wall, peak, code = run(args, env)
        walls.append(wall)
        peaks.append(peak)
        codes.add(code)
    return {"command": name, "argv": args[3:] if args[1:3] == ["-m", "jobs.cli.main"] else args[1:],
            "median_s": round(statistics.median(walls), 3), "min_s": round(min(walls), 3),
            "runs_s": [round(w, 3) for w in walls], "peak_rss_mb": round(max(peaks[1:] or peaks), 1),
            "first_run_peak_rss_mb": round(peaks[0], 1), "exit_codes": sorted(codes)}


@contextlib.contextmanager
def emulators_for_plan(state: Path, env: dict[str, str], cli: list[str]):
    """Emulators with `local` provisioned as the README does it (the AWS stack, then the Azure resources)."""
    from jobs.local import emulators

    with contextlib.ExitStack() as stack:
        moto = stack.enter_context(emulators.running("moto"))
        azurite = stack.enter_context(emulators.running("azurite"))
        azure = stack.enter_context(emulators.running("azure", data_dir=state / "azure"))
        endpoints = {"FTOPS_MOTO_ENDPOINT": moto.endpoint, "FTOPS_AZURITE_ENDPOINT": azurite.endpoint,
                     "FTOPS_AZURE_ENDPOINT": azure.endpoint, "AWS_ACCESS_KEY_ID": "testing",
                     "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
        for command in (["infra", "deploy", "--env", "local", "--yes"],
                        ["infra", "apply", "--cloud", "azure", "--env", "local", "--yes"]):
            subprocess.run([*cli, *command], env={**env, **endpoints}, check=True, stdout=subprocess.DEVNULL)
        yield endpoints


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    py = sys.executable
    cli = [py, "-m", "jobs.cli.main"]
    with tempfile.TemporaryDirectory(prefix="ftops-bench-cli-") as tmp:
        tmp_path = Path(tmp)
        # Python as a user's install runs it: bytecode written on the first run and reused (a shell that sets
        # PYTHONDONTWRITEBYTECODE, as the helpers' env.sh does, recompiles every ftops module on every run, about
        # 0.2 s). The user cache (split-file token counts) is the benchmark's own, empty at the start, so the
        # first render is cold on every machine alike and its peak is reported on its own.
        env = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}, "PYTHONPATH": str(REPO),
               "FTOPS_STATE_DIR": str(tmp_path / "state"), "FTOPS_CACHE_DIR": str(tmp_path / "user-cache"),
               "NO_COLOR": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        out = tmp_path / "rendered"
        commands = [
            ("baseline: python -c pass", [py, "-c", "pass"]),
            ("--version", [*cli, "--version"]),
            ("render", [*cli, "render", "--env", "local", "--out", str(out)]),
            ("diff", [*cli, "diff", "--env", "local", "--against", str(out)]),
            ("data validate", [*cli, "data", "validate", str(REPO / "datasets/it-helpdesk/support-chat.jsonl")]),
        ]
        # Provisioned first, as a user's `local` is: render then reads the deployed values (the stack's key ARN),
        # and plan accepts the tree (a tree rendered before the deploy is out of date for it).
        with emulators_for_plan(tmp_path / "state", env, cli) as endpoints:
            env = {**env, **endpoints}
            results = [measure(name, argv, env, args.repeat) for name, argv in commands]
            results.append(measure("plan --env local", [*cli, "plan", str(out), "--env", "local"], env, args.repeat))

    failed = [row["command"] for row in results if row["exit_codes"] != [0]]
    if failed:  # a figure of a command that failed measures its error path
        raise SystemExit(f"these commands failed, nothing recorded: {', '.join(failed)}")
    goals = {}
    for row in results:
        if row["command"] in GOAL_COMMANDS:
            met = row["median_s"] < GOAL_S and row["peak_rss_mb"] < GOAL_MB and row["exit_codes"] == [0]
            goals[row["command"]] = met
    payload = {
        "benchmark": "cli", "repeat": args.repeat,
        "figure": "median wall-clock seconds per process (one process per command) and its peak RSS "
                  "(runs after the first)",
        "baseline": "python -c pass (the interpreter alone), same run",
        "goal": f"render and diff of the shipped definitions: < {GOAL_S} s and < {GOAL_MB:.0f} MB each",
        "commands": results, "goal_met": all(goals.values()), "goals": goals,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
    }
    record("cli", payload)
    width = max(len(r["command"]) for r in results)
    for row in results:
        print(f"{row['command']:<{width}}  {row['median_s']:6.3f} s  {row['peak_rss_mb']:6.1f} MB  "
              f"(first run {row['first_run_peak_rss_mb']:6.1f} MB)  "
              f"exit {','.join(map(str, row['exit_codes']))}")
    print(f"goal ({payload['goal']}): {'met' if payload['goal_met'] else 'NOT met'}")
    return 0 if payload["goal_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
