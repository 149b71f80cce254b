"""A throwaway fork for the render tests: the real environments, templates and example definitions, plus
a prepared dataset manifest, under a temp directory that FTOPS_ROOT points at. (No tests in this module.)"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from jobs import paths
from jobs.config.environment import load_environment
from jobs.data.manifest import Manifest, SplitFile
from jobs.training.archive import SourceArchive

REPO = Path(__file__).resolve().parents[2]
MANIFEST = "datasets/it-helpdesk/prepared/manifest.json"


def write_manifest(directory: Path, train_examples: int = 80, fmt: str = "chat") -> Path:
    files = {split: SplitFile(path=f"{split}.jsonl", sha256=char * 64, bytes=100 * n, examples=n, tokens=500 * n,
                              assistant_tokens=200 * n, max_example_tokens=900)
             for split, char, n in (("train", "a", train_examples), ("validation", "b", 10), ("test", "c", 10))}
    manifest = Manifest(format=fmt, source="it-helpdesk.jsonl", source_sha256="d" * 64, tokenizer="o200k_base",
                        seed=42, split=(0.8, 0.1, 0.1), files=files)
    return manifest.write(directory)


@dataclass
class Project:
    root: Path

    def definition(self, name: str) -> dict:
        return yaml.safe_load((self.root / "definitions" / f"{name}.yaml").read_text())

    def write_definition(self, data: dict | str, name: str | None = None) -> Path:
        text = data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False)
        name = name or (data["name"] if isinstance(data, dict) else yaml.safe_load(text)["name"])
        path = self.root / "definitions" / f"{name}.yaml"
        path.write_text(text)
        return path

    def edit_definition(self, name: str, **changes) -> Path:
        data = self.definition(name)
        for dotted, value in changes.items():
            node = data
            *parents, last = dotted.split("__")
            for key in parents:
                node = node.setdefault(key, {})
            node[last] = value
        return self.write_definition(data)

    def preference_dataset(self) -> str:
        """A prepared preference (DPO) dataset; returns its manifest path for `dataset:`."""
        directory = self.root / "datasets" / "preference" / "prepared"
        directory.mkdir(parents=True, exist_ok=True)
        write_manifest(directory, fmt="preference")
        return "datasets/preference/prepared/manifest.json"

    def edit_environment(self, name: str, text_from: str, text_to: str) -> None:
        path = self.root / "environments" / f"{name}.yaml"
        text = path.read_text()
        assert text_from in text, f"{text_from!r} not in {path}"
        path.write_text(text.replace(text_from, text_to))
        load_environment.cache_clear()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    root = tmp_path / "fork"
    # Resolved (deployed) values are left out: renders here use the derived names, stable across machines.
    shutil.copytree(REPO / "environments", root / "environments", ignore=shutil.ignore_patterns("resolved"))
    shutil.copytree(REPO / "definitions", root / "definitions")
    (root / "templates").symlink_to(REPO / "templates")
    manifest_dir = root / Path(MANIFEST).parent
    manifest_dir.mkdir(parents=True)
    write_manifest(manifest_dir)
    monkeypatch.setenv("FTOPS_ROOT", str(root))
    # A fixed source archive: the training script changes often; these tests are about rendering.
    monkeypatch.setattr("jobs.render.context.source_archive", lambda: SourceArchive(b"", "5" * 64))
    paths.project_root.cache_clear()
    load_environment.cache_clear()
    yield Project(root)
    paths.project_root.cache_clear()
    load_environment.cache_clear()
