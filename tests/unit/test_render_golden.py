"""Golden snapshots per template: a base case plus one change per case. A diff here is a change to what
jobs run with: review it, then regenerate with `UPDATE_SNAPSHOT=1 pytest tests/unit/test_render_golden.py`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jobs.config.environment import load_environment
from jobs.render.engine import render_environment

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "render"
SM, AZ = "helpdesk-qwen-lora", "helpdesk-gpt41mini"

CASES = {
    # case: (definition, environment, changes to the definition)
    "sagemaker-base": (SM, "local", {}),
    "sagemaker-prod-on-demand": (SM, "prod", {}),
    "sagemaker-full-fine-tuning": (SM, "local", {"peft": "full", "hyperparameters__learning_rate": 0.00002}),
    "sagemaker-tuning": (SM, "local", {"sweep": {"tuning": {"max_jobs": 4, "ranges": {
        "learning_rate": {"min": 0.00005, "max": 0.0005, "scaling": "Logarithmic"}, "lora_r": {"values": [8, 16]}}}}}),
    "azure-base": (AZ, "local", {}),
    "azure-prod-standard": (AZ, "prod", {}),
    "azure-dpo": (AZ, "local", {"method": "dpo", "hyperparameters__beta": 0.1, "dataset": "preference"}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendered_files_match_the_snapshot(project, case):
    definition, env, changes = CASES[case]
    if changes.get("dataset") == "preference":
        changes = changes | {"dataset": project.preference_dataset()}
    if changes:
        project.edit_definition(definition, **changes)
    job = render_environment(load_environment(env), definition)[0]
    directory = GOLDEN / case
    if os.environ.get("UPDATE_SNAPSHOT") == "1":
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.iterdir():
            stale.unlink()
        for name, data in job.files.items():
            (directory / name).write_bytes(data)
    assert directory.is_dir(), f"no snapshot for {case}; run with UPDATE_SNAPSHOT=1"
    expected = {p.name: p.read_bytes() for p in directory.iterdir()}
    assert sorted(job.files) == sorted(expected)
    for name, data in job.files.items():
        assert data.decode() == expected[name].decode(), f"{case}/{name} differs from its snapshot"
