"""train.py end to end on CPU, run as the container runs it (a top-level script in a subprocess).

A 2-layer Llama and a 2-layer BERT built from configs act as the pre-trained models; each run is a few
seconds of steps.
"""

from __future__ import annotations

import contextlib

import json
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from jobs.training import ckpt, tbevents
from jobs.training.metrics import metric_definitions, parse_line
from tests.fixtures import tiny_model
from tests.fixtures.processes import Lines

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parents[2] / "jobs" / "training" / "train.py"


@dataclass
class Job:
    root: Path
    env: dict[str, str]

    @property
    def model_dir(self) -> Path:
        return Path(self.env["SM_MODEL_DIR"])

    @property
    def checkpoints(self) -> Path:
        return Path(self.env["FTOPS_CHECKPOINT_DIR"])

    def summary(self, where: str = "SM_MODEL_DIR") -> dict:
        return json.loads((Path(self.env[where]) / "ftops-summary.json").read_text())

    def command(self, args: list[str], nproc: int = 1) -> list[str]:
        if nproc > 1:
            return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
                    str(SCRIPT), *args]
        return [sys.executable, str(SCRIPT), *args]

    def run(self, args: list[str], nproc: int = 1) -> subprocess.CompletedProcess:
        command = self.command(args, nproc)
        proc = subprocess.Popen(command, env={**self.env, "PYTHONFAULTHANDLER": "1"}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            stdout, stderr = proc.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            # torchrun starts its workers in sessions of their own: signal every descendant, not just the group.
            import psutil

            for child in psutil.Process(proc.pid).children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    child.send_signal(signal.SIGABRT)  # faulthandler prints each one's stacks: where it hung
            os.killpg(proc.pid, signal.SIGABRT)
            stdout, stderr = proc.communicate(timeout=60)
            pytest.fail(f"training did not finish in 240 s:\n{stdout[-2000:]}\n{stderr[-6000:]}")
        return subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)

    def start(self, args: list[str], spawn) -> Lines:
        """Start in the background (stopped at teardown by the `spawn` fixture); read its output with deadlines."""
        return Lines(spawn(self.command(args), env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True))


def make_job(tmp_path: Path, model: Path, train_rows: list[dict], validation_rows: list[dict] | None = None) -> Job:
    data = tmp_path / "input" / "data"
    tiny_model.write_jsonl(data / "train" / "train.jsonl", train_rows)
    env = {**os.environ, "SM_CHANNEL_TRAIN": str(data / "train"), "SM_CHANNEL_MODEL": str(model),
           "SM_MODEL_DIR": str(tmp_path / "model"), "SM_OUTPUT_DATA_DIR": str(tmp_path / "output" / "data"),
           "FTOPS_CHECKPOINT_DIR": str(tmp_path / "checkpoints"),
           "FTOPS_TENSORBOARD_DIR": str(tmp_path / "output" / "tensorboard"), "OMP_NUM_THREADS": "1",
           "PYTHONUNBUFFERED": "1"}
    env.pop("SM_CHANNEL_VALIDATION", None)
    if validation_rows is not None:
        tiny_model.write_jsonl(data / "validation" / "validation.jsonl", validation_rows)
        env["SM_CHANNEL_VALIDATION"] = str(data / "validation")
    return Job(tmp_path, env)


def series(stdout: str, name: str) -> list[tuple[int, float]]:
    out = []
    for line in stdout.splitlines():
        parsed = parse_line(line)
        if parsed and name in parsed:
            out.append((int(parsed["step"]), parsed[name]))
    return out


def hp(**values) -> list[str]:
    base = {"method": "sft", "peft": "lora", "per_device_batch_size": 4, "learning_rate": 0.003,
            "max_length": 128, "logging_steps": 1, "save_steps": 2, "eval_steps": 2, "seed": 7,
            "sagemaker_program": "train.py", "sagemaker_submit_directory": "s3://bucket/source/sourcedir.tar.gz"}
    base.update(values)
    return [part for key, value in base.items() for part in (f"--{key}", str(value))]


def test_loss_falls_and_metric_regexes_match_real_output(tiny_causal_lm, tmp_path):
    job = make_job(tmp_path, tiny_causal_lm, tiny_model.chat_rows(64), tiny_model.chat_rows(16, seed=5))
    done = job.run(hp(peft="full", max_steps=24, eval_steps=8, save_steps=8, logging_steps=4))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    train, evals = series(done.stdout, "train_loss"), series(done.stdout, "eval_loss")
    assert train[-1][0] == 24 and train[-1][1] < 0.8 * train[0][1]
    assert evals[-1][1] < evals[0][1]
    # What SageMaker does with the rendered MetricDefinitions: regexes over the job's log lines.
    for name in ("train_loss", "eval_loss", "learning_rate", "epoch", "grad_norm", "tokens_per_second"):
        regex = next(d["Regex"] for d in metric_definitions() if d["Name"] == name)
        matched = [float(m.group(1)) for line in done.stdout.splitlines() if (m := re.search(regex, line))]
        assert matched, f"{name}: no line matched {regex}"
    assert [v for _, v in series(done.stdout, "train_loss")] == pytest.approx(
        [float(re.search(next(d["Regex"] for d in metric_definitions() if d["Name"] == "train_loss"), line).group(1))
         for line in done.stdout.splitlines() if "train_loss=" in line])

    summary = job.summary()
    assert summary["global_step"] == 24 and summary["final_train_loss"] < summary["first_train_loss"]
    assert summary["tokens_per_second"] > 0 and summary["best_checkpoint"].startswith("checkpoint-")
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= {p.name for p in job.model_dir.iterdir()}
    (events,) = (tmp_path / "output" / "tensorboard").glob("events.out.tfevents.*")
    tags = {tag for _step, tag, _value in tbevents.read_scalars(events)}
    assert {"train/loss", "eval/loss"} <= tags


def test_packing_keeps_the_batch_size_in_examples_per_step(tiny_causal_lm, tmp_path):
    """Padding-free batches, not bins filled to max_length: one epoch of 64 chats at batch 4 is 16 optimizer steps,
    as without packing (bin packing made ~6 of this data and, on a GPU, 14 of 2,000 chats: RESULTS.md)."""
    job = make_job(tmp_path, tiny_causal_lm, tiny_model.chat_rows(64))
    done = job.run(hp(packing="true", epochs=1, max_steps=-1, max_length=512, save_steps=100))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = job.summary()
    assert summary["global_step"] == 16 and summary["tokens_seen"] > 0


def test_sigkill_then_restart_resumes_to_the_same_final_step(tiny_causal_lm, tmp_path, spawn):
    job = make_job(tmp_path, tiny_causal_lm, tiny_model.chat_rows(64))
    args = hp(max_steps=10)
    out = job.start(args, spawn)
    proc = out.proc
    for line in out.each(timeout_s=120):  # kill hard once a checkpoint is complete, as a reclaimed host would
        if "saved complete checkpoint checkpoint-4" in line:
            proc.kill()
            break
    proc.wait(timeout=60)
    # A checkpoint half-uploaded before the kill: resuming from it would crash or silently lose state.
    ghost = job.checkpoints / "checkpoint-9"
    ghost.mkdir()
    (ghost / "adapter_model.safetensors").write_bytes(b"partial")
    resumed_from = ckpt.latest_complete(job.checkpoints)
    assert resumed_from is not None and ckpt.step_of(resumed_from) >= 4

    done = job.run(args)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "skipping incomplete checkpoint checkpoint-9" in done.stdout
    summary = job.summary()
    assert summary["resumed_from"] == resumed_from.name
    assert summary["global_step"] == 10
    assert series(done.stdout, "train_loss")[0][0] == ckpt.step_of(resumed_from) + 1


def test_a_resumed_run_keeps_its_own_schedule_not_the_checkpoints(tiny_causal_lm, tmp_path):
    """A smoke run's checkpoint (save/eval every 2) must not make the real run save and evaluate every 2 steps."""
    job = make_job(tmp_path, tiny_causal_lm, tiny_model.chat_rows(64), tiny_model.chat_rows(8, seed=5))
    smoke = job.run(hp(max_steps=4, save_total_limit=20))
    assert smoke.returncode == 0, smoke.stdout[-3000:] + smoke.stderr[-3000:]

    done = job.run(hp(max_steps=12, save_steps=6, eval_steps=6, logging_steps=3, save_total_limit=20))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert job.summary()["resumed_from"] == "checkpoint-4"
    saved = sorted(ckpt.step_of(p) for p in job.checkpoints.glob("checkpoint-*"))
    assert saved == [2, 4, 6, 12]
    assert [step for step, _ in series(done.stdout, "eval_loss")] == [6, 12]
    assert [step for step, _ in series(done.stdout, "train_loss")] == [6, 9, 12]


def test_sigterm_saves_a_checkpoint_and_exits(tiny_causal_lm, tmp_path, spawn):
    job = make_job(tmp_path, tiny_causal_lm, tiny_model.chat_rows(64))
    out = job.start(hp(max_steps=200, save_steps=100), spawn)
    proc = out.proc
    output = []
    for line in out.each(timeout_s=120):
        output.append(line)
        parsed = parse_line(line.strip())
        if parsed and parsed.get("step", 0) >= 3 and "train_loss" in parsed:
            proc.send_signal(signal.SIGTERM)
            break
    output += out.rest(timeout_s=120)
    assert proc.wait(timeout=120) == 0, "".join(output)[-3000:]
    stopped = ckpt.latest_complete(job.checkpoints)
    assert stopped is not None and 3 <= ckpt.step_of(stopped) < 100  # saved at the interruption, not at save_steps
    summary = job.summary("SM_OUTPUT_DATA_DIR")
    assert summary["interrupted"] is True and summary["global_step"] == ckpt.step_of(stopped)
    assert not (job.model_dir / "adapter_model.safetensors").exists()  # no final artifacts from a half-run


def test_two_process_torchrun_writes_one_set_of_artifacts(tiny_causal_lm, tmp_path):
    job = make_job(tmp_path, tiny_causal_lm, tiny_model.chat_rows(32), tiny_model.chat_rows(8, seed=5))
    done = job.run(hp(max_steps=4, per_device_batch_size=2), nproc=2)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    steps = Counter(step for step, _ in series(done.stdout, "train_loss"))
    assert sorted(steps) == [1, 2, 3, 4] and set(steps.values()) == {1}  # rank 0 prints; each step once
    assert job.summary()["world_size"] == 2
    assert len(list(job.model_dir.glob("adapter_model*.safetensors"))) == 1
    assert sorted(p.name for p in job.checkpoints.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    assert all(ckpt.is_complete(p) for p in job.checkpoints.glob("checkpoint-*"))


def test_dpo_learns_the_preferred_answers(tiny_causal_lm, tmp_path):
    job = make_job(tmp_path, tiny_causal_lm, tiny_model.preference_rows(32))
    done = job.run(hp(method="dpo", max_steps=6, save_steps=6))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    losses = series(done.stdout, "train_loss")
    assert losses[0][1] == pytest.approx(0.6931, abs=1e-3)  # log(2): policy equals the reference at the start
    assert losses[-1][1] < 0.6
    assert (job.model_dir / "adapter_model.safetensors").exists()


def test_tiny_classifier_beats_the_majority_class(tiny_encoder, tmp_path):
    validation = tiny_model.classification_rows(32, seed=9)
    job = make_job(tmp_path, tiny_encoder, tiny_model.classification_rows(96), validation)
    done = job.run(hp(method="classification", peft="full", epochs=6, max_steps=-1, per_device_batch_size=16,
                      learning_rate=0.005, max_length=64, logging_steps=6, eval_steps=12, save_steps=36))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    majority = Counter(row["label"] for row in validation).most_common(1)[0][1] / len(validation)
    accuracy = series(done.stdout, "eval_accuracy")[-1][1]
    assert accuracy > majority
    assert series(done.stdout, "eval_f1")
    config = json.loads((job.model_dir / "config.json").read_text())
    assert sorted(config["id2label"].values()) == ["account", "hardware", "network"]

