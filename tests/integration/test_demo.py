"""`make demo` end to end on the emulators, so the demo cannot rot."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1200)]  # run.sh itself has 900 s


def test_demo_runs_end_to_end(tmp_path, isolated_state):
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}:{ROOT / 'node_modules' / '.bin'}:{env['PATH']}"
    env["FTOPS_DEMO_OUT"] = str(tmp_path / "demo-out")
    env["NO_COLOR"] = "1"
    try:
        proc = subprocess.run(["bash", str(ROOT / "demo" / "run.sh")], env=env, capture_output=True, text=True,
                              timeout=900)
    finally:
        subprocess.run([sys.executable, "-m", "jobs.cli.main", "local", "down"], env=env, capture_output=True)
    assert proc.returncode == 0, f"demo failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    stages = sorted(p.stem for p in (ROOT / "demo").glob("[0-9][0-9]-*.sh"))
    for stage in stages:
        assert f"== {stage} ==" in proc.stdout, f"stage {stage} did not run"
    assert "Traceback" not in proc.stdout + proc.stderr
