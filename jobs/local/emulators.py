"""Start, stop and find the local emulators. Used by `ftops local` and by the test fixtures.

Each emulator is a background process on a free loopback port; `ftops local up` records pid, port, endpoint,
command line and start time in `.ftops/local.json` so that every later command finds them, and `local down`
stops a recorded pid only while it is still that process (a pid reused by another program is left alone).
State survives a restart: Azurite and the Azure emulator keep theirs in `.ftops/data/`, moto replays a recording
(`moto_state`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

from jobs import paths
from jobs.errors import FtopsError
from jobs.fsutil import atomic_write
from jobs.processes import pid_alive

# Azurite's development account: a public, documented constant that only works against the emulator.
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@dataclass(frozen=True)
class EmulatorSpec:
    name: str
    purpose: str
    command: Callable[[int, Path | None], list[str]]
    endpoint: Callable[[int], str]
    """The URL clients use. AWS uses `localhost` (not 127.0.0.1): the CDK CLI misparses the IP form."""
    environment: Callable[[Path], dict[str, str]] | None = None
    """Extra environment when it keeps durable state in a data dir (`ftops local up`)."""


@dataclass
class RunningEmulator:
    name: str
    pid: int
    port: int
    endpoint: str
    log: str
    command: list[str] | None = None
    """What we started; `down` checks the live pid still runs it."""
    started: float | None = None
    """The process's start time (psutil create_time): with the pid, the identity of the process."""


def _node_bin(tool: str) -> str:
    """The checkout's pinned copy first (`npm ci`), else one on PATH (e.g. `npm install -g azurite`)."""
    path = paths.project_root() / "node_modules" / ".bin" / tool
    if path.exists():
        return str(path)
    on_path = shutil.which(tool)
    if on_path is None:
        raise FtopsError(f"{tool} is not installed", source=path, hint="run `npm ci` in the project root (make does it)")
    return on_path


def _moto(port: int, _data: Path | None) -> list[str]:
    return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]


def _azurite(port: int, data: Path | None) -> list[str]:
    storage = ["--location", str(data)] if data else ["--inMemoryPersistence"]
    return [_node_bin("azurite-blob"), "--blobHost", "127.0.0.1", "--blobPort", str(port), *storage,
            "--skipApiVersionCheck", "--disableTelemetry", "--silent", "--loose"]


def _azure(port: int, data: Path | None) -> list[str]:
    # Without a data dir (tests) the state goes to a throwaway directory beside the log.
    state = data or Path(tempfile.mkdtemp(prefix="ftops-azure-"))
    return [sys.executable, "-m", "jobs.local.azure_emulator", "--port", str(port), "--state-dir", str(state)]


def _moto_env(data: Path) -> dict[str, str]:
    from jobs.local import moto_state

    return moto_state.environment(data)


EMULATORS: dict[str, EmulatorSpec] = {
    "moto": EmulatorSpec("moto", "AWS (S3, KMS, IAM, SSM, SageMaker, CloudFormation)", _moto,
                         lambda port: f"http://localhost:{port}", _moto_env),
    "azurite": EmulatorSpec("azurite", "Azure Blob Storage", _azurite,
                            lambda port: f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"),
    "azure": EmulatorSpec("azure", "Azure Resource Manager and Azure OpenAI (ftops' own emulator)", _azure,
                          lambda port: f"http://127.0.0.1:{port}"),
}


def register(spec: EmulatorSpec) -> None:
    """Add an emulator (the Azure ARM / OpenAI emulator registers itself here)."""
    EMULATORS[spec.name] = spec


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(port: int, timeout: float = 1.0) -> bool:
    """True once anything speaks HTTP on the port (any status code counts)."""
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=timeout)
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False
    return True


def _die_with_parent() -> None:
    """Linux: SIGTERM this child when the process that started it dies (a killed test run leaves no emulator)."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def start(name: str, *, port: int | None = None, data_dir: Path | None = None, log_dir: Path,
          wait_s: float = 60.0, tied_to_parent: bool = False) -> RunningEmulator:
    """Start one emulator in its own session and wait until it answers.

    `ftops local up` lets it outlive the CLI; test fixtures tie it to their process (`tied_to_parent`).
    """
    spec = EMULATORS[name]
    port = port or free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    if data_dir:
        data_dir.mkdir(parents=True, exist_ok=True)
    command = spec.command(port, data_dir)
    environ = _child_env()
    if data_dir and spec.environment:
        environ.update(spec.environment(data_dir))
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, env=environ,
                                preexec_fn=_die_with_parent if tied_to_parent and sys.platform == "linux" else None)
    deadline = time.monotonic() + wait_s
    while not answers(port):
        if proc.poll() is not None:
            raise FtopsError(f"the {name} emulator exited with code {proc.returncode}", source=log_path,
                             hint="read its log")
        if time.monotonic() > deadline:
            stop_pid(proc.pid)
            raise FtopsError(f"the {name} emulator did not answer within {wait_s:.0f}s", source=log_path,
                             hint="read its log")
        time.sleep(0.1)
    return RunningEmulator(name, proc.pid, port, spec.endpoint(port), str(log_path), command, _started(proc.pid))


def _started(pid: int) -> float | None:
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def is_ours(entry: RunningEmulator) -> bool:
    """Whether the live process with the recorded pid is still the emulator we started: same start time, and its
    command line ends with our arguments (a `#!/usr/bin/env node` script shows `node` first)."""
    import psutil

    try:
        proc = psutil.Process(entry.pid)
        cmdline, started = proc.cmdline(), proc.create_time()
    except psutil.Error:
        return False
    if entry.command is None or entry.started is None:
        # Recorded by an older ftops (no command line, no start time): our emulator's program and port must show.
        marker = {"moto": "moto.server", "azurite": "azurite-blob", "azure": "jobs.local.azure_emulator"}.get(entry.name)
        return bool(marker) and any(marker in arg for arg in cmdline) and str(entry.port) in cmdline
    args = entry.command[1:]
    return abs(started - entry.started) < 1.0 and cmdline[len(cmdline) - len(args):] == args


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    # moto must never try real credentials or endpoints.
    env.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"})
    env.pop("AWS_ENDPOINT_URL", None)
    return env


def stop_pid(pid: int, grace_s: float = 5.0) -> None:
    """SIGTERM the emulator's process group, then SIGKILL what is left after the grace period."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while pid_alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


# --- the recorded state of `ftops local up` -------------------------------------------------------

def state_file() -> Path:
    return paths.state_dir() / "local.json"


def read_state() -> dict[str, RunningEmulator]:
    path = state_file()
    if not path.exists():
        return {}
    hint = "remove it (stop any emulator it named by hand), then run `ftops local up`"
    try:
        raw = orjson.loads(path.read_bytes())
    except (orjson.JSONDecodeError, OSError) as exc:
        raise FtopsError(f"the emulator state file is not valid JSON ({exc})", source=path, hint=hint) from None
    if not isinstance(raw, dict):
        raise FtopsError("the emulator state file is not a JSON object", source=path, hint=hint)
    state = {}
    for name, entry in raw.items():
        try:
            state[name] = _entry(name, entry)
        except (TypeError, ValueError) as exc:
            raise FtopsError(f"the emulator state file has a malformed entry: {exc}", source=path, field=name,
                             hint=hint) from None
    return state


def _entry(name: str, entry: object) -> RunningEmulator:
    if not isinstance(entry, dict):
        raise TypeError("expected an object")
    fields = {"name": str, "pid": int, "port": int, "endpoint": str, "log": str}
    for key, kind in fields.items():
        if not isinstance(entry.get(key), kind) or isinstance(entry.get(key), bool):
            raise ValueError(f"{key} must be a {kind.__name__}")
    if not (0 < entry["pid"] < 2**22 and 0 < entry["port"] < 65536):
        raise ValueError("pid or port out of range")
    command, started = entry.get("command"), entry.get("started")
    if command is not None and not (isinstance(command, list) and all(isinstance(a, str) for a in command)):
        raise ValueError("command must be a list of strings")
    if started is not None and not isinstance(started, int | float):
        raise ValueError("started must be a number")
    return RunningEmulator(entry["name"], entry["pid"], entry["port"], entry["endpoint"], entry["log"], command,
                           float(started) if started is not None else None)


def write_state(state: dict[str, RunningEmulator]) -> None:
    atomic_write(state_file(), orjson.dumps({k: asdict(v) for k, v in state.items()}, option=orjson.OPT_INDENT_2))


def status() -> dict[str, dict]:
    """Each known emulator: running or not, and where."""
    state = read_state()
    report = {}
    for name, spec in EMULATORS.items():
        entry = state.get(name)
        up = bool(entry and is_ours(entry) and answers(entry.port))
        report[name] = {"purpose": spec.purpose, "running": up,
                        "endpoint": entry.endpoint if entry else None, "pid": entry.pid if entry else None,
                        "port": entry.port if entry else None, "log": entry.log if entry else None}
    return report


def up(names: list[str] | None = None, on_started: Callable[[RunningEmulator], None] | None = None,
       restored: dict[str, dict] | None = None) -> dict[str, RunningEmulator]:
    """Start every emulator that is not already running; keep the ones that are. Persistent data in .ftops/;
    a restarted moto replays its recording first (`restored["moto"]` says what came back)."""
    state = read_state()
    root = paths.state_dir()
    started: list[str] = []
    try:
        for name in names or list(EMULATORS):
            current = state.get(name)
            if current and is_ours(current) and answers(current.port):
                continue
            # Reuse the last port so endpoints stay stable across restarts (also after `down`) when it is still free.
            data_dir = root / "data" / name
            port = current.port if current else _last_port(data_dir)
            port = port if port and _bindable(port) else None
            from jobs.local import moto_state

            replay = name == "moto" and moto_state.has_recording(data_dir)
            emu = start(name, port=port, data_dir=data_dir, log_dir=root / "logs")
            if name == "moto":
                try:
                    report = moto_state.restore(emu.endpoint, data_dir, replay)
                except OSError as exc:
                    stop_pid(emu.pid)
                    raise FtopsError(f"moto did not replay its recording: {exc}",
                                     source=data_dir / moto_state.RECORDING,
                                     hint="read .ftops/logs/moto.log; move the recording away to start empty") from None
                if restored is not None:
                    restored[name] = report
            state[name] = emu
            started.append(name)
            write_state(state)
            atomic_write(data_dir / "port", str(emu.port))
            if on_started:
                on_started(state[name])
    except BaseException:
        # A half-started set would look usable to `local status` and every command: stop what this call
        # started (ones already running before are kept). No moto inventory is written: the one from the
        # last `down` still describes what its recording brings back.
        for name in started:
            stop_pid(state.pop(name).pid)
        write_state(state)
        raise
    return state


def _bindable(port: int) -> bool:
    """Free for a server: SO_REUSEADDR as the emulators' servers set it, so connections of the stopped emulator
    still in TIME_WAIT do not count as taking the port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _last_port(data_dir: Path) -> int | None:
    try:
        port = int((data_dir / "port").read_text())
    except (OSError, ValueError):
        return None
    return port if 1024 <= port < 65536 else None


def down() -> dict[str, list[str]]:
    """Stop the emulators `up` started; a recorded pid that is now another process is left alone (`skipped`)."""
    state = read_state()
    stopped, skipped = [], []
    for name, entry in state.items():
        if not pid_alive(entry.pid):
            continue
        if not is_ours(entry):
            skipped.append(name)
            continue
        if name == "moto":  # what `up` must find again after the replay
            from jobs.local import moto_state

            with contextlib.suppress(Exception):  # a moto that no longer answers has nothing to list
                moto_state.save_inventory(entry.endpoint, paths.state_dir() / "data" / "moto")
        stop_pid(entry.pid)
        stopped.append(name)
    state_file().unlink(missing_ok=True)
    return {"stopped": stopped, "skipped": skipped}


def endpoint(name: str) -> str:
    """The endpoint of a running emulator, for the `local` environment's clients."""
    override = os.environ.get(f"FTOPS_{name.upper()}_ENDPOINT")
    if override:
        return override
    entry = read_state().get(name)
    if entry is None or not pid_alive(entry.pid):
        raise FtopsError(f"the {name} emulator is not running", source=state_file(),
                         hint="run `ftops local up` first")
    return entry.endpoint


@contextlib.contextmanager
def running(name: str, data_dir: Path | None = None, log_dir: Path | None = None) -> Iterator[RunningEmulator]:
    """Start an emulator for the duration of a block (test fixtures, benchmarks)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix=f"ftops-{name}-") as tmp:
        emu = start(name, data_dir=data_dir, log_dir=log_dir or Path(tmp), tied_to_parent=True)
        try:
            yield emu
        finally:
            stop_pid(emu.pid)
