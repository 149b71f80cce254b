"""The training source archive (`sourcedir.tar.gz`): deterministic, so its sha256 names it in S3.

Rendering puts `s3://<artifacts>/source/<sha256>/sourcedir.tar.gz` into the request; apply uploads the same
bytes there. Same sources -> same bytes -> same address, so an unchanged script is never uploaded twice.

Two variants. The networked one carries requirements.txt, which the SageMaker training toolkit pip-installs
before train.py starts. A network-isolated job has no network at start (no PyPI), so its archive (`offline`)
carries no requirements.txt that reaches for an index: the dependencies come from the image, or from wheels
placed in `jobs/training/wheels/`, which it ships with a requirements.txt that installs only from them.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

SOURCE_DIR = Path(__file__).resolve().parent
# What the container needs: the entry point, its modules and the pinned requirements.
INCLUDE_SUFFIXES = {".py", ".txt"}
REQUIREMENTS = "requirements.txt"
WHEELS = "wheels"
OFFLINE_REQUIREMENTS_HEADER = b"--no-index\n--find-links wheels\n"
"""pip options a requirements file may carry: install from the archive's wheels only, never from an index."""


@dataclass(frozen=True)
class SourceArchive:
    data: bytes
    sha256: str
    offline: bool = False
    """Built for a network-isolated job: nothing in it makes the container reach a package index at start."""

    @cached_property
    def files(self) -> dict[str, bytes]:
        """Name -> content of what it holds (read once per archive; renders check many jobs against one)."""
        return archive_files(self.data)

    def s3_key(self, prefix: str = "source/") -> str:
        return f"{prefix}{self.sha256}/sourcedir.tar.gz"


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in INCLUDE_SUFFIXES
                  and "__pycache__" not in p.parts and WHEELS not in p.relative_to(root).parts)


def _members(root: Path, offline: bool) -> list[tuple[str, bytes]]:
    members = [(str(p.relative_to(root)), p.read_bytes()) for p in _files(root)]
    if not offline:
        return members
    members = [(name, data) for name, data in members if name != REQUIREMENTS]
    wheels = sorted((root / WHEELS).glob("*.whl")) if (root / WHEELS).is_dir() else []
    if wheels:  # pip installs the pinned requirements from these wheels only (no index: no network needed)
        members.append((REQUIREMENTS, OFFLINE_REQUIREMENTS_HEADER + (root / REQUIREMENTS).read_bytes()))
        members += [(f"{WHEELS}/{w.name}", w.read_bytes()) for w in wheels]
    return sorted(members)


def needs_network_at_start(files: dict[str, bytes]) -> bool:
    """Whether the training toolkit would reach a package index before train.py starts: a requirements.txt
    that does not install from the archive's wheels alone (`--no-index`)."""
    requirements = files.get(REQUIREMENTS)
    if requirements is None:
        return False
    options = {line.split("#")[0].strip() for line in requirements.decode(errors="replace").splitlines()}
    return "--no-index" not in options


def archive_files(data: bytes) -> dict[str, bytes]:
    """The files inside an archive's bytes (for checks and tests); no bytes, no files."""
    if not data:
        return {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


@cache
def source_archive(root: Path = SOURCE_DIR, *, offline: bool = False) -> SourceArchive:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in _members(root, offline):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode, info.uid, info.gid = len(content), 0, 0o644, 0, 0
            tar.addfile(info, io.BytesIO(content))
    packed = gzip.compress(raw.getvalue(), compresslevel=9, mtime=0)
    return SourceArchive(packed, hashlib.sha256(packed).hexdigest(), offline)
