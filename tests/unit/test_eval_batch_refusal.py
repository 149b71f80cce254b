"""`ftops eval --batch` with the job's fine-tuned deployment: the refusal the user gets is about that deployment
(the Batch API does not serve fine-tuned models), not about the base model's SKU, which was checked first."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from jobs.config.environment import load_environment
from jobs.errors import ConfigError
from jobs.eval.plan import EvalPlan, run_plan


def test_the_fine_tuned_deployment_is_checked_for_batch_first(monkeypatch, tmp_path):
    checked: list[str] = []

    def refuse(env, deployment, found=None):  # both are refused in `local`: the fine-tuned model, and the base's SKU
        checked.append(deployment)
        raise ConfigError(f"deployment {deployment!r} cannot be batched", field="--batch")

    served = SimpleNamespace(properties=SimpleNamespace(model=SimpleNamespace(name="m", version="1")))
    monkeypatch.setattr("jobs.providers.azure_openai.arm_deployment", lambda env, name: served)
    monkeypatch.setattr("jobs.eval.targets.azure_openai.check_batch_deployment", refuse)
    plan = EvalPlan(job="helpdesk-gpt41mini", env=load_environment("local"), definition_path=Path("x.yaml"),
                    config=None, examples=[], dataset_id="d", fine_tuned="azure:helpdesk-gpt41mini-local-1234abcd",
                    base="azure:grader", judge=None, out_dir=tmp_path / "eval")
    with pytest.raises(ConfigError) as refused:
        run_plan(plan, batch=True)
    assert "'helpdesk-gpt41mini-local-1234abcd' cannot be batched" in str(refused.value)
    assert checked == ["helpdesk-gpt41mini-local-1234abcd"]
