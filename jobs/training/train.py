"""The SageMaker training entry point: `python train.py --method sft --peft lora --epochs 3 ...`.

Runs as a top-level script in the Hugging Face training container (its siblings are plain modules there)
and as `jobs.training.train` in tests. SFT (full, LoRA, QLoRA) and DPO on chat data with TRL; text
classification with encoder models. Conventions: channels from SM_CHANNEL_*, artifacts to SM_MODEL_DIR,
checkpoints to /opt/ml/checkpoints (resumed from after a spot restart), metric lines via metrics.format_line,
SIGTERM -> checkpoint and exit, only rank 0 writes artifacts.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import resource
import shutil
import sys
import time
from pathlib import Path

# Nothing is downloaded at run time: the base model arrives as the `model` channel.
for _flag in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_flag, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

try:
    from . import ckpt, records
    from .hparams import Hyperparameters, HyperparameterError, as_dict, parse_args
    from .smenv import Distributed, Layout, data_files
except ImportError:  # the container runs this file as a script, next to its sibling modules
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import ckpt
    import records
    from hparams import Hyperparameters, HyperparameterError, as_dict, parse_args
    from smenv import Distributed, Layout, data_files

SUMMARY_FILE = "ftops-summary.json"


def _fail(message: str) -> None:
    raise SystemExit(f"error: {message}")


def _hardware():
    import torch

    cuda = torch.cuda.is_available()
    return {"cuda": cuda, "bf16": cuda and torch.cuda.is_bf16_supported(),
            "flash_attn": cuda and importlib.util.find_spec("flash_attn") is not None,
            "liger": cuda and importlib.util.find_spec("liger_kernel") is not None}


def check_qlora(hp: Hyperparameters, cuda: bool) -> None:
    if hp.peft != "qlora":
        return
    if not cuda:
        _fail("peft: qlora needs a CUDA GPU (4-bit bitsandbytes kernels); use peft lora on CPU")
    if importlib.util.find_spec("bitsandbytes") is None:
        _fail("peft: qlora needs the bitsandbytes package; add it to requirements.txt or use peft lora")


def common_args(hp: Hyperparameters, layout: Layout, hw: dict, has_validation: bool, nodes: int) -> dict:
    """TrainingArguments shared by every method."""
    early = hp.early_stopping_patience > 0 and has_validation
    save_steps = hp.save_steps
    if early and save_steps % hp.eval_steps:
        # load_best_model_at_end needs checkpoints at evaluation steps.
        save_steps = -(-save_steps // hp.eval_steps) * hp.eval_steps
        print(f"ftops: save_steps raised to {save_steps} (a multiple of eval_steps, for early stopping)", flush=True)
    return dict(
        output_dir=str(layout.checkpoints),
        num_train_epochs=hp.epochs, max_steps=hp.max_steps,
        per_device_train_batch_size=hp.per_device_batch_size, per_device_eval_batch_size=hp.per_device_batch_size,
        gradient_accumulation_steps=hp.gradient_accumulation_steps,
        learning_rate=hp.learning_rate, weight_decay=hp.weight_decay, warmup_steps=hp.warmup_ratio,
        lr_scheduler_type="linear", seed=hp.seed, data_seed=hp.seed,
        logging_steps=hp.logging_steps, logging_first_step=True,
        save_strategy="steps", save_steps=save_steps, save_total_limit=hp.save_total_limit,
        save_on_each_node=nodes > 1,  # each instance restores its own /opt/ml/checkpoints on a restart
        eval_strategy="steps" if has_validation else "no", eval_steps=hp.eval_steps,
        # Tracking the best checkpoint also keeps it safe from rotation (save_total_limit).
        load_best_model_at_end=early, metric_for_best_model="eval_loss" if has_validation else None,
        greater_is_better=False if has_validation else None,
        bf16=hw["bf16"], fp16=hw["cuda"] and not hw["bf16"],
        optim="adamw_torch_fused" if hw["cuda"] else "adamw_torch",
        gradient_checkpointing=hp.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False} if hp.gradient_checkpointing else None,
        use_liger_kernel=hw["liger"] and hp.method != "classification",
        include_num_input_tokens_seen="non_padding",
        report_to=[], disable_tqdm=True, log_level="warning",
        ddp_find_unused_parameters=False, dataloader_pin_memory=hw["cuda"],
        # Without CUDA, accelerate only sets up torchrun's process group when told to use the CPU (gloo).
        use_cpu=not hw["cuda"],
        ddp_backend="gloo" if not hw["cuda"] and int(os.environ.get("WORLD_SIZE", 1)) > 1 else None,
    )


def compatible(config_cls, kwargs: dict) -> dict:
    """Adapt argument names to the installed transformers (the container's may be older than the lock's)."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(config_cls)}
    out = dict(kwargs)
    if "train_sampling_strategy" not in names and "train_sampling_strategy" in out:
        out["group_by_length"] = out.pop("train_sampling_strategy") == "group_by_length"
    if "warmup_ratio" in names and isinstance(out.get("warmup_steps"), float):
        out["warmup_ratio"] = out.pop("warmup_steps")
    if "activation_checkpointing" in names:
        out["activation_checkpointing"] = out.pop("gradient_checkpointing", False)
        out["activation_checkpointing_kwargs"] = out.pop("gradient_checkpointing_kwargs", None)
    dropped = sorted(k for k in out if k not in names)
    if dropped:
        print(f"ftops: this transformers/trl version ignores {', '.join(dropped)}", flush=True)
    return {k: v for k, v in out.items() if k in names}


def lora_config(hp: Hyperparameters, task_type: str):
    from peft import LoraConfig

    return LoraConfig(r=hp.lora_r, lora_alpha=hp.lora_alpha, lora_dropout=hp.lora_dropout,
                      target_modules="all-linear", task_type=task_type, bias="none")


def load_causal_lm(hp: Hyperparameters, layout: Layout, hw: dict, dist: Distributed):
    import torch
    from transformers import AutoModelForCausalLM

    kwargs: dict = {"attn_implementation": "flash_attention_2" if hw["flash_attn"] else "sdpa"}
    if hp.peft == "qlora":
        from transformers import BitsAndBytesConfig

        compute = torch.bfloat16 if hw["bf16"] else torch.float16
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute, bnb_4bit_quant_storage=compute)
        kwargs["dtype"] = compute
        kwargs["device_map"] = {"": dist.local_rank}
    elif hp.peft == "lora" and hw["cuda"]:
        # The frozen base in bf16/fp16 halves its memory; the adapters train in fp32 under autocast.
        kwargs["dtype"] = torch.bfloat16 if hw["bf16"] else torch.float16
    else:
        kwargs["dtype"] = torch.float32  # full fine-tuning keeps fp32 master weights (mixed precision on GPU)
    model = AutoModelForCausalLM.from_pretrained(layout.model, **kwargs)
    if hp.peft == "qlora":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=hp.gradient_checkpointing)
        embeddings_in_compute_dtype(model, kwargs["dtype"])
    model.config.use_cache = False
    return model


def embeddings_in_compute_dtype(model, dtype) -> None:
    """Undo peft's fp32 cast of the (frozen) input and output embeddings; the norms stay fp32.

    `prepare_model_for_kbit_training` casts every weight that is not 4-bit to fp32. The Trainer runs under
    autocast, which computes the output layer in the compute dtype anyway, so for the embeddings the fp32 copy
    only costs memory: twice their bytes, plus autocast's cast of them at each step. On a 0.5B model with a 152k
    vocabulary that was more than 4-bit storage saved (H200 run 0c0692b3303e: QLoRA peaked at 5.0 GiB, LoRA at
    4.1). The QLoRA authors' script (artidoro/qlora, qlora.py, get_accelerate_model) casts both back the same way.
    """
    for module in (model.get_input_embeddings(), model.get_output_embeddings()):
        weight = getattr(module, "weight", None)
        if weight is not None and weight.dtype != dtype and weight.is_floating_point():
            module.to(dtype)  # a tied output layer shares the Parameter: one cast covers both


def load_tokenizer(layout: Layout):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(layout.model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def build_sft(hp, layout, hw, dist, nodes, callbacks, limit):
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    tokenizer = load_tokenizer(layout)
    if not getattr(tokenizer, "chat_template", None):
        _fail(f"the model channel's tokenizer ({layout.model}) has no chat template; sft needs one")
    train_rows = records.read_jsonl(data_files(layout.train), limit)
    train = Dataset.from_list(records.chat_dataset(tokenizer, train_rows, hp.max_length))
    evaluation = None
    if layout.validation is not None:
        rows = records.read_jsonl(data_files(layout.validation), limit)
        evaluation = Dataset.from_list(records.chat_dataset(tokenizer, rows, hp.max_length))
    # Packing here is padding-free batching: a step's examples lie end to end in one row (position ids restart at
    # each example, so attention stays within it) and no compute is spent on padding. A step still holds
    # per_device_batch_size examples. TRL's bin packing ("bfd") fills every row to max_length instead: one epoch
    # of 2,000 short chats became 14 optimizer steps instead of 250, and the model learnt little (held-out loss
    # 9.4 against TRL's 1.2, benchmarks/RESULTS.md, bench_train on an H200).
    padding_free = hp.packing or hw["flash_attn"]
    config = SFTConfig(**compatible(SFTConfig, dict(
        common_args(hp, layout, hw, evaluation is not None, nodes),
        # records.chat_dataset has truncated every example to max_length; TRL refuses a max_length it would not
        # enforce on padding-free batches.
        max_length=None if padding_free else hp.max_length, packing=False, padding_free=padding_free,
        train_sampling_strategy="random" if padding_free else "group_by_length", assistant_only_loss=False)))
    model = load_causal_lm(hp, layout, hw, dist)
    peft_config = None if hp.peft == "full" else lora_config(hp, "CAUSAL_LM")
    trainer = SFTTrainer(model=model, args=config, train_dataset=train, eval_dataset=evaluation,
                         processing_class=tokenizer, peft_config=peft_config, callbacks=callbacks)
    return trainer, tokenizer, {"train_examples": len(train_rows)}


def build_dpo(hp, layout, hw, dist, nodes, callbacks, limit):
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    tokenizer = load_tokenizer(layout)
    if not getattr(tokenizer, "chat_template", None):
        _fail(f"the model channel's tokenizer ({layout.model}) has no chat template; dpo needs one")
    train_rows = records.read_jsonl(data_files(layout.train), limit)
    train = Dataset.from_list([records.preference_example(r) for r in train_rows])
    evaluation = None
    if layout.validation is not None:
        rows = records.read_jsonl(data_files(layout.validation), limit)
        evaluation = Dataset.from_list([records.preference_example(r) for r in rows])
    config = DPOConfig(**compatible(DPOConfig, dict(common_args(hp, layout, hw, evaluation is not None, nodes),
                                                    beta=hp.beta, max_length=hp.max_length,
                                                    padding_free=hw["flash_attn"])))
    model = load_causal_lm(hp, layout, hw, dist)
    peft_config = None if hp.peft == "full" else lora_config(hp, "CAUSAL_LM")
    trainer = DPOTrainer(model=model, args=config, train_dataset=train, eval_dataset=evaluation,
                         processing_class=tokenizer, peft_config=peft_config, callbacks=callbacks)
    return trainer, tokenizer, {"train_examples": len(train_rows)}


def build_classification(hp, layout, hw, dist, nodes, callbacks, limit):
    from datasets import Dataset
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                              TrainingArguments)

    tokenizer = AutoTokenizer.from_pretrained(layout.model)
    train_rows = records.read_jsonl(data_files(layout.train), limit)
    labels = records.label_mapping(train_rows)
    train = Dataset.from_list(records.classification_examples(tokenizer, train_rows, labels, hp.max_length))
    evaluation = None
    if layout.validation is not None:
        rows = records.read_jsonl(data_files(layout.validation), limit)
        evaluation = Dataset.from_list(records.classification_examples(tokenizer, rows, labels, hp.max_length))
    args = TrainingArguments(**compatible(TrainingArguments, dict(
        common_args(hp, layout, hw, evaluation is not None, nodes), train_sampling_strategy="group_by_length")))
    model = AutoModelForSequenceClassification.from_pretrained(
        layout.model, num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)})
    if hp.peft == "qlora":
        _fail("peft: qlora is for causal language models; use lora or full for classification")
    if hp.peft == "lora":
        from peft import get_peft_model

        model = get_peft_model(model, lora_config(hp, "SEQ_CLS"))

    def metrics(prediction):
        return records.classification_metrics(prediction.predictions, prediction.label_ids)

    trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=evaluation,
                      processing_class=tokenizer, data_collator=DataCollatorWithPadding(tokenizer),
                      compute_metrics=metrics, callbacks=callbacks)
    return trainer, tokenizer, {"train_examples": len(train_rows), "labels": labels}


BUILDERS = {"sft": build_sft, "dpo": build_dpo, "classification": build_classification}


def peak_memory_bytes() -> dict[str, int]:
    import torch

    out = {"peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    if torch.cuda.is_available():
        out["peak_gpu_bytes"] = int(torch.cuda.max_memory_allocated())
    return out


def save_artifacts(trainer, tokenizer, hp: Hyperparameters, layout: Layout) -> None:
    """The adapter (LoRA/QLoRA) or the full model, plus the tokenizer, into SM_MODEL_DIR (rank 0 writes)."""
    trainer.save_model(str(layout.model_dir))  # every rank calls it; the Trainer writes on rank 0 only
    if not trainer.is_world_process_zero():
        return
    tokenizer.save_pretrained(str(layout.model_dir))
    if hp.merge_adapter and hp.peft == "lora":
        merged = trainer.model.merge_and_unload()
        merged.save_pretrained(str(layout.model_dir / "merged"))
        tokenizer.save_pretrained(str(layout.model_dir / "merged"))


def write_summary(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)


# What the script imports beyond the standard library, by method. A network-isolated job cannot pip-install
# at start: these come from the image (or from wheels inside the source archive, see archive.py).
DEPENDENCIES = {"sft": ("torch", "transformers", "datasets", "peft", "trl", "accelerate"),
                "dpo": ("torch", "transformers", "datasets", "peft", "trl", "accelerate"),
                "classification": ("torch", "transformers", "datasets", "peft", "accelerate")}


def check_dependencies(method: str) -> None:
    """One line naming what is missing, before anything loads (rather than an ImportError deep in a trainer)."""
    missing = [name for name in DEPENDENCIES[method] if importlib.util.find_spec(name) is None]
    if missing:
        _fail(f"{', '.join(missing)} not installed in this image; use an image that ships them, or (network-"
              "isolated jobs) put their wheels in jobs/training/wheels/ so the source archive carries them")


def trial_job_name() -> str | None:
    """This training job's name: SageMaker sets TRAINING_JOB_NAME; the training toolkit's SM_TRAINING_ENV has it too."""
    name = os.environ.get("TRAINING_JOB_NAME")
    if not name and os.environ.get("SM_TRAINING_ENV"):
        name = json.loads(os.environ["SM_TRAINING_ENV"]).get("job_name")
    return name or None


def trial_layout(layout: Layout, hp: Hyperparameters) -> Layout:
    """A tuning trial checkpoints into `<checkpoints>/<its training job name>/`.

    Every trial of a tuning job gets the same CheckpointConfig. The SageMaker API reference
    (HyperParameterTrainingJobDefinition.CheckpointConfig, CheckpointConfig) does not say that SageMaker
    separates trials, and the checkpoint guide ("Checkpoints in Amazon SageMaker AI", model-checkpoints.html)
    says that whatever is under the S3 URI is copied into the container when a job starts. So a trial must not
    trust the directory's top level: it would resume from another trial's weights. Its own subdirectory, named
    after its training job (unchanged across a spot restart of that trial), is what it saves to and resumes from.
    """
    if "_tuning_objective_metric" not in hp.extras:
        return layout
    name = trial_job_name()
    if not name:  # not expected on SageMaker; the trial's own hyperparameters still tell it apart
        import hashlib

        digest = hashlib.sha256(json.dumps(as_dict(hp), sort_keys=True).encode()).hexdigest()[:12]
        name = f"trial-{digest}"
        print(f"ftops: no training job name in the environment; checkpoints go to {name}/", flush=True)
    return dataclasses.replace(layout, checkpoints=layout.checkpoints / name)


def run(argv: list[str]) -> int:
    try:
        hp = parse_args(argv)
    except HyperparameterError as exc:
        _fail(str(exc))
    check_dependencies(hp.method)
    layout = trial_layout(Layout.from_env(), hp)
    dist = Distributed.from_env()
    nodes = max(1, len(json.loads(os.environ.get("SM_HOSTS", "[]")) or [None]))

    import datasets
    import torch
    import transformers
    from transformers import EarlyStoppingCallback, PrinterCallback, set_seed

    # Logs stay readable in CloudWatch: no progress bars, and our metric lines instead of the Trainer's dicts.
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()

    try:
        from .callbacks import CheckpointManifest, GracefulStop, MetricLines, ScheduleFromArgs
    except ImportError:
        from callbacks import CheckpointManifest, GracefulStop, MetricLines, ScheduleFromArgs

    started = time.time()
    hw = _hardware()
    check_qlora(hp, hw["cuda"])
    set_seed(hp.seed)
    if torch.cuda.is_available():
        torch.cuda.set_device(dist.local_rank)
        torch.backends.cuda.matmul.allow_tf32 = True

    if dist.is_main or nodes > 1:
        for broken in ckpt.incomplete(layout.checkpoints):
            print(f"ftops: skipping incomplete checkpoint {broken.name} (half-written before an interruption)",
                  flush=True)
            if dist.local_rank == 0:
                shutil.rmtree(broken, ignore_errors=True)
    resume = ckpt.latest_complete(layout.checkpoints)

    metric_lines = MetricLines(layout.tensorboard if dist.is_main else None)
    stop = GracefulStop()
    callbacks = [ScheduleFromArgs(), metric_lines, CheckpointManifest(), stop]
    limit = int(os.environ["FTOPS_SUBSET"]) if os.environ.get("FTOPS_SUBSET") else None
    trainer, tokenizer, data_info = BUILDERS[hp.method](hp, layout, hw, dist, nodes, callbacks, limit)
    trainer.remove_callback(PrinterCallback)
    if hp.early_stopping_patience > 0 and trainer.eval_dataset is not None:
        trainer.add_callback(EarlyStoppingCallback(early_stopping_patience=hp.early_stopping_patience))
    if dist.is_main:
        where = f"resuming from {resume.name}" if resume else "starting fresh"
        print(f"ftops: {hp.method}/{hp.peft} on {data_info['train_examples']} examples, {where}", flush=True)

    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    interrupted = stop.stopped_at is not None
    if not interrupted:
        save_artifacts(trainer, tokenizer, hp, layout)

    if dist.is_main:
        state = trainer.state
        train_losses = [h["train_loss"] for h in metric_lines.history if "train_loss" in h]
        eval_losses = [h["eval_loss"] for h in metric_lines.history if "eval_loss" in h]
        seconds = metric_lines.train_seconds_total
        summary = {
            "method": hp.method, "peft": hp.peft, "interrupted": interrupted,
            "resumed_from": resume.name if resume else None,
            "global_step": state.global_step, "max_steps": state.max_steps, "epoch": state.epoch,
            "first_train_loss": train_losses[0] if train_losses else None,
            "final_train_loss": train_losses[-1] if train_losses else None,
            "mean_train_loss": result.training_loss,
            "best_eval_loss": min(eval_losses) if eval_losses else None,
            "final_eval_loss": eval_losses[-1] if eval_losses else None,
            "best_checkpoint": Path(state.best_model_checkpoint).name if state.best_model_checkpoint else None,
            "stopped_early": bool(state.global_step < state.max_steps and not interrupted),
            "tokens_seen": metric_lines.tokens_total,
            "tokens_per_second": metric_lines.tokens_total / seconds if seconds else None,
            "train_seconds": seconds, "wall_seconds": time.time() - started,
            "world_size": dist.world_size, **peak_memory_bytes(), **data_info,
            "hyperparameters": as_dict(hp), "history": metric_lines.history,
        }
        target = (layout.output_data if interrupted else layout.model_dir) / SUMMARY_FILE
        write_summary(target, summary)
        if interrupted:
            print(f"ftops: stopped on SIGTERM at step {stop.stopped_at}; checkpoint saved, exiting", flush=True)
        else:
            print(f"ftops: done at step {state.global_step}; artifacts in {layout.model_dir}", flush=True)

    if dist.world_size > 1:
        _exit_without_teardown(0)
    return 0


def _exit_without_teardown(code: int) -> None:
    """Several processes: leave before Python frees the trainer. DDP's reducer destructor joins gloo's worker
    thread while holding the GIL that thread may need to free a tensor, a deadlock that leaves torchrun waiting
    forever. Everything (artifacts, complete checkpoints, the summary) is written before this is called."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main() -> None:
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        sys.exit(run(sys.argv[1:]))
    try:
        code = run(sys.argv[1:])  # with several processes, a successful run leaves inside run()
    except Exception:  # noqa: BLE001 - printed as Python would; the live traceback keeps the trainer alive
        import traceback

        traceback.print_exc()
        _exit_without_teardown(1)
    sys.exit(code)


if __name__ == "__main__":
    main()
