"""Benchmark: `ftops apply` of 200 jobs against the emulators with a fixed latency injected per call,
concurrent (the default pool) versus one at a time, in the same run; then a concurrent second apply must
create nothing (zero duplicates).

Latency is injected where a real cloud adds it: in the Azure emulator (a fault rule with `delay_s` on every
data-plane call) and on every AWS call (a botocore hook that sleeps before sending). Writes
benchmarks/results/apply.json.

    .venv/bin/python benchmarks/bench_apply.py [--jobs 200] [--latency-ms 50] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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

        results = {}
        for label, concurrency in (("one_at_a_time", 1), ("concurrent", args.concurrency)):
            jobs = render(label)
            started = time.perf_counter()
            items = engine.apply(env, jobs, engine.ApplyOptions(concurrency=concurrency,
                                                                extra={"local_runner": False}))
            seconds = time.perf_counter() - started
            failed = [i for i in items if i.result != "created"]
            if failed:
                raise SystemExit(f"{label}: {len(failed)} jobs not created, e.g. {failed[0]}")
            results[label] = {"seconds": round(seconds, 2), "jobs_per_second": round(len(items) / seconds, 1),
                              "concurrency": concurrency}
            print(f"{label:>14}: {len(items)} jobs in {seconds:.1f}s ({len(items) / seconds:.1f} jobs/s)")

        # A second apply of the same 200 jobs, twice at the same moment: nothing new may be created.
        jobs = render("concurrent")
        second: list = []
        threads = [threading.Thread(target=lambda: second.extend(engine.apply(
            env, jobs, engine.ApplyOptions(concurrency=args.concurrency, extra={"local_runner": False}))))
            for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        created_again = sum(item.result == "created" for item in second)
        keys: dict[str, int] = {}
        for job in azure_openai.client(env).fine_tuning.jobs.list(limit=100):
            key = (job.metadata or {}).get(azure_openai.KEY_FIELD)
            keys[key] = keys.get(key, 0) + 1
        duplicates = sum(n - 1 for n in keys.values() if n > 1)
        speedup = results["one_at_a_time"]["seconds"] / results["concurrent"]["seconds"]
        report = {
            "benchmark": "apply", "jobs": args.jobs, "latency_ms_per_call": args.latency_ms,
            "results": results, "speedup": round(speedup, 2), "goal_speedup": 4.0,
            "second_apply_created": created_again, "azure_duplicate_jobs": duplicates,
            "passed": speedup >= 4.0 and created_again == 0 and duplicates == 0,
            "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.python_implementation()} "
                       f"{platform.python_version()}",
        }
        print(f"speedup {speedup:.1f}x (goal >= 4x); second concurrent apply created {created_again}; "
              f"duplicate Azure jobs {duplicates}")
        out = ROOT / "benchmarks" / "results" / "apply.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        if not report["passed"]:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
