"""Run a rendered SageMaker CreateTrainingJob request locally, the way the container would run it.

The request is exactly the boto3 `create_training_job` kwargs that `ftops render` writes (`sagemaker.json`).
We build SageMaker's `/opt/ml` layout in a work directory, download the channels and the source archive from
S3 (moto in `local`), restore checkpoints from CheckpointConfig.S3Uri, run the entry point with the `SM_*`
variables and the hyperparameters as arguments (torchrun for several instances), mirror checkpoints to S3
while it runs, and upload `model.tar.gz` where SageMaker would:

    <S3OutputPath>/<TrainingJobName>/output/model.tar.gz
    <S3OutputPath>/<TrainingJobName>/output/output.tar.gz        (SM_OUTPUT_DATA_DIR)
    <S3OutputPath>/<TrainingJobName>/output/ftops-metrics.jsonl  (one JSON object per metric line)

`interrupt_at` simulates a spot interruption: the trainer stops at the end of that step and tells us (a step
file, not a log line: logging may be sparse), we send SIGTERM, it saves checkpoint-K and exits; then a final
checkpoint sync, a fresh checkpoint directory restored from S3, and a second run that trains K+1..N. The summary
covers every segment.

Names in the request become local paths and its Environment reaches a local process: `guard` checks both first.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from jobs import paths
from jobs.config.environment import Environment
from jobs.errors import FtopsError
from jobs.fsutil import atomic_write, mark_owned, read_marker, resolve_under
from jobs.runlocal import guard, s3io
from jobs.training.metrics import parse_line

RUN_KIND = "local-run"

METRICS_FILE = "ftops-metrics.jsonl"
SUMMARY_FILE = "ftops-summary.json"
SYNC_INTERVAL_S = 2.0


@dataclass
class RunResult:
    job_name: str
    status: str
    """Completed or Failed (as DescribeTrainingJob would say)."""
    exit_code: int
    model_artifacts: str | None
    """S3 URI of model.tar.gz (SageMaker's ModelArtifacts.S3ModelArtifacts)."""
    metrics_uri: str | None
    """S3 URI of the metric series (JSONL: {"step": N, "train_loss": ..., ...} per metric line)."""
    checkpoint_uri: str | None
    metrics: list[dict[str, float]] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    """The script's ftops-summary.json (steps, losses, tokens/s, peak memory, best checkpoint)."""
    interruptions: int = 0
    dropped_environment: list[str] = field(default_factory=list)
    """Request Environment variables not passed to the local process (see `guard`)."""
    processes: int = 1
    run_dir: str = ""
    """Local copy of the log, metrics and summary: `.ftops/runs/<job>/`."""
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def _require(request: dict, *keys: str):
    value = request
    for i, key in enumerate(keys):
        if not isinstance(value, dict) or key not in value:
            raise FtopsError("missing from the training job request", field=".".join(keys[:i + 1]),
                             hint="pass a rendered sagemaker.json (ftops render writes it)")
        value = value[key]
    return value


def _unquote(value: str) -> str:
    value = str(value)
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value


@dataclass
class _Layout:
    root: Path

    def __post_init__(self) -> None:
        ml = self.root / "opt" / "ml"
        self.ml = ml
        self.input_data = ml / "input" / "data"
        self.config = ml / "input" / "config"
        self.code = ml / "code"
        self.model = ml / "model"
        self.checkpoints = ml / "checkpoints"
        self.output = ml / "output"
        self.output_data = ml / "output" / "data"
        self.tensorboard = ml / "output" / "tensorboard"
        for path in (self.input_data, self.config, self.code, self.model, self.checkpoints, self.output_data,
                     self.tensorboard):
            path.mkdir(parents=True, exist_ok=True)


def _channels(request: dict) -> dict[str, str]:
    out = {}
    for i, channel in enumerate(_require(request, "InputDataConfig")):
        name = channel.get("ChannelName")
        source = channel.get("DataSource", {}).get("S3DataSource", {})
        if not name or "S3Uri" not in source:
            raise FtopsError("each channel needs ChannelName and DataSource.S3DataSource.S3Uri",
                             field=f"InputDataConfig[{i}]")
        if source.get("S3DataType", "S3Prefix") != "S3Prefix":
            raise FtopsError(f"S3DataType {source['S3DataType']!r} is not supported locally (use S3Prefix)",
                             field=f"InputDataConfig[{i}].DataSource.S3DataSource.S3DataType")
        out[guard.check_name(name, "ChannelName", f"InputDataConfig[{i}].ChannelName")] = source["S3Uri"]
    return out


SMOKE_MAX_LENGTH = 256


def smoke_overrides(hyperparameters: dict[str, str], max_steps: int) -> dict[str, str]:
    """Hyperparameters for a quick CPU smoke run capped at `max_steps`: a training loss every step, about three
    evaluations (and checkpoints: early stopping wants save_steps a multiple of eval_steps), sequences of at
    most SMOKE_MAX_LENGTH tokens (attention cost grows with the square of the length) and no gradient
    checkpointing (it saves GPU memory at the price of time)."""
    every = max(1, max_steps // 3)
    out = {"logging_steps": "1", "gradient_checkpointing": "false"}
    if int(_unquote(hyperparameters.get("max_length", str(SMOKE_MAX_LENGTH)))) > SMOKE_MAX_LENGTH:
        out["max_length"] = str(SMOKE_MAX_LENGTH)
    for name in ("eval_steps", "save_steps"):
        if int(_unquote(hyperparameters.get(name, "100"))) > every:
            out[name] = str(every)
    return out


def _script_args(hyperparameters: dict[str, str], max_steps: int | None,
                 overrides: dict[str, str] | None = None) -> list[str]:
    args: list[str] = []
    values = {k: _unquote(v) for k, v in hyperparameters.items()} | dict(overrides or {})
    if max_steps is not None:
        values["max_steps"] = str(max_steps)
    for name, value in values.items():
        args += [f"--{name}", value]
    return args


def _processes(request: dict, nproc: int | None) -> int:
    if nproc is not None:
        return max(1, nproc)
    # One process per instance here: each simulated instance is one CPU worker (GPUs: one per device there).
    return max(1, int(request.get("ResourceConfig", {}).get("InstanceCount", 1)))


def _environment(request: dict, layout: _Layout, channels: list[str], hyperparameters: dict, hosts: int,
                 subset: int | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in guard.HOST_CREDENTIALS}
    env.update(guard.filter_environment(request.get("Environment"))[0])
    env.update({
        "SM_MODEL_DIR": str(layout.model), "SM_OUTPUT_DATA_DIR": str(layout.output_data),
        "SM_OUTPUT_DIR": str(layout.output), "SM_INPUT_DIR": str(layout.ml / "input"),
        "SM_INPUT_CONFIG_DIR": str(layout.config), "SM_CHANNELS": json.dumps(channels),
        "SM_HPS": json.dumps(hyperparameters), "SM_HOSTS": json.dumps([f"algo-{i + 1}" for i in range(hosts)]),
        "SM_CURRENT_HOST": "algo-1", "SM_NUM_GPUS": "0", "SM_NUM_CPUS": str(os.cpu_count() or 1),
        "SM_TRAINING_ENV": json.dumps({"job_name": request["TrainingJobName"]}),
        "SM_MODULE_DIR": str(layout.code),
        "FTOPS_CHECKPOINT_DIR": str(layout.checkpoints), "FTOPS_TENSORBOARD_DIR": str(layout.tensorboard),
        "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "OMP_NUM_THREADS": env.get("OMP_NUM_THREADS", "1" if hosts > 1 else str(os.cpu_count() or 1)),
    })
    for name in channels:
        env[f"SM_CHANNEL_{name.upper()}"] = str(resolve_under(layout.input_data, name, what="channel"))
    if subset is not None:
        env["FTOPS_SUBSET"] = str(subset)
    else:
        env.pop("FTOPS_SUBSET", None)
    for internal in ("FTOPS_PAUSE_AT_STEP", "FTOPS_STEP_FILE"):  # set per segment by _run_once only
        env.pop(internal, None)
    return env


def _write_config(layout: _Layout, request: dict, hosts: int) -> None:
    hyperparameters = request.get("HyperParameters", {})
    atomic_write(layout.config / "hyperparameters.json", json.dumps(hyperparameters, indent=2))
    atomic_write(layout.config / "resourceconfig.json", json.dumps({
        "current_host": "algo-1", "hosts": [f"algo-{i + 1}" for i in range(hosts)],
        "current_instance_type": request.get("ResourceConfig", {}).get("InstanceType", "local"),
        "network_interface_name": "lo"}, indent=2))
    atomic_write(layout.config / "inputdataconfig.json", json.dumps(
        {c["ChannelName"]: {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated"}
         for c in request.get("InputDataConfig", [])}, indent=2))


def _unpack_source(s3, uri: str, code: Path, ml: Path) -> None:
    buffer = io.BytesIO()
    if uri.startswith("/opt/ml/"):  # network isolation: the archive arrived as an input channel (`code`)
        local = ml / uri.removeprefix("/opt/ml/")
        if not local.is_file():
            raise FtopsError(f"no source archive at {uri} (no input channel delivers it)",
                             field="HyperParameters.sagemaker_submit_directory")
        buffer.write(local.read_bytes())
    else:
        bucket, key = s3io.split_uri(uri, field="HyperParameters.sagemaker_submit_directory")
        s3io._call("downloading", uri, s3.download_fileobj, bucket, key, buffer)
    buffer.seek(0)
    try:
        with tarfile.open(fileobj=buffer, mode="r:gz") as tar:
            tar.extractall(code, filter="data")  # refuses absolute paths, .. and device files
    except (tarfile.TarError, OSError) as exc:
        raise FtopsError(f"cannot unpack the source archive {uri}: {exc}",
                         field="HyperParameters.sagemaker_submit_directory") from None


def _tar_dir(source: Path, target: Path) -> Path:
    with tarfile.open(target, "w:gz") as tar:
        for path in sorted(source.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=path.relative_to(source).as_posix())
    return target


class _CheckpointSync:
    """Mirrors the checkpoint directory to S3 every few seconds while the script runs, like SageMaker."""

    def __init__(self, s3, local: Path, uri: str | None, kms_key: str | None) -> None:
        self.s3, self.local, self.uri, self.kms_key = s3, local, uri, kms_key
        self.known: dict[str, tuple[int, int]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: Exception | None = None

    def sync(self) -> None:
        if self.uri:
            self.known = s3io.sync_up(self.s3, self.local, self.uri, self.kms_key, self.known)

    def __enter__(self) -> "_CheckpointSync":
        if self.uri:
            self._thread = threading.Thread(target=self._loop, daemon=True, name="checkpoint-sync")
            self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(SYNC_INTERVAL_S):
            try:
                self.sync()
            except Exception as exc:  # reported after the run; the final sync retries
                self.error = exc

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        self.sync()  # the final state, as SageMaker uploads after the container exits


def _run_once(command: list[str], env: dict[str, str], cwd: Path, log, interrupt_at: int | None,
              metrics: list[dict], echo: Callable[[str], None] | None, step_file: Path) -> tuple[int, bool]:
    """Run the script; returns (exit code, whether we sent SIGTERM).

    With `interrupt_at`, the trainer writes the step to `step_file` when it reaches it and waits there; a watcher
    thread sends SIGTERM to the process group as soon as it reads it (a spot reclaim signals the container)."""
    step_file.unlink(missing_ok=True)
    if interrupt_at is not None:
        env = {**env, "FTOPS_PAUSE_AT_STEP": str(interrupt_at), "FTOPS_STEP_FILE": str(step_file)}
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1, start_new_session=True)
    signalled = threading.Event()
    finished = threading.Event()

    def watch() -> None:
        while not finished.wait(0.02):
            try:
                reached = int(step_file.read_text() or 0)
            except (OSError, ValueError):
                continue
            if reached >= interrupt_at:
                signalled.set()
                # What a spot reclaim does: SIGTERM to the container's processes, then up to 120 s.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                return

    watcher = threading.Thread(target=watch, daemon=True, name="interrupt-at") if interrupt_at is not None else None
    if watcher:
        watcher.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            if echo:
                echo(line.rstrip("\n"))
            parsed = parse_line(line.strip())
            if parsed is None:
                continue
            step = int(parsed.pop("step", 0))
            metrics.append({"step": step, **parsed})
        code = proc.wait(timeout=120 if signalled.is_set() else None)
        return code, signalled.is_set()
    except BaseException:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        raise
    finally:
        finished.set()
        if watcher:
            watcher.join()


def _merge_segments(segments: list[dict], metrics: list[dict]) -> dict:
    """One summary for the whole job: the last segment's, with the losses, tokens and time of every segment (a
    resumed segment alone knows nothing of the steps before its checkpoint), and each segment listed."""
    if not segments:
        return {}
    summary = dict(segments[-1])
    train = [row["train_loss"] for row in metrics if "train_loss" in row]
    evals = [row["eval_loss"] for row in metrics if "eval_loss" in row]
    seconds = sum(s.get("train_seconds") or 0.0 for s in segments)
    # The Trainer restores its token count from the checkpoint, so the last segment's count covers the whole job
    # (the SIGTERM checkpoint is taken at the step it stopped: nothing trained after it is lost).
    tokens = segments[-1].get("tokens_seen") or 0
    summary.update({
        "first_train_loss": train[0] if train else None, "final_train_loss": train[-1] if train else None,
        "best_eval_loss": min(evals) if evals else None, "final_eval_loss": evals[-1] if evals else None,
        "tokens_seen": tokens, "train_seconds": seconds, "tokens_per_second": tokens / seconds if seconds else None,
        "history": [row for s in segments for row in (s.get("history") or [])],
        "segments": [{
            "first_step": _step_after(s.get("resumed_from")), "last_step": s.get("global_step"),
            "resumed_from": s.get("resumed_from"), "interrupted": bool(s.get("interrupted")),
            "first_train_loss": s.get("first_train_loss"), "final_train_loss": s.get("final_train_loss"),
            "train_seconds": s.get("train_seconds"), "tokens_seen": s.get("tokens_seen")} for s in segments],
    })
    summary["interrupted"] = bool(segments[-1].get("interrupted"))
    return summary


def _step_after(checkpoint: str | None) -> int:
    return int(checkpoint.rsplit("-", 1)[1]) + 1 if checkpoint and checkpoint.rsplit("-", 1)[-1].isdigit() else 1


def _fresh_run_dir(job: str) -> Path:
    """`.ftops/runs/<job>/`, emptied: only a directory an earlier local run marked as its own is deleted."""
    runs = paths.state_dir() / "runs"
    run_dir = resolve_under(runs, job, what="TrainingJobName")
    if run_dir.is_symlink() or (run_dir.exists() and not run_dir.is_dir()):
        raise FtopsError("exists and is not a run directory ftops created; refusing to replace it", source=run_dir)
    if run_dir.exists() and any(run_dir.iterdir()):
        marker = read_marker(run_dir)
        if marker is None or marker.get("kind") != RUN_KIND:
            raise FtopsError("exists and was not created by the local runner; refusing to replace it",
                             source=run_dir, hint="remove it yourself or rename the job")
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    mark_owned(run_dir, RUN_KIND, with_content=False)
    return run_dir


def _empty_channel_hint(channel: str, env: Environment) -> str:
    """The command that fills `channel`: the base model is seeded (or synced), not uploaded with the data."""
    if channel != "model":
        return "upload the data first (`ftops data upload`) or fix the S3Uri"
    if env.emulated:
        return f"seed the base model first (`ftops local seed-model --env {env.name}`) or fix the S3Uri"
    return "upload the base model's weights to the job's base_model.s3_uri (`aws s3 sync`) or fix the S3Uri"


def _tail(path: Path, lines: int = 40) -> str:
    text = path.read_text(errors="replace").splitlines()[-lines:]
    errors = [line for line in text if line.startswith(("error:", "Error", "RuntimeError", "ValueError"))
              or "Error:" in line]
    return (errors[-1] if errors else (text[-1] if text else "no output")).strip()


def run_training_job(request: dict, env: Environment, *, max_steps: int | None = None, subset: int | None = None,
                     interrupt_at: int | None = None, nproc: int | None = None,
                     echo: Callable[[str], None] | None = None, keep: bool = False,
                     overrides: dict[str, str] | None = None) -> RunResult:
    """Run `request` (create_training_job kwargs) locally against `env`'s S3; raise FtopsError on failure.

    `overrides`: hyperparameters replaced for this run only (e.g. `smoke_overrides`); the request is untouched."""
    from jobs.clients import aws_client

    started = time.time()
    job = _require(request, "TrainingJobName")
    guard.check_request(request)  # names become paths: checked before anything is created or deleted
    hyperparameters = dict(_require(request, "HyperParameters"))
    program = _unquote(_require(request, "HyperParameters", "sagemaker_program"))
    source_uri = _unquote(_require(request, "HyperParameters", "sagemaker_submit_directory"))
    output_uri = s3io.join(_require(request, "OutputDataConfig", "S3OutputPath"), job, "output")
    kms_key = request.get("OutputDataConfig", {}).get("KmsKeyId") or None
    checkpoint_uri = (request.get("CheckpointConfig") or {}).get("S3Uri")
    tensorboard_uri = (request.get("TensorBoardOutputConfig") or {}).get("S3OutputPath")
    channels = _channels(request)
    processes = _processes(request, nproc)
    hosts = max(1, int(request.get("ResourceConfig", {}).get("InstanceCount", 1)))
    s3 = aws_client(env, "s3")

    run_dir = _fresh_run_dir(job)
    layout = _Layout(run_dir / "work")
    _write_config(layout, request, hosts)
    for name, uri in channels.items():
        if s3io.download_prefix(s3, uri, layout.input_data / name) == 0:
            raise FtopsError(f"channel {name!r}: nothing under {uri}", field="InputDataConfig",
                             hint=_empty_channel_hint(name, env))
    _unpack_source(s3, source_uri, layout.code, layout.ml)
    if not (layout.code / program).is_file():
        raise FtopsError(f"the source archive has no {program}", field="HyperParameters.sagemaker_program")
    program_path = guard.inside(layout.code, program, "HyperParameters.sagemaker_program")  # links resolved
    if checkpoint_uri:  # a (re)started SageMaker job first restores what the checkpoint prefix holds
        s3io.download_prefix(s3, checkpoint_uri, layout.checkpoints)

    script = [str(program_path), *_script_args(hyperparameters, max_steps, overrides)]
    if processes > 1:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
                   "--nproc_per_node", str(processes), *script]
    else:
        command = [sys.executable, *script]
    environ = _environment(request, layout, list(channels), hyperparameters, hosts, subset)

    dropped = guard.filter_environment(request.get("Environment"))[1]
    metrics: list[dict] = []
    segments: list[dict] = []
    interruptions = 0
    log_path = run_dir / "train.log"
    with open(log_path, "w", encoding="utf-8") as log:
        if dropped:
            note = f"ftops run-local: not passed to the local process: {', '.join(dropped)}"
            log.write(note + "\n")
            if echo:
                echo(note)
        while True:
            with _CheckpointSync(s3, layout.checkpoints, checkpoint_uri, kms_key) as syncer:
                code, interrupted = _run_once(command, environ, layout.code, log,
                                              interrupt_at if interruptions == 0 else None, metrics, echo,
                                              run_dir / "step")
            segment = (layout.output_data if interrupted else layout.model) / SUMMARY_FILE
            if segment.is_file():
                segments.append(json.loads(segment.read_text()))
                if interrupted:
                    segment.unlink()  # the next segment writes its own; output.tar.gz holds the final one
            if syncer.error is not None and code == 0:
                raise FtopsError(f"checkpoint sync to {checkpoint_uri} failed: {syncer.error}")
            if not interrupted:  # after a reclaim SageMaker restarts whatever the exit code (torchrun exits 1)
                break
            interruptions += 1
            log.write(f"ftops run-local: simulated spot interruption {interruptions}; restarting\n")
            if echo:
                echo("ftops run-local: simulated spot interruption; restarting from the S3 checkpoints")
            # A new instance: empty disk, checkpoints restored from S3, same paths.
            shutil.rmtree(layout.checkpoints)
            layout.checkpoints.mkdir()
            if checkpoint_uri:
                s3io.download_prefix(s3, checkpoint_uri, layout.checkpoints)

    atomic_write(run_dir / METRICS_FILE, "".join(json.dumps(m) + "\n" for m in metrics))
    summary = _merge_segments(segments, metrics)
    if summary:
        atomic_write(run_dir / SUMMARY_FILE, json.dumps(summary, indent=2))
        if len(segments) > 1 and (layout.model / SUMMARY_FILE).is_file():  # model.tar.gz carries the whole job's
            atomic_write(layout.model / SUMMARY_FILE, json.dumps(summary, indent=2))
    result = RunResult(job_name=job, status="Completed" if code == 0 else "Failed", exit_code=code,
                       model_artifacts=None, metrics_uri=None, checkpoint_uri=checkpoint_uri, metrics=metrics,
                       summary=summary, interruptions=interruptions, dropped_environment=dropped,
                       processes=processes, run_dir=str(run_dir))
    if code != 0:
        raise FtopsError(f"training job {job} failed (exit {code}): {_tail(log_path)}", source=log_path,
                         hint="the full log is at this path; fix the cause and run again")

    model_tar = _tar_dir(layout.model, run_dir / "model.tar.gz")
    result.model_artifacts = s3io.join(output_uri, "model.tar.gz")
    s3io.upload_file(s3, model_tar, result.model_artifacts, kms_key)
    s3io.upload_file(s3, _tar_dir(layout.output_data, run_dir / "output.tar.gz"),
                     s3io.join(output_uri, "output.tar.gz"), kms_key)
    result.metrics_uri = s3io.join(output_uri, METRICS_FILE)
    s3io.upload_file(s3, run_dir / METRICS_FILE, result.metrics_uri, kms_key)
    if tensorboard_uri:
        s3io.sync_up(s3, layout.tensorboard, s3io.join(tensorboard_uri, job, "tensorboard-output"), kms_key, delete=False)
    if not keep:
        shutil.rmtree(layout.root)
        model_tar.unlink()
        (run_dir / "output.tar.gz").unlink()
    result.seconds = time.time() - started
    atomic_write(run_dir / "result.json", json.dumps(result.to_dict(), indent=2, default=str))
    return result
