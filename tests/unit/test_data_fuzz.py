"""Fuzz the validator: random bytes, truncated lines, deep nesting, huge strings. It never raises, never hangs
(hypothesis' deadline), and always reports: each non-blank line is either valid or carries an error."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobs.data.formats import FORMATS
from jobs.data.tokens import resolve
from jobs.data.validate import validate_file

COUNTER, LIMITS = resolve(None, None)
VALID = json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]})

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["messages", "role", "content", "weight", "name", "tool_calls", "input", "text", "label",
                         "prompt", "completion", "type", "function", "x"]), children, max_size=4),
    max_leaves=20)

lines = st.one_of(
    st.binary(max_size=200).map(lambda raw: raw.replace(b"\n", b"")),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.integers(1, len(VALID)).map(lambda cut: VALID[:cut].encode()),
    st.integers(1, 3000).map(lambda depth: b"[" * depth + b"]" * depth),
    st.integers(1, 300).map(lambda depth: (b'{"messages":' + b"[" * depth + b"]" * depth + b"}")),
    st.integers(1, 2_000_000).map(lambda size: json.dumps(
        {"messages": [{"role": "user", "content": "a" * size}, {"role": "assistant", "content": "b"}]}).encode()),
    st.just(VALID.encode()),
)

SETTINGS = settings(max_examples=60, deadline=20_000, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])


@SETTINGS
@given(st.lists(lines, min_size=1, max_size=8), st.sampled_from(FORMATS), st.booleans())
def test_validator_always_reports(tmp_path: Path, content: list[bytes], fmt: str, crlf: bool) -> None:
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes((b"\r\n" if crlf else b"\n").join(content))
    report = validate_file(path, fmt, COUNTER, LIMITS, workers=1, max_reported=1000)
    lines_with_errors = {issue.line for issue in report.errors if issue.line > 0}
    assert report.valid_examples + len(lines_with_errors) == report.examples
    assert report.examples <= len(content)
    assert all(issue.code.startswith("E_") and issue.message for issue in report.errors)

