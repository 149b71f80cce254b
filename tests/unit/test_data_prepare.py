"""`ftops data prepare`: clean, drop with reasons, dedupe, deterministic split, groups, strata, atomic output."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest

from jobs.data import prepare as prepare_module
from jobs.data.manifest import read_manifest
from jobs.data.tokens import resolve
from jobs.errors import FtopsError

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "datasets" / "it-helpdesk"
SPLIT_NAMES = ("train", "validation", "test")


def chat(user: str, answer: str = "Open the portal.", **extra) -> dict:
    return {**extra, "messages": [{"role": "system", "content": "You are the helpdesk."},
                                  {"role": "user", "content": user}, {"role": "assistant", "content": answer}]}


def write(path: Path, rows: list) -> Path:
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    return path


def read_split(directory: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (directory / f"{name}.jsonl").read_text().splitlines()]


def test_committed_sample_is_reproduced_byte_for_byte(ftops, tmp_path: Path) -> None:
    """Job definitions reference datasets/it-helpdesk/prepared: prepare with the default seed must recreate it."""
    out = tmp_path / "prepared"
    result = ftops("data", "prepare", SAMPLE / "support-chat.jsonl", "--out", out, "--group-by", "intent")
    assert result.exit_code == 0, result.stderr
    for name in ("train.jsonl", "validation.jsonl", "test.jsonl", "manifest.json"):
        assert (out / name).read_bytes() == (SAMPLE / "prepared" / name).read_bytes(), name


def test_same_input_and_seed_give_identical_bytes_and_another_seed_differs(ftops, tmp_path: Path) -> None:
    source = write(tmp_path / "in.jsonl", [chat(f"question {i}") for i in range(200)])
    outputs = []
    for name, seed in (("a", "7"), ("b", "7"), ("c", "8")):
        assert ftops("data", "prepare", source, "--out", tmp_path / name, "--seed", seed).exit_code == 0
        outputs.append([(tmp_path / name / f"{s}.jsonl").read_bytes() for s in SPLIT_NAMES])
    assert outputs[0] == outputs[1]
    assert outputs[0] != outputs[2]
    counts = [len(read_split(tmp_path / "a", s)) for s in SPLIT_NAMES]
    assert counts == [160, 20, 20]


def test_cleaning_drops_invalid_lines_with_line_and_reason(ftops, tmp_path: Path) -> None:
    rows = [chat(f"q{i}") for i in range(12)]
    rows.insert(2, "{not json")
    rows.insert(5, {"messages": [{"role": "user", "content": "   "}, {"role": "assistant", "content": "x"}]})
    rows.insert(7, "")
    source = write(tmp_path / "in.jsonl", rows)
    result = ftops("data", "prepare", source, "--out", tmp_path / "out", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert [(d["line"], d["code"]) for d in report["dropped"]] == [
        (3, "E_INVALID_JSON"), (6, "E_MISSING_CONTENT"), (8, "W_BLANK_LINE")]
    assert report["kept"] == 12
    assert read_manifest(tmp_path / "out").dropped[0].reason.startswith("not valid JSON")


def test_whitespace_and_unicode_are_normalised(tmp_path: Path) -> None:
    decomposed = "Cafe\u0301"  # e + combining accent -> é (NFC)
    rows = [chat(f"  q{i}\u200b  \r\nline two   \n\n\n\nend ", answer=f"{decomposed}\u00a0ok ") for i in range(12)]
    source = write(tmp_path / "in.jsonl", rows)
    counter, limits = resolve(None, None)
    prepare_module.prepare(source, tmp_path / "out", counter, limits, split=(1.0, 0.0, 0.0))
    example = read_split(tmp_path / "out", "train")[0]
    user, answer = example["messages"][1]["content"], example["messages"][2]["content"]
    assert user.startswith("q") and user.endswith("\nline two\n\nend")
    assert answer == "Caf\u00e9 ok"


def test_dedupe_removes_exact_duplicates_after_normalisation(ftops, tmp_path: Path) -> None:
    rows = [chat(f"q{i}") for i in range(12)] + [chat("q3 "), chat("q5")]
    source = write(tmp_path / "in.jsonl", rows)
    result = ftops("data", "prepare", source, "--out", tmp_path / "out", "--dedupe", "--json")
    report = json.loads(result.stdout)
    assert [(d["line"], d["code"], d["reason"]) for d in report["dropped"]] == [
        (13, "W_DUPLICATE", "repeats line 4"), (14, "W_DUPLICATE", "repeats line 6")]
    assert report["kept"] == 12 and report["manifest"]["deduplicated"] is True


def test_kept_duplicates_never_straddle_splits(tmp_path: Path) -> None:
    rows = [chat(f"q{i % 40}") for i in range(200)]
    source = write(tmp_path / "in.jsonl", rows)
    counter, limits = resolve(None, None)
    prepare_module.prepare(source, tmp_path / "out", counter, limits)
    seen = {name: {row["messages"][1]["content"] for row in read_split(tmp_path / "out", name)} for name in SPLIT_NAMES}
    assert not (seen["train"] & seen["test"]) and not (seen["train"] & seen["validation"])


def test_group_by_keeps_each_group_in_one_split_and_strips_the_key(ftops, tmp_path: Path) -> None:
    rows = [chat(f"q{i}", conversation=f"c{i // 5}") for i in range(300)]
    source = write(tmp_path / "in.jsonl", rows)
    result = ftops("data", "prepare", source, "--out", tmp_path / "out", "--group-by", "conversation")
    assert result.exit_code == 0, result.stderr
    where: dict[str, set[str]] = {}
    for name in SPLIT_NAMES:
        for row in read_split(tmp_path / "out", name):
            assert "conversation" not in row
            index = int(row["messages"][1]["content"][1:])
            where.setdefault(f"c{index // 5}", set()).add(name)
    assert all(len(splits) == 1 for splits in where.values())
    assert {name for splits in where.values() for name in splits} == set(SPLIT_NAMES)
    assert read_manifest(tmp_path / "out").group_by == "conversation"


def test_classification_is_stratified_by_label(ftops, tmp_path: Path) -> None:
    labels = ["access"] * 100 + ["network"] * 50 + ["security"] * 30
    source = write(tmp_path / "in.jsonl", [{"text": f"ticket {i}", "label": label} for i, label in enumerate(labels)])
    assert ftops("data", "prepare", source, "--out", tmp_path / "out").exit_code == 0
    per_split = {name: Counter(row["label"] for row in read_split(tmp_path / "out", name)) for name in SPLIT_NAMES}
    assert per_split["train"] == {"access": 80, "network": 40, "security": 24}
    assert per_split["validation"] == {"access": 10, "network": 5, "security": 3}
    assert per_split["test"] == {"access": 10, "network": 5, "security": 3}
    assert read_manifest(tmp_path / "out").labels == {"access": 100, "network": 50, "security": 30}


def test_manifest_counts_and_hashes_match_the_files(tmp_path: Path) -> None:
    import hashlib

    counter, limits = resolve(None, None)
    prepare_module.prepare(SAMPLE / "support-chat.jsonl", tmp_path / "out", counter, limits, group_by="intent")
    manifest = read_manifest(tmp_path / "out")
    for name, entry in manifest.files.items():
        data = (tmp_path / "out" / entry.path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry.sha256 and len(data) == entry.bytes
        assert entry.examples == data.count(b"\n")
    assert sum(entry.examples for entry in manifest.files.values()) == 293
    assert manifest.tokenizer == "o200k_base" and manifest.source == "support-chat.jsonl"


def test_an_interrupted_prepare_leaves_nothing_under_the_final_names(tmp_path: Path, monkeypatch) -> None:
    source = write(tmp_path / "in.jsonl", [chat(f"q{i}") for i in range(50)])
    counter, limits = resolve(None, None)
    out = tmp_path / "out"
    prepare_module.prepare(source, out, counter, limits, seed=1)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(prepare_module, "_write_splits", boom)
    with pytest.raises(KeyboardInterrupt):
        prepare_module.prepare(source, out, counter, limits, seed=2)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the earlier output is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out"]  # no temp directory left behind
    fresh = tmp_path / "fresh"
    with pytest.raises(KeyboardInterrupt):
        prepare_module.prepare(source, fresh, counter, limits)
    assert not fresh.exists()


def test_bad_arguments_are_one_line_errors(ftops, tmp_path: Path) -> None:
    source = write(tmp_path / "in.jsonl", [chat(f"q{i}") for i in range(20)])
    result = ftops("data", "prepare", source, "--out", tmp_path / "o", "--split", "0.5,0.4,0.4")
    assert result.exit_code == 1 and "--split" in result.stderr
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine")
    result = ftops("data", "prepare", source, "--out", occupied)
    assert result.exit_code == 1 and "refusing to replace" in result.stderr
    assert (occupied / "notes.txt").read_text() == "mine"
    garbage = write(tmp_path / "garbage.jsonl", ['{"messages": []}'] * 3)
    result = ftops("data", "prepare", garbage, "--out", tmp_path / "g")
    assert result.exit_code == 1 and "no valid examples" in result.stderr


def one_line(result, exit_code: int = 1) -> str:
    assert result.exit_code == exit_code, (result.exit_code, result.stdout, result.stderr)
    text = result.stderr.strip()
    assert "\n" not in text and "Traceback" not in text, text
    return text


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_an_input_inside_the_output_directory_is_refused_and_the_output_kept(ftops, tmp_path: Path) -> None:
    """`prepare P/train.jsonl --out P` exited 0, lost P's validation and test splits and split the old train again."""
    out = tmp_path / "P"
    assert ftops("data", "prepare", SAMPLE / "support-chat.jsonl", "--out", out, "--group-by", "intent").exit_code == 0
    before = snapshot(out)
    (tmp_path / "link").symlink_to(out)  # the same directory under another name, either side
    (tmp_path / "train-link.jsonl").symlink_to(out / "train.jsonl")
    os.link(out / "train.jsonl", tmp_path / "hard.jsonl")
    for source, target in ((out / "train.jsonl", out), (tmp_path / "link" / "train.jsonl", out),
                           (out / "train.jsonl", tmp_path / "link"), (tmp_path / "train-link.jsonl", out),
                           (tmp_path / "hard.jsonl", out)):
        text = one_line(ftops("data", "prepare", source, "--out", target))
        assert text.startswith(f"error: {source}: --out: the input is ") and "choose another --out" in text, text
        assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["P", "hard.jsonl", "link", "train-link.jsonl"]


@pytest.mark.parametrize("seed", ["-1", "2147483648", "18446744073709551616"])
def test_a_seed_outside_0_to_2_31_is_a_usage_error_and_nothing_is_written(ftops, tmp_path: Path, seed: str) -> None:
    """2**64 ended in `TypeError: Integer exceeds 64-bit range` from the manifest; -1 was accepted though job
    definitions require hyperparameters.seed >= 0."""
    result = ftops("data", "prepare", SAMPLE / "support-chat.jsonl", "--out", tmp_path / "out", "--seed", seed)
    assert result.exit_code == 2 and "--seed" in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert not (tmp_path / "out").exists()
    with pytest.raises(FtopsError, match="outside 0..2147483647"):
        prepare_module.prepare(SAMPLE / "support-chat.jsonl", tmp_path / "out", *resolve(None, None), seed=int(seed))
    assert list(tmp_path.iterdir()) == []


def test_the_seed_range_is_the_job_seed_range_everywhere(ftops, project, tmp_path: Path) -> None:
    from jobs.cli import data as cli_data
    from jobs.config.data import MAX_SEED
    from jobs.config.job import Hyperparameters

    limits = {m.le for m in Hyperparameters.model_fields["seed"].metadata if hasattr(m, "le")}
    assert cli_data.MAX_SEED == MAX_SEED and limits == {MAX_SEED}
    project.edit_environment("dev", "  seed: 42", "  seed: -1")
    text = one_line(ftops("data", "prepare", SAMPLE / "support-chat.jsonl", "--out", tmp_path / "out", "--env", "dev"))
    assert "dev.yaml" in text and "data.seed" in text and "greater than or equal to 0" in text, text
    assert not (tmp_path / "out").exists()


def test_a_group_by_field_no_example_has_is_refused_with_a_did_you_mean(ftops, tmp_path: Path) -> None:
    """`--group-by intnt` exited 0, said "grouped by intnt" and recorded it in the manifest; nothing was grouped."""
    out = tmp_path / "out"
    result = ftops("data", "prepare", SAMPLE / "support-chat.jsonl", "--out", out, "--group-by", "intnt")
    assert one_line(result) == (f"error: {SAMPLE / 'support-chat.jsonl'}: --group-by: no example has a value in the "
                                "top-level field 'intnt', so nothing would be grouped (did you mean --group-by "
                                "intent? top-level fields of the examples: intent, messages)")
    assert "grouped by" not in result.stdout and not out.exists() and list(tmp_path.iterdir()) == []


def test_examples_without_the_group_by_field_are_counted_in_a_warning(ftops, tmp_path: Path) -> None:
    rows = [chat(f"q{i}", conversation=f"c{i // 5}") for i in range(40)] + [chat(f"loose {i}") for i in range(7)]
    result = ftops("data", "prepare", write(tmp_path / "in.jsonl", rows), "--out", tmp_path / "out",
                   "--group-by", "conversation", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ungrouped"] == 7 and report["warnings"] == [
        "7 of 47 examples have no value in 'conversation': each of them is split as a group of its own"]
    human = ftops("data", "prepare", tmp_path / "in.jsonl", "--out", tmp_path / "out", "--group-by", "conversation")
    assert "warning 7 of 47 examples have no value in 'conversation'" in " ".join(human.stderr.split())
