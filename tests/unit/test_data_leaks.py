"""Leak-free splits (issue 16, item 3): identical prompts land in one split across groups; prepare reports what it
moved; `data validate --against-train` reports prompts a file shares with a training file."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from jobs.data.leaks import prompt_key

ROOT = Path(__file__).resolve().parents[2]
SYSTEM = {"role": "system", "content": "You are the helpdesk."}


def chat(user: str, answer: str, intent: str, system: dict = SYSTEM) -> dict:
    return {"intent": intent, "messages": [system, {"role": "user", "content": user},
                                           {"role": "assistant", "content": answer}]}


def vpn_dataset(path: Path) -> Path:
    """The issue's case: the same VPN question (same system prompt) under two intents with different answers."""
    rows = [chat("How do I connect to the VPN?", "On Windows: open the tray icon.", "vpn-windows"),
            chat("How do I connect to the VPN? ", "On macOS: open the menu bar icon.", "vpn-macos")]  # cleaned alike
    for group in range(40):
        rows += [chat(f"Question {group}-{i} about topic {group}?", f"Answer {group}-{i}.", f"topic-{group}")
                 for i in range(3)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def splits_of_prompts(out: Path) -> dict[bytes, set[str]]:
    where: dict[bytes, set[str]] = defaultdict(set)
    for name in ("train", "validation", "test"):
        for line in (out / f"{name}.jsonl").read_text().splitlines():
            where[prompt_key(json.loads(line), "chat")].add(name)
    return where


def test_the_same_prompt_in_two_groups_lands_in_one_split_for_every_seed(ftops, tmp_path):
    source = vpn_dataset(tmp_path / "vpn.jsonl")
    moved_any = False
    for seed in range(12):
        out = tmp_path / f"out-{seed}"
        result = ftops("data", "prepare", source, "--out", out, "--group-by", "intent", "--seed", seed, "--json")
        assert result.exit_code == 0, result.stderr
        report = json.loads(result.stdout)
        straddling = {k: v for k, v in splits_of_prompts(out).items() if len(v) > 1}
        assert not straddling, f"seed {seed}: a prompt is in {straddling}"
        assert report["joined_units"] == 1
        moved_any |= report["moved_for_shared_prompts"] > 0
    assert moved_any, "grouping alone never split the VPN prompt: the test would not catch a leak"


def test_prepare_says_how_many_it_moved(ftops, tmp_path):
    source = vpn_dataset(tmp_path / "vpn.jsonl")
    for seed in range(12):
        result = ftops("data", "prepare", source, "--out", tmp_path / f"o{seed}", "--group-by", "intent",
                       "--seed", seed)
        if "moved" in result.stdout:
            text = " ".join(result.stdout.split())
            assert "shared a prompt with another group" in text and "kept in one split" in text, text
            return
    raise AssertionError("no seed moved anything")


def test_validate_against_train_reports_shared_prompts(ftops, tmp_path):
    train = tmp_path / "train.jsonl"
    test = tmp_path / "test.jsonl"
    train.write_text(json.dumps(chat("How do I connect to the VPN?", "Windows steps.", "a")) + "\n"
                     + json.dumps(chat("Reset my password", "Use the portal.", "b")) + "\n")
    test.write_text(json.dumps(chat("Printer jammed", "Open tray 2.", "c")) + "\n"
                    + json.dumps(chat("How do I connect to the VPN?\u200b", "macOS steps.", "d")) + "\n")
    result = ftops("data", "validate", test, "--against-train", train, "--json")
    assert result.exit_code == 1
    found = json.loads(result.stdout)["against_train"]
    assert found["overlapping_examples"] == 1 and found["lines"] == [{"line": 2, "train_line": 1}]
    other_system = {"role": "system", "content": "You are the HR assistant."}
    test.write_text(json.dumps(chat("How do I connect to the VPN?", "Ask IT.", "d", other_system)) + "\n")
    result = ftops("data", "validate", test, "--against-train", train, "--json")
    assert json.loads(result.stdout)["against_train"]["overlapping_examples"] == 0  # (too few examples: exit 1)


def test_the_committed_sample_splits_share_no_prompt(ftops):
    prepared = ROOT / "datasets" / "it-helpdesk" / "prepared"
    for name in ("validation", "test"):
        result = ftops("data", "validate", prepared / f"{name}.jsonl", "--against-train", prepared / "train.jsonl",
                       "--json")
        assert result.exit_code == 0, result.stdout[-500:]
        assert json.loads(result.stdout)["against_train"]["overlapping_examples"] == 0


def test_against_train_skips_lines_nested_too_deeply_to_compare(ftops, tmp_path):
    deep = "[" * 1000 + "]" * 1000
    path = tmp_path / "deep.jsonl"
    path.write_text('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}], '
                    f'"tools": {deep}}}\n' + json.dumps(chat("Printer jammed", "Open tray 2.", "c")) + "\n")
    result = ftops("data", "validate", path, "--against-train", path, "--json")
    assert json.loads(result.stdout)["against_train"]["overlapping_examples"] == 1


@pytest.mark.parametrize("train", ["empty", "blank", "classification"])
def test_against_an_empty_train_file_or_one_of_another_format_is_refused(ftops, tmp_path, train):
    """Both reported "0 example(s) share a prompt" and exited 0: a check that checked nothing, passed."""
    test = tmp_path / "test.jsonl"
    test.write_text("".join(json.dumps(chat(f"question {i}", "answer", "c")) + "\n" for i in range(12)))
    other = tmp_path / "train.jsonl"
    other.write_text({"empty": "", "blank": "\n\n",
                      "classification": '{"text": "VPN down", "label": "network"}\n'}[train])
    result = ftops("data", "validate", test, "--against-train", other)
    assert result.exit_code == 1, result.stdout
    text = result.stderr.strip()
    assert "\n" not in text and text.startswith(f"error: {other}: --against-train: "), text
    assert "share a prompt" not in result.stdout
    expected = ("the training file is classification data and test.jsonl is chat" if train == "classification"
                else "E_TOO_FEW_EXAMPLES: the file ")
    assert expected in text and "give the training file the examples of test.jsonl were split from" in text, text
