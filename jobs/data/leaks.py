"""Prompt identity across splits: the same prompt in train and in test lets an evaluation ask what the model was
trained on. A prompt is everything the model is shown before the answer it learns, as prepare writes it (cleaned,
only the format's keys): for chat, the messages before the final assistant turn (and the tools); for preference,
the input; for completion, the prompt; for classification, the text."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from jobs.data.formats import canonical, detect
from jobs.data.manifest import DatasetFormat
from jobs.errors import FtopsError
from jobs.fsutil import regular_file

MAX_LISTED = 20


def prompt_key(example: dict, fmt: DatasetFormat) -> bytes:
    """A 16-byte digest of the prompt of a cleaned (canonical) example."""
    if fmt == "chat":
        messages = example.get("messages") or []
        last = max((i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "assistant"),
                   default=len(messages))
        # `weight` says whether an earlier assistant turn is trained on; the model is shown the same prompt
        shown = [{k: v for k, v in m.items() if k != "weight"} if isinstance(m, dict) else m
                 for m in messages[:last]]
        prompt: object = {"messages": shown, **{k: example[k] for k in ("tools", "functions") if k in example}}
    elif fmt == "preference":
        prompt = example.get("input")
    elif fmt == "completion":
        prompt = example.get("prompt")
    else:
        prompt = example.get("text")
    return hashlib.blake2b(orjson.dumps(prompt, option=orjson.OPT_SORT_KEYS), digest_size=16).digest()


def _prompts(path: Path, fmt: DatasetFormat | None) -> tuple[DatasetFormat | None, list[tuple[int, bytes]]]:
    """(format, [(line, prompt key)]) of every parseable example of a JSONL file (invalid lines are skipped:
    `validate` reports them)."""
    from jobs.data.validate import TOO_LONG, iter_lines, parse_line

    regular_file(path, what="JSONL dataset")
    found: list[tuple[int, bytes]] = []
    with open(path, "rb") as handle:
        for number, line in enumerate(iter_lines(handle, 0, path.stat().st_size), start=1):
            if line is TOO_LONG or not line.strip():
                continue
            obj, problem = parse_line(line)
            if problem:
                continue
            fmt = fmt or detect(obj)
            if fmt is None or not isinstance(obj, dict):
                continue
            try:
                found.append((number, prompt_key(canonical(obj, fmt), fmt)))
            except (orjson.JSONEncodeError, RecursionError):  # nested too deeply: prepare drops it too
                continue
    return fmt, found


def _check_train_file(path: Path, train: Path, fmt: DatasetFormat) -> None:
    from jobs.data.validate import sniff_format

    hint = f"give the training file the examples of {path.name} were split from, e.g. the train.jsonl beside it"
    try:
        train_format = sniff_format(regular_file(train, what="training file"))
    except FtopsError as exc:  # empty, compressed, not JSON Lines, no known format: with its code, under the option
        code = f"{exc.field}: " if exc.field and exc.field.startswith("E_") else ""
        raise FtopsError(code + exc.message, source=train, line=exc.line, field="--against-train",
                         hint=hint if code.startswith("E_TOO_FEW") or not exc.hint else exc.hint) from None
    if train_format != fmt:
        raise FtopsError(f"the training file is {train_format} data and {path.name} is {fmt}: their prompts cannot "
                         "be compared", source=train, field="--against-train", hint=hint)


@dataclass
class Overlap:
    file: str
    train: str
    examples: int = 0
    """Examples of `file` whose prompt is also in the train file."""
    lines: list[tuple[int, int]] = field(default_factory=list)
    """(line in file, first line in train) of the first MAX_LISTED of them."""

    def as_dict(self) -> dict:
        return {"train": self.train, "overlapping_examples": self.examples,
                "lines": [{"line": line, "train_line": train} for line, train in self.lines]}


def prompt_overlap(path: Path, train: Path, fmt: DatasetFormat | None = None) -> Overlap:
    """Which examples of `path` repeat a prompt of `train` (for a test or validation split, or an eval set).
    A train file with no examples, or of another format than `path`, is refused: either reported "0 examples
    share a prompt" and passed."""
    from jobs.data.validate import sniff_format

    fmt = fmt or sniff_format(regular_file(path, what="JSONL dataset"))
    _check_train_file(path, train, fmt)
    fmt, train_prompts = _prompts(train, fmt)
    first_in_train: dict[bytes, int] = {}
    for line, key in train_prompts:
        first_in_train.setdefault(key, line)
    report = Overlap(file=path.name, train=train.name)
    for line, key in _prompts(path, fmt)[1]:
        if key in first_in_train:
            report.examples += 1
            if len(report.lines) < MAX_LISTED:
                report.lines.append((line, first_in_train[key]))
    return report
