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
    assert rendered_secret(data) == find_secret(data) or detected_secret(data)


def test_a_key_after_an_escaped_newline_is_found():
    data = {"Environment": {"NOTE": f"line one\n{KEY}"}}
    found = rendered_secret(data)
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


def _full_scan(data, generated=()):
    """What `rendered_secret` must answer, the long way: every rule on every string, no judgement remembered."""
    from jobs.render import secrets

    hashes = sorted((g for g in generated if g), key=len, reverse=True)
    found = find_secret(data)
    if found:
        return found
    for path, value in secrets._strings(data, ""):
        if len(value) >= secrets.MIN_DETECTED_LENGTH:
            kind = _detect_every_detector(secrets._without(value, hashes))
            if kind:
                return path, f"detect-secrets finds a {kind}"
    return None


def test_judging_each_string_once_per_process_gives_the_full_scans_answer_document_after_document():
    """Documents share strings, a hash of one job is an ordinary substring in another, and names, values and
    Key/Value pairs turn up anywhere: the remembered judgements never change an answer."""
    from jobs.render import secrets

    rng = random.Random(5)
    hashes = ["".join(rng.choice("0123456789abcdef") for _ in range(64)) for _ in range(6)]
    pool = ["s3://bucket/training-output/", "ml.g5.xlarge", "Qwen/Qwen2.5-0.5B", "helpdesk-qwen", "", "x",
            "loss=([0-9.eE+-]+)", "arn:aws:iam::111111111111:role/ftops-dev-training", KEY, HF, "auth", "api_token",
            *DETECTABLE, *[f"s3://b/out/job-{h[:8]}/" for h in hashes], *[f"datasets/{h}/train/" for h in hashes],
            *[f"AKIA{h[:8]}Z3MSJV4WZQ7XK2PB"[:28] for h in hashes], "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5",
            "aB3dE5gH7jK9mN1pQ3sT5vW", "aB3dE5gH7jK9mN1pQ3sT5v", "0123abcdef", "9f8e7d6c", "'9f8e7d6c5b'"]
    keys = ["Environment", "NOTE", "Tags", "password", "HF_TOKEN", "ftops_token", "Key", "Value", "Name", "S3Uri"]

    def value(depth):
        roll = rng.random()
        if depth < 3 and roll < 0.25:
            return {rng.choice(keys): value(depth + 1) for _ in range(rng.randint(0, 4))}
        if depth < 3 and roll < 0.4:
            return [value(depth + 1) for _ in range(rng.randint(0, 3))]
        if roll < 0.45:
            return {"Key": rng.choice(keys + pool), "Value": rng.choice(pool)}
        return rng.choice(pool) if roll < 0.95 else rng.choice([1, 2.5, True, None])

    secrets.clear_cache()
    outcomes = set()
    for _ in range(1500):
        data = {"Request": value(0), "Tags": [value(2) for _ in range(rng.randint(0, 3))]}
        job = rng.choice(hashes)
        generated = (job, job[:8], rng.choice(hashes))
        expected = _full_scan(data, generated)
        assert rendered_secret(data, generated) == expected, (data, generated)
        assert first_secret(data) == find_secret(data), data  # a definition's check shares the judgements
        outcomes.add(None if expected is None else expected[1].split(" ")[0])
    assert {None, "detect-secrets"} <= outcomes and len(outcomes) >= 4  # clean, detected, named, value patterns


def test_judging_a_batch_of_documents_at_once_gives_each_documents_full_scan():
    """A render judges all its jobs' documents together (`rendered_secrets`); each still gets the answer of
    its own full scan, with judgements remembered from earlier batches or not, and secrets anywhere in a batch."""
    from jobs.render import secrets

    rng = random.Random(11)
    hashes = ["".join(rng.choice("0123456789abcdef") for _ in range(64)) for _ in range(5)]
    pool = ["s3://bucket/training-output/", "ml.g5.xlarge", "helpdesk-qwen", "", "loss=([0-9.eE+-]+)", KEY, HF,
            *DETECTABLE, *[f"s3://b/out/job-{h[:8]}/" for h in hashes], *[f"datasets/{h}/train/" for h in hashes],
            "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5", "aB3dE5gH7jK9mN1pQ3sT5vW", "0123abcdef", "9f8e7d6c"]
    pool += [f"plain value number {i} of some length" for i in range(40)]
    # What the line reader of indented JSON must take apart: quotes, escapes, ": " and non-ASCII within strings.
    pool += ['a "quoted": value with \\ backslash', 'ends like a key": ', "ünïcödé ☃ value long enough",
             "tab\tand\nnewline inside", '"', "\\", 'quoted "' + DETECTABLE[12] + '" in a value']
    keys = ["Environment", "NOTE", "password", "HF_TOKEN", "Key", "Value", "S3Uri", "ftops_token", 'odd "key": x']
    secrets.clear_cache()
    outcomes = []
    for _ in range(300):
        items = []
        for _ in range(rng.randint(1, 8)):
            nested = [rng.choice(pool), {rng.choice(keys): rng.choice(pool)}]
            data = {rng.choice(keys): rng.choice([rng.choice(pool), nested]) for _ in range(rng.randint(1, 5))}
            if rng.random() < 0.7:  # most documents of a render hold no secret
                data = {k: v for k, v in data.items() if k not in ("password", "HF_TOKEN") and not any(
                        secret in json.dumps(v, ensure_ascii=False) for secret in (*DETECTABLE, KEY, HF, "password"))}
            job = rng.choice(hashes)
            # The render passes its JSON documents as written (indented, keys sorted); other data goes alone.
            canonical = orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
            items.append((data, (job, job[:8]), canonical if rng.random() < 0.6 else None))
        expected = [_full_scan(data, generated) for data, generated, _ in items]
        assert secrets.rendered_secrets(items) == expected, items
        outcomes.append(any(expected))
        if rng.random() < 0.2:
            secrets.clear_cache()
    assert 30 < sum(outcomes) < 270  # batches with and without a secret


def test_the_strings_read_from_indented_json_lines_are_the_strings_of_the_document():
    """A render's JSON documents are judged from the distinct lines of their canonical text: every key and
    value must come back unescaped, and only values (never keys) count as long values for the detectors."""
    from jobs.render import secrets

    rng = random.Random(3)
    tricky = ['a "quoted": value', "back\\slash", "tab\tnew\nline", "ünïcödé ☃ and 🙂", '": ', '"', "\\",
              "\x00ctl", "x" * secrets.MIN_DETECTED_LENGTH, "short", "", "a/b/c/d/e/f/g/h/i/j", "\u2028 separator"]

    def value(depth):
        roll = rng.random()
        if depth < 4 and roll < 0.3:
            return {rng.choice(tricky) + str(rng.randint(0, 3)): value(depth + 1) for _ in range(rng.randint(0, 4))}
        if depth < 4 and roll < 0.5:
            return [value(depth + 1) for _ in range(rng.randint(0, 3))]
        return rng.choice(tricky) if roll < 0.9 else rng.choice([1, -2.5, True, False, None])

    for _ in range(300):
        data = value(0)
        text = orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
        strings, long_values = set(), set()
        for line in set(text.split(b"\n")):
            found, long = secrets._line_strings(line)
            strings.update(found)
            long_values.update(long)
        assert (strings, long_values) == secrets._gather(data), data


def test_the_values_to_look_at_hold_every_value_a_detector_finds():
    """`_to_look_at` narrows a batch's values to those `_detect` must judge in one pass: it never leaves out
    one a detector finds, wherever it stands among the others, and it leaves out ordinary ones."""
    from jobs.render import secrets

    rng = random.Random(23)
    alphabet = "abcdefXYZ0123456789-_:/.=+@ '\"\n\u00e9\u212a"
    noise = ["".join(rng.choice(alphabet) for _ in range(rng.randint(16, 60))) for _ in range(300)]
    ordinary = ["s3://ftops-dev-output/training-output/helpdesk-qwen-lora-dev-/", "ml.g5.xlarge",
                "arn:aws:iam::111111111111:role/ftops-dev-training", "definitions/helpdesk-qwen-lora.yaml"]
    left_out = 0
    for _ in range(400):
        batch = rng.sample(ordinary + noise, rng.randint(1, 30))
        for _ in range(rng.randint(0, 3)):
            batch.insert(rng.randrange(len(batch) + 1), rng.choice(DETECTABLE))
        looked_at = secrets._to_look_at(batch)
        assert [v for v in batch if _detect_every_detector(v)] == [v for v in looked_at if _detect_every_detector(v)]
        left_out += len(batch) - len(looked_at)
    assert left_out > 2000


def test_the_entropy_length_bound_never_skips_what_the_detector_finds():
    from jobs.render import secrets

    bounds = secrets._entropy_bounds()
    assert sorted(longest for _, longest in bounds.values()) == [7, 22]  # hex 3.0, base64 4.5
    rng = random.Random(3)
    samples = []
    for length in range(1, 30):
        for charset in ("0123456789abcdef", "0123456789abcdefABCDEF",
                        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"):
            samples += [charset[:length] * 2, "".join(rng.sample(charset * 2, length))]
    checked = 0
    for sample in samples:
        for value in (sample, f"x '{sample}' y", f'a"{sample}"b'):
            assert secrets._detect.__wrapped__(value) == _detect_every_detector(value), value
            checked += _detect_every_detector(value) is not None
    assert checked > 20  # samples near and over the bound are found


def test_the_pre_check_of_many_values_at_once_never_clears_a_value_a_detector_finds():
    from jobs.render import secrets

    rng = random.Random(13)
    ordinary = ["s3://ftops-dev-output/training-output/helpdesk-qwen-lora-dev-/", "ml.g5.xlarge", "Qwen/Qwen2.5-0.5B",
                "arn:aws:iam::111111111111:role/ftops-dev-training", "ftops-metrics .*\\bloss=([0-9.eE+-]+)",
                "definitions/helpdesk-qwen-lora.yaml", "line one\nline two", 'say "hi"',
                "cloudant_pa\u017fsword='" + "b" * 64 + "'", "IBM_CLOUD_IAM_\u212aEY='" + "a" * 44 + "'"]
    alphabet = "abcdefXYZ0123456789-_:/.=+@ '\"\n\u00e9\u212a"
    noise = ["".join(rng.choice(alphabet) for _ in range(rng.randint(16, 60))) for _ in range(300)]
    cleared = 0
    for _ in range(600):
        batch = rng.sample(ordinary + noise, rng.randint(1, 6))
        if rng.random() < 0.3:
            batch.insert(rng.randrange(len(batch) + 1), rng.choice(DETECTABLE))
        if not secrets._may_detect_any(batch):
            assert not any(_detect_every_detector(value) for value in batch), batch
            cleared += 1
    assert cleared > 100  # it does clear ordinary values
    assert not secrets._may_detect_any([])
    assert all(secrets._may_detect_any(["plain value of some length", value]) for value in DETECTABLE)


def test_every_match_of_a_detector_pattern_holds_what_the_pre_check_requires():
    from jobs.render import secrets

    needs = secrets._pattern_needs()
    assert len(needs) >= 35  # most patterns are pre-checked, else the pre-check saves nothing
    rng = random.Random(17)
    samples = DETECTABLE + ["IBM_CLOUD_IAM_KEY='" + "a" * 44 + "'", "cloudant_password='" + "b" * 64 + "'",
                            "softlayer_api_key = '" + "c" * 64 + "'", "ibm_cos_hmac_secret='" + "d" * 48 + "'"]
    samples += ["".join(rng.choice("abcKLMxyz019-_:/.=@'\" ") for _ in range(rng.randint(5, 60))) for _ in range(2000)]
    matched = 0
    for pattern, (strings, ignore_case) in needs.items():
        for sample in samples:
            if pattern.search(sample):
                matched += 1
                text = sample.lower() if ignore_case else sample
                assert any(s in text for s in strings), (pattern.pattern, sample)
    assert matched >= 12


def test_a_found_value_is_named_by_its_first_path():
    data = {"a": ["plain value of some length", {"b": DETECTABLE[0]}], "c": DETECTABLE[2]}
    path, reason = detected_secret(data)
    assert path == "a[1].b" and "detect-secrets finds" in reason


def test_dropping_blank_lines_gives_what_splitting_into_lines_gives():
    """Rendered YAML loses its blank lines: text with none is recognised by substring checks, so the answer
    must equal the line-by-line filter for any text, whitespace and line breaks of every kind included."""
    from jobs.render.engine import _without_blank_lines

    rng = random.Random(7)
    alphabet = "ab :\n\n  \t\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\u2028\u00a0\u00e9"
    for _ in range(50_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        assert _without_blank_lines(text) == "\n".join(filter(str.strip, text.splitlines())) + "\n", repr(text)
