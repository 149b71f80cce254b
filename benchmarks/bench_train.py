"""Training throughput: ftops's train.py (LoRA SFT) versus plain TRL SFTTrainer defaults, same data, same run.

On a GPU: a Qwen2.5-0.5B-shaped model with random weights (built from a config: nothing is downloaded) on
generated help-desk conversations of varied length; reports training tokens/s (non-padding tokens), peak GPU
memory, MFU and the assistant-token loss of each trained model on the same held-out conversations.
Goal (GPU only): >= 1.3x plain TRL's tokens/s (wall time of the training steps, one process, one GPU) with no
worse held-out loss (ftops's minus TRL's <= 0). With CUDA and bitsandbytes it also trains the same LoRA with
ftops's QLoRA (4-bit NF4 base), reported beside the others (memory and speed; no goal). On CPU it runs the tiny
test model as a smoke test, recorded with no goal.

    python benchmarks/bench_train.py [--json] [--size tiny|qwen0.5b] [--examples N]

Each arm runs in its own process (clean peak-memory counters); the ratio is within one run. Writes
benchmarks/results/train.json and appends the run to benchmarks/results/history.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.update({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                   "TOKENIZERS_PARALLELISM": "false"})

from tests.fixtures import tiny_model  # noqa: E402

# Dense bf16 peak FLOP/s by device name fragment (vendor datasheets), for MFU.
PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "A10G": 125e12, "L40S": 362e12, "L4": 121e12}


def conversations(n: int, seed: int, max_sentences: int) -> list[dict]:
    """Help-desk chats whose answers vary from one sentence to many: padding waste is realistic."""
    rng = random.Random(seed)
    answers = [a for _c, a in tiny_model._ISSUES.values()]
    rows = []
    for row in tiny_model.chat_rows(n, seed=seed):
        k = min(max_sentences, max(1, int(rng.lognormvariate(1.5, 1.0))))
        row["messages"][-1]["content"] += " " + " ".join(rng.choice(answers) for _ in range(k))
        rows.append(row)
    return rows


def build(work: Path, size: str, examples: int | None) -> dict:
    model = work / "model"
    if size == "qwen0.5b":
        import torch
        from transformers import Qwen2Config, Qwen2ForCausalLM

        tokenizer = tiny_model.build_tokenizer(model, vocab_size=2048)
        torch.manual_seed(0)
        config = Qwen2Config(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                             num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=4096,
                             tie_word_embeddings=True, eos_token_id=tokenizer.eos_token_id,
                             pad_token_id=tokenizer.pad_token_id, dtype="bfloat16")
        Qwen2ForCausalLM(config).to(torch.bfloat16).save_pretrained(model)
        settings = {"examples": 2000, "max_sentences": 60, "batch": 8, "max_length": 2048}
    else:
        tiny_model.build_causal_lm(model)
        settings = {"examples": 96, "max_sentences": 12, "batch": 4, "max_length": 512}
    settings["size"] = size
    if examples:
        settings["examples"] = examples
    tiny_model.write_jsonl(work / "train" / "train.jsonl", conversations(settings["examples"], 1, settings["max_sentences"]))
    tiny_model.write_jsonl(work / "heldout" / "heldout.jsonl", conversations(64, 2, settings["max_sentences"]))
    return settings


def heldout_loss(model, tokenizer, work: Path, max_length: int) -> float:
    """Mean assistant-token loss on the held-out chats: the same definition for both arms."""
    import torch

    from jobs.training import records

    rows = records.read_jsonl([work / "heldout" / "heldout.jsonl"])
    total, count = 0.0, 0
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        for example in records.chat_dataset(tokenizer, rows, max_length):
            ids = torch.tensor([example["input_ids"]], device=device)
            labels = ids.clone()
            labels[0, torch.tensor(example["assistant_masks"], device=device) == 0] = -100
            n = int((labels[0, 1:] != -100).sum())
            total += float(model(input_ids=ids, labels=labels).loss) * n
            count += n
    return total / count


def arm_ftops(work: Path, settings: dict, peft: str = "lora") -> dict:
    """The real entry point, as SageMaker runs it."""
    from jobs.training import train

    out = work / f"ftops-{peft}"
    os.environ.update({"SM_CHANNEL_TRAIN": str(work / "train"), "SM_CHANNEL_MODEL": str(work / "model"),
                       "SM_MODEL_DIR": str(out / "model"), "SM_OUTPUT_DATA_DIR": str(out / "data"),
                       "FTOPS_CHECKPOINT_DIR": str(out / "checkpoints"), "FTOPS_TENSORBOARD_DIR": str(out / "tb")})
    args = ["--method", "sft", "--peft", peft, "--epochs", "1", "--per_device_batch_size", str(settings["batch"]),
            "--max_length", str(settings["max_length"]), "--learning_rate", "0.0002", "--logging_steps", "5",
            "--save_steps", "100000", "--packing", "true"]
    train.run(args)
    summary = json.loads((out / "model" / train.SUMMARY_FILE).read_text())

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # QLoRA's adapter too is served on the unquantized base (what `ftops deploy` and `ftops eval` load).
    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    base = AutoModelForCausalLM.from_pretrained(work / "model", dtype=dtype)
    model = PeftModel.from_pretrained(base, out / "model").to("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = AutoTokenizer.from_pretrained(work / "model")
    return {"tokens_per_second": summary["tokens_per_second"], "tokens": summary["tokens_seen"],
            "train_seconds": summary["train_seconds"], "peak_gpu_bytes": summary.get("peak_gpu_bytes"),
            "steps": summary["global_step"], "final_train_loss": summary["final_train_loss"],
            "heldout_loss": heldout_loss(model, tokenizer, work, settings["max_length"])}


def arm_trl(work: Path, settings: dict) -> dict:
    """Plain TRL: SFTTrainer defaults on the same conversations, the same LoRA, batch size and length."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from jobs.training import records
    from jobs.training.callbacks import MetricLines

    rows = records.read_jsonl([work / "train" / "train.jsonl"])
    dataset = Dataset.from_list([{"messages": row["messages"]} for row in rows])
    tokenizer = AutoTokenizer.from_pretrained(work / "model")
    meter = MetricLines(None)  # the same tokens/s accounting as the ftops arm
    config = SFTConfig(output_dir=str(work / "trl"), num_train_epochs=1,
                       per_device_train_batch_size=settings["batch"], max_length=settings["max_length"],
                       learning_rate=2e-4, logging_steps=5, save_strategy="no", report_to=[],
                       include_num_input_tokens_seen="non_padding", use_cpu=not torch.cuda.is_available())
    trainer = SFTTrainer(model=str(work / "model"), args=config, train_dataset=dataset, processing_class=tokenizer,
                         peft_config=LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear",
                                                task_type="CAUSAL_LM"), callbacks=[meter])
    trainer.train()
    losses = [h["train_loss"] for h in meter.history if "train_loss" in h]
    return {"tokens_per_second": meter.tokens_total / meter.train_seconds_total, "tokens": meter.tokens_total,
            "train_seconds": meter.train_seconds_total,
            "peak_gpu_bytes": int(torch.cuda.max_memory_allocated()) if torch.cuda.is_available() else None,
            "steps": trainer.state.global_step, "final_train_loss": losses[-1] if losses else None,
            "heldout_loss": heldout_loss(trainer.model, tokenizer, work, settings["max_length"])}


def mfu(result: dict, params: int, layers: int, hidden: int, seq: int, device: str) -> float | None:
    peak = next((v for k, v in PEAK_BF16.items() if k in device), None)
    if not peak:
        return None
    flops_per_token = 6 * params + 12 * layers * hidden * seq  # PaLM's model-FLOPs convention
    return result["tokens_per_second"] * flops_per_token / peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arm", choices=["ftops", "trl", "ftops-qlora"], help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--size", choices=["tiny", "qwen0.5b"],
                        help="model and data size (default: qwen0.5b on a GPU, tiny on CPU)")
    parser.add_argument("--examples", type=int, help="training conversations (default: the size's)")
    options = parser.parse_args()

    import importlib.util

    import torch

    gpu = torch.cuda.is_available()
    if options.arm:  # child process: one arm, result as the last stdout line
        settings = json.loads((options.work / "settings.json").read_text())
        arms = {"trl": arm_trl, "ftops": arm_ftops, "ftops-qlora": lambda w, s: arm_ftops(w, s, peft="qlora")}
        result = arms[options.arm](options.work, settings)
        print("BENCH-RESULT " + json.dumps(result), flush=True)
        return 0

    size = options.size or ("qwen0.5b" if gpu else "tiny")
    arms = ["trl", "ftops"] + (["ftops-qlora"] if gpu and importlib.util.find_spec("bitsandbytes") else [])
    with tempfile.TemporaryDirectory(prefix="ftops-bench-train-") as tmp:
        work = Path(tmp)
        settings = build(work, size, options.examples)
        (work / "settings.json").write_text(json.dumps(settings))
        results = {}
        for arm in arms:
            done = subprocess.run([sys.executable, __file__, "--arm", arm, "--work", str(work)],
                                  capture_output=True, text=True)
            line = next((l for l in reversed(done.stdout.splitlines()) if l.startswith("BENCH-RESULT ")), None)
            if done.returncode != 0 or line is None:
                sys.exit(f"arm {arm} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
            results[arm] = json.loads(line.removeprefix("BENCH-RESULT "))
            # Each arm as it ends: a run stopped by a time limit still shows the arms it finished.
            print(f"arm {arm}: {json.dumps(results[arm])}", file=sys.stderr, flush=True)
        from transformers import AutoConfig, AutoModelForCausalLM

        config = AutoConfig.from_pretrained(work / "model")
        with torch.device("meta"):  # shapes only: counts the parameters without allocating them
            params = sum(p.numel() for p in AutoModelForCausalLM.from_config(config).parameters())

    device = torch.cuda.get_device_name(0) if gpu else f"CPU ({os.cpu_count()} cores)"
    for arm, result in results.items():
        result["mfu"] = mfu(result, params, config.num_hidden_layers, config.hidden_size, settings["max_length"],
                            device) if gpu else None
    speedup = results["ftops"]["tokens_per_second"] / results["trl"]["tokens_per_second"]
    delta = results["ftops"]["heldout_loss"] - results["trl"]["heldout_loss"]
    report = {"device": device, "model_parameters": params, "settings": settings, "results": results,
              "torch": torch.__version__, "transformers": _version("transformers"), "trl": _version("trl"),
              "peft": _version("peft"), "bitsandbytes": _version("bitsandbytes"),
              "figure": "tokens/s over the training steps' wall time, one process, one device",
              "speedup_tokens_per_second": round(speedup, 3), "heldout_loss_delta": round(delta, 4),
              # The goal is for a GPU; the CPU run is a smoke test of both arms and meets or misses nothing.
              "goal_met": (speedup >= 1.3 and delta <= 0) if gpu else None}
    from benchmarks.history import record

    entry = record("train", report)
    # Exit 1 only for a missed goal (`make bench` reports it); a CPU smoke run has no goal to miss.
    missed = 1 if report["goal_met"] is False else 0
    if options.json:
        print(json.dumps(entry, indent=2))
        return missed
    print(f"device: {device}; model: {params / 1e6:.1f}M parameters; {settings}")
    print(f"{'arm':8} {'tokens/s':>10} {'steps':>6} {'peak GPU GiB':>12} {'MFU':>6} {'held-out loss':>14}")
    for arm, r in results.items():
        peak = f"{r['peak_gpu_bytes'] / 2**30:.2f}" if r["peak_gpu_bytes"] else "-"
        util = f"{r['mfu']:.1%}" if r["mfu"] else "-"
        print(f"{arm:8} {r['tokens_per_second']:>10.0f} {r['steps']:>6} {peak:>12} {util:>6} {r['heldout_loss']:>14.4f}")
    print(f"speed-up (tokens/s, ftops / plain TRL): {report['speedup_tokens_per_second']:.2f}x; "
          f"held-out loss delta: {report['heldout_loss_delta']:+.4f}; goal met: {report['goal_met']} "
          f"(run {entry['run_id']})")
    return missed


def _version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


if __name__ == "__main__":
    sys.exit(main())
