"""Benchmark `ftops data validate` against the straightforward approach and the tokenizer-only bound.

    python benchmarks/bench_validate.py                 # 200 MB synthetic chat dataset (about a minute on 2 cores)
    python benchmarks/bench_validate.py --size-mb 1024  # the full figure

One run measures, on the same generated file:
- ftops: `validate_file` (streaming, byte-range chunks on every core);
- straightforward: every line in memory, `json.loads` a line at a time, tiktoken per message, one process;
- bound: only encoding the message contents (already extracted, untimed), spread over all cores.
Each runs in its own process; peak memory is sampled from that process tree (PSS summed over the tree, so pages
shared after fork count once; RSS of the main process too). Timings exclude interpreter start and tokenizer
load for all three. Token totals of ftops and the straightforward approach must be equal.

Figure and goal (issue 16): CPU seconds of ftops over CPU seconds of the bound, summed over each one's processes
(`ftops_cpu_over_bound_cpu`): **at most 1.2x**, with equal token totals, and ftops' peak memory under 300 MB
when the run is 1 GB (`--size-mb 1024`; the peak goal is checked only on such a run). CPU, not wall: the same
work on a shared machine. Prints a table, writes benchmarks/results/validate.json and appends the run to
benchmarks/results/history.jsonl (the size is in the record: a 1 GB figure is one whose `bytes` say so).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))


WORDS = """
the of and to a in is you that it for on are with as be this was have or at not your from by can an but all they
we more one will if about which when there so what out up use into has time only new some could these two may then
first any like now my such make over our even most after also did many before must through back where much go well
way down should because each just those people how too little state good very make world still own see men work long
get here between both life being under never day same another know while last might us great old year off come since
against go came right used take three password reset laptop printer network VPN account access ticket portal office
install update restart settings device certificate screen keyboard battery monitor email mailbox folder drive share
team lead approve request open choose select click sign login error code connect wifi server support helpdesk answer
question please thanks help issue problem fix step check again first second third then finally contact desk phone
security phishing report link attachment suspicious message calendar meeting room camera microphone headset dock
"""


def generate(path: Path, size_mb: int, seed: int = 7) -> int:
    """A synthetic chat dataset of about `size_mb` MB: unique system/user/assistant texts of mixed lengths."""
    import orjson

    rng = random.Random(seed)
    # English-like text (real tokenizer behaviour: about 4-5 bytes per token), some numbers and accents.
    vocab = WORDS.split() + [str(n) for n in range(200)] + ["1.", "2.", "3.", "café", "Zürich", "naïve", "(see", "below)"]
    target = size_mb * 1_000_000
    written = 0
    examples = 0
    with open(path, "wb") as handle:
        while written < target:
            def text(low: int, high: int) -> str:
                words = rng.choices(vocab, k=rng.randint(low, high))
                return "\n".join(" ".join(words[i:i + 16]) for i in range(0, len(words), 16))

            messages = [{"role": "system", "content": text(10, 40)}, {"role": "user", "content": text(10, 120)},
                        {"role": "assistant", "content": text(40, 500)}]
            if examples % 5 == 0:
                messages += [{"role": "user", "content": text(5, 60)}, {"role": "assistant", "content": text(20, 300)}]
            line = orjson.dumps({"messages": messages}) + b"\n"
            handle.write(line)
            written += len(line)
            examples += 1
    return examples


def cpu_seconds() -> float:
    """CPU time of this process and its reaped children (pool workers), user + system."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


# --- the three approaches (each runs in a child process: `bench_validate.py --run NAME FILE`) ----------------

def run_ftops(path: Path, workers: int | None) -> dict:
    from jobs.data.tokens import resolve
    from jobs.data.validate import validate_file

    counter, limits = resolve("gpt-4o-mini", None)
    cpu, start = cpu_seconds(), time.perf_counter()
    report = validate_file(path, "chat", counter, limits, workers=workers)  # its pool is reaped on return
    elapsed = time.perf_counter() - start
    return {"seconds": elapsed, "cpu_seconds": cpu_seconds() - cpu, "tokens": sum(report.totals),
            "examples": report.valid_examples, "errors": sum(report.error_counts.values())}


def run_straightforward(path: Path, workers: int | None) -> dict:
    import tiktoken

    from jobs.data import tokenizer_files

    tokenizer_files.ensure()
    encoding = tiktoken.get_encoding("o200k_base")
    cpu, start = cpu_seconds(), time.perf_counter()
    with open(path, encoding="utf-8") as handle:
        lines = handle.readlines()
    total = 0
    examples = []
    for line in lines:
        example = json.loads(line)
        examples.append(example)
        total += 3
        for message in example["messages"]:
            total += 3 + len(encoding.encode_ordinary(message["role"])) + len(encoding.encode_ordinary(message["content"]))
    elapsed = time.perf_counter() - start
    return {"seconds": elapsed, "cpu_seconds": cpu_seconds() - cpu, "tokens": total, "examples": len(examples)}


_SHARES: list[list[str]] = []


def _encode_share(index: int) -> int:
    import tiktoken

    encode = tiktoken.get_encoding("o200k_base").encode_ordinary
    return sum(len(encode(text)) for text in _SHARES[index])


def run_bound(path: Path, workers: int | None) -> dict:
    import multiprocessing

    import orjson
    import tiktoken

    from jobs.data import tokenizer_files
    from jobs.data.validate import workers_available

    tokenizer_files.ensure()
    tiktoken.get_encoding("o200k_base")  # loaded before fork: every worker inherits it
    workers = workers or workers_available()
    contents = [m["content"] for line in open(path, "rb") for m in orjson.loads(line)["messages"]]
    size = len(contents)
    _SHARES.extend(contents[i * size // workers:(i + 1) * size // workers] for i in range(workers))
    del contents
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        pool.map(abs, range(workers))  # workers are up before the clock starts
        cpu, start = cpu_seconds(), time.perf_counter()
        tokens = sum(pool.map(_encode_share, range(workers)))
        elapsed = time.perf_counter() - start
    return {"seconds": elapsed, "cpu_seconds": cpu_seconds() - cpu, "content_tokens": tokens}


RUNNERS = {"ftops": run_ftops, "straightforward": run_straightforward, "bound": run_bound}


def measure(name: str, path: Path, workers: int | None) -> dict:
    """Run one approach in a child process while sampling its memory."""
    import psutil

    command = [sys.executable, __file__, "--run", name, str(path)] + (["--workers", str(workers)] if workers else [])
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    peak = {"tree_pss": 0, "main_rss": 0}
    done = threading.Event()

    def sample() -> None:
        parent = psutil.Process(child.pid)
        while not done.is_set():
            try:
                processes = [parent, *parent.children(recursive=True)]
                total = 0
                for process in processes:
                    try:
                        info = process.memory_full_info()
                        total += getattr(info, "pss", info.rss)
                    except (psutil.NoSuchProcess, psutil.AccessDenied):
                        pass
                peak["tree_pss"] = max(peak["tree_pss"], total)
                peak["main_rss"] = max(peak["main_rss"], parent.memory_info().rss)
            except psutil.NoSuchProcess:
                break
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = child.communicate()
    done.set()
    sampler.join()
    if child.returncode != 0:
        raise SystemExit(f"{name} failed with exit code {child.returncode}")
    result = json.loads(output)
    result["peak_mb"] = round(peak["tree_pss"] / 2**20, 1)
    result["main_rss_mb"] = round(peak["main_rss"] / 2**20, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=200, help="size of the generated dataset (default 200)")
    parser.add_argument("--workers", type=int, default=None, help="processes for ftops and the bound (default: all cores)")
    parser.add_argument("--file", type=Path, help="benchmark this chat JSONL instead of generating one")
    parser.add_argument("--only", choices=sorted(RUNNERS), action="append",
                        help="run only these approaches (repeatable; e.g. to check ftops' memory at 1 GB)")
    parser.add_argument("--run", nargs=2, metavar=("APPROACH", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        print(json.dumps(RUNNERS[args.run[0]](Path(args.run[1]), args.workers)))
        return

    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(ROOT / ".ftops" / "tiktoken"))
    with tempfile.TemporaryDirectory(dir=ROOT / ".ftops" if (ROOT / ".ftops").is_dir() else None) as tmp:
        path = args.file or Path(tmp) / "bench.jsonl"
        if not args.file:
            print(f"generating {args.size_mb} MB of chat examples...", file=sys.stderr)
            generate(path, args.size_mb)
        size = path.stat().st_size
        results = {}
        for name in args.only or ("ftops", "straightforward", "bound"):
            print(f"running {name}...", file=sys.stderr)
            results[name] = measure(name, path, args.workers)
            results[name]["mb_per_s"] = round(size / 1e6 / results[name]["seconds"], 2)

    from jobs.data.validate import workers_available

    full = {"ftops", "straightforward", "bound"} <= set(results)
    equal = results["ftops"]["tokens"] == results["straightforward"]["tokens"] if full else None
    summary = {
        "bytes": size, "cores": args.workers or workers_available(), "approaches": results,
        "tokens_equal": equal,
        "bound_over_ftops": round(results["bound"]["mb_per_s"] / results["ftops"]["mb_per_s"], 3) if full else None,
        # CPU seconds barely move with other load on the machine; wall-clock ratios do.
        "ftops_cpu_over_bound_cpu": round(results["ftops"]["cpu_seconds"] / results["bound"]["cpu_seconds"], 3)
        if full else None,
        "figure": "ftops_cpu_over_bound_cpu: CPU s of ftops / CPU s of the bound, all processes of each",
        "baseline": "the tokenizer-only bound (message contents pre-extracted), same cores, same run",
        "goal": "ftops_cpu_over_bound_cpu <= 1.2 with equal token totals; ftops peak under 300 MB at 1 GB",
    }
    gb_run = size >= 1_000_000_000
    summary["goal_met"] = bool(full and equal and summary["ftops_cpu_over_bound_cpu"] <= 1.2
                               and (not gb_run or results["ftops"]["peak_mb"] < 300))
    print(f"\n{size / 1e6:.0f} MB, {summary['cores']} cores")
    print(f"{'approach':<16}{'MB/s':>8}{'seconds':>10}{'CPU s':>8}{'peak MB':>10}{'main RSS MB':>13}  tokens")
    for name, row in results.items():
        tokens = row.get("tokens", row.get("content_tokens"))
        print(f"{name:<16}{row['mb_per_s']:>8}{row['seconds']:>10.1f}{row['cpu_seconds']:>8.1f}{row['peak_mb']:>10}"
              f"{row['main_rss_mb']:>13}  {tokens:,}"
              + ("  (contents only)" if name == "bound" else ""))
    if full:
        print(f"bound / ftops throughput: {summary['bound_over_ftops']}x (goal <= 1.2); CPU time ftops / bound: "
              f"{summary['ftops_cpu_over_bound_cpu']}x; token totals equal: {equal}")
    sys.path.insert(0, str(ROOT))
    from benchmarks.history import record

    record("validate", summary)
    if equal is False:
        raise SystemExit("token totals differ between ftops and the straightforward approach")
    if full and not summary["goal_met"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
