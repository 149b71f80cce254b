"""Benchmark: `ftops apply` of 200 jobs against the emulators with a fixed latency injected per call,
concurrent (the default pool) versus one at a time; then a concurrent second apply must create nothing.

Figure: wall-clock seconds of one apply (one process, its thread pool), median over `--rounds` rounds per side;
the sides alternate which goes first in each round, and a small warm-up apply pays the first uploads of the
shared dataset and source archive before any timing. Goal: **concurrent at least 4x faster than one at a
time**, and **no duplicate job on either provider**: duplicates are counted per idempotency key on Azure (job
metadata) and on SageMaker (the job's key tag) after every apply, including two concurrent re-applies.

Latency is injected where a real cloud adds it: in the Azure emulator (a fault rule with `delay_s` on every
data-plane call) and on every AWS call (a botocore hook that sleeps before sending). Writes
benchmarks/results/apply.json and appends the run to benchmarks/results/history.jsonl.

    .venv/bin/python benchmarks/bench_apply.py [--jobs 200] [--latency-ms 50] [--concurrency 16] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _post(url: str, body: dict) -> None:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request).read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from jobs.apply import engine
    from jobs.apply.rendered import load_rendered
    from jobs.config.environment import load_environment
    from jobs.local import emulators
    from jobs.providers import azure_openai, sagemaker
    from tests.fixtures.rendered import write_dataset, write_job

    latency = args.latency_ms / 1000
    with tempfile.TemporaryDirectory(prefix="ftops-bench-apply-") as tmp, \
            emulators.running("moto") as moto, emulators.running("azurite") as azurite, \
            emulators.running("azure", data_dir=Path(tmp) / "azure") as azure:
        os.environ.update(FTOPS_MOTO_ENDPOINT=moto.endpoint, FTOPS_AZURITE_ENDPOINT=azurite.endpoint,
                          FTOPS_AZURE_ENDPOINT=azure.endpoint, FTOPS_STATE_DIR=str(Path(tmp) / "state"),
                          AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
        env = load_environment("local")
        # Provision as a user does: ftops creates no bucket (the stack does), and the emulator's data plane answers
        # only for an account its ARM side holds.
        for command in (["infra", "deploy", "--env", "local", "--yes"],
                        ["infra", "apply", "--cloud", "azure", "--env", "local", "--yes"]):
            subprocess.run([sys.executable, "-m", "jobs.cli.main", *command], check=True, stdout=subprocess.DEVNULL)
        _post(f"{azure.endpoint}/_emulator/openai/settings", {"job_duration_s": 600, "file_processing_s": 0})
        # Every Azure data-plane call and every AWS call waits `latency` seconds, as a remote API would.
        _post(f"{azure.endpoint}/_emulator/faults", {"rules": [{"method": "*", "path": "/openai/", "delay_s": latency,
                                                                "times": 0}]})
        for service in ("s3", "sagemaker"):
            sagemaker.client(env, service).meta.events.register("before-send", lambda **_: time.sleep(latency))
        manifest = write_dataset(Path(tmp) / "data", train=20, validation=10)

        def render(tag: str) -> list:
            root = Path(tmp) / f"rendered-{tag}"
            for i in range(args.jobs):
                provider = "azure-openai" if i % 2 else "sagemaker"
                write_job(root, "local", f"bench-{tag}-{i:03d}", provider, manifest, salt=f"{tag}-{i}")
            return load_rendered(root, "local")

        def duplicates() -> dict[str, int]:
            """Jobs beyond the first per idempotency key, per provider (what a double submit would leave)."""
            azure_keys: dict[str, int] = {}
            for job in azure_openai.client(env).fine_tuning.jobs.list(limit=100):  # the page iterates all pages
                # Azure's job schema has no metadata: the suffix carries the idempotency key, as apply reads it.
                key = f"{azure_openai._suffix_of(job)} {job.model}"
                azure_keys[key] = azure_keys.get(key, 0) + 1
            sm = sagemaker.client(env, "sagemaker")
            sm_keys: dict[str, int] = {}
            for page in sm.get_paginator("list_training_jobs").paginate():
                for summary in page["TrainingJobSummaries"]:
                    arn = summary["TrainingJobArn"]
                    tags = sm.list_tags(ResourceArn=arn).get("Tags", [])
                    key = next((t["Value"] for t in tags if t["Key"] == sagemaker.KEY_TAG), None)
                    sm_keys[key] = sm_keys.get(key, 0) + 1
            return {"azure-openai": sum(n - 1 for n in azure_keys.values() if n > 1),
                    "sagemaker": sum(n - 1 for n in sm_keys.values() if n > 1)}

        def apply_once(tag: str, concurrency: int) -> float:
            jobs = render(tag)
            started = time.perf_counter()
            items = engine.apply(env, jobs, engine.ApplyOptions(concurrency=concurrency,
                                                                extra={"local_runner": False}))
            seconds = time.perf_counter() - started
            failed = [i for i in items if i.result != "created"]
            if failed:
                raise SystemExit(f"{tag}: {len(failed)} jobs not created, e.g. {failed[0]}")
            return seconds

        apply_once("warmup", args.concurrency)  # pays the first uploads of the shared files, for neither side
        sides = {"one_at_a_time": 1, "concurrent": args.concurrency}
        runs: dict[str, list[float]] = {name: [] for name in sides}
        for round_no in range(args.rounds):
            order = list(sides) if round_no % 2 == 0 else list(reversed(sides))
            for label in order:
                seconds = apply_once(f"{label.replace('_', '-')}-{round_no}", sides[label])  # names take no _
                runs[label].append(seconds)
                print(f"round {round_no + 1} {label:>14}: {args.jobs} jobs in {seconds:.1f}s "
                      f"({args.jobs / seconds:.1f} jobs/s)")
        import statistics

        results = {label: {"median_s": round(statistics.median(times), 2), "runs_s": [round(t, 2) for t in times],
                           "jobs_per_second": round(args.jobs / statistics.median(times), 1),
                           "concurrency": sides[label]} for label, times in runs.items()}
        after_first = duplicates()

        # A second apply of the same jobs, twice at the same moment: nothing new may be created.
        jobs = render(f"concurrent-{args.rounds - 1}")
        second: list = []
        threads = [threading.Thread(target=lambda: second.extend(engine.apply(
            env, jobs, engine.ApplyOptions(concurrency=args.concurrency, extra={"local_runner": False}))))
            for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        created_again = sum(item.result == "created" for item in second)
        after_second = duplicates()
        speedup = results["one_at_a_time"]["median_s"] / results["concurrent"]["median_s"]
        dup_total = sum(after_first.values()) + sum(after_second.values())
        report = {
            "jobs": args.jobs, "latency_ms_per_call": args.latency_ms, "rounds": args.rounds,
            "figure": "median wall-clock seconds of one apply per side (one process); speedup = one / concurrent",
            "baseline": "one at a time (concurrency 1), alternating first/second with the concurrent side",
            "goal": "speedup >= 4 and no duplicate job on either provider",
            "results": results, "speedup": round(speedup, 2), "goal_speedup": 4.0,
            "second_apply_created": created_again,
            "duplicates_after_timed_applies": after_first, "duplicates_after_concurrent_reapply": after_second,
            "goal_met": speedup >= 4.0 and created_again == 0 and dup_total == 0,
            "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.python_implementation()} "
                       f"{platform.python_version()}",
        }
        print(f"speedup {speedup:.1f}x (goal >= 4x); second concurrent apply created {created_again}; "
              f"duplicates {after_first} then {after_second}")
        from benchmarks.history import record

        record("apply", report)
        if not report["goal_met"]:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
