"""Where SageMaker puts things inside the training container, with overrides for local runs.

Channels arrive as `SM_CHANNEL_<NAME>` (train, validation, model); artifacts go to `SM_MODEL_DIR`, which
SageMaker tars into model.tar.gz; `/opt/ml/checkpoints` is synced to CheckpointConfig.S3Uri (and restored from
it on a spot restart); TensorBoard event files go where TensorBoardOutputConfig.LocalPath says.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CHECKPOINT_DIR_ENV = "FTOPS_CHECKPOINT_DIR"
TENSORBOARD_DIR_ENV = "FTOPS_TENSORBOARD_DIR"


@dataclass(frozen=True)
class Layout:
    train: Path
    validation: Path | None
    model: Path
    """The base model directory (config, weights, tokenizer): a channel, never downloaded at run time."""
    model_dir: Path
    checkpoints: Path
    output_data: Path
    tensorboard: Path

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "Layout":
        env = os.environ if environ is None else environ

        def channel(name: str, required: bool) -> Path | None:
            value = env.get(f"SM_CHANNEL_{name.upper()}")
            if not value:
                if required:
                    raise SystemExit(f"error: channel {name!r} is missing (SM_CHANNEL_{name.upper()} is not set); "
                                     f"add a {name!r} channel to InputDataConfig")
                return None
            path = Path(value)
            if not path.is_dir():
                raise SystemExit(f"error: channel {name!r} points at {path}, which is not a directory")
            return path

        return cls(
            train=channel("train", True),  # type: ignore[arg-type]
            validation=channel("validation", False),
            model=channel("model", True),  # type: ignore[arg-type]
            model_dir=Path(env.get("SM_MODEL_DIR", "/opt/ml/model")),
            checkpoints=Path(env.get(CHECKPOINT_DIR_ENV, "/opt/ml/checkpoints")),
            output_data=Path(env.get("SM_OUTPUT_DATA_DIR", "/opt/ml/output/data")),
            tensorboard=Path(env.get(TENSORBOARD_DIR_ENV, "/opt/ml/output/tensorboard")),
        )


def data_files(channel: Path) -> list[Path]:
    """The JSONL files of a channel (an uploaded split may be one file or a prefix of several)."""
    files = sorted(p for p in channel.rglob("*") if p.is_file() and p.suffix in (".jsonl", ".json")
                   and not p.name.startswith("."))
    if not files:
        raise SystemExit(f"error: no .jsonl files in channel directory {channel}")
    return files


@dataclass(frozen=True)
class Distributed:
    rank: int
    local_rank: int
    world_size: int

    @classmethod
    def from_env(cls) -> "Distributed":
        return cls(int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)),
                   int(os.environ.get("WORLD_SIZE", 1)))

    @property
    def is_main(self) -> bool:
        return self.rank == 0
