"""`ftops data prepare`: clean, drop what is invalid (saying why), deduplicate, split deterministically, write.

Split assignment is hash-based: every unit (a group, or else one distinct example) gets a rank
`blake2b(seed, unit key)`; units are taken in rank order and cut at the split fractions by cumulative size,
within each label for classification (stratified). A unit's split depends only on the seed and the unit
set, never on file order or the machine, so the same input and seed give byte-identical files, and
duplicates that are kept land in the same split (nothing leaks into the test set).

Output goes to a temp directory beside `--out` and is renamed into place at the end: an interrupted
prepare leaves nothing under the final names.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from jobs.config.data import MAX_SEED
from jobs.data.formats import Analysis, analyze, canonical
from jobs.data.leaks import prompt_key
from jobs.data.manifest import SPLITS, DatasetFormat, Dropped, Manifest, SplitFile
from jobs.data.tokens import ModelLimits, TokenCounter
from jobs.data.validate import TOO_LONG, iter_lines, parse_line, sniff_format
from jobs.errors import FtopsError
from jobs.fsutil import check_replaceable, make_dirs, regular_file, replace_dir, sha256_file

BATCH = 1024
PREPARED_KIND = "prepared dataset"
MAX_DROPPED_LISTED = 1000
"""The manifest lists at most this many dropped lines (all are counted in the report)."""
MAX_FIELDS = 200


@dataclass
class PrepareReport:
    manifest: Manifest
    out: Path
    read: int = 0
    dropped_counts: Counter = field(default_factory=Counter)
    stripped_keys: Counter = field(default_factory=Counter)
    ungrouped: int = 0
    """Examples without the --group-by field, or with null there (each became a group of its own)."""
    grouped: int = 0
    """Examples with a value in the --group-by field."""
    fields: set[str] = field(default_factory=set)
    """Top-level keys of the examples (up to MAX_FIELDS), for the did-you-mean of a --group-by no example has."""
    moved_for_shared_prompts: int = 0
    """Examples placed in another split than their group alone gave, to keep a prompt in one split."""
    joined_units: int = 0
    """Units (groups or examples) joined to another because they share a prompt with it."""
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"out": str(self.out), "dataset_id": self.manifest.dataset_id, "read": self.read,
                "kept": sum(f.examples for f in self.manifest.files.values()),
                "dropped": [d.model_dump() for d in self.manifest.dropped],
                "dropped_counts": dict(sorted(self.dropped_counts.items())),
                "stripped_keys": dict(sorted(self.stripped_keys.items())), "ungrouped": self.ungrouped,
                "moved_for_shared_prompts": self.moved_for_shared_prompts, "joined_units": self.joined_units,
                "warnings": self.warnings, "manifest": self.manifest.model_dump(mode="json")}


@dataclass
class _Kept:
    rank: bytes
    label: str | None
    tokens: int
    trained: int
    prompt: bytes
    """The prompt's digest (jobs.data.leaks): the same prompt never lands in two splits."""


def prepare(path: Path, out: Path, counter: TokenCounter, limits: ModelLimits, *,
            fmt: DatasetFormat | None = None, split: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 42,
            dedupe: bool = False, group_by: str | None = None) -> PrepareReport:
    regular_file(path, what="JSONL dataset")  # a FIFO or directory is refused by type, never opened
    _check_split(split)
    if not 0 <= seed <= MAX_SEED:  # the CLI and the environment model bound it too; this guards other callers
        raise FtopsError(f"seed {seed} is outside 0..{MAX_SEED}", field="--seed", hint="e.g. --seed 42")
    fmt = fmt or sniff_format(path)
    out = out.resolve()
    # Before any work: refuse a directory ftops did not make, and one that holds the input.
    check_replaceable(out, PREPARED_KIND, field="--out", legacy=is_unmarked_prepare_output)
    _refuse_input_in_output(path, out)
    make_dirs(out.parent, field="--out")
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    work.chmod(0o777 & ~umask)  # mkdtemp makes it private; the output is an ordinary directory
    try:
        report = _prepare_into(work, path, out, counter, limits, fmt, split, seed, dedupe, group_by)
        _swap_into_place(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return report


def _refuse_input_in_output(path: Path, out: Path) -> None:
    """Replacing `out` would delete the input and the splits beside it (`prepare P/train.jsonl --out P` split the
    old train split again and lost the old validation and test splits). Both paths are resolved (symlinks), and a
    hard link to a file directly in `out` is the same file under another name."""
    source = path.resolve()
    if source == out or out in source.parents:
        raise FtopsError(f"the input is inside the output directory {out}: replacing that directory would delete "
                         "the input and the splits beside it", source=path, field="--out",
                         hint="choose another --out, e.g. a new directory")
    try:
        here = source.stat()
        same = next((entry.name for entry in os.scandir(out) if entry.is_file(follow_symlinks=False)
                     and entry.inode() == here.st_ino and entry.stat(follow_symlinks=False).st_dev == here.st_dev),
                    None)
    except OSError:  # no such directory (or not one): nothing in it to lose
        return
    if same is not None:
        raise FtopsError(f"the input is {out / same} under another name (a hard link): replacing the output "
                         "directory would delete the splits beside it", source=path, field="--out",
                         hint="choose another --out, e.g. a new directory")


def _check_split(split: tuple[float, float, float]) -> None:
    # `not 0 <= part` also refuses NaN, which every comparison (the sum's included) would let through.
    if len(split) != 3 or any(not 0 <= part <= 1 for part in split) or abs(sum(split) - 1) > 1e-6 or split[0] <= 0:
        raise FtopsError(f"split {','.join(map(str, split))} must be three non-negative fractions adding up to 1 "
                         "with train above 0", field="--split", hint="e.g. --split 0.8,0.1,0.1")


def _prepare_into(work: Path, path: Path, out: Path, counter: TokenCounter, limits: ModelLimits,
                  fmt: DatasetFormat, split: tuple[float, float, float], seed: int, dedupe: bool,
                  group_by: str | None) -> PrepareReport:
    dropped: list[Dropped] = []
    report = PrepareReport(manifest=None, out=out)  # type: ignore[arg-type]

    def drop(line: int, code: str, reason: str) -> None:
        report.dropped_counts[code] += 1
        if len(dropped) < MAX_DROPPED_LISTED:
            dropped.append(Dropped(line=line, code=code, reason=reason))

    kept: list[_Kept] = []
    seen: dict[bytes, int] = {}
    pending: list[tuple[int, Analysis, bytes, str, str | None, bytes, bytes]] = []
    cleaned_path = work / "cleaned.jsonl"
    seed_bytes = str(seed).encode()

    def flush(sink) -> None:
        counts = counter.count([entry[1] for entry in pending])
        for (line, analysis, data, unit, label, dedupe_key, prompt), (tokens, trained) in zip(pending, counts):
            if limits.max_example_tokens is not None and tokens > limits.max_example_tokens:
                drop(line, "E_TOO_MANY_TOKENS", f"{tokens} tokens, over the limit of {limits.max_example_tokens}")
                continue
            if dedupe:
                first = seen.setdefault(dedupe_key, line)
                if first != line:
                    drop(line, "W_DUPLICATE", f"repeats line {first}")
                    continue
            sink.write(data)
            rank = hashlib.blake2b(unit.encode(), key=seed_bytes[:64], digest_size=16).digest()
            kept.append(_Kept(rank, label, tokens, trained, prompt))
        pending.clear()

    with open(path, "rb") as source, open(cleaned_path, "wb") as sink:
        for number, line in enumerate(iter_lines(source, 0, path.stat().st_size), start=1):
            if line is TOO_LONG:
                report.read += 1
                drop(number, "E_LINE_TOO_LONG", "line too long to be one example")
                continue
            if not line.strip():
                drop(number, "W_BLANK_LINE", "blank line")
                continue
            report.read += 1
            obj, problem = parse_line(line)
            if problem:
                drop(number, *problem)
                continue
            if group_by is not None and len(report.fields) < MAX_FIELDS:
                report.fields.update(obj)
            example = canonical(obj, fmt)
            report.stripped_keys.update(key for key in obj if key not in example)
            analysis = analyze(example, fmt)
            if analysis.errors:
                drop(number, *analysis.errors[0])
                continue
            try:
                data = orjson.dumps(example) + b"\n"
                dedupe_key = hashlib.blake2b(orjson.dumps(example, option=orjson.OPT_SORT_KEYS),
                                             digest_size=16).digest() if dedupe else b""
            except orjson.JSONEncodeError:
                drop(number, "E_INVALID_JSON", "nested too deeply to write back as JSON")
                continue
            unit = _unit(obj, group_by, data, report)
            pending.append((number, analysis, data, unit, analysis.label, dedupe_key, prompt_key(example, fmt)))
            if len(pending) >= BATCH:
                flush(sink)
        flush(sink)
    if not kept:
        raise FtopsError("no valid examples left after cleaning", source=path,
                         hint=f"run `ftops data validate {path.name}` to see why each line fails")

    if group_by is not None:
        _check_group_by(path, group_by, report)
    units = [(k.rank, k.label if fmt == "classification" else None) for k in kept]
    by_groups = assign_splits(units, split)
    # Units (groups, or single examples) that share a prompt, transitively, become one unit ranked by the smallest
    # of their ranks, and the split is cut again: identical prompts with different answers, or in different
    # groups, must not straddle train and test. Cutting again keeps the fractions; the examples it places in
    # another split than grouping alone did are counted (joined units and, where the cut moved, their neighbours).
    root = join_shared_prompts([k.rank for k in kept], [k.prompt for k in kept])
    joined = assign_splits([(root[rank], stratum) for rank, stratum in units], split)
    assignment = {rank: joined[root[rank]] for rank in by_groups}
    report.joined_units = len(by_groups) - len(set(root.values()))
    report.moved_for_shared_prompts = sum(1 for k in kept if assignment[k.rank] != by_groups[k.rank])
    files = _write_splits(work, cleaned_path, kept, assignment)
    cleaned_path.unlink()
    labels = Counter(k.label for k in kept if k.label is not None) if fmt == "classification" else None
    manifest = Manifest(format=fmt, source=path.name, source_sha256=sha256_file(path), tokenizer=counter.name,
                        seed=seed, split=split, group_by=group_by, deduplicated=dedupe, files=files, dropped=dropped,
                        labels=dict(sorted(labels.items())) if labels is not None else None)
    manifest.write(work)
    report.manifest = manifest
    if limits.min_training_examples and files["train"].examples < limits.min_training_examples:
        report.warnings.append(f"train has {files['train'].examples} examples, fewer than the provider's minimum of "
                               f"{limits.min_training_examples}")
    for name in ("validation", "test"):
        if split[SPLITS.index(name)] > 0 and files[name].examples == 0:
            report.warnings.append(f"{name} is empty: too few examples or groups for a {split[SPLITS.index(name)]} "
                                   "fraction")
    return report


def _unit(obj: dict, group_by: str | None, data: bytes, report: PrepareReport) -> str:
    """The key that decides the split: the group's value, or the example's own (cleaned) content."""
    if group_by is not None:
        value = obj.get(group_by)
        if value is not None:
            report.grouped += 1
            return "g:" + orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
        report.ungrouped += 1
    return "x:" + hashlib.blake2b(data, digest_size=16).hexdigest()


def _check_group_by(path: Path, group_by: str, report: PrepareReport) -> None:
    """A --group-by field that no example has is a mistake (a misspelling grouped nothing and was recorded in the
    manifest as if it had): refused, with a did-you-mean. Examples that lack it while others have it each stay a
    unit of their own, as before; the report warns with their count."""
    if not report.grouped:
        fields = sorted(report.fields)
        close = difflib.get_close_matches(group_by, fields, n=1)
        shown = ", ".join(name if name.isprintable() and len(name) <= 40 else repr(name[:40]) for name in fields[:12])
        shown += ", ..." if len(fields) > 12 else ""
        raise FtopsError(f"no example has a value in the top-level field {group_by!r}, so nothing would be grouped",
                         source=path, field="--group-by",
                         hint=(f"did you mean --group-by {close[0]}? " if close else "")
                         + (f"top-level fields of the examples: {shown}" if fields else "the examples have no fields"))
    if report.ungrouped:
        report.warnings.append(f"{report.ungrouped} of {report.grouped + report.ungrouped} examples have no value in "
                               f"{group_by!r}: each of them is split as a group of its own")


def join_shared_prompts(ranks: list[bytes], prompts: list[bytes]) -> dict[bytes, bytes]:
    """Map each unit rank to the smallest rank of the units it shares a prompt with, transitively (union-find)."""
    parent: dict[bytes, bytes] = {rank: rank for rank in ranks}

    def find(rank: bytes) -> bytes:
        while parent[rank] != rank:
            parent[rank] = parent[parent[rank]]
            rank = parent[rank]
        return rank

    first_unit: dict[bytes, bytes] = {}
    for rank, prompt in zip(ranks, prompts):
        other = first_unit.setdefault(prompt, rank)
        a, b = find(rank), find(other)
        if a != b:
            parent[max(a, b)] = min(a, b)
    return {rank: find(rank) for rank in parent}


def assign_splits(units: list[tuple[bytes, str | None]], split: tuple[float, float, float]) -> dict[bytes, int]:
    """Map each unit rank to a split index. Units are (rank, stratum) per example; a rank seen several times
    is one unit of that many examples. Within a stratum, units in rank order fill train, then validation,
    then test, each unit going where its cumulative midpoint falls."""
    sizes: Counter = Counter(rank for rank, _ in units)
    strata: dict[str | None, list[bytes]] = {}
    first_stratum: dict[bytes, str | None] = {}
    for rank, stratum in units:
        if rank not in first_stratum:
            first_stratum[rank] = stratum
            strata.setdefault(stratum, []).append(rank)
    cut_train, cut_validation = split[0], split[0] + split[1]
    assignment: dict[bytes, int] = {}
    for ranks in strata.values():
        ranks.sort()
        total = sum(sizes[rank] for rank in ranks)
        done = 0
        for rank in ranks:
            middle = (done + sizes[rank] / 2) / total
            assignment[rank] = 0 if middle < cut_train else 1 if middle < cut_validation else 2
            done += sizes[rank]
    return assignment


def _write_splits(work: Path, cleaned: Path, kept: list[_Kept], assignment: dict[bytes, int]) -> dict[str, SplitFile]:
    handles = [open(work / f"{name}.jsonl", "wb") for name in SPLITS]
    digests = [hashlib.sha256() for _ in SPLITS]
    stats = [[0, 0, 0, 0, 0] for _ in SPLITS]  # bytes, examples, tokens, trained, max tokens
    try:
        with open(cleaned, "rb") as source:
            for record, line in zip(kept, source):
                index = assignment[record.rank]
                handles[index].write(line)
                digests[index].update(line)
                entry = stats[index]
                entry[0] += len(line)
                entry[1] += 1
                entry[2] += record.tokens
                entry[3] += record.trained
                entry[4] = max(entry[4], record.tokens)
        for handle in handles:
            handle.flush()
            os.fsync(handle.fileno())
    finally:
        for handle in handles:
            handle.close()
    return {name: SplitFile(path=f"{name}.jsonl", sha256=digests[i].hexdigest(), bytes=stats[i][0],
                            examples=stats[i][1], tokens=stats[i][2], assistant_tokens=stats[i][3],
                            max_example_tokens=stats[i][4])
            for i, name in enumerate(SPLITS)}


def _swap_into_place(work: Path, out: Path) -> None:
    """Swap the finished temp directory in for `out` (only an unchanged earlier prepare output is replaced)."""
    replace_dir(work, out, PREPARED_KIND, field="--out", legacy=is_unmarked_prepare_output)


def is_unmarked_prepare_output(directory: Path) -> bool:
    """An output of prepare from before ownership markers: exactly manifest.json and the split files it lists,
    each with the sha256 it records (anything else, or any change, and it is not recognised)."""
    from jobs.data.manifest import read_manifest

    try:
        manifest = read_manifest(directory)
    except FtopsError:
        return False
    expected = {"manifest.json"} | {entry.path for entry in manifest.files.values()}
    present = {p.name for p in directory.iterdir()}
    if present != expected or any(not (directory / name).is_file() or (directory / name).is_symlink()
                                  for name in expected):
        return False
    return all(sha256_file(directory / entry.path) == entry.sha256 for entry in manifest.files.values())
