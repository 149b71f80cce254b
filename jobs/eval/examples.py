"""The examples an evaluation asks about: the prepared test split, or the shipped out-of-domain set.

Each example gets a stable id from its position and its content, so answers stored under that id are reused
on resume only while the example is unchanged.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from jobs import paths
from jobs.errors import ConfigError

# Field names the data stage accepts for classification records (text -> label).
TEXT_KEYS = ("text", "input", "prompt")
LABEL_KEYS = ("label", "category", "output")


@dataclass(frozen=True)
class Example:
    id: str
    """`<line>-<content hash>`: stable while the example is unchanged."""
    messages: tuple[dict[str, str], ...]
    """The prompt: every message before the answer (system and user turns)."""
    expected: str
    """The reference answer (the last assistant message, or the label)."""
    label: str | None = None
    """Classification only: the gold label."""
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    """Other fields of the record (custom metrics receive them)."""

    @property
    def prompt_text(self) -> str:
        """The prompt as plain text, for reports and for models without a chat template."""
        return "\n".join(m["content"] for m in self.messages)


def _content_id(index: int, payload: Any) -> str:
    digest = hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()[:10]
    return f"{index:05d}-{digest}"


def parse_record(record: Any, index: int, source: Path, line: int) -> Example:
    """One JSONL record (chat, completion or classification) as an Example; bad records name file and line."""
    if not isinstance(record, dict):
        raise ConfigError("expected a JSON object", source=source, line=line)
    eid = _content_id(index, record)
    extra = {k: v for k, v in record.items() if k not in ("messages", "prompt", "completion", *TEXT_KEYS, *LABEL_KEYS)}
    if "messages" in record:
        messages = record["messages"]
        if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
            raise ConfigError("messages must be a non-empty list of objects", source=source, line=line, field="messages")
        last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=None)
        if last is None or last == 0:
            raise ConfigError("no assistant answer after the prompt", source=source, line=line, field="messages",
                              hint="test examples need the expected answer as the last assistant message")
        prompt = tuple({"role": str(m["role"]), "content": str(m.get("content") or "")} for m in messages[:last])
        return Example(eid, prompt, str(messages[last].get("content") or ""), extra=extra)
    if "prompt" in record and "completion" in record:
        return Example(eid, ({"role": "user", "content": str(record["prompt"])},), str(record["completion"]), extra=extra)
    text = next((record[k] for k in TEXT_KEYS if k in record), None)
    label = next((record[k] for k in LABEL_KEYS if k in record), None)
    if text is not None and label is not None:
        return Example(eid, ({"role": "user", "content": str(text)},), str(label), label=str(label), extra=extra)
    raise ConfigError("unrecognised record: expected messages, prompt/completion or text/label", source=source,
                      line=line, hint="evaluate the prepared test split written by `ftops data prepare`")


def load_examples(path: Path, limit: int | None = None) -> list[Example]:
    """Read a JSONL file of examples (blank lines skipped)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError("test split not found", source=path, hint="run `ftops data prepare` first") from None
    examples: list[Example] = []
    for line_no, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise ConfigError(f"invalid JSON: {exc}", source=path, line=line_no) from None
        examples.append(parse_record(record, len(examples), path, line_no))
        if limit is not None and len(examples) >= limit:
            break
    if not examples:
        raise ConfigError("no examples", source=path, hint="the test split is empty; prepare with a test fraction > 0")
    return examples


def load_test_split(prepared_dir: Path, limit: int | None = None) -> tuple[list[Example], Any]:
    """The test split named by the manifest in `prepared_dir` (never the train or validation files)."""
    from jobs.data.manifest import read_manifest

    manifest = read_manifest(prepared_dir)
    directory = prepared_dir if prepared_dir.is_dir() else prepared_dir.parent
    if "test" not in manifest.files or manifest.files["test"].examples == 0:
        raise ConfigError("the prepared dataset has no test split", source=directory / "manifest.json",
                          field="files.test", hint="prepare again with a test fraction above 0")
    return load_examples(directory / manifest.files["test"].path, limit), manifest


def out_of_domain_file() -> Path:
    return paths.project_root() / "datasets" / "out-of-domain" / "general.jsonl"


def load_out_of_domain(limit: int | None = None) -> list[Example]:
    """The small shipped out-of-domain set (general questions a helpdesk model should still answer)."""
    return load_examples(out_of_domain_file(), limit)
