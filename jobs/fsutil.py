"""File writes that never leave a half-written file under its final name."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from jobs.errors import FtopsError


@contextlib.contextmanager
def atomic_writer(path: Path, mode: str = "wb") -> Iterator[IO]:
    """Write to a temp file beside `path`, fsync, then rename over it; on error the temp file is removed.
    The file gets the permissions of the one it replaces, or a new file's usual 0666 less the umask."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_beside(path)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _create_beside(path: Path) -> tuple[int, Path]:
    """A new temp file next to `path`, opened for writing. Not mkstemp: its 0600 would stick to the final file
    (schemas and workflows are committed and read by editors); the kernel applies the umask to 0666 here."""
    try:
        keep = stat.S_IMODE(os.stat(path).st_mode) & 0o777
    except OSError:
        keep = None
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)  # O_EXCL: never through a link
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.partial"
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
        if keep is not None:
            try:
                os.fchmod(fd, keep)
            except OSError:
                os.close(fd)
                os.unlink(tmp)
                raise
        return fd, tmp
    raise FileExistsError(f"no free temporary name beside {path}")


def atomic_write(path: Path, data: bytes | str) -> None:
    with atomic_writer(path, "wb") as handle:
        handle.write(data.encode() if isinstance(data, str) else data)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


# --- Directories ftops owns -------------------------------------------------------------------------------------
# A command that replaces a whole directory (prepare --out, render --out) replaces only one it marked as its own
# at creation, whose content is still exactly what it wrote: a user's directory (`--out .` in a repository, `~`)
# or a file the user added or edited inside an ftops output is never deleted.

OWNER_MARKER = ".ftops-owner.json"
"""The marker file: {"kind": ..., "files": {relative path: sha256}} (sorted, so renders stay byte-identical)."""


def _not_owned(message: str, target: Path, field: str | None, hint: str | None = None) -> "FtopsError":
    from jobs.errors import FtopsError

    return FtopsError(message, source=target, field=field,
                      hint=hint or "choose a new or empty directory, or remove this one yourself")


def _content(directory: Path) -> dict[str, str]:
    """relative path -> sha256 of every file under `directory` except the marker (symlinks count as content)."""
    files: dict[str, str] = {}
    for root, dirs, names in os.walk(directory):
        base = Path(root)
        for name in sorted(names) + [d for d in dirs if (base / d).is_symlink()]:
            path = base / name
            rel = path.relative_to(directory).as_posix()
            if rel == OWNER_MARKER:
                continue
            if path.is_symlink():
                files[rel] = "symlink:" + os.readlink(path)
            elif path.is_file():
                files[rel] = sha256_file(path)
            else:  # a FIFO or device: never opened (a FIFO would block); ftops writes none, so it never matches
                files[rel] = "special"
    return dict(sorted(files.items()))


def read_marker(directory: Path) -> dict | None:
    """The marker's content, or None when there is none or it is not ftops's JSON."""
    import json

    marker = directory / OWNER_MARKER
    if marker.is_symlink() or not marker.is_file():
        return None
    try:
        data = json.loads(marker.read_bytes())
    except (ValueError, OSError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("kind"), str) else None


def _require_marker(marker: dict | None, kind: str, target: Path, field: str | None, refusing: str) -> dict:
    """The marker of a directory ftops created for `kind`; otherwise the refusal, ending with `refusing`."""
    if marker is None:
        raise _not_owned(f"exists and was not created by ftops (no {OWNER_MARKER}); {refusing}", target, field)
    if marker["kind"] != kind:
        raise _not_owned(f"holds ftops's {marker['kind']}, not its {kind}; {refusing}", target, field)
    return marker


def mark_owned(directory: Path, kind: str, *, with_content: bool = True) -> None:
    """Mark `directory` as ftops's output of `kind`; `with_content` lists every file with its sha256 (a directory
    that is later replaced whole); without it, only the kind (a directory ftops adds its own named files to)."""
    import json

    data: dict = {"kind": kind, "files": _content(directory) if with_content else None}
    atomic_write(directory / OWNER_MARKER, json.dumps(data, indent=1, sort_keys=True) + "\n")


def check_replaceable(target: Path, kind: str, *, field: str | None = None,
                      legacy: Callable[[Path], bool] | None = None) -> None:
    """Refuse (one line) unless `target` is absent, an empty directory, or a directory ftops marked as `kind`
    whose files are exactly those the marker lists, unchanged. `legacy` recognises an unmarked output of an ftops
    version before markers by its exact shape and content (so upgrading does not strand earlier outputs)."""
    try:
        _check_replaceable(target, kind, field, legacy)
    except OSError as exc:  # unreadable content cannot be shown to be ftops's
        raise _not_owned(f"cannot be read ({exc.strerror}); refusing to replace it", target, field) from None


def _check_replaceable(target: Path, kind: str, field: str | None, legacy: Callable[[Path], bool] | None) -> None:
    if target.is_symlink():
        raise _not_owned("is a symbolic link; ftops replaces only directories it created", target, field)
    if not target.exists():
        return
    if not target.is_dir():
        raise _not_owned("exists and is not a directory; refusing to replace it", target, field)
    if not any(target.iterdir()):
        return
    marker = read_marker(target)
    if marker is None and legacy is not None and not (target / OWNER_MARKER).exists() and legacy(target):
        return
    marker = _require_marker(marker, kind, target, field, "refusing to replace it")
    listed = marker.get("files")
    if not isinstance(listed, dict):
        raise _not_owned(f"its {OWNER_MARKER} lists no content; refusing to replace it", target, field)
    present = _content(target)
    for rel in sorted(set(listed) | set(present)):
        if rel not in present:
            change = "was removed"
        elif rel not in listed:
            change = "was added"
        elif present[rel] != listed[rel]:
            change = "was changed"
        else:
            continue
        raise _not_owned(f"{rel} {change} since ftops wrote this directory; refusing to replace it", target, field,
                         hint="move your changes elsewhere or remove the directory yourself")


def replace_dir(staging: Path, target: Path, kind: str, *, field: str | None = None,
                legacy: Callable[[Path], bool] | None = None) -> None:
    """Mark the finished `staging` directory as `kind` and swap it in for `target` (see `check_replaceable`).
    `staging` must be a sibling of `target` (same file system, so the renames are atomic)."""
    import shutil

    check_replaceable(target, kind, field=field, legacy=legacy)
    mark_owned(staging, kind)
    backup = None
    if target.exists():
        backup = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, backup)
    os.replace(staging, target)
    with contextlib.suppress(OSError):  # make the rename durable before the old copy goes
        fd = os.open(target.parent, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)


def ensure_owned_dir(target: Path, kind: str, *, field: str | None = None,
                     own_files: frozenset[str] = frozenset()) -> Path:
    """A directory ftops writes its own named files into (results, eval reports): create and mark it when it is
    absent or empty; accept it when marked as `kind`, or, inside ftops's state directory (`.ftops/`, written
    before markers), when it holds nothing but regular files named in `own_files`; refuse any other directory."""
    if target.is_symlink():
        raise _not_owned("is a symbolic link; ftops writes only into directories it created", target, field)
    if target.exists() and not target.is_dir():
        raise _not_owned("exists and is not a directory", target, field)
    if target.is_dir() and any(target.iterdir()):
        marker = read_marker(target)
        entries = list(target.iterdir())
        if marker is None and own_files and _in_state_dir(target) and not (target / OWNER_MARKER).exists() and all(
                p.name in own_files and p.is_file() and not p.is_symlink() for p in entries):
            mark_owned(target, kind, with_content=False)
            return target
        _require_marker(marker, kind, target, field, "refusing to write into it")
        return target
    make_dirs(target, field=field)
    mark_owned(target, kind, with_content=False)
    return target


def make_dirs(path: Path, *, field: str | None = None) -> Path:
    """`mkdir -p path`, with a file in the way (or no permission) as one line instead of a traceback."""
    from jobs.errors import FtopsError

    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise FtopsError("a file is in the way of this directory", source=path, field=field,
                         hint="choose another output directory") from None
    except OSError as exc:
        raise FtopsError(f"cannot create the directory: {exc.strerror}", source=path, field=field) from None
    return path


# --- Files ftops generates --------------------------------------------------------------------------------------
# A command that writes one file at a path the user names (pipeline render --out, schema --out) overwrites
# only a file that carries its generator's mark: a user's file of the same name is never replaced.


def check_generated_file(target: Path, generated: Callable[[bytes], bool], *, what: str,
                         field: str | None = None) -> bytes | None:
    """The content of `target` when ftops may overwrite it, None when there is no file yet. Refuse (one line)
    a symbolic link, a directory or other non-regular file, an unreadable file, or a file `generated` does not
    recognise as `what` (ftops's own output)."""
    from jobs.errors import FtopsError

    try:
        mode = os.lstat(target).st_mode
    except (FileNotFoundError, NotADirectoryError):  # a file in the way of its directory: refused on writing
        return None
    except OSError as exc:
        raise FtopsError(f"cannot be read ({exc.strerror})", source=target, field=field) from None
    if stat.S_ISLNK(mode):
        raise FtopsError("is a symbolic link; ftops overwrites only files it wrote", source=target,
                         field=field, hint="pass the file itself or another path")
    if not stat.S_ISREG(mode):
        kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
        raise FtopsError(f"is {kind}; expected the path of a file", source=target, field=field,
                         hint="pass a file path, e.g. DIR/name")
    try:
        data = target.read_bytes()
    except OSError as exc:
        raise FtopsError(f"cannot be read ({exc.strerror}); refusing to overwrite it", source=target,
                         field=field) from None
    if not generated(data):
        raise FtopsError(f"exists and is not {what}; refusing to overwrite it", source=target, field=field,
                         hint="move the file away or choose another path")
    return data


def write_generated_file(target: Path, data: bytes | str, *, field: str | None = None) -> None:
    """`atomic_write` for a path the user named (after `check_generated_file`): a file in the way of its
    directory, or no permission, is one line."""
    from jobs.errors import FtopsError

    make_dirs(target.parent, field=field)
    try:
        atomic_write(target, data)
    except OSError as exc:
        raise FtopsError(f"cannot write: {exc.strerror}", source=target, field=field) from None


def _in_state_dir(path: Path) -> bool:
    from jobs import paths

    return paths.state_dir().resolve() in path.resolve().parents


def resolve_under(base: Path, *parts: str | os.PathLike, what: str = "path") -> Path:
    """`base/parts...` resolved (symlinks followed), refusing anything that ends outside `base` (`..`, an absolute
    part, a link out): every path built from input stays under the directory it belongs to."""
    from jobs.errors import FtopsError

    root = Path(base).resolve()
    path = root.joinpath(*parts).resolve()
    if path != root and root not in path.parents:
        shown = "/".join(str(p) for p in parts)
        raise FtopsError(f"{what} {shown!r} leads outside {root}", source=root,
                         hint="use a plain relative name without '..' or a leading '/'")
    return path


# --- Input files ------------------------------------------------------------------------------------------------


def regular_file(path: Path, *, what: str = "input") -> Path:
    """`path` if it is a regular file (symlinks to one are followed); a FIFO, device, socket or directory is
    refused by type before anything opens it (opening a FIFO blocks until a writer comes)."""
    from jobs.errors import FtopsError

    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FtopsError("no such file", source=path, hint=f"pass the path of the {what}") from None
    except OSError as exc:
        raise FtopsError(f"cannot read: {exc.strerror}", source=path) from None
    if stat.S_ISREG(mode):
        return path
    kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "not a regular file")
    raise FtopsError(f"is {kind}, not a regular file", source=path, hint=f"pass the path of the {what}")
