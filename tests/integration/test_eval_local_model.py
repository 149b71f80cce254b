"""The local transformers target on the tiny offline model: a copy trained until it memorised the help-desk
task passes the gate against its untrained base, the untrained one fails it naming the metric, and the
target reads the local runner's `model.tar.gz` layout."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import pytest

from jobs.eval.config import EvalConfig, GateConfig
from jobs.eval.evaluate import Targets, evaluate
from jobs.eval.examples import parse_record
from jobs.eval.store import AnswerStore
from jobs.eval.targets.base import Generation
from jobs.eval.targets.local_model import LocalModelTarget
from tests.fixtures.tiny_model import chat_rows

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def memorise(base: Path, out: Path, steps: int = 100) -> Path:
    """Full fine-tuning of the tiny model on the toy task with a plain loop (seconds on CPU)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base)
    rows = chat_rows(64, seed=3)
    encoded = [tokenizer.apply_chat_template(r["messages"], return_tensors="pt", return_dict=True)["input_ids"][0]
               for r in rows]
    optimiser = torch.optim.AdamW(model.parameters(), lr=5e-3)
    model.train()
    for step in range(steps):
        batch = [encoded[(step * 8 + i) % len(encoded)] for i in range(8)]
        width = max(len(ids) for ids in batch)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        ids = torch.stack([torch.cat([x, torch.full((width - len(x),), pad)]) for x in batch])
        labels = torch.stack([torch.cat([x, torch.full((width - len(x),), -100)]) for x in batch])
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        optimiser.step()
        optimiser.zero_grad()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def trained(tiny_causal_lm: Path, tmp_path_factory) -> Path:
    return memorise(tiny_causal_lm, tmp_path_factory.mktemp("memorised"))


def examples():
    return [parse_record(r, i, None, i + 1) for i, r in enumerate(chat_rows(12, seed=5))]


CONFIG = EvalConfig(metrics=("rougeL", "exact_match"), gate=GateConfig("rougeL", 0.3, 0.1),
                    generation=Generation(max_tokens=24), resamples=200, out_of_domain=False)


def test_memorised_tiny_model_passes_and_untrained_one_fails(trained, tiny_causal_lm, tmp_path):
    base = LocalModelTarget(tiny_causal_lm, name="tiny-base")
    with AnswerStore(tmp_path / "pass.jsonl") as store:
        good = evaluate(CONFIG, examples(), Targets(LocalModelTarget(trained, name="tiny-ft"), base), store,
                        job="tiny", env="local")
    assert good["gate"]["passed"], good["gate"]["reasons"]
    assert good["metrics"]["rougeL"]["fine_tuned"]["value"] > 0.6, good["metrics"]["rougeL"]
    with AnswerStore(tmp_path / "fail.jsonl") as store:
        bad = evaluate(CONFIG, examples(), Targets(LocalModelTarget(tiny_causal_lm, name="tiny-untrained"), base),
                       store, job="tiny", env="local")
    assert not bad["gate"]["passed"]
    assert bad["gate"]["reasons"][0].startswith("rougeL: fine-tuned ") and "below the required +0.300" in \
        bad["gate"]["reasons"][0]


def test_the_local_runners_archive_layout_loads(trained, tmp_path):
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:  # SM_MODEL_DIR's contents at the archive root
        for path in trained.iterdir():
            tar.add(path, arcname=path.name)
    target = LocalModelTarget.from_archive(archive)
    direct = LocalModelTarget(trained)
    messages = examples()[0].messages
    assert target.answer(messages, Generation(max_tokens=24)).text == direct.answer(messages, Generation(max_tokens=24)).text
    assert target.identity.startswith("local:model-")
    shutil.rmtree(target.model_dir, ignore_errors=True)
