"""`ftops render` / `ftops diff`: determinism, names, policy, secrets, sweeps, all-or-nothing writes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from jobs.config.environment import load_environment
from jobs.errors import ConfigError
from jobs.fsutil import OWNER_MARKER
from jobs.render.engine import render_environment

REPO = Path(__file__).resolve().parents[2]

SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
SM, AZ = "helpdesk-qwen-lora", "helpdesk-gpt41mini"


def render(env: str, job: str | None = None):
    return render_environment(load_environment(env), job)


def tree(directory):
    # The ownership marker is ftops's bookkeeping, not a rendered file.
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*"))
            if p.is_file() and p.name != OWNER_MARKER}


def test_render_writes_the_layout_apply_reads(project, ftops, tmp_path):
    result = ftops("render", "--env", "local", "--out", tmp_path / "out", "--json")
    assert result.exit_code == 0, result.stderr
    jobs = {row["job"]: row for row in json.loads(result.stdout)["jobs"]}
    sm_dir = tmp_path / "out" / "local" / jobs[SM]["name"]
    assert sorted(p.name for p in sm_dir.iterdir()) == ["ack.yaml", "job.json", "sagemaker.json"]
    index = json.loads((sm_dir / "job.json").read_text())
    request = json.loads((sm_dir / "sagemaker.json").read_text())
    assert index["name"] == request["TrainingJobName"] == sm_dir.name
    assert index["targets"] == {"sagemaker": "sagemaker.json", "ack": "ack.yaml"}
    assert index["definition"] == f"definitions/{SM}.yaml" and index["environment"] == "local"
    assert index["dataset_manifest"] == "datasets/it-helpdesk/prepared/manifest.json"
    assert {"Key": "ftops:idempotency-key", "Value": index["idempotency_key"]} in request["Tags"]
    assert sm_dir.name == f"{SM}-local-{index['idempotency_key'][:8]}" and SAGEMAKER_NAME.match(sm_dir.name)
    az_dir = tmp_path / "out" / "local" / jobs[AZ]["name"]
    assert sorted(p.name for p in az_dir.iterdir()) == ["azure-openai-deployment.json",
                                                        "azure-openai.json", "job.json"]
    body = json.loads((az_dir / "azure-openai.json").read_text())
    assert body["training_file"] == "ftops-file:train" and body["validation_file"] == "ftops-file:validation"
    assert body["suffix"].endswith(json.loads((az_dir / "job.json").read_text())["idempotency_key"][:8])
    assert len(body["suffix"]) <= 18


def test_rendering_twice_is_byte_identical_and_a_change_renames_only_that_job(project, ftops, tmp_path):
    for out in ("a", "b"):
        assert ftops("render", "--env", "prod", "--out", tmp_path / out).exit_code == 0
    first = tree(tmp_path / "a")
    assert first == tree(tmp_path / "b")
    assert all(b'"created' not in data and b"timestamp" not in data for data in first.values())

    project.edit_definition(SM, hyperparameters__learning_rate=0.0001)
    assert ftops("render", "--env", "prod", "--out", tmp_path / "a").exit_code == 0
    after = tree(tmp_path / "a")
    old_dirs = {k.split("/")[1] for k in first}
    new_dirs = {k.split("/")[1] for k in after}
    assert {d for d in old_dirs if d.startswith(AZ)} == {d for d in new_dirs if d.startswith(AZ)}
    assert {d for d in old_dirs if d.startswith(SM)} != {d for d in new_dirs if d.startswith(SM)}
    assert len(new_dirs) == 2  # the stale directory of the changed job is gone


@pytest.mark.parametrize("field", ["name", "compute__environment__NOTE"])
def test_a_definition_that_spells_a_placeholder_is_refused_at_its_line(project, ftops, tmp_path, field):
    """The engine writes the generated names where their placeholders stand: a definition spelling one (as a
    name, or inside any value) would have it replaced, so it is refused with its file and line."""
    from jobs.render.context import PLACEHOLDERS
    from jobs.render.definitions import PLACEHOLDER_MARK

    assert all(p.endswith(PLACEHOLDER_MARK) for p in PLACEHOLDERS)
    if field == "name":
        (project.root / "definitions" / f"{SM}.yaml").unlink()
        data = project.definition(AZ) | {"name": "ftops0suffix0placeholder"}
        path = project.write_definition(data)
    else:
        path = project.edit_definition(SM, **{field: "see ftops0job0name0placeholder here"})
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if PLACEHOLDER_MARK in text)
    result = ftops("render", "--env", "dev", "--out", tmp_path / "out")
    assert result.exit_code == 1 and not (tmp_path / "out").exists()
    assert f"{path.name}:{line}" in result.stderr and "is reserved" in result.stderr, result.stderr


@pytest.mark.parametrize(("template", "old", "new", "expected"), [
    ("ack/training-job.yaml.j2", "{{ s.job_name | json }}", "{{ s.no_such_value | json }}",
     "ack/training-job.yaml.j2: template uses an undefined value: 'dict object' has no attribute 'no_such_value'"),
    ("sagemaker/training-job.json.j2", '"TrainingJobName"', '{% if %}"TrainingJobName"',
     "sagemaker/training-job.json.j2:4: template syntax error"),
    ("ack/training-job.yaml.j2", '"ack/_training.j2"', '"ack/_gone.j2"',
     "ack/training-job.yaml.j2: template ack/_gone.j2 not found (imported by ack/training-job.yaml.j2)"),
    ("sagemaker/training-job.json.j2", "{{ s.hyperparameters | json }}", "{{ s.archive | json }}",
     "sagemaker/training-job.json.j2: template error: a value the json filter cannot write"),
])
def test_a_broken_template_is_one_line_naming_it_and_nothing_is_written(project, ftops, tmp_path, template, old,
                                                                          new, expected):
    """Every job of a batch renders the same template, looked up once: its error is each job's, in one line."""
    import shutil

    from jobs.render import templating

    (project.root / "templates").unlink()
    shutil.copytree(REPO / "templates", project.root / "templates")
    path = project.root / "templates" / template
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new, 1))
    templating.environment.cache_clear()  # bound to the templates directory it first saw
    try:
        result = ftops("render", "--env", "dev", "--out", tmp_path / "out")
    finally:
        templating.environment.cache_clear()
    assert result.exit_code == 1 and not (tmp_path / "out").exists()
    assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_one_run_renders_several_environments_as_separate_runs_would(project, ftops, tmp_path):
    for env in ("local", "prod"):
        assert ftops("render", "--env", env, "--out", tmp_path / "apart").exit_code == 0
    result = ftops("render", "--env", "local", "--env", "prod", "--out", tmp_path / "together", "--json")
    assert result.exit_code == 0, result.stderr
    assert [r["environment"] for r in json.loads(result.stdout)["renders"]] == ["local", "prod"]
    assert tree(tmp_path / "together") == tree(tmp_path / "apart")


def test_a_violation_in_a_later_environment_writes_no_environment(project, ftops, tmp_path):
    project.edit_definition(SM, overrides__prod__compute__instance_type="ml.p5.48xlarge")
    result = ftops("render", "--env", "local", "--env", "prod", "--out", tmp_path / "out")
    assert result.exit_code == 1 and "[environment prod]" in result.stderr and "instance_type" in result.stderr
    assert not (tmp_path / "out" / "local").exists()


def test_prod_override_runs_on_demand_and_other_environments_use_spot(project):
    local = next(r for r in render("local") if r.index["job"] == SM).documents["sagemaker.json"]
    prod = next(r for r in render("prod") if r.index["job"] == SM).documents["sagemaker.json"]
    assert local["EnableManagedSpotTraining"] is True and "CheckpointConfig" in local
    assert local["StoppingCondition"]["MaxWaitTimeInSeconds"] >= local["StoppingCondition"]["MaxRuntimeInSeconds"]
    assert prod["EnableManagedSpotTraining"] is False and "MaxWaitTimeInSeconds" not in prod["StoppingCondition"]
    assert prod["HyperParameters"]["epochs"] == "4" and local["HyperParameters"]["epochs"] == "3"


def _error(env: str, job: str | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        render(env, job)
    return err.value


def test_policy_violation_names_file_field_environment_and_writes_nothing(project, ftops, tmp_path):
    assert ftops("render", "--env", "local", "--out", tmp_path / "out").exit_code == 0
    before = tree(tmp_path / "out")
    project.edit_definition(SM, compute__instance_type="ml.p5.48xlarge")
    result = ftops("render", "--env", "local", "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert f"definitions/{SM}.yaml:" in result.stderr and "compute.instance_type" in result.stderr
    assert "[environment local]" in result.stderr and "use one of" in result.stderr
    assert tree(tmp_path / "out") == before
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]


def test_spot_is_required_outside_prod_and_the_error_points_at_the_override(project):
    data = project.definition(SM)
    data["overrides"]["staging"] = {"compute": {"spot": False}}
    path = project.write_definition(data)
    err = _error("staging", SM)
    assert err.field == "overrides.staging.compute.spot" and "spot" in err.message
    line = path.read_text().splitlines()[err.line - 1]
    assert line.strip().startswith("spot:")
    # prod's own override (on-demand) is allowed there; prod's render also renders the source (staging) job
    # whose model it serves (promotion.json), so staging must render again first.
    del data["overrides"]["staging"]
    project.write_definition(data)
    render("prod", SM)


def test_max_wait_below_runtime_is_refused_for_spot_jobs(project):
    project.edit_definition(SM, compute__max_wait_s=3600)
    err = _error("local", SM)
    assert err.field == "compute.max_wait_s" and "below max runtime" in err.message


def test_required_tags_and_instance_count_and_azure_rules(project):
    data = project.definition(SM)
    del data["tags"]["project"]
    project.write_definition(data)
    err = _error("dev", SM)
    assert err.field == "tags" and "'project'" in err.message and "[environment dev]" in err.message

    project.edit_definition(AZ, base_model__azure_model="gpt-3")
    err = _error("local", AZ)
    assert err.field == "base_model.azure_model" and "cannot be fine-tuned" in err.message

    project.edit_definition(AZ, base_model__azure_model="gpt-4.1-mini", overrides={"prod": {"azure": {"training_type": "Developer"}}})
    err = _error("prod", AZ)
    assert err.field == "overrides.prod.azure.training_type" and "not allowed" in err.message

    project.edit_environment("dev", "location: swedencentral", "location: westeurope")
    err = _error("dev", AZ)
    assert err.field == "azure.training_type" and "westeurope" in err.message


def test_method_must_match_the_dataset_format(project):
    project.edit_definition(AZ, method="dpo")
    err = _error("local", AZ)
    assert err.field == "method" and "preference" in err.message


def test_cost_ceiling_uses_the_estimate(project, monkeypatch):
    monkeypatch.setattr("jobs.render.engine.estimate_job_cost", lambda variant, env, manifest, verified=None: 75.0)
    err = _error("local", SM)  # local's ceiling is $50
    assert "estimated cost $75.00" in err.message and "[environment local]" in err.message
    assert render("dev", SM)[0].index["estimated_cost_usd"] == 75.0  # dev allows $200


@pytest.mark.parametrize(("field", "value"), [
    ("compute__environment", {"HF_TOKEN": "hf_abcdefghijklmnopqrstuvwxyz0123456789"}),
    ("compute__environment", {"WANDB_MODE": "postgres://admin:hunter2@db.internal:5432/x"}),
    ("tags", {"project": "it-helpdesk", "note": "AKIAABCDEFGHIJKLMNOP"}),
    ("description", "DefaultEndpointsProtocol=https;AccountName=x;AccountKey=abc123=="),
])
def test_secrets_are_rejected_with_the_field_named(project, field, value):
    project.edit_definition(SM, **{field: value})
    err = _error("local", SM)
    assert "secret" in err.message and err.field.startswith(field.replace("__", "."))


def test_a_secret_stops_only_the_job_that_carries_it_when_jobs_are_judged_together(project):
    """Render judges a batch of jobs' documents at once: a secret in one job's request is that job's error,
    named by its file and field, and the other jobs of the batch still render."""
    from jobs.render.definitions import load_variants
    from jobs.render.engine import RenderedJob, render_batch

    value = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # AWS's documented example secret access key
    project.edit_definition(SM, compute__environment={"NOTES": value},
                            sweep={"grid": {"learning_rate": [0.0001, 0.0002]}})
    env = load_environment("local")
    variants = [v for name in (AZ, SM) for v in load_variants(project.root / "definitions" / f"{name}.yaml", "local")]
    results = render_batch(variants, env)
    assert isinstance(results[0], RenderedJob) and results[0].index["job"] == AZ
    for error in results[1:]:
        assert isinstance(error, ConfigError), error
        assert "would carry a secret at Environment.NOTES" in error.message and value not in error.message
        assert error.source.endswith(f"{SM}.yaml") and error.field == "compute.environment"


def test_grid_sweep_expands_into_named_jobs(project):
    project.edit_definition(SM, sweep={"grid": {"learning_rate": [0.0001, 0.0002], "lora_r": [8, 16]}})
    rendered = [r for r in render("local") if r.index["definition"].endswith(f"{SM}.yaml")]
    assert sorted(r.index["job"] for r in rendered) == [f"{SM}-g{i}" for i in range(4)]
    combos = {(r.documents["sagemaker.json"]["HyperParameters"]["learning_rate"],
               r.documents["sagemaker.json"]["HyperParameters"]["lora_r"]) for r in rendered}
    assert combos == {("0.0001", "8"), ("0.0001", "16"), ("0.0002", "8"), ("0.0002", "16")}
    assert all(SAGEMAKER_NAME.match(r.name) for r in rendered)


def test_bad_grid_value_points_at_the_grid(project):
    project.edit_definition(SM, sweep={"grid": {"lora_dropout": [0.1, 1.5]}})
    err = _error("local", SM)
    assert err.field == "sweep.grid.lora_dropout"


def test_tuning_sweep_carries_spot_and_checkpoints_into_the_training_definition(project):
    project.edit_definition(SM, sweep={"tuning": {"objective": {"metric": "eval_loss"}, "max_jobs": 6,
                                                  "ranges": {"learning_rate": {"min": 0.00005, "max": 0.0005,
                                                                               "scaling": "Logarithmic"},
                                                             "lora_r": {"values": [8, 16, 32]}}}})
    job = render("local", SM)[0]
    assert job.index["targets"] == {"sagemaker-tuning": "sagemaker-tuning.json", "ack": "ack.yaml"}
    request = job.documents["sagemaker-tuning.json"]
    definition = request["TrainingJobDefinition"]
    assert definition["EnableManagedSpotTraining"] is True and definition["CheckpointConfig"]["S3Uri"]
    assert definition["StoppingCondition"]["MaxWaitTimeInSeconds"] >= definition["StoppingCondition"]["MaxRuntimeInSeconds"]
    assert "learning_rate" not in definition["StaticHyperParameters"]
    assert len(request["HyperParameterTuningJobName"]) <= 32
    ranges = request["HyperParameterTuningJobConfig"]["ParameterRanges"]
    assert ranges["CategoricalParameterRanges"] == [{"Name": "lora_r", "Values": ["8", "16", "32"]}]
    assert job.documents["ack.yaml"]["kind"] == "HyperParameterTuningJob"


def test_definition_errors_name_file_line_and_field(project):
    path = project.write_definition(project.definition(SM) | {"epochz": 3})
    err = _error("local", SM)
    assert err.field == "epochz" and str(err.source) == str(path)
    assert path.read_text().splitlines()[err.line - 1].startswith("epochz:")
    data = project.definition(SM)
    data.pop("epochz")
    data["base_model"] = {"hf_model_id": "Qwen/Qwen2.5-0.5B-Instruct"}
    project.write_definition(data)
    err = _error("local", SM)
    assert "s3_uri" in err.message


@pytest.mark.parametrize(("field", "value"), [("epochs", True), ("epochs", 2.0), ("seed", "7")])
def test_an_integer_written_as_true_a_float_or_text_is_refused_at_its_line(project, field, value):
    """Pydantic's lax mode read `epochs: true` as 1 epoch and `2.0` as 2: a declaration's integers are YAML ints."""
    path = project.edit_definition(SM, **{f"hyperparameters__{field}": value})
    err = _error("local", SM)
    assert err.field == f"hyperparameters.{field}" and str(err.source) == str(path)
    assert "valid integer" in err.message
    assert path.read_text().splitlines()[err.line - 1].strip().startswith(f"{field}:")


def test_diff_shows_the_changed_field_and_exits_1(project, ftops, tmp_path):
    assert ftops("render", "--env", "local", "--out", tmp_path / "out").exit_code == 0
    same = ftops("diff", "--env", "local", "--against", tmp_path / "out")
    assert same.exit_code == 0
    assert " ".join(same.stderr.split()) == f"no changes: {tmp_path / 'out' / 'local'} is what environment local renders"
    project.edit_definition(SM, hyperparameters__epochs=5)
    changed = ftops("diff", "--env", "local", "--against", tmp_path / "out")
    assert changed.exit_code == 1
    assert '-    "epochs": "3",' in changed.stdout and '+    "epochs": "5",' in changed.stdout
    assert AZ not in changed.stdout  # only the changed job shows
    across = ftops("diff", "--env", "prod", "--against", tmp_path / "out", "--against-env", "local", "--json")
    assert across.exit_code == 1
    kinds = {c["job"]: c["kind"] for c in json.loads(across.stdout)["changes"]}
    assert kinds == {SM: "changed", AZ: "changed"}


def test_render_one_job_keeps_the_others(project, ftops, tmp_path):
    assert ftops("render", "--env", "local", "--out", tmp_path / "out").exit_code == 0
    before = {p.name for p in (tmp_path / "out" / "local").iterdir() if p.is_dir()}
    project.edit_definition(SM, hyperparameters__epochs=5)
    assert ftops("render", "--env", "local", "--job", SM, "--out", tmp_path / "out").exit_code == 0
    after = {p.name for p in (tmp_path / "out" / "local").iterdir() if p.is_dir()}
    assert len(after) == 2 and {n for n in before if n.startswith(AZ)} <= after and before != after


def test_a_yml_definition_is_refused_not_skipped(project, ftops, tmp_path):
    definitions = project.root / "definitions"
    (definitions / "helpdesk-qwen-lora.yaml").rename(definitions / "helpdesk-qwen-lora.yml")
    result = ftops("render", "--env", "local", "--out", tmp_path / "out")
    assert result.exit_code == 1 and not (tmp_path / "out").exists()
    assert "helpdesk-qwen-lora.yml: job definitions end in .yaml" in result.stderr
    assert "rename it to definitions/helpdesk-qwen-lora.yaml" in result.stderr


@pytest.mark.parametrize("job", ["/tmp/x.yaml", "foo.yml", "sub/dir"])
def test_an_unknown_job_path_gets_no_nonsense_file_to_add(ftops, job):
    result = ftops("render", "--env", "local", "--job", job)
    assert result.exit_code == 1 and f"no job definition {job!r}" in result.stderr
    assert "add definitions/" not in result.stderr and "known jobs: helpdesk-gpt41mini" in result.stderr


@pytest.mark.parametrize("old, new, field, message", [
    ("      spot: false", "      sopt: false", "overrides.prod.compute.sopt", "unknown key sopt, did you mean spot?"),
    ("      epochs: 4", "      epochs: -4", "overrides.prod.hyperparameters.epochs", "greater than or equal to 1"),
])
def test_a_mistake_in_another_environments_overrides_fails_every_render(project, ftops, tmp_path, old, new, field,
                                                                        message):
    path = project.root / "definitions" / "helpdesk-qwen-lora.yaml"
    text = path.read_text()
    assert old in text.split("overrides:", 1)[1].split("  prod:", 1)[1]  # the edit lands in overrides.prod
    path.write_text(text.replace(old, new, 1))
    line = text.splitlines().index(old) + 1
    for env in ("local", "dev"):  # a pull request renders dev; the mistake is in what prod will run
        result = ftops("render", "--env", env, "--out", tmp_path / "out")
        assert result.exit_code == 1 and not (tmp_path / "out").exists()
        assert f"helpdesk-qwen-lora.yaml:{line}: {field}: " in result.stderr and message in result.stderr


def _render_error(project, ftops, tmp_path, job: str, **changes) -> tuple[str, list[str]]:
    path = project.edit_definition(job, **changes)
    result = ftops("render", "--env", "local", "--out", tmp_path / "out")
    assert result.exit_code == 1 and "Traceback" not in result.stderr and not (tmp_path / "out").exists()
    return result.stderr.strip(), path.read_text().splitlines()


@pytest.mark.parametrize("job, changes, field", [
    ("helpdesk-gpt41mini", {"compute": {"instance_type": "ml.p4d.24xlarge"}}, "compute"),
    ("helpdesk-gpt41mini", {"hyperparameters__lora_r": 64}, "hyperparameters.lora_r"),
    ("helpdesk-gpt41mini", {"peft": "qlora"}, "peft"),
    ("helpdesk-gpt41mini", {"deployment__sagemaker": {"instance_type": "ml.g5.xlarge"}}, "deployment.sagemaker"),
    ("helpdesk-qwen-lora", {"azure": {"suffix": "x"}}, "azure"),
])
def test_a_setting_the_provider_has_no_use_for_is_refused_at_its_line(project, ftops, tmp_path, job, changes,
                                                                     field):
    line, text = _render_error(project, ftops, tmp_path, job, **changes)
    key = field.rsplit(".", 1)[-1] + ":"
    number = next(i for i, row in enumerate(text, start=1) if row.strip().startswith(key))
    assert f"{job}.yaml:{number}: {field}: {field} applies to" in line and "remove it" in line, line


@pytest.mark.parametrize("job, changes, field, message", [
    ("helpdesk-gpt41mini", {"hyperparameters__learning_rate": 0.0002}, "hyperparameters.learning_rate",
     "Azure takes hyperparameters.learning_rate_multiplier"),
    ("helpdesk-qwen-lora", {"method": "dpo", "hyperparameters__packing": True}, "hyperparameters.packing",
     "hyperparameters.packing applies to supervised fine-tuning only"),
])
def test_a_cross_field_rule_points_at_the_field_not_the_name_line(project, ftops, tmp_path, job, changes, field,
                                                                  message):
    line, text = _render_error(project, ftops, tmp_path, job, **changes)
    key = field.rsplit(".", 1)[-1] + ":"
    number = next(i for i, row in enumerate(text, start=1) if row.strip().startswith(key))
    assert f"{job}.yaml:{number}: {field}: {message}" in line, line


def test_a_second_job_option_is_refused_not_silently_preferred(ftops, tmp_path):
    for command in (("render", "--out", tmp_path / "out"), ("diff", "--against", tmp_path)):
        result = ftops(*command, "--env", "local", "--job", "helpdesk-qwen-lora", "--job", "helpdesk-gpt41mini")
        assert result.exit_code == 2 and "one definition at a time" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("bad", ["x\n", "", "Upper", "a b", "ä", "name/../x"])
def test_only_plain_tokens_are_put_in_as_generated_names(bad):
    """The names are substituted into JSON and YAML text as they are: anything but [a-z0-9-] is refused."""
    from jobs.errors import FtopsError
    from jobs.render.context import NAME, SUFFIX
    from jobs.render.engine import _encoded

    encoded = _encoded({NAME: "job-dev-1a2b3c4d", SUFFIX: "x"})
    assert encoded == {NAME.encode(): b"job-dev-1a2b3c4d", SUFFIX.encode(): b"x"}
    with pytest.raises(FtopsError, match="unsafe generated name"):
        _encoded({NAME: "job-dev-1a2b3c4d", SUFFIX: bad})
