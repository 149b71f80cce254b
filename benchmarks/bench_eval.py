"""Benchmark: 2,000 evaluation requests against the Azure emulator with injected latency and rate limits.

Measures the evaluation runner (bounded concurrency, a shared Throttle honouring Retry-After) against one
request at a time, in the same run, and checks that no answer is lost or duplicated: every request has
exactly one line in the answer store and every answer equals the one-at-a-time answer for that prompt.
The Batch API path runs the same 2,000 requests as a third figure.

Faults: every chat request is delayed by LATENCY_S; a rate limit of RATE_LIMIT requests per second per
deployment: each second, the requests above the limit in the previous second come back as that many 429s
(Retry-After 0.5 s) in the next one. Writes benchmarks/results/eval.json.

    python benchmarks/bench_eval.py [--requests 2000] [--baseline 300] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jobs.eval.examples import Example  # noqa: E402
from jobs.eval.runner import run_target  # noqa: E402
from jobs.eval.store import AnswerStore  # noqa: E402
from jobs.eval.targets.azure_openai import AzureOpenAITarget, make_client  # noqa: E402
from jobs.eval.targets.base import Generation, Throttle  # noqa: E402
from jobs.fsutil import atomic_write  # noqa: E402
from jobs.local import emulators  # noqa: E402

LATENCY_S = 0.05
RATE_LIMIT = 60
"""Requests per second the deployment accepts; the excess comes back as 429s in the next second."""
RETRY_AFTER_S = 0.5
SUB, RG, ACCOUNT = "00000000-0000-4000-8000-000000000000", "bench-rg", "bench-openai"


def http(endpoint: str, method: str, path: str, body: dict | None = None) -> dict:
    url = f"{endpoint}{path}" + ("?api-version=2025-09-01" if path.startswith("/subscriptions") else "")
    request = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json", "Authorization": "Bearer t"})
    with urllib.request.urlopen(request) as response:
        raw = response.read()
    return json.loads(raw) if raw else {}


def arm_ready(endpoint: str, path: str, body: dict) -> None:
    http(endpoint, "PUT", path, body)
    while http(endpoint, "GET", path).get("properties", {}).get("provisioningState") != "Succeeded":
        time.sleep(0.05)


def deploy_fine_tuned(endpoint: str, client) -> None:
    http(endpoint, "POST", "/_emulator/openai/settings", {"job_duration_s": 0.3, "file_processing_s": 0})
    rg = f"/subscriptions/{SUB}/resourcegroups/{RG}"
    http(endpoint, "PUT", rg, {"location": "swedencentral"})
    account = f"{rg}/providers/Microsoft.CognitiveServices/accounts/{ACCOUNT}"
    arm_ready(endpoint, account, {"kind": "OpenAI", "sku": {"name": "S0"}, "location": "swedencentral",
                                  "properties": {"customSubDomainName": ACCOUNT}})
    rows = [line for line in (ROOT / "datasets/it-helpdesk/prepared/train.jsonl").read_text().splitlines()[:60]]
    file_id = client.files.create(file=("train.jsonl", io.BytesIO(("\n".join(rows) + "\n").encode())),
                                  purpose="fine-tune").id
    job = client.fine_tuning.jobs.create(model="gpt-4.1-mini-2025-04-14", training_file=file_id, suffix="bench")
    while job.status not in ("succeeded", "failed"):
        time.sleep(0.1)
        job = client.fine_tuning.jobs.retrieve(job.id)
    arm_ready(endpoint, f"{account}/deployments/bench-ft",
              {"sku": {"name": "Standard", "capacity": 1},
               "properties": {"model": {"format": "OpenAI", "name": job.fine_tuned_model, "version": "1"}}})


def examples(n: int) -> list[Example]:
    topics = ["printer", "vpn", "password", "wifi", "laptop", "monitor", "teams", "outlook", "badge", "mfa"]
    return [Example(f"{i:05d}-b", ({"role": "user", "content": f"Ticket {i}: my {topics[i % 10]} fails, "
                                                               f"case {i * 7919 % 1000}."},), "") for i in range(n)]


class RateLimiter(threading.Thread):
    """Every second: count the requests that got through, and answer the excess over RATE_LIMIT with 429s."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(daemon=True)
        self.endpoint, self.stop = endpoint, threading.Event()
        self.armed_429 = 0

    def arm(self, throttle: int = 0) -> None:
        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint}/_emulator/faults", method="DELETE"))
        rules = [{"method": "POST", "path": "chat/completions", "delay_s": LATENCY_S, "times": 0}]
        if throttle:
            rules.insert(0, {"method": "POST", "path": "chat/completions", "status": 429, "times": throttle,
                             "retry_after": RETRY_AFTER_S, "code": "429",
                             "message": "Requests to the deployment have exceeded the rate limit"})
            self.armed_429 += throttle
        http(self.endpoint, "POST", "/_emulator/faults", {"rules": rules})

    def run(self) -> None:
        while not self.stop.wait(1.0):
            rules = http(self.endpoint, "GET", "/_emulator/faults")["rules"]
            passed = sum(r["hits"] for r in rules if r["status"] is None)
            self.arm(max(0, passed - RATE_LIMIT))


def run(endpoint: str, client, exs: list[Example], store_path: Path, concurrency: int, batch: bool = False) -> dict:
    target = AzureOpenAITarget(client, "bench-ft", concurrency=concurrency, batch=batch, poll_interval_s=0.2,
                               throttle=Throttle(max_attempts=50))
    limiter = RateLimiter(endpoint)
    limiter.arm()
    limiter.start()
    started = time.perf_counter()
    try:
        with AnswerStore(store_path) as store:
            stats = run_target(target, {"clean": exs}, store, Generation(), batch=batch)
    finally:
        limiter.stop.set()
        limiter.join()
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/_emulator/faults", method="DELETE"))
    seconds = time.perf_counter() - started
    # Batch bookkeeping lines (kind: batch / batch-done) are not answers.
    lines = [r for r in map(json.loads, store_path.read_text().splitlines()) if "kind" not in r]
    keys = [(r["id"], r["variant"]) for r in lines]
    return {"requests": len(exs), "seconds": round(seconds, 2), "requests_per_s": round(len(exs) / seconds, 1),
            "stored": len(lines), "duplicates": len(keys) - len(set(keys)),
            "lost": len({(e.id, "clean") for e in exs} - set(keys)), "failures": len(stats.failures),
            "throttled_429": target.throttle.throttled, "http_requests": target.requests_sent,
            "answers": {r["id"]: r["answer"] for r in lines}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--baseline", type=int, default=300, help="requests for the one-at-a-time baseline")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    exs = examples(args.requests)
    with tempfile.TemporaryDirectory(prefix="bench-eval-") as tmp, \
            emulators.running("azure", data_dir=Path(tmp) / "state") as emu:
        client = make_client(emu.endpoint, lambda: "emulator-token")
        deploy_fine_tuned(emu.endpoint, client)
        http(emu.endpoint, "POST", "/_emulator/batch/settings", {"batch_duration_s": 2.0})
        serial = run(emu.endpoint, client, exs[:args.baseline], Path(tmp) / "serial.jsonl", 1)
        concurrent = run(emu.endpoint, client, exs, Path(tmp) / "concurrent.jsonl", args.concurrency)
        batch = run(emu.endpoint, client, exs, Path(tmp) / "batch.jsonl", args.concurrency, batch=True)
    same = all(concurrent["answers"][k] == v for k, v in serial["answers"].items())
    same_batch = concurrent["answers"] == batch["answers"]
    for result in (serial, concurrent, batch):
        result.pop("answers")
    report = {
        "benchmark": "bench_eval", "machine": f"{platform.machine()} {platform.system()}, "
        f"{__import__('os').cpu_count()} CPUs", "python": platform.python_version(),
        "faults": {"latency_s": LATENCY_S, "rate_limit_per_s": RATE_LIMIT, "retry_after_s": RETRY_AFTER_S},
        "one_at_a_time": serial, f"concurrency_{args.concurrency}": concurrent, "batch_api": batch,
        "speedup_vs_one_at_a_time": round(concurrent["requests_per_s"] / serial["requests_per_s"], 2),
        "answers_equal_one_at_a_time": same, "batch_answers_equal_per_request": same_batch,
    }
    atomic_write(ROOT / "benchmarks" / "results" / "eval.json", json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    ok = same and same_batch and all(r["lost"] == 0 and r["duplicates"] == 0 and r["failures"] == 0
                                     for r in (serial, concurrent, batch))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
