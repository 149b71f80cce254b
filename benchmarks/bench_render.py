"""Benchmark: `ftops render` (validation, overrides, policy, cost, secrets scan, canonical JSON, hashing) for
300 job definitions x 4 environments, against rendering the same templates with bare Jinja and no checks.

Figure and goal (issue 16): CPU time of ftops rendering in ONE process (`workers=1`) over the CPU time of bare
Jinja (one process): **at most 2x**. CPU, not wall, because the machine is shared; one process on both sides,
because a pool on several cores would hide work behind parallelism. Both run in the same process, same machine,
after one warm-up render (imports are paid once, outside the timings). The two sides alternate `--repeat` times
and the least CPU of each is the figure (all runs are in the JSON); every ftops run starts with no parsed or
validated definitions and no judged strings (forgotten before its timer starts), and both sides start with the
previous run's results released. The pool's runs are timed after them.

Also reported, not goals: `ratio` (wall, ftops on its default pool of processes vs bare Jinja on one: what a
user waits for), `ratio_cpu` (CPU summed over the pool), `ratio_single_process` (wall, one process).
Writes benchmarks/results/render.json and appends the run to benchmarks/results/history.jsonl.

    .venv/bin/python benchmarks/bench_render.py [--definitions 300] [--repeat 9]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # benchmarks.history
ENVIRONMENTS = ("local", "dev", "staging", "prod")


def cpu_s() -> float:
    """CPU seconds of this process and its reaped children (the render's pool workers are joined when it ends)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def make_fork(root: Path, count: int) -> None:
    """A fork with `count` definitions derived from the two examples (different names and hyperparameters)."""
    from jobs.data.manifest import Manifest, SplitFile

    shutil.copytree(REPO / "environments", root / "environments", ignore=shutil.ignore_patterns("resolved"))
    (root / "templates").symlink_to(REPO / "templates")
    (root / "definitions").mkdir()
    examples = [yaml.safe_load(p.read_text()) for p in sorted((REPO / "definitions").glob("*.yaml"))]
    for i in range(count):
        data = json.loads(json.dumps(examples[i % len(examples)]))
        data["name"] = f"bench-{i:04d}"
        data["hyperparameters"]["seed"] = i
        data["hyperparameters"]["epochs"] = 1 + i % 4
        (root / "definitions" / f"bench-{i:04d}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    files = {split: SplitFile(path=f"{split}.jsonl", sha256=c * 64, bytes=100_000 * n, examples=100 * n,
                              tokens=50_000 * n, assistant_tokens=20_000 * n, max_example_tokens=900)
             for split, c, n in (("train", "a", 8), ("validation", "b", 1), ("test", "c", 1))}
    directory = root / "datasets" / "it-helpdesk" / "prepared"
    directory.mkdir(parents=True)
    Manifest(format="chat", source="bench.jsonl", source_sha256="d" * 64, tokenizer="o200k_base", seed=42,
             split=(0.8, 0.1, 0.1), files=files).write(directory)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--definitions", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=9, help="runs per side; the fastest of each counts")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ftops-bench-render-"))
    try:
        make_fork(work / "fork", args.definitions)
        os.environ["FTOPS_ROOT"] = str(work / "fork")
        os.environ["FTOPS_STATE_DIR"] = str(work / "state")
        from jobs import paths
        from jobs.config.environment import load_environment
        from jobs.config.resolved import derive_aws, resolved_file

        # prod renders only from its deployed values (key ARN, VPC): example ones, as `ftops infra outputs` writes.
        prod = derive_aws(load_environment("prod")).model_dump() | {
            "kms_key_arn": "arn:aws:kms:us-east-1:333333333333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "subnet_ids": ["subnet-0a1b2c3d4e5f60001"], "security_group_ids": ["sg-0a1b2c3d4e5f60001"],
            "source": "deployed"}
        resolved_file("prod", "aws").parent.mkdir(parents=True, exist_ok=True)
        resolved_file("prod", "aws").write_text(json.dumps(prod))
        from jobs.render import context as ctx
        from jobs.render import parallel
        from jobs.render.definitions import clear_cache, definition_files, load_variants
        from jobs.render.engine import TARGETS, _targets, render_environment, render_environments, write_tree
        from jobs.render.templating import environment as jinja_environment

        paths.project_root.cache_clear()
        envs = [load_environment(name) for name in ENVIRONMENTS]
        render_environment(envs[0], "bench-0000")  # warm-up: imports, image registry, templates compiled
        render_environment(envs[0], "bench-0001")

        # Bare Jinja: the same templates and the same values, computed beforehand; no parsing, checks or hashing.
        jinja = jinja_environment()
        work_items = []
        for env in envs:
            for path in definition_files():
                for variant in load_variants(path, env.name):
                    dataset = ctx.load_dataset(variant)
                    azure = variant.definition.provider == "azure-openai"
                    values = (ctx.azure_context if azure else ctx.sagemaker_context)(variant, env, dataset)
                    work_items.append(("a" if azure else "s", values, [TARGETS[t][0] for t in _targets(variant)]))

        def bare() -> int:
            total = 0
            for key, values, templates in work_items:
                for template in templates:
                    total += len(jinja.get_template(template).render(**{key: values}))
            return total

        from jobs.render import secrets

        def cold() -> None:
            """Before each timed ftops run (untimed: a fresh `ftops render` has nothing to forget)."""
            clear_cache()  # every repetition parses and validates every definition, as a fresh `ftops render` does
            secrets.clear_cache()  # ... and judges every distinct string for secrets (as a fresh process does)

        def checked(workers: int | None = None) -> dict:
            return render_environments(envs, workers=workers)  # as `ftops render --env local --env dev ...`

        # The goal's two sides alternate, and each keeps its fastest run: on a shared machine, load from other
        # work only ever adds time, and alternating exposes both to the same conditions. Each run starts with
        # the previous one's results released, as bare Jinja's are: held, they made every ftops run fault in
        # fresh memory (~0.03 s). The pool runs come after, on their own: a fork leaves the parent's pages
        # copy-on-write, so the run after one pays a page fault on every page it writes.
        bare_runs, ftops_runs, single_runs, bare_cpu, ftops_cpu, single_cpu = [], [], [], [], [], []
        single: dict = {}
        for _ in range(args.repeat):
            single = {}
            cold()
            wall, cpu = time.perf_counter(), cpu_s()
            bare_bytes = bare()
            bare_runs.append(time.perf_counter() - wall)
            bare_cpu.append(cpu_s() - cpu)
            wall, cpu = time.perf_counter(), cpu_s()
            single = checked(workers=1)
            single_runs.append(time.perf_counter() - wall)
            single_cpu.append(cpu_s() - cpu)
        rendered: dict = {}
        for _ in range(args.repeat):
            rendered = {}
            cold()
            wall, cpu = time.perf_counter(), cpu_s()
            rendered = checked()
            ftops_runs.append(time.perf_counter() - wall)
            ftops_cpu.append(cpu_s() - cpu)
        pairs = [(a, b) for name in rendered for a, b in zip(rendered[name], single[name], strict=True)]
        if any(a.files != b.files for a, b in pairs):
            raise SystemExit("parallel and single-process renders differ")
        bare_s, ftops_s, single_s = min(bare_runs), min(ftops_runs), min(single_runs)
        jobs = sum(len(r) for r in rendered.values())
        workers = parallel.workers_for(len(definition_files()) * len(envs))

        start = time.perf_counter()
        for name, jobs_for_env in rendered.items():
            write_tree(jobs_for_env, work / "out", name)
        write_s = time.perf_counter() - start
        files = sum(1 for p in (work / "out").rglob("*") if p.is_file())
    finally:
        shutil.rmtree(work, ignore_errors=True)

    result = {
        "benchmark": "render",
        "definitions": args.definitions,
        "environments": list(ENVIRONMENTS),
        "jobs_rendered": jobs,
        "bare_jinja_s": round(bare_s, 3),
        "ftops_render_checked_s": round(ftops_s, 3),
        "ratio": round(ftops_s / bare_s, 2),
        "ratio_cpu": round(min(ftops_cpu) / min(bare_cpu), 2),
        "ftops_workers": workers,
        "ftops_single_process_s": round(single_s, 3),
        "ratio_single_process": round(single_s / bare_s, 2),
        "ratio_cpu_single_process": round(min(single_cpu) / min(bare_cpu), 2),
        "figure": "ratio_cpu_single_process: CPU s of ftops in one process / CPU s of bare Jinja in one process",
        "baseline": "bare Jinja, same templates and values, one process, same run",
        "goal": "ratio_cpu_single_process <= 2.0",
        "goal_ratio": 2.0,
        "repeat": args.repeat,
        "bare_jinja_runs_s": [round(t, 3) for t in bare_runs],
        "ftops_render_runs_s": [round(t, 3) for t in ftops_runs],
        "ftops_single_process_runs_s": [round(t, 3) for t in single_runs],
        "cpu_s": {"bare_jinja": round(min(bare_cpu), 3), "ftops_render": round(min(ftops_cpu), 3),
                  "ftops_single_process": round(min(single_cpu), 3)},
        "per_job_ms": round(ftops_s / jobs * 1000, 3),
        "write_tree_s": round(write_s, 3),
        "files_written": files,
        "bare_output_bytes": bare_bytes,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "note": "ftops timing covers loading + validating every definition, overrides, policy and cost checks, "
                "context building, Jinja, canonical JSON, YAML parsing, secret scan, hashing and request limits; "
                "bare Jinja renders the same templates from precomputed values, in one process. ftops renders on "
                "ftops_workers processes: ratio is wall-clock; ratio_cpu sums CPU over all processes "
                "(parent + workers), so more cores never lower it; ratio_single_process is ftops in one process; "
                "the goal applies to ratio_cpu_single_process (CPU, one process on both sides). "
                "Fastest of `repeat` alternating runs per side. Writing the tree (staging dir + swap) is timed "
                "separately.",
    }
    result["goal_met"] = result["ratio_cpu_single_process"] <= result["goal_ratio"]
    from benchmarks.history import record

    print(json.dumps(record("render", result), indent=2))
    return 0 if result["goal_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
