"""Hostile input, YAML (issue 17, "Crashes and hangs"): environment files and job definitions get one line, with
file and line, never a traceback, a hang or a memory blow-up."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from jobs.config.environment import load_environment
from jobs.errors import ConfigError
from jobs.render import definitions
from jobs.render.engine import render_environment

# 381 bytes: nine levels of nine aliases expand to 9**9 (387 million) strings.
ALIAS_BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""
MERGE_BOMB = "a: &a {k0: 1, k1: 1, k2: 1, k3: 1, k4: 1, k5: 1, k6: 1, k7: 1, k8: 1}\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} {{<<: [{', '.join(['*' + chr(97 + i)] * 9)}]}}\n" for i in range(8))

CASES = {
    "alias bomb": (ALIAS_BOMB, "expands to more than"),
    "merge-key bomb": (MERGE_BOMB, "expands to more than|duplicate key"),
    "recursive alias": ("name: x\nloop: &l [1, *l]\n", "recursive alias"),
    "recursive mapping alias": ("name: x\nloop: &l {self: *l}\n", "recursive alias"),
    "python tag": ("name: !!python/name:os.system x\n", r"tag !!python/name:os.system is not allowed"),
    "python object": ("name: x\nowner: !!python/object/apply:os.system ['id']\n", "tag .* is not allowed"),
    "custom tag": ("name: x\nowner: !vault secret/path\n", "tag !vault is not allowed"),
    "5,000-digit integer": ("name: x\nowner: " + "9" * 5000 + "\n", "5000 characters is too large"),
    "deep nesting": ("name: x\nowner: " + "[" * 200 + "]" * 200 + "\n", "nested more than"),
    "bad timestamp": ("name: x\nowner: 2024-13-45\n", "month must be in"),
    "control character": ("name: x\nowner: \x07\n", "invalid YAML"),
}


def _assert_one_line(err: ConfigError, path) -> None:
    text = str(err)
    assert "\n" not in text and str(path) in text
    assert err.line is not None or "invalid YAML" in text


def _assert_refused_quickly_in_one_line(load, message: str, path) -> None:
    """`load` raises a one-line ConfigError matching `message`, within 5 s and 64 MiB (no YAML bomb expands)."""
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(ConfigError, match=message) as err:
            load()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 5 and peak < 64 << 20, (time.monotonic() - started, peak)
    _assert_one_line(err.value, path)


@pytest.mark.parametrize("case", sorted(CASES))
def test_environment_file_refuses_hostile_yaml_in_one_line(project, case):
    text, message = CASES[case]
    path = project.root / "environments" / "dev.yaml"
    path.write_text(text)
    load_environment.cache_clear()
    _assert_refused_quickly_in_one_line(lambda: load_environment("dev"), message, path)


@pytest.mark.parametrize("case", sorted(CASES))
def test_definition_refuses_hostile_yaml_in_one_line(project, case):
    text, message = CASES[case]
    path = project.root / "definitions" / "x.yaml"
    path.write_text(text)
    definitions.clear_cache()
    _assert_refused_quickly_in_one_line(lambda: definitions.load_variants(path, "local"), message, path)


def test_oversized_and_special_files_are_refused_before_reading(project, tmp_path):
    import os

    path = project.root / "definitions" / "big.yaml"
    path.write_text("name: big\ndescription: " + "x" * (2 << 20) + "\n")
    with pytest.raises(ConfigError, match="larger than 1 MiB"):
        definitions.load_variants(path, "local")
    env = project.root / "environments" / "dev.yaml"
    env.unlink()
    os.mkfifo(env)
    load_environment.cache_clear()
    with pytest.raises(ConfigError, match="unknown environment|FIFO"):  # never opened: no hang
        load_environment("dev")


def test_a_million_combination_grid_is_refused_before_it_is_expanded(project):
    data = project.definition("helpdesk-qwen-lora")
    data.pop("sweep", None)
    # 10 x 10 x 10 x 10 x 10 x 10 = 1,000,000 combinations of six sweepable hyperparameters
    from jobs.config.job import SWEEPABLE

    keys = list(SWEEPABLE)[:6]
    assert len(keys) == 6
    data["sweep"] = {"grid": {key: [round(0.0001 * (i + 1), 6) if "rate" in key else i + 1 for i in range(10)]
                              for key in keys}}
    path = project.write_definition(data)
    definitions.clear_cache()
    started = time.monotonic()
    with pytest.raises(ConfigError, match="1,000,000 combinations") as err:
        render_environment(load_environment("local"), "helpdesk-qwen-lora")
    assert time.monotonic() - started < 10
    assert err.value.line is not None and "sweep" in (err.value.field or ""), str(err.value)
    assert str(path.name) in str(err.value)


def test_merge_keys_override_as_yaml_says_and_a_key_written_twice_is_still_refused(tmp_path):
    from jobs.yamlio import parse_text

    data, _ = parse_text("a: &x {k: 1, j: 0}\nb: {<<: *x, k: 2}\n", tmp_path / "f.yaml")
    assert data["b"] == {"k": 2, "j": 0}  # was "duplicate key 'k'"
    with pytest.raises(ConfigError, match="duplicate key 'k'") as err:
        parse_text("a: &x {k: 1}\nb: {<<: *x, k: 2, k: 3}\n", tmp_path / "f.yaml")
    assert err.value.line == 2
