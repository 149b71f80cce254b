"""Reading the channels' JSONL and turning it into model inputs.

Chat (OpenAI format): `{"messages": [{"role": ..., "content": ..., "weight": 0|1}, ...]}`. Loss is on assistant
tokens only, and not on assistant messages with `weight: 0`. Masks come from the model's own chat template:
the characters an assistant message adds to the rendered conversation, mapped onto tokens via offsets. That
works with any template (a `{% generation %}` block is not required, and most base models' templates lack one).
Preference (OpenAI DPO format): `{"input": {"messages": [...]}, "preferred_output": [...],
"non_preferred_output": [...]}`. Classification: `{"text": ..., "label": ...}`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_jsonl(files: list[Path], limit: int | None = None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in files:
        with open(path, encoding="utf-8-sig") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError as exc:
                    raise SystemExit(f"error: {path}:{number}: not valid JSON ({exc.msg})") from None
                if not isinstance(row, dict):
                    raise SystemExit(f"error: {path}:{number}: each line must be a JSON object")
                row["_where"] = f"{path.name}:{number}"
                rows.append(row)
                if limit is not None and len(rows) >= limit:
                    return rows
    return rows


def _need(row: dict, key: str, kind: type) -> Any:
    value = row.get(key)
    if not isinstance(value, kind):
        raise SystemExit(f"error: {row.get('_where', '?')}: {key}: expected {kind.__name__}")
    return value


def _clean_messages(messages: list[dict]) -> list[dict]:
    return [{"role": m["role"], "content": m.get("content") or ""} for m in messages]


def _render(tokenizer, messages: list[dict], generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def chat_example(tokenizer, row: dict, max_length: int) -> dict[str, list[int]] | None:
    """input_ids + assistant_masks for one conversation; None if no assistant token carries loss."""
    messages = _need(row, "messages", list)
    clean = _clean_messages(messages)
    text = _render(tokenizer, clean, False)
    spans: list[tuple[int, int]] = []
    for i, message in enumerate(messages):
        if message.get("role") != "assistant" or message.get("weight", 1) == 0:
            continue
        before = _render(tokenizer, clean[:i], True) if i else ""
        upto = _render(tokenizer, clean[:i + 1], False)
        if not (upto.startswith(before) and text.startswith(upto)):
            raise SystemExit(f"error: {row.get('_where', '?')}: the model's chat template does not render "
                             "conversations prefix by prefix; assistant-only loss cannot be located")
        spans.append((len(before), len(upto)))
    if not spans:
        return None
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, truncation=True,
                        max_length=max_length)
    mask = [1 if any(start <= a < end for start, end in spans) else 0 for a, _b in encoded["offset_mapping"]]
    if not any(mask):
        return None  # the assistant part was truncated away
    return {"input_ids": list(encoded["input_ids"]), "assistant_masks": mask}


def chat_dataset(tokenizer, rows: list[dict], max_length: int) -> list[dict[str, list[int]]]:
    examples = [ex for row in rows if (ex := chat_example(tokenizer, row, max_length)) is not None]
    if not examples:
        raise SystemExit("error: no training example has an assistant message with weight 1")
    return examples


def preference_example(row: dict) -> dict[str, list[dict]]:
    """OpenAI preference row -> TRL's conversational prompt/chosen/rejected."""
    source = row.get("input")
    if not isinstance(source, dict) or not isinstance(source.get("messages"), list):
        raise SystemExit(f"error: {row.get('_where', '?')}: input.messages: expected a list of messages")
    chosen = _need(row, "preferred_output", list)
    rejected = _need(row, "non_preferred_output", list)
    return {"prompt": _clean_messages(source["messages"]), "chosen": _clean_messages(chosen),
            "rejected": _clean_messages(rejected)}


def label_mapping(rows: list[dict]) -> list[str]:
    """Labels in a stable order (sorted as strings) so label ids do not depend on file order."""
    labels = sorted({str(_need_label(row)) for row in rows})
    if len(labels) < 2:
        raise SystemExit(f"error: classification needs at least two labels in the training channel, found {labels}")
    return labels


def _need_label(row: dict) -> Any:
    if "label" not in row or isinstance(row["label"], (dict, list)) or row["label"] is None:
        raise SystemExit(f"error: {row.get('_where', '?')}: label: expected a string or number")
    _need(row, "text", str)
    return row["label"]


def classification_examples(tokenizer, rows: list[dict], labels: list[str], max_length: int) -> list[dict]:
    index = {label: i for i, label in enumerate(labels)}
    out = []
    for row in rows:
        label = str(_need_label(row))
        if label not in index:
            raise SystemExit(f"error: {row.get('_where', '?')}: label {label!r} does not occur in the training "
                             "channel")
        encoded = tokenizer(row["text"], truncation=True, max_length=max_length)
        out.append({"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"],
                    "labels": index[label]})
    return out


def classification_metrics(predictions, label_ids) -> dict[str, float]:
    """Accuracy and macro-F1 (no scikit-learn in the container requirements)."""
    import numpy as np

    predicted = np.asarray(predictions).argmax(-1)
    truth = np.asarray(label_ids)
    classes = np.union1d(predicted, truth)
    f1s = []
    for c in classes:
        tp = float(np.sum((predicted == c) & (truth == c)))
        fp = float(np.sum((predicted == c) & (truth != c)))
        fn = float(np.sum((predicted != c) & (truth == c)))
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return {"accuracy": float(np.mean(predicted == truth)), "f1": float(np.mean(f1s))}
