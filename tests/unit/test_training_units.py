"""The training script's pure parts: hyperparameters, checkpoint completeness, masks, metrics, event files."""

from __future__ import annotations

import re
import tarfile
import io

import pytest

from jobs.training import ckpt, records, tbevents
from jobs.training.archive import source_archive
from jobs.training.hparams import HyperparameterError, parse_args
from jobs.training.metrics import format_line, metric_definitions
from tests.fixtures import tiny_model


def test_hyperparameters_parse_sagemaker_strings():
    hp = parse_args(["--method", "dpo", "--peft", "full", "--epochs", "3", "--learning_rate", "1e-4",
                     "--packing", "false", "--per_device_batch_size=8", "--max_steps", '"12"',
                     "--sagemaker_program", "train.py", "--sagemaker_submit_directory", "s3://b/source.tar.gz"])
    assert (hp.method, hp.peft, hp.epochs, hp.learning_rate, hp.packing) == ("dpo", "full", 3.0, 1e-4, False)
    assert (hp.per_device_batch_size, hp.max_steps) == (8, 12)
    assert hp.extras["sagemaker_program"] == "train.py"


@pytest.mark.parametrize(("argv", "message"), [
    (["--learning_rat", "0.1"], "learning_rat: unknown hyperparameter"),
    (["--packing", "maybe"], "packing: 'maybe' is not a boolean"),
    (["--epochs", "three"], "epochs: 'three' is not a valid float"),
    (["--method", "rlhf"], "method: 'rlhf' is not one of"),
    (["--save_steps", "0"], "save_steps: must be at least 1"),
    (["--lora_r", "2.5"], "lora_r: '2.5' is not a valid int"),
    (["--epochs"], "epochs: missing a value"),
])
def test_bad_hyperparameters_name_the_field(argv, message):
    with pytest.raises(HyperparameterError, match=re.escape(message)):
        parse_args(argv)


def _checkpoint(root, step, files):
    path = root / f"checkpoint-{step}"
    path.mkdir(parents=True)
    for name, data in files.items():
        (path / name).write_bytes(data)
    return path


def test_resume_skips_half_written_checkpoints(tmp_path):
    good = _checkpoint(tmp_path, 20, {"adapter_model.safetensors": b"w" * 64, "optimizer.pt": b"o" * 32})
    ckpt.mark_complete(good)
    # Interrupted before the manifest: transformers' get_last_checkpoint would pick this one.
    _checkpoint(tmp_path, 40, {"adapter_model.safetensors": b"w" * 64})
    # Manifest restored from S3 but a file arrived truncated.
    truncated = _checkpoint(tmp_path, 30, {"adapter_model.safetensors": b"w" * 64, "optimizer.pt": b"o" * 32})
    ckpt.mark_complete(truncated)
    (truncated / "optimizer.pt").write_bytes(b"o" * 5)

    assert ckpt.latest_complete(tmp_path) == good
    assert [p.name for p in ckpt.incomplete(tmp_path)] == ["checkpoint-30", "checkpoint-40"]
    assert ckpt.latest_complete(tmp_path / "absent") is None


def test_metric_definitions_match_format_line():
    line = format_line(120, {"train_loss": 0.8123, "eval_loss": 1.5e-3, "learning_rate": 2e-4, "epoch": 1.5,
                             "tokens_per_second": 1234.5, "grad_norm": 0.7, "eval_accuracy": 0.9, "eval_f1": 0.85})
    found = {d["Name"]: float(re.search(d["Regex"], line).group(1)) for d in metric_definitions()}
    assert found["train_loss"] == pytest.approx(0.8123) and found["eval_loss"] == pytest.approx(1.5e-3)
    assert found["learning_rate"] == pytest.approx(2e-4) and len(found) == len(metric_definitions())


def test_tensorboard_events_round_trip(tmp_path):
    assert tbevents.crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    writer = tbevents.EventWriter(tmp_path)
    writer.scalars(3, {"train/loss": 2.5})
    writer.scalars(6, {"train/loss": 1.25, "eval/loss": 1.5})
    writer.close()
    assert tbevents.read_scalars(writer.path) == [(3, "train/loss", 2.5), (6, "train/loss", 1.25),
                                                  (6, "eval/loss", 1.5)]
    data = bytearray(writer.path.read_bytes())
    data[-6] ^= 0xFF
    writer.path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum"):
        tbevents.read_scalars(writer.path)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return tiny_model.build_tokenizer(tmp_path_factory.mktemp("tok"))


def test_assistant_mask_matches_the_generation_markers(tokenizer):
    row = tiny_model.chat_rows(1)[0]
    ours = records.chat_example(tokenizer, row, 512)
    theirs = tokenizer.apply_chat_template(row["messages"], tokenize=True, return_dict=True,
                                           return_assistant_tokens_mask=True)
    assert ours["input_ids"] == list(theirs["input_ids"])
    assert ours["assistant_masks"] == list(theirs["assistant_masks"])
    learned = tokenizer.decode([t for t, m in zip(ours["input_ids"], ours["assistant_masks"]) if m])
    assert learned == row["messages"][-1]["content"] + "<|end|>\n"


def test_weight_zero_assistant_turns_carry_no_loss(tokenizer):
    row = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "bad answer", "weight": 0},
                        {"role": "user", "content": "again"}, {"role": "assistant", "content": "good answer"}]}
    example = records.chat_example(tokenizer, row, 512)
    learned = tokenizer.decode([t for t, m in zip(example["input_ids"], example["assistant_masks"]) if m])
    assert learned == "good answer<|end|>\n"
    row["messages"][-1]["weight"] = 0
    assert records.chat_example(tokenizer, row, 512) is None


def test_preference_rows_become_conversational_triples():
    row = tiny_model.preference_rows(1)[0]
    example = records.preference_example(row)
    assert example["prompt"][0]["role"] == "user"
    assert example["chosen"] == [{"role": "assistant", "content": row["preferred_output"][0]["content"]}]
    with pytest.raises(SystemExit, match="input.messages"):
        records.preference_example({"input": "x", "preferred_output": [], "non_preferred_output": [],
                                    "_where": "train.jsonl:3"})


def test_classification_labels_and_metrics():
    rows = [{"text": "a", "label": "b"}, {"text": "c", "label": "a"}, {"text": "d", "label": "b"}]
    assert records.label_mapping(rows) == ["a", "b"]
    with pytest.raises(SystemExit, match="at least two labels"):
        records.label_mapping(rows[:1])
    logits = [[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6]]
    result = records.classification_metrics(logits, [0, 1, 1, 1])
    assert result["accuracy"] == pytest.approx(0.75)
    assert result["f1"] == pytest.approx((2 / 3 + 0.8) / 2)


def test_source_archive_ships_the_entry_point_and_requirements():
    with tarfile.open(fileobj=io.BytesIO(source_archive().data)) as tar:
        names = set(tar.getnames())
        requirements = tar.extractfile("requirements.txt").read().decode()
    assert {"train.py", "hparams.py", "callbacks.py", "ckpt.py", "records.py", "metrics.py", "smenv.py",
            "tbevents.py", "requirements.txt"} <= names
    from jobs.render.images import HF_TRAINING_IMAGE

    assert f"transformers=={HF_TRAINING_IMAGE['transformers']}" in requirements
    assert f"torch=={HF_TRAINING_IMAGE['pytorch']}" in requirements


def test_qlora_on_cpu_fails_with_one_line():
    from jobs.training.train import check_qlora

    with pytest.raises(SystemExit, match="qlora needs a CUDA GPU"):
        check_qlora(parse_args(["--peft", "qlora"]), cuda=False)
    check_qlora(parse_args(["--peft", "lora"]), cuda=False)


def test_tuning_trials_accept_sagemakers_reserved_hyperparameters():
    """SageMaker adds `_tuning_objective_metric` (and the framework's `sagemaker_*`) to every trial."""
    hp = parse_args(["--learning_rate", "0.0003", "--_tuning_objective_metric", "eval_loss",
                     "--sagemaker_container_log_level", "20", "--sagemaker_job_name", "x"])
    assert hp.learning_rate == 3e-4
    assert hp.extras == {"_tuning_objective_metric": "eval_loss", "sagemaker_container_log_level": "20",
                         "sagemaker_job_name": "x"}


def test_each_trial_checkpoints_under_its_own_training_job_name(tmp_path, monkeypatch):
    from jobs.training.smenv import Layout
    from jobs.training.train import trial_layout

    layout = Layout(train=tmp_path, validation=None, model=tmp_path, model_dir=tmp_path / "model",
                    checkpoints=tmp_path / "checkpoints", output_data=tmp_path / "out", tensorboard=tmp_path / "tb")
    plain = parse_args(["--epochs", "1"])
    assert trial_layout(layout, plain).checkpoints == tmp_path / "checkpoints"
    trial = parse_args(["--epochs", "1", "--_tuning_objective_metric", "eval_loss"])
    monkeypatch.setenv("TRAINING_JOB_NAME", "sweep-local-0a1b2c3d-001-5e6f7a8b")
    assert trial_layout(layout, trial).checkpoints == tmp_path / "checkpoints" / "sweep-local-0a1b2c3d-001-5e6f7a8b"
    monkeypatch.delenv("TRAINING_JOB_NAME")
    monkeypatch.setenv("SM_TRAINING_ENV", '{"job_name": "other-trial"}')
    assert trial_layout(layout, trial).checkpoints == tmp_path / "checkpoints" / "other-trial"
    monkeypatch.delenv("SM_TRAINING_ENV")
    unnamed = trial_layout(layout, trial).checkpoints  # no name given: the tuned values tell trials apart
    other = trial_layout(layout, parse_args(["--epochs", "2", "--_tuning_objective_metric", "eval_loss"])).checkpoints
    assert unnamed.parent == other.parent == tmp_path / "checkpoints" and unnamed != other


@pytest.mark.parametrize("tied", [True, False])
def test_qlora_keeps_embeddings_in_the_compute_dtype_and_norms_in_fp32(tied):
    """peft's kbit preparation casts every non-4-bit weight to fp32: for the embeddings and the output layer
    that doubles their memory for nothing (on an H200, QLoRA then peaked above LoRA)."""
    import torch
    from peft import prepare_model_for_kbit_training
    from transformers import LlamaConfig, LlamaForCausalLM

    from jobs.training.train import embeddings_in_compute_dtype

    config = LlamaConfig(vocab_size=128, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, tie_word_embeddings=tied)
    model = prepare_model_for_kbit_training(LlamaForCausalLM(config).to(torch.bfloat16),
                                            use_gradient_checkpointing=False)
    assert model.get_input_embeddings().weight.dtype == torch.float32  # what peft does (the reason for the fix)
    embeddings_in_compute_dtype(model, torch.bfloat16)
    assert model.get_input_embeddings().weight.dtype == torch.bfloat16
    assert model.get_output_embeddings().weight.dtype == torch.bfloat16
    assert (model.get_input_embeddings().weight is model.get_output_embeddings().weight) == tied
    norms = [p.dtype for name, p in model.named_parameters() if "norm" in name]
    assert norms and set(norms) == {torch.float32}
    with torch.autocast("cpu", dtype=torch.bfloat16):  # as the Trainer runs it (bf16=True)
        logits = model(input_ids=torch.tensor([[1, 2, 3]])).logits
    assert torch.isfinite(logits.float()).all()
