"""`manifest.json`: what `ftops data prepare` wrote. Rendering, upload and evaluation read only this."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from jobs.errors import ConfigError, FtopsError
from jobs.fsutil import atomic_write

DatasetFormat = Literal["chat", "preference", "completion", "classification"]
Split = Literal["train", "validation", "test"]
SPLITS: tuple[Split, ...] = ("train", "validation", "test")


Count = Annotated[int, Field(ge=0)]
SPLIT_FILE_NAME = r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}\.jsonl$"
"""A split file is a plain name beside the manifest: no directories, no `..`, nothing hidden."""
MAX_MANIFEST_BYTES = 16 << 20
"""Manifests list at most 1,000 dropped lines: a few hundred KiB at most."""


class SplitFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(pattern=SPLIT_FILE_NAME)
    """File name relative to the manifest's directory."""
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: Count
    examples: Count
    tokens: Count
    """Total tokens over all examples (the tokenizer is named in the manifest)."""
    assistant_tokens: Count = 0
    """Tokens in trained-on assistant messages (chat/preference); 0 for other formats."""
    max_example_tokens: Count = 0
    """The largest example, in tokens."""


class Dropped(BaseModel):
    model_config = ConfigDict(extra="forbid")

    line: Count
    code: str = Field(max_length=64)
    reason: str = Field(max_length=1000)


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    format: DatasetFormat
    source: str = Field(max_length=255)
    """The input file's name (not its path: manifests are committed and must not leak local paths)."""
    source_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    tokenizer: str = Field(max_length=1000)
    """The tokenizer the counts come from, e.g. `o200k_base` or `hf:<path>`."""
    seed: int
    split: tuple[Annotated[float, Field(ge=0, le=1)], Annotated[float, Field(ge=0, le=1)],
                 Annotated[float, Field(ge=0, le=1)]]
    group_by: str | None = None
    deduplicated: bool = False
    files: dict[Split, SplitFile] = Field(min_length=1)
    dropped: list[Dropped] = Field([], max_length=1000)
    labels: dict[str, Count] | None = None
    """Classification only: examples per label over all splits."""

    @model_validator(mode="after")
    def check_files(self) -> "Manifest":
        if "train" not in self.files:
            raise ValueError("files has no train split")
        names = [entry.path for entry in self.files.values()]
        if len(set(names)) != len(names):
            raise ValueError("two splits name the same file")
        return self

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


def manifest_file(path: Path, *, command: str = "this command") -> Path:
    """The manifest.json of `path`: the directory `ftops data prepare` wrote, or the manifest itself. `command`
    names the caller in the refusal of anything else (e.g. the raw dataset)."""
    from jobs.fsutil import regular_file

    file = path / "manifest.json" if path.is_dir() else path
    if not file.exists() and not file.is_symlink():
        raise ConfigError("no manifest.json here", source=file, hint="run `ftops data prepare FILE --out DIR` first")
    if not path.is_dir() and not file.name.endswith("manifest.json"):  # job definitions allow `*manifest.json`
        # e.g. the raw dataset: parsing it as a manifest said "Invalid JSON: trailing characters"
        dataset = file.name.endswith((".jsonl", ".jsonl.gz", ".json"))
        raise ConfigError(f"{'a dataset, not a prepared one' if dataset else 'not a manifest.json'}: {command} takes "
                          "the output of `ftops data prepare` (the directory it wrote, or its manifest.json)",
                          source=file, hint=f"run `ftops data prepare {file} --out DIR`, then pass DIR" if dataset
                          else "pass the directory `ftops data prepare FILE --out DIR` wrote, or DIR/manifest.json")
    try:
        return regular_file(file, what="manifest.json (or the directory that holds it)")
    except FtopsError as exc:
        raise ConfigError(exc.message, source=file, hint=exc.hint) from None


def manifest_dir(path: Path) -> Path:
    """The directory of a prepared dataset given it or its manifest.json."""
    return manifest_file(path).parent


def read_manifest(path: Path, *, command: str = "this command") -> Manifest:
    """Read a manifest from a file or from the directory `ftops data prepare` wrote (validated: known fields,
    non-negative counts, split files as plain names beside it)."""
    file = manifest_file(path, command=command)
    if file.stat().st_size > MAX_MANIFEST_BYTES:
        raise ConfigError(f"larger than {MAX_MANIFEST_BYTES >> 20} MiB; not an ftops manifest", source=file)
    try:
        return Manifest.model_validate_json(file.read_bytes())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"]))
        message = first["msg"].removeprefix("Value error, ")
        raise ConfigError(f"not a valid ftops manifest: {message}", source=file, field=where or None,
                          hint="re-run `ftops data prepare` instead of editing the manifest") from None
    except (ValueError, OSError) as exc:
        raise ConfigError(f"not a valid ftops manifest: {str(exc).splitlines()[0]}", source=file,
                          hint="re-run `ftops data prepare`") from None
