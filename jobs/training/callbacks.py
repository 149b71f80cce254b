"""Trainer callbacks: stable metric lines, TensorBoard scalars, checkpoint manifests, save-and-stop on SIGTERM."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from transformers import TrainerCallback

try:  # inside the jobs package (tests, the local runner) or as top-level modules (the container)
    from . import ckpt, tbevents
    from .metrics import format_line
except ImportError:
    import ckpt
    import tbevents
    from metrics import format_line

# Trainer log keys -> our metric names (metrics.METRICS); anything else is not printed as a metric.
_RENAME = {"loss": "train_loss", "learning_rate": "learning_rate", "grad_norm": "grad_norm", "epoch": "epoch",
           "eval_loss": "eval_loss", "eval_accuracy": "eval_accuracy", "eval_f1": "eval_f1"}


class MetricLines(TrainerCallback):
    """Prints `ftops-metrics step=N ...` (rank 0 only) and mirrors the values to TensorBoard and a history."""

    def __init__(self, tensorboard_dir: Path | None) -> None:
        self.history: list[dict[str, float]] = []
        self._writer = None
        self._tb_dir = tensorboard_dir
        self._train_seconds = 0.0
        self._step_started: float | None = None
        self._last_tokens = 0
        self._last_seconds = 0.0
        self.tokens_total = 0
        self.train_seconds_total = 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        self._last_tokens = state.num_input_tokens_seen
        if state.is_world_process_zero and self._tb_dir is not None and self._writer is None:
            self._writer = tbevents.EventWriter(self._tb_dir)

    def on_step_begin(self, args, state, control, **kwargs):
        self._step_started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if self._step_started is not None:
            self._train_seconds += time.perf_counter() - self._step_started
            self._step_started = None

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs or "train_samples_per_second" in logs:
            return  # the end-of-training average goes to the summary, not into the loss series
        values = {_RENAME[k]: float(v) for k, v in logs.items() if k in _RENAME and v is not None}
        if "train_loss" in values:
            tokens = state.num_input_tokens_seen - self._last_tokens
            seconds = self._train_seconds - self._last_seconds
            if tokens > 0 and seconds > 0:
                values["tokens_per_second"] = tokens / seconds
            self._last_tokens, self._last_seconds = state.num_input_tokens_seen, self._train_seconds
            self.tokens_total = state.num_input_tokens_seen
            self.train_seconds_total = self._train_seconds
        if not values:
            return
        print(format_line(state.global_step, values), flush=True)
        self.history.append({"step": state.global_step, **values})
        if self._writer is not None:
            self._writer.scalars(state.global_step, {name.replace("_", "/", 1) if name.startswith(("train_", "eval_"))
                                                     else name: value for name, value in values.items()})

    def on_train_end(self, args, state, control, **kwargs):
        self.tokens_total = state.num_input_tokens_seen
        self.train_seconds_total = self._train_seconds
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class ScheduleFromArgs(TrainerCallback):
    """A resumed Trainer keeps the logging, eval and save intervals of the checkpoint's trainer_state.json and
    only warns that they differ: a smoke run's checkpoint would make the resumed job save every few steps. The
    job's own arguments decide (state.max_steps is set before on_train_begin, for fractional intervals)."""

    def on_train_begin(self, args, state, control, **kwargs):
        state.compute_steps(args, state.max_steps)


class CheckpointManifest(TrainerCallback):
    """After the Trainer finishes a checkpoint, rank 0 writes the manifest that marks it resumable."""

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if path.is_dir():
                ckpt.mark_complete(path)
                print(f"ftops: saved complete checkpoint {path.name}", flush=True)


class GracefulStop(TrainerCallback):
    """SIGTERM (spot interruption, StopTrainingJob) -> save a checkpoint at the end of this step and stop.

    SageMaker allows 120 s between SIGTERM and SIGKILL. Every rank must take the same decision at the same
    step, so with several processes the flag is all-reduced (max) at each step end.
    """

    def __init__(self) -> None:
        self.requested = False
        self.stopped_at: int | None = None
        self._previous = signal.signal(signal.SIGTERM, self._handle)
        # `ftops run-local --interrupt-at K`: at the end of step K, write K to FTOPS_STEP_FILE and wait for the
        # runner's SIGTERM, so the interruption lands at K whatever the logging interval (never set on SageMaker).
        pause = os.environ.get("FTOPS_PAUSE_AT_STEP")
        self._pause_at = int(pause) if pause else None
        self._step_file = os.environ.get("FTOPS_STEP_FILE")

    def _handle(self, signum, frame) -> None:
        self.requested = True
        print("ftops: SIGTERM received; saving a checkpoint at the end of this step", file=sys.stderr, flush=True)

    def _agreed(self) -> bool:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            import torch

            flag = torch.tensor([1 if self.requested else 0],
                                device="cuda" if dist.get_backend() == "nccl" else "cpu")
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            return bool(flag.item())
        return self.requested

    def _pause(self, step: int, is_main: bool) -> None:
        if is_main and self._step_file:
            tmp = f"{self._step_file}.tmp"
            with open(tmp, "w") as handle:
                handle.write(str(step))
            os.replace(tmp, self._step_file)
        deadline = time.monotonic() + 120  # the runner signals within milliseconds; never wait forever
        while not self.requested and time.monotonic() < deadline:
            time.sleep(0.02)

    def on_step_end(self, args, state, control, **kwargs):
        if self._pause_at is not None and state.global_step == self._pause_at:
            self._pause(state.global_step, state.is_world_process_zero)
        if self._agreed():
            self.requested = True
            self.stopped_at = state.global_step
            control.should_save = True
            control.should_training_stop = True
        return control
