"""Where things live. Everything resolves from the project root (the fork), never from the working directory."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from jobs.errors import FtopsError

_PACKAGE_DIR = Path(__file__).resolve().parent


@cache
def project_root() -> Path:
    """The fork's root: `FTOPS_ROOT` if set, else the directory that holds the `jobs` package.

    ftops is installed editable from the fork (`make` does this), so the package's parent is the repo.
    """
    override = os.environ.get("FTOPS_ROOT")
    root = Path(override).resolve() if override else _PACKAGE_DIR.parent
    if not (root / "environments").is_dir():
        raise FtopsError(
            f"no environments/ directory under {root}",
            hint="run ftops from an editable install of your fork, or set FTOPS_ROOT to the fork's root",
        )
    return root


def environments_dir() -> Path:
    return project_root() / "environments"


def templates_dir() -> Path:
    return project_root() / "templates"


def state_dir() -> Path:
    """The ignored `.ftops/` directory: emulator state, caches, resolved infrastructure outputs."""
    override = os.environ.get("FTOPS_STATE_DIR")
    path = Path(override or project_root() / ".ftops")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        why = ("exists and is not a directory" if isinstance(exc, FileExistsError) else
               "lies under a file, not a directory" if isinstance(exc, NotADirectoryError) else
               f"cannot be created: {exc.strerror}")
        if override:
            raise FtopsError(f"{path} {why}", field="FTOPS_STATE_DIR",
                             hint="point FTOPS_STATE_DIR at a directory ftops may create or write, or unset it "
                                  f"to use {project_root() / '.ftops'}") from None
        raise FtopsError(f"the state directory {why}", source=path,
                         hint="remove or rename what holds that name; ftops keeps emulator state and caches "
                              "there") from None
    return path


def user_cache_dir() -> Path | None:
    """The user's own cache (`FTOPS_CACHE_DIR`, else `$XDG_CACHE_HOME/ftops`, else `~/.cache/ftops`), or None when
    it would lie inside the project: a file in the checkout can arrive in a pull request, so it is never a cache
    ftops trusts."""
    override = os.environ.get("FTOPS_CACHE_DIR")
    base = Path(override) if override else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ftops"
    base = base.resolve()
    if base.is_relative_to(project_root().resolve()):
        return None
    return base


def data_file(name: str) -> Path:
    """Versioned reference data shipped with the code (prices, model/region tables)."""
    return _PACKAGE_DIR / "reference" / name
