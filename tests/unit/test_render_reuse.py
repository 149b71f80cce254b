"""What rendering reuses between jobs and environments (validated definitions, estimates, a cheaper YAML check)
must never change an answer: each shortcut is checked against the long way here."""

from __future__ import annotations

import json

import pytest
import yaml

from jobs.config.environment import load_environment
from jobs.errors import FtopsError
from jobs.render.cost import estimate_job_cost
from jobs.render.definitions import load_variants
from jobs.render.engine import _canonical, _check_yaml, render_environment
from jobs.render.secrets import find_secret, first_secret, rendered_secret
from jobs.data.manifest import read_manifest
from tests.fixtures.render_project import MANIFEST, write_manifest

SM, AZ = "helpdesk-qwen-lora", "helpdesk-gpt41mini"

YAML_TEXTS = [
    "a: 1\n",
    "",
    'regex: "ftops-metrics .*\\\\bloss=([0-9]+)"\nb: [x, "y*"]\n',  # '*' inside scalars, as in ack.yaml
    "a: b*c\nd: e&f\n",
    "a: &x 1\nb: *x\n",
    "a: *x\n",  # undefined alias: only the composer sees it
    "a: &x 1\nb: &x 2\n",  # duplicate anchor
    "a: 1\n---\nb: 2\n",  # a second document
    "a: 1\n--- \n",
    "a: 1\n...\n",
    "a: [*x]\n",
    "a: {b: *x}\n",
    "- *x\n",
    "a: !!str *x\n",
    "a: [1, 2\n",  # parse errors
    "a: 1\n b: 2\n",
    'a: "x"*b\n',
    "a: 1\n...\nb: 2\n",
]


@pytest.mark.parametrize("text", YAML_TEXTS)
def test_yaml_check_fails_exactly_where_composing_fails(text):
    try:
        yaml.compose(text, Loader=yaml.CSafeLoader)
        expected = None
    except yaml.YAMLError as exc:
        expected = str(exc)
    try:
        _check_yaml(text)
        got = None
    except yaml.YAMLError as exc:
        got = str(exc)
    assert (got is None) == (expected is None), f"compose: {expected!r}; check: {got!r}"


def test_invalid_yaml_from_a_template_is_still_an_error(project):
    (variant,) = load_variants(project.root / "definitions" / f"{SM}.yaml", "local")
    with pytest.raises(FtopsError, match="produced invalid output"):
        _canonical("ack", "spec:\n  a: *undefined\n", variant)


def test_an_edited_definition_is_validated_again_in_the_same_process(project):
    env = load_environment("dev")
    before = render_environment(env, SM)[0]
    project.edit_definition(SM, hyperparameters__epochs=12)
    after = render_environment(env, SM)[0]
    assert before.documents["sagemaker.json"]["HyperParameters"]["epochs"] == "3"
    assert after.documents["sagemaker.json"]["HyperParameters"]["epochs"] == "12"
    project.edit_definition(SM, hyperparameters__epochs="many")
    with pytest.raises(FtopsError, match="epochs"):
        render_environment(env, SM)


def test_environments_share_a_definition_but_not_its_overrides(project):
    local = render_environment(load_environment("local"), AZ)[0]
    prod = render_environment(load_environment("prod"), AZ)[0]
    again = render_environment(load_environment("local"), AZ)[0]
    epochs = [job.documents["azure-openai.json"]["method"]["supervised"]["hyperparameters"]["n_epochs"]
              for job in (local, prod)]
    assert epochs == [2, 3]  # overrides.prod
    assert again.files == local.files


def test_each_job_gets_its_own_estimate_within_one_render(project):
    write_manifest((project.root / MANIFEST).parent, train_examples=20_000)  # dollars, not cents, per epoch
    project.edit_definition(AZ, sweep={"grid": {"epochs": [1, 2, 3]}})
    env = load_environment("dev")
    rendered = render_environment(env, AZ)
    assert len({r.index["estimated_cost_usd"] for r in rendered}) == 3
    manifest = read_manifest(project.root / MANIFEST)
    for job in rendered:
        expected = estimate_job_cost(job.variant, env, manifest)
        assert job.index["estimated_cost_usd"] == round(expected, 2)


SECRET_DATA = [
    {"name": "job", "tags": {"project": "x"}, "compute": {"environment": {"WANDB_MODE": "offline"}}},
    {"compute": {"environment": {"HF_TOKEN": "abc"}}},  # a secret name
    {"tags": [{"Key": "DB_PASSWORD", "Value": "x"}]},
    {"description": "key AKIAABCDEFGHIJKLMNOP"},
    {"description": "x-sk-abcdefghijklmnopqrstuvwxyz0123"},
    {"description": "DefaultEndpointsProtocol=https;Account\u212aey=abc123"},  # Kelvin sign K
    {"description": "postgres://admin:hunter2@db.internal/x"},
    {"description": "s\u00e9cret-free text with accents \u00e9\u00e8 and helpdesk-sk-like names"},
    {"items": {1, 2}, "note": "hf_abcdefghijklmnopqrstuvwxyz0123456789"},  # not JSON: the long way
    {3: "AIzaSyA-abcdefghijklmnopqrstuvwxyz0123456"},
]


@pytest.mark.parametrize("data", SECRET_DATA)
def test_the_quick_secret_scan_finds_what_the_full_scan_finds(data):
    assert first_secret(data) == find_secret(data)


def test_a_rendered_value_after_a_hyphen_is_still_checked():
    data = {"Environment": {"X": "run-sk-abcdefghijklmnopqrstuvwxyz0123"}}
    found = rendered_secret(data)
    assert found is not None and "openai" in found[1]


@pytest.mark.parametrize("text", [
    "name: x\ntags: {project: a}\nhyperparameters: {epochs: 2, learning_rate: 0.0002, packing: true}\n",
    "a: &x {b: 1}\nc: *x\nd: [1, 2.5, true, null, 2024-01-01, '3', !!str 4, \"s\"]\n",
    "<<: {a: 1}\nb: 2\n",
    "1: x\n'1': y\n",
    "a: 1\nb:\n  c: 2\na: 3\n",  # duplicate key
])
def test_definition_parsing_matches_the_shared_yaml_reader(text):
    from jobs.render.definitions import _parse_with_lines
    from jobs.yamlio import _construct

    results = []
    for loader_class in (yaml.SafeLoader, yaml.CSafeLoader):  # load_yaml's and render's parsers
        loader = loader_class(text)
        lines: dict = {}
        try:
            results.append((_construct(loader.get_single_node(), loader, (), lines, "x.yaml"), lines))
        except FtopsError as err:
            results.append((err.message, err.line, err.field))
    try:
        results.append(_parse_with_lines(text, "x.yaml"))
    except FtopsError as err:
        results.append((err.message, err.line, err.field))
    assert results[0] == results[1] == results[2]
    if not isinstance(results[0][0], str):
        assert results[0][0] == yaml.safe_load(text), "the same data PyYAML gives"
