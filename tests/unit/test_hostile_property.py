"""Property: whatever YAML an environment file or a job definition holds (aliases, tags, deep nesting, huge
scalars, odd Unicode), loading it gives a valid model or one FtopsError of one line, within a time and memory
budget: never a traceback, a hang or a blow-up."""

from __future__ import annotations

import json
import time
import tracemalloc
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobs.config.environment import load_environment
from jobs.errors import FtopsError
from jobs.render import definitions

TIME_BUDGET_S = 3.0
MEMORY_BUDGET = 64 << 20

TAGS = ["!!python/name:os.system", "!!python/object/apply:os.system", "!!binary", "!!set", "!custom", "!!str",
        "!!int", "!!float", "!!map", "!!seq", "!", "!!timestamp"]
ODD_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)  # no lone surrogates: not UTF-8


def scalars(anchors: int) -> st.SearchStrategy[str]:
    return st.one_of(
        st.integers(1, 6000).map(lambda n: "9" * n),                              # huge integers
        st.sampled_from(["1e999", "-.inf", ".nan", "0x1F", "0o17", "1_000", "2024-13-45", "2024-01-01", "~", "yes",
                         "<<", "=", "'", '"', "-", "?", "&", "*"]),
        ODD_TEXT.map(lambda t: json.dumps(t, ensure_ascii=False)),               # odd Unicode, quoted
        ODD_TEXT.map(lambda t: json.dumps(t)),                                   # \\u escapes
        st.integers(1, 50_000).map(lambda n: '"' + "x" * n + '"'),              # big scalars
        st.tuples(st.sampled_from(TAGS), st.sampled_from(["x", "1", "aGk=", "[]", "{}"])).map(" ".join),
        st.integers(0, max(anchors, 1)).map(lambda i: f"*a{i}"),                # aliases, defined or not
    )


def fragments() -> st.SearchStrategy[str]:
    def containers(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        anchored = st.tuples(st.one_of(st.none(), st.integers(0, 4)), st.lists(children, max_size=6))
        seq = anchored.map(lambda a: (f"&a{a[0]} " if a[0] is not None else "") + "[" + ", ".join(a[1]) + "]")
        mapping = anchored.map(lambda a: (f"&a{a[0]} " if a[0] is not None else "") + "{"
                               + ", ".join(f"k{i}: {v}" for i, v in enumerate(a[1])) + "}")
        merge = st.lists(st.integers(0, 4), min_size=1, max_size=9).map(
            lambda ids: "{<<: [" + ", ".join(f"*a{i}" for i in ids) + "]}")
        return st.one_of(seq, mapping, merge)

    return st.recursive(scalars(4), containers, max_leaves=30)


# Alias bombs of any width and depth (the 381-byte case is 9 x 9).
BOMBS = st.tuples(st.integers(1, 12), st.integers(1, 12)).map(
    lambda wd: "a0: &a0 [" + ", ".join(['"lol"'] * wd[0]) + "]\n" + "".join(
        f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * wd[0]) + "]\n" for level in range(1, wd[1] + 1)))
DEEP = st.integers(1, 400).map(lambda n: "name: x\nowner: " + "[" * n + "]" * n + "\n")


def documents(base: str, field_line: str) -> st.SearchStrategy[str]:
    """A real file with one value replaced by a fragment, a fragment appended as an unknown key, or junk."""
    return st.one_of(
        fragments().map(lambda f: base.replace(field_line, field_line.split(":")[0] + ": " + f, 1)),
        fragments().map(lambda f: base + "extra: " + f + "\n"),
        fragments().map(lambda f: "anchors: " + f + "\n" + base),
        BOMBS, DEEP, fragments(),
    )


def _check(load) -> None:
    tracemalloc.start()
    started = time.monotonic()
    try:
        load()
    except FtopsError as err:
        assert "\n" not in str(err), str(err)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    elapsed = time.monotonic() - started
    assert elapsed < TIME_BUDGET_S and peak < MEMORY_BUDGET, (elapsed, peak)


PROPERTY = settings(max_examples=40, deadline=timedelta(seconds=TIME_BUDGET_S * 2), derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])


@pytest.fixture
def warm(project):
    """Load the real files once: first imports under tracemalloc are slow and would count against the budget."""
    load_environment("dev")
    for path in definitions.definition_files():
        definitions.load_variants(path, "local")
    hostile = project.root / "definitions" / "hostile.yaml"
    hostile.write_text("name: [1\n")
    with pytest.raises(FtopsError):
        definitions.load_variants(hostile, "local")
    return project


@pytest.fixture
def dev_file(warm):
    path = warm.root / "environments" / "dev.yaml"
    return path, path.read_text()


@PROPERTY
@given(data=st.data())
def test_environment_loader_gives_a_model_or_one_line(dev_file, data):
    path, base = dev_file
    text = data.draw(documents(base, "owner: platform-team"))
    path.write_text(text, encoding="utf-8")
    load_environment.cache_clear()
    _check(lambda: load_environment("dev"))


@PROPERTY
@given(data=st.data())
def test_definition_loader_gives_variants_or_one_line(warm, data):
    project = warm
    path = project.root / "definitions" / "helpdesk-qwen-lora.yaml"
    base = path.read_text()
    text = data.draw(documents(base, "description:" if "description:" in base else "name:"))
    target = project.root / "definitions" / "hostile.yaml"
    target.write_text(text, encoding="utf-8")
    definitions.clear_cache()
    _check(lambda: definitions.load_variants(target, "local"))
