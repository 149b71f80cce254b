"""train.py on a CUDA GPU: QLoRA's 4-bit base and bf16 LoRA, run as the container runs them.

Skipped without CUDA (CI has no GPU). On a GPU machine without this project's test dependencies (no moto, no
pydantic) it runs on its own: `pytest --noconftest -o addopts= tests/unit/test_training_cuda.py`.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

from tests.fixtures import tiny_model
from tests.unit.test_training_script import make_job, series


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


pytestmark = [pytest.mark.skipif(not _cuda(), reason="needs a CUDA GPU (QLoRA's 4-bit kernels, bf16 LoRA)"),
              pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def mid_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Large enough (about 170M parameters) that the base's weights, not the activations, dominate GPU memory:
    the difference between a 4-bit and a bf16 base shows in the peak."""
    return tiny_model.build_causal_lm(tmp_path_factory.mktemp("mid-llama"), hidden=1536, layers=8)


def train(job, peft: str) -> dict:
    args = {"method": "sft", "peft": peft, "per_device_batch_size": 4, "learning_rate": 0.003, "max_length": 128,
            "logging_steps": 1, "save_steps": 20, "max_steps": 20, "seed": 7}
    done = job.run([part for key, value in args.items() for part in (f"--{key}", str(value))])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    losses = [loss for _step, loss in series(done.stdout, "train_loss")]
    assert len(losses) == 20 and all(math.isfinite(x) for x in losses), losses
    assert sum(losses[-5:]) < 0.98 * sum(losses[:5]), losses  # it learns (a random-weight base: slowly)
    return job.summary()


@pytest.mark.skipif(not _cuda() or importlib.util.find_spec("bitsandbytes") is None,
                    reason="QLoRA needs a CUDA GPU and bitsandbytes")
def test_qlora_trains_on_a_4bit_base_in_less_memory_than_lora(mid_lm, tmp_path):
    rows = tiny_model.chat_rows(96)
    lora = train(make_job(tmp_path / "lora", mid_lm, rows), "lora")
    qlora_job = make_job(tmp_path / "qlora", mid_lm, rows)
    qlora = train(qlora_job, "qlora")

    import torch
    from peft import PeftModel
    from transformers import AutoConfig, AutoModelForCausalLM

    # The decoder's linear weights are what QLoRA quantizes: 2 bytes each in bf16, about half a byte in NF4 (the
    # embeddings, norms, adapters and activations are alike in both runs). On an H200: 224 MB saved of 340 MB.
    with torch.device("meta"):
        shapes = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(mid_lm))
    linear_bytes = 2 * sum(m.weight.numel() for name, m in shapes.named_modules()
                           if isinstance(m, torch.nn.Linear) and name != "lm_head")
    saved = lora["peak_gpu_bytes"] - qlora["peak_gpu_bytes"]
    assert saved > 0.5 * linear_bytes, (qlora["peak_gpu_bytes"], lora["peak_gpu_bytes"], linear_bytes)
    # What deploy and eval load: the adapter, applied to the unquantized base.

    assert (qlora_job.model_dir / "adapter_config.json").is_file()
    base = AutoModelForCausalLM.from_pretrained(mid_lm, dtype=torch.bfloat16).to("cuda")
    model = PeftModel.from_pretrained(base, qlora_job.model_dir)
    ids = torch.tensor([[1, 2, 3, 4]], device="cuda")
    with torch.no_grad():
        assert torch.isfinite(model(input_ids=ids).logits).all()


def test_lora_checkpoints_and_resumes_on_cuda(mid_lm, tmp_path):
    """The spot-interruption path on a GPU: a stopped run resumes from its last complete checkpoint."""
    from jobs.training import ckpt

    job = make_job(tmp_path, mid_lm, tiny_model.chat_rows(64))
    args = ["--method", "sft", "--peft", "lora", "--per_device_batch_size", "4", "--max_length", "128",
            "--logging_steps", "1", "--save_steps", "3", "--seed", "7"]
    first = job.run([*args, "--max_steps", "6"])
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert ckpt.latest_complete(job.checkpoints).name == "checkpoint-6"
    resumed = job.run([*args, "--max_steps", "9"])
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert series(resumed.stdout, "train_loss")[0][0] == 7
    assert job.summary()["resumed_from"] == "checkpoint-6" and job.summary()["global_step"] == 9
