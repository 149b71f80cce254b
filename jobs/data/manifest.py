"""`manifest.json`: what `ftops data prepare` wrote. Rendering, upload and evaluation read only this."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from jobs.errors import ConfigError
from jobs.fsutil import atomic_write

DatasetFormat = Literal["chat", "preference", "completion", "classification"]
Split = Literal["train", "validation", "test"]
SPLITS: tuple[Split, ...] = ("train", "validation", "test")


class SplitFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str
    """File name relative to the manifest's directory."""
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int
    examples: int
    tokens: int
    """Total tokens over all examples (the tokenizer is named in the manifest)."""
    assistant_tokens: int = 0
    """Tokens in trained-on assistant messages (chat/preference); 0 for other formats."""
    max_example_tokens: int = 0
    """The largest example, in tokens."""


class Dropped(BaseModel):
    model_config = ConfigDict(extra="forbid")

    line: int
    code: str
    reason: str


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    format: DatasetFormat
    source: str
    """The input file's name (not its path: manifests are committed and must not leak local paths)."""
    source_sha256: str
    tokenizer: str
    """The tokenizer the counts come from, e.g. `o200k_base` or `hf:<path>`."""
    seed: int
    split: tuple[float, float, float]
    group_by: str | None = None
    deduplicated: bool = False
    files: dict[Split, SplitFile]
    dropped: list[Dropped] = []
    labels: dict[str, int] | None = None
    """Classification only: examples per label over all splits."""

    @property
    def dataset_id(self) -> str:
        """Content address of the dataset: changes when any split's bytes change, nothing else."""
        digest = hashlib.sha256("\n".join(f"{s}:{self.files[s].sha256}" for s in SPLITS if s in self.files).encode())
        return digest.hexdigest()[:16]

    def s3_key(self, prefix: str, split: Split) -> str:
        """One prefix per split, so each is a SageMaker channel of its own."""
        return f"{prefix}{self.dataset_id}/{split}/{self.files[split].path}"

    def blob_name(self, split: Split) -> str:
        return f"{self.dataset_id}/{self.files[split].path}"

    def write(self, directory: Path) -> Path:
        path = directory / "manifest.json"
        atomic_write(path, orjson.dumps(self.model_dump(mode="json"), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
        return path


def read_manifest(path: Path) -> Manifest:
    """Read a manifest from a file or from the directory `ftops data prepare` wrote."""
    file = path / "manifest.json" if path.is_dir() else path
    try:
        return Manifest.model_validate_json(file.read_bytes())
    except FileNotFoundError:
        raise ConfigError("no manifest.json here", source=file, hint="run `ftops data prepare FILE --out DIR` first") from None
    except ValueError as exc:
        raise ConfigError(f"not a valid ftops manifest: {str(exc).splitlines()[0]}", source=file,
                          hint="re-run `ftops data prepare`") from None
