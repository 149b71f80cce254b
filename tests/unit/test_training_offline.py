"""A network-isolated job's code runs with no network at all: train.py from the offline source archive, started
the way the container starts it (no pip install: the archive has no requirements.txt), in a network namespace
of its own (`unshare -n`, where the test may create one) and with sockets refused in Python either way."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from jobs.render.sagemaker_rules import CODE_SUBMIT_DIRECTORY
from jobs.training.archive import source_archive
from tests.fixtures import tiny_model
from tests.unit.test_training_script import hp, make_job

pytestmark = pytest.mark.slow

# Refuses every socket but local ones: an attempt to reach a hub or an index fails loudly instead of hanging.
NO_NETWORK = """
import socket
_connect = socket.socket.connect
def _refuse(self, address):
    if self.family != socket.AF_UNIX:
        raise OSError("network disabled by the offline test: tried to reach %r" % (address,))
    return _connect(self, address)
socket.socket.connect = _refuse
socket.socket.connect_ex = _refuse
"""


def _isolated_namespace() -> list[str]:
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        return [unshare, "-n"]
    return []  # not allowed here (no root / user namespaces): the socket guard alone


def test_train_py_from_the_offline_archive_trains_with_networking_disabled(tiny_causal_lm, tmp_path: Path):
    code = tmp_path / "opt" / "ml" / "code"
    with tarfile.open(fileobj=io.BytesIO(source_archive(offline=True).data), mode="r:gz") as tar:
        tar.extractall(code, filter="data")
    assert not (code / "requirements.txt").exists()  # so the training toolkit runs no pip install at start
    guard = tmp_path / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(NO_NETWORK)

    job = make_job(tmp_path / "job", tiny_causal_lm, tiny_model.chat_rows(24))
    env = {**job.env, "PYTHONPATH": str(guard), "PIP_NO_INDEX": "1", "HF_HUB_OFFLINE": "1"}
    args = hp(max_steps=2, save_steps=2, sagemaker_submit_directory=CODE_SUBMIT_DIRECTORY)
    done = subprocess.run([*_isolated_namespace(), sys.executable, str(code / "train.py"), *args], cwd=code,
                          env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "ftops: done at step 2" in done.stdout
    assert (job.model_dir / "adapter_config.json").is_file()
