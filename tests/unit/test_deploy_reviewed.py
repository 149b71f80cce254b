"""Issue 17, case 4 for serving: `ftops deploy`/`undeploy` act only on what the definitions render. A deployment
edited by hand in the rendered tree (SKU, capacity, role, a `deployment` block added to job.json) is refused with
one line naming the file and the field, before any cloud call."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.fixtures.network import no_network

ENV = "dev"
REPO = Path(__file__).resolve().parents[2]


def _render(project, ftops, out: Path) -> Path:
    target = project.root / "datasets" / "it-helpdesk" / "prepared"
    for file in (REPO / "datasets" / "it-helpdesk" / "prepared").iterdir():
        shutil.copy(file, target / file.name)
    result = ftops("render", "--env", ENV, "--out", out)
    assert result.exit_code == 0, result.stderr
    return out / ENV


def _edit(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


@pytest.mark.parametrize("command", ["deploy", "undeploy"])
@pytest.mark.parametrize("job, file, change, field", [
    ("helpdesk-gpt41mini", "azure-openai-deployment.json",
     lambda d: d["body"]["sku"].update(name="GlobalStandard"), "body.sku.name"),
    ("helpdesk-gpt41mini", "azure-openai-deployment.json",
     lambda d: d["body"]["sku"].update(capacity=500), "body.sku.capacity"),
    ("helpdesk-qwen-lora", "sagemaker.json",
     lambda d: d.update(RoleArn="arn:aws:iam::999999999999:role/admin"), "RoleArn"),
    ("helpdesk-qwen-lora", "job.json",
     lambda d: d.update(deployment={"sagemaker": {"instance_type": "ml.p5.48xlarge", "instance_count": 8}}),
     "deployment"),
])
def test_a_hand_edited_deployment_is_refused_naming_file_and_field(project, ftops, tmp_path, monkeypatch,
                                                                    command, job, file, change, field):
    tree = _render(project, ftops, tmp_path / "rendered")
    (job_dir,) = tree.glob(f"{job}-*")
    _edit(job_dir / file, change)
    attempts = no_network(monkeypatch)
    refused = ftops(command, job, "--env", ENV, "--dir", tmp_path / "rendered")
    assert refused.exit_code == 1
    line = refused.stderr.strip()
    assert "\n" not in line and "Traceback" not in line, refused.stderr
    assert file in line and field in line, line
    assert attempts == []


def test_deployment_settings_come_from_the_definition_not_the_tree(project, ftops, tmp_path):
    """Whatever job.json says, the SageMaker endpoint's settings are the definition's (with its override)."""
    from jobs.apply.rendered import load_rendered
    from jobs.config.environment import load_environment
    from jobs.providers.sagemaker import deployment_settings

    tree = _render(project, ftops, tmp_path / "rendered")
    (job_dir,) = tree.glob("helpdesk-qwen-lora-*")
    _edit(job_dir / "job.json", lambda d: d.update(deployment={"sagemaker": {"instance_type": "ml.p5.48xlarge"}}))
    (job,) = [j for j in load_rendered(tmp_path / "rendered", ENV) if j.job == "helpdesk-qwen-lora"]
    settings = deployment_settings(job, load_environment(ENV))
    assert settings["instance_type"] != "ml.p5.48xlarge"
