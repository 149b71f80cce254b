"""`ftops data validate`: every error path reports its code, 1-based line and exit 1; counts are exact."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import tiktoken

from jobs.data import tokenizer_files
from jobs.data.formats import ERROR_CODES, WARNING_CODES
from jobs.data.tokens import ModelLimits, resolve
from jobs.data.validate import validate_file

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "datasets" / "it-helpdesk"


def chat(user: str = "How do I reset my password?", answer: str = "Open id.example and choose Forgot password.",
         system: str | None = "You are the helpdesk.") -> dict:
    messages = [{"role": "system", "content": system}] if system else []
    return {"messages": messages + [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]}


GOOD = [json.dumps(chat(user=f"question {i}")) for i in range(12)]


def dataset(tmp_path: Path, bad: str | bytes, position: int = 3, name: str = "data.jsonl") -> Path:
    lines = [line.encode() for line in GOOD]
    lines.insert(position, bad if isinstance(bad, bytes) else bad.encode())
    path = tmp_path / name
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def run_json(ftops, *args) -> tuple[int, dict]:
    result = ftops("data", "validate", *map(str, args), "--json")
    return result.exit_code, json.loads(result.stdout)


def codes_at(report: dict, key: str = "errors") -> set[tuple[int, str]]:
    return {(issue["line"], issue["code"]) for issue in report[key]}


ERROR_CASES = {
    "E_INVALID_JSON": '{"messages": [',
    "E_NOT_UTF8": b'{"messages": "\xff\xfe"}',
    "E_NOT_OBJECT": "[1, 2, 3]",
    "E_MISSING_MESSAGES": '{"prompt": "hi"}',
    "E_EMPTY_MESSAGES": '{"messages": []}',
    "E_MISSING_ROLE": '{"messages": [{"content": "hi"}, {"role": "assistant", "content": "yo"}]}',
    "E_UNKNOWN_ROLE": '{"messages": [{"role": "robot", "content": "hi"}, {"role": "assistant", "content": "yo"}]}',
    "E_MISSING_CONTENT": '{"messages": [{"role": "user"}, {"role": "assistant", "content": "yo"}]}',
    "E_UNKNOWN_KEY": '{"messages": [{"role": "user", "content": "hi", "mood": "calm"}, {"role": "assistant", "content": "yo"}]}',
    "E_CONTENT_TYPE": '{"messages": [{"role": "user", "content": 42}, {"role": "assistant", "content": "yo"}]}',
    "E_NO_ASSISTANT": '{"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}]}',
    "E_BAD_WEIGHT": '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo", "weight": 0.5}]}',
    "E_BAD_TOOL_CALL": '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f"}}]}]}',
    "E_TOOL_CALL_ID": '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}, {"role": "tool", "content": "42"}, {"role": "assistant", "content": "done"}]}',
}


@pytest.mark.parametrize("code", sorted(ERROR_CASES))
def test_each_bad_line_reports_its_code_line_and_exit_1(ftops, tmp_path: Path, code: str) -> None:
    path = dataset(tmp_path, ERROR_CASES[code], position=4)
    exit_code, report = run_json(ftops, path)
    assert exit_code == 1
    assert (5, code) in codes_at(report)
    assert report["examples"] == 13 and report["valid_examples"] == 12
    assert all(issue["message"] for issue in report["errors"])


def test_too_many_tokens_is_an_error_and_near_the_limit_a_warning(ftops, tmp_path: Path) -> None:
    # gpt-4.1-nano allows 32,768 tokens per example; "word " is one o200k token per repeat.
    path = dataset(tmp_path, json.dumps(chat(answer="word " * 40_000)), position=0)
    with path.open("a") as handle:
        handle.write(json.dumps(chat(answer="word " * 30_000)) + "\n")
    exit_code, report = run_json(ftops, path, "--model", "gpt-4.1-nano")
    assert exit_code == 1
    assert (1, "E_TOO_MANY_TOKENS") in codes_at(report)
    assert (14, "W_NEAR_LIMIT") in codes_at(report, "warnings")


def test_fewer_than_the_minimum_examples_fails(ftops, tmp_path: Path) -> None:
    path = tmp_path / "few.jsonl"
    path.write_text("\n".join(GOOD[:3]) + "\n")
    exit_code, report = run_json(ftops, path)
    assert exit_code == 1
    assert report["errors"] == [{"line": 0, "code": "E_TOO_FEW_EXAMPLES",
                                 "message": report["errors"][0]["message"]}]
    assert "minimum of 10" in report["errors"][0]["message"]


def test_file_over_the_provider_size_limit_fails(tmp_path: Path) -> None:
    path = dataset(tmp_path, GOOD[0])
    counter, limits = resolve(None, None)
    tiny = ModelLimits(limits.model, limits.max_example_tokens, 10, max_file_bytes=100)
    report = validate_file(path, None, counter, tiny)
    assert [(i.line, i.code) for i in report.errors] == [(0, "E_FILE_TOO_LARGE")]


def test_unknown_format_is_one_line_with_exit_1(ftops, tmp_path: Path) -> None:
    path = tmp_path / "odd.jsonl"
    path.write_text('{"question": "a", "answer": "b"}\n')
    result = ftops("data", "validate", path)
    assert result.exit_code == 1
    assert "E_UNKNOWN_FORMAT" in result.stderr and "odd.jsonl:1" in result.stderr


GOOD_TEXT = "\n".join(GOOD) + "\n"
UNREADABLE = {
    "empty": (b"", "data.jsonl: E_TOO_FEW_EXAMPLES: the file is empty"),
    "blank lines": (b"\n  \n\n", "data.jsonl: E_TOO_FEW_EXAMPLES: the file has only blank lines"),
    "gzip": (gzip.compress(GOOD_TEXT.encode()), "data.jsonl: E_NOT_UTF8: the file is gzip-compressed"),
    "utf-16 with a BOM": (GOOD_TEXT.encode("utf-16"), "data.jsonl: E_NOT_UTF8: the file is UTF-16LE text"),
    "utf-16be, no BOM": (GOOD_TEXT.encode("utf-16-be"), "data.jsonl: E_NOT_UTF8: the file is UTF-16BE text"),
    "utf-32": (GOOD_TEXT.encode("utf-32"), "data.jsonl: E_NOT_UTF8: the file is UTF-32LE text"),
    "pretty-printed object": (json.dumps(chat(), indent=2).encode(),
                              "data.jsonl:1: E_INVALID_JSON: the line is '{' alone: this looks like pretty-printed"),
    "pretty-printed array": (json.dumps([chat(), chat()], indent=2).encode(),
                             "data.jsonl:1: E_INVALID_JSON: the line is '[' alone: this looks like pretty-printed"),
    "one JSON array": (json.dumps([chat(), chat()]).encode(), "data.jsonl:1: E_NOT_OBJECT: the line is a list"),
}


@pytest.mark.parametrize("case", sorted(UNREADABLE))
def test_detection_names_the_real_cause_instead_of_unknown_format(ftops, tmp_path: Path, case: str) -> None:
    """These all said `E_UNKNOWN_FORMAT: cannot tell the format`; the cause showed only with --format chat."""
    content, expected = UNREADABLE[case]
    path = tmp_path / "data.jsonl"
    path.write_bytes(content)
    for command in (["validate", path], ["prepare", path, "--out", tmp_path / "out"]):
        result = ftops("data", *command)
        assert result.exit_code == 1, result.stdout
        text = result.stderr.strip()
        assert "\n" not in text and text.startswith(f"error: {path.parent}/{expected}"), text
        assert "E_UNKNOWN_FORMAT" not in text and text.endswith(")") == (case != "one JSON array"), text
    assert not (tmp_path / "out").exists()


def test_warnings_keep_exit_0(ftops, tmp_path: Path) -> None:
    no_system = json.dumps(chat(user="question 0", system=None))
    duplicate = "  " + GOOD[0].replace("question 0", "question 0  ")  # same after normalisation
    path = tmp_path / "warn.jsonl"
    path.write_text("\n".join([*GOOD, no_system, "", duplicate]) + "\n")
    exit_code, report = run_json(ftops, path)
    assert exit_code == 0, report["errors"]
    warnings = codes_at(report, "warnings")
    assert {(13, "W_NO_SYSTEM"), (14, "W_BLANK_LINE"), (15, "W_DUPLICATE")} <= warnings
    assert "repeats line 1" in next(w["message"] for w in report["warnings"] if w["code"] == "W_DUPLICATE")


def test_assistant_truncation_warns_at_max_length(ftops, tmp_path: Path) -> None:
    path = dataset(tmp_path, json.dumps(chat(answer="word " * 300)), position=0)
    exit_code, report = run_json(ftops, path, "--max-length", "256")
    assert exit_code == 0
    assert (1, "W_ASSISTANT_TRUNCATED") in codes_at(report, "warnings")


def test_bom_and_crlf_are_accepted(ftops, tmp_path: Path) -> None:
    path = tmp_path / "windows.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(line.encode() for line in GOOD) + b"\r\n")
    exit_code, report = run_json(ftops, path)
    assert exit_code == 0 and report["errors"] == [] and report["valid_examples"] == 12


def test_json_output_has_the_documented_shape(ftops) -> None:
    exit_code, report = run_json(ftops, SAMPLE / "support-chat.jsonl")
    assert exit_code == 0
    assert {"examples", "errors", "warnings", "tokens"} <= set(report)
    assert report["examples"] == 293
    assert set(report["tokens"]["per_example"]) == {"min", "mean", "p50", "p95", "max"}
    assert report["tokens"]["assistant"] > 0 and report["messages_per_example"]["max"] == 5


def test_human_output_names_file_line_and_code(ftops, tmp_path: Path) -> None:
    path = dataset(tmp_path, '{"messages": []}', position=0)
    result = ftops("data", "validate", path)
    assert result.exit_code == 1
    assert "data.jsonl:1" in result.stderr and "E_EMPTY_MESSAGES" in result.stderr


def straightforward_tokens(path: Path) -> int:
    """The documented chat rule, one message at a time (what the benchmark compares against)."""
    tokenizer_files.ensure()
    encoding = tiktoken.get_encoding("o200k_base")
    total = 0
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        if not line.strip():
            continue
        total += 3
        for message in json.loads(line)["messages"]:
            total += 3 + len(encoding.encode_ordinary(message["role"])) + len(encoding.encode_ordinary(message["content"]))
            if "name" in message:
                total += 1 + len(encoding.encode_ordinary(message["name"]))
    return total


def test_token_total_equals_the_straightforward_count() -> None:
    path = SAMPLE / "support-chat.jsonl"
    counter, limits = resolve("gpt-4o-mini", None)
    report = validate_file(path, "chat", counter, limits, workers=1)
    assert sum(report.totals) == straightforward_tokens(path)


def test_parallel_chunks_give_the_same_report_as_one_process(tmp_path: Path) -> None:
    lines = [json.dumps(chat(user=f"q{i % 50}", answer="x" * (i % 300))) for i in range(4000)]
    lines[1234] = "{broken"
    path = tmp_path / "big.jsonl"
    path.write_text("\n".join(lines) + "\n")
    counter, limits = resolve(None, None)
    serial = validate_file(path, None, counter, limits, workers=1).as_dict()
    parallel = validate_file(path, None, counter, limits, workers=2, chunk_bytes=64 << 10).as_dict()
    assert parallel == serial
    assert (1235, "E_INVALID_JSON") in codes_at(serial)
    assert serial["warning_counts"]["W_DUPLICATE"] > 0


def test_reported_errors_are_capped_but_all_counted(ftops, tmp_path: Path) -> None:
    path = tmp_path / "garbage.jsonl"
    path.write_text("nope\n" * 500)
    exit_code, report = run_json(ftops, path, "--format", "chat", "--max-errors", "20")
    assert exit_code == 1
    assert report["error_counts"]["E_INVALID_JSON"] == 500
    assert len([e for e in report["errors"] if e["code"] == "E_INVALID_JSON"]) == 20


def test_other_formats_validate(ftops, tmp_path: Path) -> None:
    for name in ("tickets-classification.jsonl", "preferences.jsonl"):
        exit_code, report = run_json(ftops, SAMPLE / name)
        assert exit_code == 0, report["errors"]
    assert run_json(ftops, SAMPLE / "tickets-classification.jsonl")[1]["labels"]["network"] == 40
    completion = tmp_path / "completion.jsonl"
    completion.write_text("".join(json.dumps({"prompt": f"p{i}", "completion": "c"}) + "\n" for i in range(10))
                          + json.dumps({"prompt": "p", "completion": ""}) + "\n")
    exit_code, report = run_json(ftops, completion)
    assert exit_code == 1 and (11, "E_EMPTY_TEXT") in codes_at(report)


def test_preference_output_must_be_assistant(ftops, tmp_path: Path) -> None:
    good = {"input": {"messages": [{"role": "user", "content": "hi"}]},
            "preferred_output": [{"role": "assistant", "content": "Hello!"}],
            "non_preferred_output": [{"role": "assistant", "content": "What."}]}
    bad = dict(good, preferred_output=[{"role": "user", "content": "Hello!"}])
    path = tmp_path / "dpo.jsonl"
    path.write_text("".join(json.dumps(good) + "\n" for _ in range(10)) + json.dumps(bad) + "\n")
    exit_code, report = run_json(ftops, path)
    assert exit_code == 1 and (11, "E_UNKNOWN_ROLE") in codes_at(report)


def test_every_code_is_documented() -> None:
    assert set(ERROR_CASES) <= set(ERROR_CODES)
    assert all(code.startswith("W_") for code in WARNING_CODES)


def test_a_line_too_long_is_reported_and_later_line_numbers_stay_exact(tmp_path: Path, monkeypatch) -> None:
    from jobs.data import validate

    monkeypatch.setattr(validate, "BLOCK", 64)
    monkeypatch.setattr(validate, "MAX_LINE_BYTES", 256)
    short = json.dumps(chat(user="q", answer="a", system=None))
    path = tmp_path / "long.jsonl"
    path.write_text("\n".join([short, "x" * 5000, short, '{"messages": []}']) + "\n")
    counter, limits = resolve(None, None)
    report = validate_file(path, "chat", counter, limits, workers=1)
    assert [(i.line, i.code) for i in report.errors if i.line] == [(2, "E_LINE_TOO_LONG"), (4, "E_EMPTY_MESSAGES")]
    assert report.valid_examples == 2


def test_classification_texts_over_the_max_length_warn(ftops, tmp_path: Path) -> None:
    rows = [{"text": f"printer {i} is jammed", "label": "hardware" if i % 2 else "network"} for i in range(12)]
    rows.append({"text": "word " * 600, "label": "network"})
    path = tmp_path / "tickets.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    exit_code, report = run_json(ftops, path)
    assert exit_code == 0
    assert (13, "W_TEXT_TRUNCATED") in codes_at(report, "warnings")
    assert report["labels"] == {"hardware": 6, "network": 7}


@pytest.fixture(scope="module")
def hf_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny word-level tokenizer trained offline and saved as a Hugging Face tokenizer directory."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(["how do I reset my password", "open the portal"],
                                  trainers.WordLevelTrainer(special_tokens=["[UNK]"]))
    directory = tmp_path_factory.mktemp("tokenizer")
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", model_max_length=64).save_pretrained(directory)
    return directory


def test_a_local_hugging_face_tokenizer_counts_tokens(ftops, tmp_path: Path, hf_tokenizer: Path) -> None:
    rows = [{"messages": [{"role": "user", "content": "how do I reset my password"},
                          {"role": "assistant", "content": "open the portal " * (1 if i else 30)}]} for i in range(10)]
    path = tmp_path / "hf.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    exit_code, report = run_json(ftops, path, "--tokenizer", hf_tokenizer)
    assert exit_code == 0, report["errors"]
    assert report["tokenizer"] == f"hf:{hf_tokenizer.name}" and report["model"] is None
    # No chat template: the documented rule over word tokens (role words are unknown: one token each).
    per_example = 3 + (3 + 1 + 6) + (3 + 1 + 3)
    assert report["tokens"]["per_example"]["min"] == per_example
    assert (1, "W_ASSISTANT_TRUNCATED") in codes_at(report, "warnings")  # 64 = the tokenizer's model_max_length


def test_tool_calls_tools_names_weights_and_image_parts_are_accepted(ftops, tmp_path: Path) -> None:
    example = {
        "tools": [{"type": "function", "function": {"name": "lookup_ticket", "parameters": {"type": "object"}}}],
        "messages": [
            {"role": "system", "content": "You are the helpdesk."},
            {"role": "user", "name": "ana", "content": [{"type": "text", "text": "What does this error mean?"},
                                                        {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "lookup_ticket", "arguments": "{\"id\": 7}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "ticket 7: VPN error 809"},
            {"role": "assistant", "content": "Error 809 means the network blocks the VPN.", "weight": 0},
            {"role": "assistant", "content": "Switch GlobalProtect to SSL (443).", "weight": 1},
        ]}
    path = tmp_path / "tools.jsonl"
    path.write_text((json.dumps(example) + "\n") * 10)
    exit_code, report = run_json(ftops, path)
    assert exit_code == 0, report["errors"]
    encoding = tiktoken.get_encoding("o200k_base")
    trained = len(encoding.encode_ordinary("lookup_ticket")) + len(encoding.encode_ordinary("{\"id\": 7}")) \
        + len(encoding.encode_ordinary("Switch GlobalProtect to SSL (443)."))
    assert report["tokens"]["assistant_per_example"]["max"] == trained  # weight 0 answers are not trained on
