"""The training source archive (`sourcedir.tar.gz`): deterministic, so its sha256 names it in S3.

Rendering puts `s3://<artifacts>/source/<sha256>/sourcedir.tar.gz` into the request; apply uploads the same
bytes there. Same sources -> same bytes -> same address, so an unchanged script is never uploaded twice.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

SOURCE_DIR = Path(__file__).resolve().parent
# What the container needs: the entry point, its modules and the pinned requirements.
INCLUDE_SUFFIXES = {".py", ".txt"}


@dataclass(frozen=True)
class SourceArchive:
    data: bytes
    sha256: str

    def s3_key(self, prefix: str = "source/") -> str:
        return f"{prefix}{self.sha256}/sourcedir.tar.gz"


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in INCLUDE_SUFFIXES
                  and "__pycache__" not in p.parts)


@cache
def source_archive(root: Path = SOURCE_DIR) -> SourceArchive:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in _files(root):
            info = tarfile.TarInfo(str(path.relative_to(root)))
            content = path.read_bytes()
            info.size, info.mtime, info.mode, info.uid, info.gid = len(content), 0, 0o644, 0, 0
            tar.addfile(info, io.BytesIO(content))
    packed = gzip.compress(raw.getvalue(), compresslevel=9, mtime=0)
    return SourceArchive(packed, hashlib.sha256(packed).hexdigest())
