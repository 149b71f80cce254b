"""Render's cheaper paths (definitions parsed without line marks, quick secret and YAML pre-checks) must give
exactly the answers of the long way: each is checked against it here."""

from __future__ import annotations

import json
import random

import orjson
import pytest
import yaml

from jobs.errors import ConfigError
from jobs.render import definitions
from jobs.render.engine import _ANCHOR_OR_ALIAS, _may_hold_anchor_or_alias
from jobs.render.secrets import SECRET_VALUE, detected_secret, find_secret, first_secret, rendered_secret
from jobs.yamlio import load_yaml

SCALARS = ["1", "0", "-0", "+5", "017", "0o17", "0x1F", "0b101", "1_000", "190:20:30", "1.5", "-1.5", "+.5", "1.",
           "1.5e+3", "6.8523015e+5", "685_230.15", "190:20:30.15", "-.inf", ".NaN", "yes", "No", "on", "OFF",
           "true", "~", "null", "", "2024-01-01", "'3'", "!!str 4", "!!float 1", '!!float "1.5"', "!!int '12'",
           "!!bool true", "!!null x", "abc", "1e5"]


UNTAGGED = [value for value in SCALARS if "!!" not in value]


def _read_like_render(text: str):
    """What `definitions._read` parses `text` into, and which reader it took."""
    try:
        return definitions._load_plain(text), "events"
    except (definitions._NeedsFullLoader, yaml.YAMLError):
        return definitions._parse_with_lines(text, "x.yaml")[0], "full loader"


@pytest.mark.parametrize(("text", "reader"), [
    ("\n".join(f"k{i}: {value}" for i, value in enumerate(UNTAGGED)) + "\n", "events"),
    ("top:\n" + "".join(f"  - [{value or '~'}, {{k: {value or '~'}}}]\n" for value in UNTAGGED), "events"),
    ("1: x\n'1': y\n2.5: z\nnull: n\n", "events"),
    ("", "events"),
    ("\n".join(f"k{i}: {value}" for i, value in enumerate(SCALARS)) + "\n", "full loader"),  # explicit tags
    ("a: &x {b: 1, c: [1, 2.5, true]}\nd: *x\n<<: {e: 1}\nf: [[1, 2], {g: null}]\n", "full loader"),
    ("a: 1\n=: 2\n", "full loader"),
    ("? [1, 2]\n: x\n", "full loader"),
    ("a: 1\nb: 2\na: 3\n", "full loader"),  # the full loader names the duplicate and its line
])
def test_parsing_from_events_gives_the_same_data_or_leaves_it_to_the_full_loader(text, reader):
    refused = {"a: 1\nb: 2\na: 3\n": "duplicate key 'a'", "? [1, 2]\n: x\n": "a key must be a single value"}
    if text in refused:  # PyYAML keeps the last duplicate and cannot hash a list: ftops refuses both
        with pytest.raises(ConfigError, match=refused[text]) as err:
            _read_like_render(text)
        assert err.value.line is not None
        return
    got, used = _read_like_render(text)
    assert used == reader
    # repr: NaN is not equal to itself, and 1 == 1.0 == True
    assert repr(got) == repr(yaml.load(text, Loader=yaml.CSafeLoader))


def test_several_documents_or_broken_yaml_fail_with_their_line():
    for text in ("a: 1\n---\nb: 2\n", "a: [1, 2\n", "a: b: c\n"):
        with pytest.raises(ConfigError, match="invalid YAML") as err:
            _read_like_render(text)
        assert err.value.line is not None


def test_line_marks_are_worked_out_when_asked_and_match_the_shared_reader(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("name: x\n# a comment\ntags:\n  project: a\nhyperparameters:\n  epochs: 2\n  seed: 1\n")
    parsed = definitions._read(path)
    assert parsed.data == load_yaml(path)[0]
    assert dict(parsed.lines) == load_yaml(path)[1]
    assert parsed.lines[("hyperparameters", "seed")] == 7


def test_a_duplicate_key_is_reported_at_its_line(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("name: x\nhyperparameters:\n  epochs: 2\n  seed: 1\n  epochs: 3\n")
    with pytest.raises(ConfigError) as err:
        definitions._read(path)
    assert (err.value.message, err.value.line, err.value.field) == (
        "duplicate key 'epochs'", 5, "hyperparameters.epochs")


def test_a_secret_in_a_definition_still_names_its_line(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("name: x\ncompute:\n  environment:\n    WANDB_MODE: offline\n    HF_TOKEN: abc\n")
    with pytest.raises(ConfigError) as err:
        definitions._read(path)
    assert (err.value.line, err.value.field) == (5, "compute.environment.HF_TOKEN")


KEY = "sk-abcdefghijklmnopqrstuvwxyz0123"
HF = "hf_" + "a1" * 15


@pytest.mark.parametrize("value", [
    KEY, f"x{KEY}", f"x-{KEY}", f"x\n{KEY}", f"x\u0001{KEY}", f'x"{KEY}', f"x\\{KEY}", f"\u00e9{KEY}",
    f"\u00e9-{KEY}", f"helpdesk-{KEY}", "helpdesk-qwen", HF, f"x{HF}", f"x\n{HF}", HF[:-1], "hf_model_id",
])
def test_rendered_documents_are_cleared_only_when_the_full_scan_finds_nothing(value):
    data = {"Environment": {"NOTE": value}, "hf_model_id": "Qwen/Qwen2.5"}
    full = find_secret(data) or detected_secret(data)  # the shortcut skips only the first, pattern-based scan
    assert rendered_secret(data, orjson.dumps(data, option=orjson.OPT_INDENT_2)) == full
    assert rendered_secret(data, json.dumps(data).encode()) == full


def test_a_key_after_an_escaped_newline_is_found():
    data = {"Environment": {"NOTE": f"line one\n{KEY}"}}
    found = rendered_secret(data, orjson.dumps(data))
    assert found is not None and "openai" in found[1]


@pytest.mark.parametrize("data", [
    {"tags": {"auth": "x"}}, {"tags": {"Auth": "x"}}, {"a": [{"Name": "API_KEY", "Value": "v"}]},
    {"tags": {"project": "x"}}, {"api_token": ""}, {"description": f"x\n{KEY}"}, {"base_model": {"hf_model_id": HF}},
    {"Connection\u212aey": "v"}, {"pa\u017fsword": "v"},  # letters IGNORECASE folds onto ASCII ones
])
def test_definition_scan_finds_what_the_full_scan_finds(data):
    assert first_secret(data) == find_secret(data)


def test_the_anchor_pre_check_agrees_with_its_regex():
    rng = random.Random(7)
    for _ in range(20_000):
        text = "".join(rng.choice("ab1.&* -:\n\"\u00e9") for _ in range(rng.randint(0, 8)))
        assert _may_hold_anchor_or_alias(text) == bool(_ANCHOR_OR_ALIAS.search(text)), text


def test_the_value_patterns_still_match_what_the_fixtures_use():
    assert SECRET_VALUE.search(KEY) and SECRET_VALUE.search(HF)  # else the tests above would prove nothing


def _detect_every_detector(value: str) -> str | None:
    """`secrets._detect` the long way: every detector on every value (no pre-check of their patterns)."""
    from detect_secrets.filters import heuristic

    from jobs.render import secrets

    line = orjson.dumps(value).decode()
    for plugin in secrets._detectors():
        for found in plugin.analyze_line(filename="rendered.json", line=line, line_number=0):
            candidate = found.secret_value or ""
            if heuristic.is_sequential_string(candidate) or heuristic.is_potential_uuid(candidate) or \
                    heuristic.is_templated_secret(candidate):
                continue
            return found.type
    return None


DETECTABLE = [
    "AKIAZ3MSJV4WZQ7XK2PB", "ghp_" + "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dE3fG5", "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc",
    "xoxb-123456789012-abcdefghijklmnop", "SK" + "0123456789abcdef0123456789abcdef", "https://admin:hunter22@db.internal",
    "0123456789abcdef0123456789abcdef-us12", "123456789:" + "AAH9aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1d",
    "-----BEGIN RSA PRIVATE KEY-----", "glpat-" + "aB3dE5gH7jK9mN1pQ3sT", "AccountKey=" + "aB3d" * 22,
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6", "d41d8cd98f00b204e9800998ecf8427e",
]


def test_the_regex_pre_check_gives_what_every_detector_gives():
    from jobs.render import secrets

    assert len(secrets._regex_only()) >= 15  # else the pre-check would skip nothing
    rng = random.Random(11)
    ordinary = ["s3://ftops-dev-output/training-output/helpdesk-qwen-lora-dev-/", "ml.g5.xlarge", "Qwen/Qwen2.5-0.5B",
                "arn:aws:iam::111111111111:role/ftops-dev-training", "loss=([0-9.eE+-]+)", "helpdesk-qwen-lora"]
    ordinary += ["".join(rng.choice("abcdefXYZ0123456789-_:/.=+@") for _ in range(rng.randint(16, 80)))
                 for _ in range(400)]
    found = 0
    for value in DETECTABLE + ordinary:
        expected = _detect_every_detector(value)
        assert secrets._detect.__wrapped__(value) == expected, value
        found += expected is not None
    assert found >= 10  # the samples do reach the detectors


def test_a_found_value_is_named_by_its_first_path():
    data = {"a": ["plain value of some length", {"b": DETECTABLE[0]}], "c": DETECTABLE[2]}
    path, reason = detected_secret(data)
    assert path == "a[1].b" and "detect-secrets finds" in reason
