"""The suite cannot hang, leak processes or depend on test order (issue 16, item 7)."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil
import pytest

from tests.fixtures.processes import Lines, kill_tree


def test_every_test_has_a_time_limit(request):
    assert request.config.pluginmanager.hasplugin("timeout"), "pytest-timeout is not installed"
    assert float(request.config.getini("timeout")) > 0
    assert request.node.get_closest_marker("timeout") is None  # the ini limit applies to plain tests


def test_the_order_is_shuffled_with_a_seed(request):
    if not request.config.pluginmanager.hasplugin("randomly"):
        pytest.skip("run with -p no:randomly")
    assert isinstance(request.config.getoption("randomly_seed"), int)


def test_kill_tree_stops_grandchildren_in_their_own_sessions(spawn):
    # A child that starts a grandchild in a new session (as torchrun and emulators do), then waits.
    script = ("import subprocess, sys, time\n"
              "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'], start_new_session=True)\n"
              "print(g.pid, flush=True)\ntime.sleep(300)\n")
    proc = spawn([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    grandchild = int(next(Lines(proc).each(timeout_s=30)))
    kill_tree(proc)
    deadline = time.monotonic() + 10
    while psutil.pid_exists(grandchild) and psutil.Process(grandchild).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the grandchild outlived kill_tree"
        time.sleep(0.05)


def test_a_silent_child_fails_the_read_instead_of_hanging(spawn):
    proc = spawn([sys.executable, "-c", "import time; time.sleep(300)"], stdout=subprocess.PIPE, text=True)
    started = time.monotonic()
    with pytest.raises(pytest.fail.Exception, match="printed nothing"):
        list(Lines(proc).each(timeout_s=0.5))
    assert time.monotonic() - started < 5


def test_cdk_never_fetches_notices(monkeypatch, tmp_path):
    from jobs.cli.infra import cdk_command
    from jobs.config.environment import load_environment

    env = load_environment("dev")
    command, _ = cdk_command(env, "synth")
    assert "--no-notices" in command
