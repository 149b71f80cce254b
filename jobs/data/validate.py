"""The streaming validator: byte-range chunks of the file, checked and tokenized on every core, merged in order.

The file is never loaded whole: a worker reads one chunk (at most 8 MiB) and tokenizes 512 examples at a time.
What grows with the file is only per-example bookkeeping in the parent, about 150 bytes per valid example (token
counts for the distributions, a 16-byte digest and the first line number for exact duplicate detection), and
at most `max_reported` errors and warnings (every one is still counted by code).
"""

from __future__ import annotations

import hashlib
import math
import multiprocessing
import os
import re
from array import array
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from jobs.data.formats import FORMATS, TOP_KEYS, Analysis, analyze, detect, is_clean
from jobs.data.formats import canonical as canonical_example
from jobs.data.manifest import DatasetFormat
from jobs.data.tokens import ModelLimits, TokenCounter
from jobs.errors import FtopsError
from jobs.fsutil import regular_file

BOM = b"\xef\xbb\xbf"
BLOCK = 4 << 20
MAX_LINE_BYTES = 2 << 20
"""Longer lines are reported, not parsed or tokenized (a 30 MB line took 1.6 GB to tokenize before its token count
rejected it). 2 MiB is 32 bytes per token at 65,536 tokens, the largest per-example limit in models.yaml: several
times what text averages (about 4 bytes per token in English, under 12 for JSON-escaped CJK)."""
NEAR_LIMIT = 0.9
TOO_LONG = object()
DETECT_LINES = 1000
TOKENIZE_BATCH = 512


@dataclass(frozen=True)
class Settings:
    """Everything a worker needs besides its byte range (inherited on fork, pickled otherwise)."""

    format: DatasetFormat
    limits: ModelLimits
    max_length: int | None
    """Training truncation length (e.g. SageMaker SFT max_length, or an encoder's 512)."""
    max_reported: int


@dataclass
class Issue:
    line: int
    code: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "code": self.code, "message": self.message}


@dataclass
class ChunkResult:
    """One chunk's findings; lines are relative to the chunk (0-based) until merged."""

    lines: int = 0
    errors: list[tuple[int, str, str]] = field(default_factory=list)
    warnings: list[tuple[int, str, str]] = field(default_factory=list)
    error_counts: Counter = field(default_factory=Counter)
    warning_counts: Counter = field(default_factory=Counter)
    examples: int = 0
    valid_lines: array = field(default_factory=lambda: array("q"))
    digests: list[bytes] = field(default_factory=list)
    totals: array = field(default_factory=lambda: array("q"))
    trained: array = field(default_factory=lambda: array("q"))
    messages: array = field(default_factory=lambda: array("q"))
    labels: Counter = field(default_factory=Counter)
    extra_keys: set[str] = field(default_factory=set)

    def error(self, line: int, code: str, message: str, cap: int) -> None:
        self.error_counts[code] += 1
        if len(self.errors) < cap:
            self.errors.append((line, code, message))

    def warning(self, line: int, code: str, message: str, cap: int) -> None:
        self.warning_counts[code] += 1
        if len(self.warnings) < cap:
            self.warnings.append((line, code, message))


def digest(obj: dict, fmt: DatasetFormat, raw: bytes) -> bytes:
    """16-byte blake2b of the normalised example (the format's keys, cleaned strings, sorted keys), so that
    reordered keys or stray whitespace still match, and validate and `prepare --dedupe` agree."""
    keys = TOP_KEYS[fmt]
    example = obj if keys.issuperset(obj) else {key: value for key, value in obj.items() if key in keys}
    # Most examples are clean already: checking that costs a fraction of building the cleaned copy.
    if not is_clean(example):
        example = canonical_example(obj, fmt)
    try:
        canonical = orjson.dumps(example, option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONEncodeError, RecursionError):
        canonical = raw  # nesting deeper than orjson writes: compare the raw bytes instead
    return hashlib.blake2b(canonical, digest_size=16).digest()


def parse_line(line: bytes) -> tuple[Any, tuple[str, str] | None]:
    """(object, None) or (None, (code, message)) for one line without its newline."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as bad:
            return None, ("E_NOT_UTF8", f"byte 0x{line[bad.start]:02x} at column {bad.start + 1} is not UTF-8; "
                                        "re-save the file as UTF-8")
        reason = str(exc).split(": line 1 column")[0]
        return None, ("E_INVALID_JSON", f"not valid JSON ({reason}); write each example as one complete JSON "
                                        "object on one line")
    if not isinstance(obj, dict):
        kind = {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(
            type(obj), "null")
        return None, ("E_NOT_OBJECT", f"the line is {kind}, not a JSON object; each line must be one example object")
    return obj, None


def iter_lines(handle: IO[bytes], start: int, end: int) -> Iterator[bytes | object]:
    """The lines in [start, end) without their line ends; TOO_LONG stands in for a line over MAX_LINE_BYTES."""
    handle.seek(start)
    remaining = end - start
    tail = b""
    skipping = False
    first = start == 0
    while remaining > 0:
        block = handle.read(min(BLOCK, remaining))
        if not block:
            break
        remaining -= len(block)
        if first:
            block = block.removeprefix(BOM)
            first = False
        parts = block.split(b"\n")
        if skipping:
            if len(parts) == 1:
                continue
            skipping = False
            parts[0] = b""
            tail = parts.pop()
            yield from (p.removesuffix(b"\r") for p in parts[1:])
        else:
            parts[0] = tail + parts[0]
            tail = parts.pop()
            for part in parts:
                yield part.removesuffix(b"\r")
        if len(tail) > MAX_LINE_BYTES:
            yield TOO_LONG
            tail = b""
            skipping = True
    if tail and not skipping:
        yield tail.removesuffix(b"\r")


_worker: tuple[Path, Settings, TokenCounter] | None = None


def _init_worker(path: Path, settings: Settings, counter: TokenCounter) -> None:
    global _worker
    _worker = (path, settings, counter)


def _run_chunk(bounds: tuple[int, int]) -> ChunkResult:
    assert _worker is not None
    path, settings, counter = _worker
    with open(path, "rb") as handle:
        return check_chunk(handle, bounds[0], bounds[1], settings, counter)


def check_chunk(handle: IO[bytes], start: int, end: int, settings: Settings, counter: TokenCounter) -> ChunkResult:
    result = ChunkResult()
    cap = settings.max_reported
    batch: list[tuple[int, Analysis, bytes]] = []
    fmt = settings.format
    index = -1
    for index, line in enumerate(iter_lines(handle, start, end)):
        if line is TOO_LONG:
            result.examples += 1
            result.error(index, "E_LINE_TOO_LONG", f"the line is over {MAX_LINE_BYTES >> 20} MiB; split it into "
                                                   "examples of one line each (is the file JSONL?)", cap)
            continue
        if not line or line.isspace():  # `not line.strip()` without copying the line
            result.warning(index, "W_BLANK_LINE", "blank line; remove it (prepare does)", cap)
            continue
        result.examples += 1
        obj, problem = parse_line(line)
        if problem:
            result.error(index, *problem, cap)
            continue
        analysis = analyze(obj, fmt)
        if analysis.errors:
            for code, message in analysis.errors:
                result.error(index, code, message, cap)
        for code, message in analysis.warnings:
            if code == "W_EXTRA_KEY":  # reported once per key and file, not on every line
                if message in result.extra_keys:
                    continue
                result.extra_keys.add(message)
            result.warning(index, code, message, cap)
        if analysis.errors:
            continue
        batch.append((index, analysis, digest(obj, fmt, line)))
        if len(batch) >= TOKENIZE_BATCH:  # bounded: parsed examples are freed once counted
            _count(batch, result, settings, counter)
            batch = []
    if batch:
        _count(batch, result, settings, counter)
    result.lines = index + 1
    return result


def _count(batch: list[tuple[int, Analysis, bytes]], result: ChunkResult, settings: Settings,
           counter: TokenCounter) -> None:
    cap = settings.max_reported
    limit = settings.limits.max_example_tokens
    max_length = settings.max_length
    counts = counter.count([analysis for _, analysis, _ in batch])
    valid_lines, digests, totals = result.valid_lines.append, result.digests.append, result.totals.append
    trained_counts, messages, labels = result.trained.append, result.messages.append, result.labels
    for (index, analysis, key), (total, trained) in zip(batch, counts):
        if limit is not None and total > limit:
            result.error(index, "E_TOO_MANY_TOKENS", f"{total} tokens, over the model's limit of {limit} per "
                                                     "example; shorten it or split the conversation", cap)
            continue
        if limit is not None and total >= NEAR_LIMIT * limit:
            result.warning(index, "W_NEAR_LIMIT", f"{total} tokens, {total / limit:.0%} of the {limit}-token limit",
                           cap)
        if max_length is not None and total > max_length:
            if settings.format == "classification":
                result.warning(index, "W_TEXT_TRUNCATED", f"{total} tokens; the model reads only the first "
                                                          f"{max_length}", cap)
            elif trained:
                result.warning(index, "W_ASSISTANT_TRUNCATED", f"{total} tokens, over the training max length of "
                                                               f"{max_length}: the end of the assistant answer is cut; "
                                                               "shorten the example or raise max_length", cap)
        valid_lines(index)
        digests(key)
        totals(total)
        trained_counts(trained)
        messages(analysis.messages)
        if analysis.label is not None:
            labels[analysis.label] += 1


def sniff_format(path: Path) -> DatasetFormat:
    """The format of the first parseable object line (within the first lines). When there is none, the error
    names the cause where it can tell (an empty file, a compressed or UTF-16/32 file, pretty-printed JSON, lines
    that are not JSON objects) and E_UNKNOWN_FORMAT otherwise."""
    first_problem: tuple[int, str, str] | None = None
    parsed_objects = 0
    first_text: tuple[int, bytes] | None = None
    no_example = True  # every line read is blank, and the whole file was read
    with open(path, "rb") as handle:
        for number, line in enumerate(iter_lines(handle, 0, os.path.getsize(path)), start=1):
            if number > DETECT_LINES:
                no_example = False
                break
            if line is TOO_LONG:
                no_example = False
                continue
            if not line.strip():
                continue
            no_example = False
            if first_text is None:
                first_text = (number, line)
            obj, problem = parse_line(line)
            if problem:
                first_problem = first_problem or (number, *problem)
                continue
            parsed_objects += 1
            found = detect(obj)
            if found:
                return found
    _why_undetected(path, no_example, first_text, first_problem if not parsed_objects else None)
    raise FtopsError("cannot tell the format: no line among the first ones is a chat (messages), preference "
                     "(input/preferred_output), completion (prompt/completion) or classification (text/label) "
                     "example", source=path, line=1, field="E_UNKNOWN_FORMAT",
                     hint=f"pass --format {'|'.join(FORMATS)} to see the errors per line")


COMPRESSED = ((re.compile(rb"\x1f\x8b"), "gzip", "gzip -dc", ".gz"),
              (re.compile(rb"BZh[1-9]1AY&SY"), "bzip2", "bzip2 -dc", ".bz2"),
              (re.compile(rb"\xfd7zXZ\x00"), "xz", "xz -dc", ".xz"),
              (re.compile(rb"\x28\xb5\x2f\xfd"), "zstd", "zstd -dc", ".zst"),
              (re.compile(rb"PK\x03\x04"), "zip", "unzip -p", ".zip"))
"""The magic numbers of the archives datasets are most often shipped in: (magic, name, command that prints the
content, file suffix)."""
WIDE_BOMS = ((b"\x00\x00\xfe\xff", "UTF-32BE"), (b"\xff\xfe\x00\x00", "UTF-32LE"), (b"\xfe\xff", "UTF-16BE"),
             (b"\xff\xfe", "UTF-16LE"))
"""Byte order marks of UTF-16/32 (UTF-32LE before UTF-16LE: its mark starts with UTF-16LE's)."""


def _why_undetected(path: Path, no_example: bool, first_text: tuple[int, bytes] | None,
                    first_problem: tuple[int, str, str] | None) -> None:
    """Raise the cause of a failed detection when the first bytes or lines show it; return when they do not.
    `first_problem` is the first line's parse problem when no line among the first ones parsed at all."""
    name = path.name
    if no_example:
        raise FtopsError("the file is empty: it has no examples" if not os.path.getsize(path) else
                         "the file has only blank lines: it has no examples", source=path, field="E_TOO_FEW_EXAMPLES",
                         hint="write one JSON example per line")
    with open(path, "rb") as handle:
        head = handle.read(64)
    for magic, kind, command, suffix in COMPRESSED:
        if magic.match(head):
            plain = _new_name(name, name.removesuffix(suffix) if name.endswith(".jsonl" + suffix) else "data.jsonl")
            raise FtopsError(f"the file is {kind}-compressed, not JSON Lines text", source=path, field="E_NOT_UTF8",
                             hint=f"decompress it and pass the result, e.g. `{command} {name} > {plain}`")
    encoding = _wide_encoding(head)
    if encoding:
        raise FtopsError(f"the file is {encoding} text, not UTF-8", source=path, field="E_NOT_UTF8",
                         hint=f"re-save it as UTF-8, e.g. `iconv -f {encoding} -t UTF-8 {name} > "
                              f"{_new_name(name, Path(name).stem + '.utf8.jsonl')}`")
    if first_text is not None and first_text[1].strip() in (b"{", b"[", b"[{"):
        tool = "jq -c '.[]'" if first_text[1].strip().startswith(b"[") else "jq -c ."
        raise FtopsError(f"the line is {first_text[1].strip().decode()!r} alone: this looks like pretty-printed "
                         "JSON (one value over many lines), not JSON Lines", source=path, line=first_text[0],
                         field="E_INVALID_JSON", hint=f"write each example as one JSON object on one line, e.g. "
                                                      f"`{tool} {name} > {_new_name(name, Path(name).stem + '.jsonl')}`")
    if first_problem is not None:  # no line is a JSON object at all: the first line's problem is the cause
        line, code, message = first_problem
        raise FtopsError(message, source=path, line=line, field=code)


def _new_name(name: str, wanted: str) -> str:
    """`wanted`, unless it is the input's own name (a suggested `cmd FILE > FILE` would empty the file first)."""
    return wanted if wanted != name else f"{Path(name).stem}.fixed.jsonl"


def _wide_encoding(head: bytes) -> str | None:
    """UTF-16/32 from a byte order mark, or from the NULs that ASCII characters carry in them (no mark)."""
    for bom, encoding in WIDE_BOMS:
        if head.startswith(bom):
            return encoding
    if b"\x00" not in head:
        return None
    for width, encoding_le, encoding_be in ((4, "UTF-32LE", "UTF-32BE"), (2, "UTF-16LE", "UTF-16BE")):
        sample = head[:len(head) - len(head) % width]
        if len(sample) < width:
            continue
        if not any(sample[i] for i in range(len(sample)) if i % width):
            return encoding_le
        if not any(sample[i] for i in range(len(sample)) if i % width != width - 1):
            return encoding_be
    return None


def chunk_bounds(path: Path, size: int, target: int) -> list[tuple[int, int]]:
    """Split [0, size) into ranges of about `target` bytes, each ending just after a newline."""
    starts = [0]
    with open(path, "rb") as handle:
        position = target
        while position < size:
            handle.seek(position)
            while True:
                block = handle.read(1 << 20)
                if not block:
                    position = size
                    break
                newline = block.find(b"\n")
                if newline >= 0:
                    position += newline + 1
                    break
                position += len(block)
            if position >= size:
                break
            starts.append(position)
            position += target
    return list(zip(starts, starts[1:] + [size]))


def workers_available() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def check_file(path: Path, settings: Settings, counter: TokenCounter, workers: int | None = None,
               chunk_bytes: int | None = None) -> Iterator[tuple[int, ChunkResult]]:
    """Yield (bytes done, result) per chunk, in file order, from a pool of processes when it pays off."""
    size = os.path.getsize(path)
    workers = workers or workers_available()
    # A few chunks per worker keeps every core busy to the end; 1-8 MiB keeps each worker's memory small.
    target = chunk_bytes or max(1 << 20, min(8 << 20, size // (workers * 4) + 1))
    bounds = chunk_bounds(path, size, target)
    if workers == 1 or len(bounds) == 1 or "fork" not in multiprocessing.get_all_start_methods():
        with open(path, "rb") as handle:
            for start, end in bounds:
                yield end, check_chunk(handle, start, end, settings, counter)
        return
    # fork: workers inherit the loaded tokenizer instead of loading it again.
    context = multiprocessing.get_context("fork")
    with context.Pool(min(workers, len(bounds)), initializer=_init_worker, initargs=(path, settings, counter)) as pool:
        for (start, end), result in zip(bounds, pool.imap(_run_chunk, bounds)):
            yield end, result


def distribution(values: array) -> dict[str, float | int]:
    """min/mean/p50/p95/max (nearest-rank percentiles); zeros for an empty set."""
    if not values:
        return {"min": 0, "mean": 0, "p50": 0, "p95": 0, "max": 0}
    ordered = sorted(values)
    count = len(ordered)

    def rank(q: float) -> int:
        return ordered[max(0, math.ceil(q * count) - 1)]

    return {"min": ordered[0], "mean": round(sum(ordered) / count, 1), "p50": rank(0.50), "p95": rank(0.95),
            "max": ordered[-1]}


@dataclass
class ValidationReport:
    file: str
    format: DatasetFormat
    model: str | None
    tokenizer: str
    bytes: int
    examples: int = 0
    """Non-blank lines."""
    valid_examples: int = 0
    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    error_counts: Counter = field(default_factory=Counter)
    warning_counts: Counter = field(default_factory=Counter)
    totals: array = field(default_factory=lambda: array("q"))
    trained: array = field(default_factory=lambda: array("q"))
    messages: array = field(default_factory=lambda: array("q"))
    labels: Counter = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return not self.error_counts

    def as_dict(self) -> dict[str, Any]:
        """The `--json` document: examples, errors, warnings, tokens (with distributions), and the rest."""
        payload: dict[str, Any] = {
            "file": self.file, "format": self.format, "model": self.model, "tokenizer": self.tokenizer,
            "bytes": self.bytes, "examples": self.examples, "valid_examples": self.valid_examples,
            "errors": [issue.as_dict() for issue in self.errors],
            "warnings": [issue.as_dict() for issue in self.warnings],
            "error_counts": dict(sorted(self.error_counts.items())),
            "warning_counts": dict(sorted(self.warning_counts.items())),
            "tokens": {"total": sum(self.totals), "assistant": sum(self.trained),
                       "per_example": distribution(self.totals),
                       "assistant_per_example": distribution(self.trained)},
            "messages_per_example": distribution(self.messages),
        }
        if self.format == "classification":
            payload["labels"] = dict(sorted(self.labels.items()))
        return payload


def validate_file(path: Path, fmt: DatasetFormat | None, counter: TokenCounter, limits: ModelLimits, *,
                  max_length: int | None = None, max_reported: int = 100, workers: int | None = None,
                  chunk_bytes: int | None = None, on_progress: Any = None) -> ValidationReport:
    """Validate a JSONL file; every line number in the report is 1-based and exact."""
    regular_file(path, what="JSONL dataset")  # a FIFO or directory is refused by type, never opened
    fmt = fmt or sniff_format(path)
    if max_length is None:
        max_length = counter.model_max_length or (512 if fmt == "classification" else None)
    settings = Settings(fmt, limits, max_length, max_reported)
    size = path.stat().st_size
    report = ValidationReport(path.name, fmt, limits.model, counter.name, size)
    first_seen: dict[bytes, int] = {}
    extra_keys: set[str] = set()
    base = 0
    for done, chunk in check_file(path, settings, counter, workers, chunk_bytes):
        _merge(report, chunk, base, first_seen, max_reported, extra_keys)
        base += chunk.lines
        if on_progress:
            on_progress(done, size)
    _file_checks(report, limits, max_reported)
    report.errors.sort(key=lambda issue: issue.line)
    report.warnings.sort(key=lambda issue: issue.line)
    return report


def _merge(report: ValidationReport, chunk: ChunkResult, base: int, first_seen: dict[bytes, int], cap: int,
           extra_keys: set[str]) -> None:
    report.examples += chunk.examples
    report.error_counts.update(chunk.error_counts)
    report.warning_counts.update(chunk.warning_counts)
    report.errors.extend(Issue(base + line + 1, code, message)
                         for line, code, message in chunk.errors[:max(0, cap - len(report.errors))])
    warnings = []
    for line, code, message in chunk.warnings:
        if code == "W_EXTRA_KEY":
            if message in extra_keys:
                report.warning_counts[code] -= 1
                continue
            extra_keys.add(message)
        warnings.append(Issue(base + line + 1, code, message))
    for line, key in zip(chunk.valid_lines, chunk.digests):
        number = base + line + 1
        first = first_seen.setdefault(key, number)
        if first != number:
            report.warning_counts["W_DUPLICATE"] += 1
            warnings.append(Issue(number, "W_DUPLICATE", f"repeats line {first} (after normalising whitespace and "
                                                         "Unicode); remove it or run prepare with --dedupe"))
    warnings.sort(key=lambda issue: issue.line)
    report.warnings.extend(warnings[:max(0, cap - len(report.warnings))])
    report.valid_examples += len(chunk.valid_lines)
    report.totals.extend(chunk.totals)
    report.trained.extend(chunk.trained)
    report.messages.extend(chunk.messages)
    report.labels.update(chunk.labels)


def _file_checks(report: ValidationReport, limits: ModelLimits, cap: int) -> None:
    def error(code: str, message: str) -> None:
        report.error_counts[code] += 1
        if len(report.errors) < cap + 2:  # file-level errors are always shown
            report.errors.append(Issue(0, code, message))

    if limits.max_file_bytes is not None and report.bytes > limits.max_file_bytes:
        error("E_FILE_TOO_LARGE", f"the file is {report.bytes / 2**20:.1f} MiB, over the provider's "
                                  f"{limits.max_file_bytes / 2**20:.0f} MiB per file; split it or trim examples")
    if limits.min_training_examples is not None and report.valid_examples < limits.min_training_examples:
        error("E_TOO_FEW_EXAMPLES", f"{report.valid_examples} valid examples, fewer than the provider's minimum of "
                                    f"{limits.min_training_examples}; add examples")
    if report.format == "classification" and report.labels:
        counts = sorted(report.labels.values())
        if counts[-1] > 10 * counts[0]:
            report.warning_counts["W_CLASS_IMBALANCE"] += 1
            report.warnings.append(Issue(0, "W_CLASS_IMBALANCE", f"largest class has {counts[-1]} examples, smallest "
                                                                 f"{counts[0]}; collect more of the rare ones or "
                                                                 "weight the loss"))
        for label, count in sorted(report.labels.items()):
            if count < 3:
                report.warning_counts["W_RARE_LABEL"] += 1
                report.warnings.append(Issue(0, "W_RARE_LABEL", f"label {label!r} has only {count} example(s); "
                                                                "it cannot appear in every split"))
