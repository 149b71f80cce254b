"""Per-example checks for the four dataset formats, and what each example contributes to the token count.

`analyze(obj, fmt)` is pure and cheap: it never tokenizes. It returns the problems it found and the texts
to count (with their kind), so the caller can tokenize a whole batch at once.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import orjson

from jobs.data.manifest import DatasetFormat

FORMATS: tuple[DatasetFormat, ...] = ("chat", "preference", "completion", "classification")

# Stable codes: pipelines match on these, so never rename one (add new ones instead).
ERROR_CODES = {
    "E_NOT_UTF8": "the line has bytes that are not UTF-8 (or the file is compressed, or UTF-16/32)",
    "E_INVALID_JSON": "the line is not one complete JSON value (e.g. pretty-printed JSON)",
    "E_LINE_TOO_LONG": "the line is longer than ftops reads as one example",
    "E_NOT_OBJECT": "the line is JSON but not an object",
    "E_UNKNOWN_FORMAT": "no line looks like any supported format",
    "E_MISSING_MESSAGES": "`messages` is missing or not a list",
    "E_EMPTY_MESSAGES": "`messages` is an empty list",
    "E_MISSING_ROLE": "a message has no `role`",
    "E_UNKNOWN_ROLE": "a message's role is not system/user/assistant/tool/function",
    "E_MISSING_CONTENT": "a message has no content (or only whitespace)",
    "E_UNKNOWN_KEY": "a message has a key the provider rejects",
    "E_CONTENT_TYPE": "content is neither a string nor a list of typed parts",
    "E_NO_ASSISTANT": "no assistant message to learn from",
    "E_BAD_WEIGHT": "`weight` is not 0 or 1, or is not on an assistant message",
    "E_BAD_TOOL_CALL": "`tool_calls`/`function_call`/`tools` are malformed",
    "E_TOOL_CALL_ID": "a tool message has no `tool_call_id`",
    "E_MISSING_FIELD": "a required field of the format is missing",
    "E_FIELD_TYPE": "a field has the wrong type",
    "E_EMPTY_TEXT": "a required text is empty",
    "E_TOO_MANY_TOKENS": "the example is over the model's per-example token limit",
    "E_TOO_FEW_EXAMPLES": "fewer valid examples than the provider's minimum (or an empty file)",
    "E_FILE_TOO_LARGE": "the file is over the provider's size limit",
}
WARNING_CODES = {
    "W_DUPLICATE": "the example repeats an earlier one (after normalisation)",
    "W_NO_SYSTEM": "no system message",
    "W_NEAR_LIMIT": "the example uses 90% or more of the per-example token limit",
    "W_ASSISTANT_TRUNCATED": "trained-on assistant tokens fall beyond --max-length and will be cut",
    "W_TEXT_TRUNCATED": "a classification text is longer than the model's max length",
    "W_BLANK_LINE": "a blank line (skipped; prepare removes it)",
    "W_EXTRA_KEY": "a top-level key the provider does not use (prepare removes it)",
    "W_NOTHING_TRAINED": "every assistant message has weight 0",
    "W_CLASS_IMBALANCE": "the largest class has over 10x the examples of the smallest",
    "W_RARE_LABEL": "a label has fewer than 3 examples (too few to stratify)",
}

CHAT_ROLES = frozenset({"system", "user", "assistant", "tool", "function"})
_PLAIN_ROLES = frozenset({"system", "user", "assistant"})  # roles whose {role, content} messages need no more checks
MESSAGE_KEYS = frozenset({"role", "content", "name", "weight", "tool_calls", "tool_call_id", "function_call"})
CHAT_TOP_KEYS = frozenset({"messages", "tools", "functions", "parallel_tool_calls"})
PREFERENCE_TOP_KEYS = frozenset({"input", "preferred_output", "non_preferred_output"})
COMPLETION_TOP_KEYS = frozenset({"prompt", "completion"})
CLASSIFICATION_TOP_KEYS = frozenset({"text", "label"})
TOP_KEYS: dict[str, frozenset[str]] = {"chat": CHAT_TOP_KEYS, "preference": PREFERENCE_TOP_KEYS,
                                       "completion": COMPLETION_TOP_KEYS, "classification": CLASSIFICATION_TOP_KEYS}

# OpenAI's documented chat accounting ("How to count tokens with tiktoken", OpenAI cookbook): every message
# costs 3 tokens of framing plus its fields, a `name` one more, and every example 3 more to prime the reply.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
TOKENS_PER_EXAMPLE = 3

# Kinds of counted text: plain, trained-on (assistant with weight 1), repeated (worth caching, e.g. system).
PLAIN, TRAINED, REPEATED = 0, 1, 2


@dataclass(slots=True)
class Analysis:
    """What one example is: its problems, and the texts whose tokens make up its count."""

    errors: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    kinds: list[int] = field(default_factory=list)
    overhead: int = 0
    """Framing tokens (per-message and per-example constants) added to the counted texts."""
    messages: int = 0
    label: str | None = None
    conversation: list[dict] | None = None
    """The messages in order (chat and preference), for tokenizers that apply a chat template."""

    def add(self, text: str, kind: int = PLAIN) -> None:
        self.texts.append(text)
        self.kinds.append(kind)


def detect(obj: Any) -> DatasetFormat | None:
    """The format a parsed line is written in, from its keys."""
    if not isinstance(obj, dict):
        return None
    if "messages" in obj:
        return "chat"
    if "input" in obj and ("preferred_output" in obj or "non_preferred_output" in obj):
        return "preference"
    if "prompt" in obj and "completion" in obj:
        return "completion"
    if "text" in obj and "label" in obj:
        return "classification"
    return None


def analyze(obj: dict, fmt: DatasetFormat) -> Analysis:
    """Check one parsed example of format `fmt` (the caller made sure it is a dict)."""
    result = Analysis()
    keys = TOP_KEYS[fmt]
    for key in (() if keys.issuperset(obj) else obj):  # the usual case checks every key in one C call
        if key not in keys:
            result.warnings.append(("W_EXTRA_KEY", f"top-level key {key!r} (first seen here) is not part of the "
                                                   f"{fmt} format; `ftops data prepare` removes it from the output"))
    if fmt == "chat":
        _chat(obj, result)
    elif fmt == "preference":
        _preference(obj, result)
    elif fmt == "completion":
        _completion(obj, result)
    else:
        _classification(obj, result)
    return result


def _hint_other_format(obj: dict, expected: str) -> str:
    other = detect(obj)
    return f"; this line looks like the {other} format, and a file holds one format" if other and other != expected else ""


def _chat(obj: dict, result: Analysis) -> None:
    messages = obj.get("messages")
    if not isinstance(messages, list):
        what = "missing" if messages is None else f"a {type(messages).__name__}, not a list"
        result.errors.append(("E_MISSING_MESSAGES", f"`messages` is {what}; give a list of "
                                                     f"{{role, content}} objects{_hint_other_format(obj, 'chat')}"))
        return
    if not messages:
        result.errors.append(("E_EMPTY_MESSAGES", "`messages` is empty; add at least a user and an assistant message"))
        return
    _tools(obj, result, "")
    trained = _messages(messages, "messages", result)
    if result.errors:
        return
    if not any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages):
        result.errors.append(("E_NO_ASSISTANT", "no assistant message; add the answer the model should learn "
                                                "as a message with role \"assistant\""))
        return
    if not trained:
        result.warnings.append(("W_NOTHING_TRAINED", "every assistant message has weight 0, so the model learns "
                                                     "nothing from this example; set weight 1 on at least one"))
    if messages[0].get("role") != "system":
        result.warnings.append(("W_NO_SYSTEM", "no system message first; examples without one train the model "
                                               "to behave that way without it at inference time"))
    result.messages = len(messages)
    result.overhead += TOKENS_PER_EXAMPLE
    result.conversation = messages


def _tools(obj: dict, result: Analysis, where: str) -> None:
    for key in ("tools", "functions"):
        if key not in obj:
            continue
        value = obj[key]
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            result.errors.append(("E_BAD_TOOL_CALL", f"`{where}{key}` must be a list of tool definition objects"))
            continue
        # Tool definitions reach the model as text; count them as their compact JSON.
        result.add(orjson.dumps(value).decode(), REPEATED)
    if "parallel_tool_calls" in obj and not isinstance(obj["parallel_tool_calls"], bool):
        result.errors.append(("E_FIELD_TYPE", f"`{where}parallel_tool_calls` must be true or false"))


def _messages(messages: list, where: str, result: Analysis, only_assistant: bool = False) -> int:
    """Check each message; add its texts; return how many assistant messages are trained on."""
    trained = 0
    errors = result.errors
    texts, kinds = result.texts, result.kinds
    for index, message in enumerate(messages):
        # `at` names the message in error texts only; building it for every valid message costs as much as a check
        if not isinstance(message, dict):
            at = f"{where}[{index}]"
            errors.append(("E_NOT_OBJECT", f"{at} is a {_type(message)}; each message must be an object "
                                           "like {\"role\": \"user\", \"content\": \"...\"}"))
            continue
        if not MESSAGE_KEYS.issuperset(message):
            unknown = [key for key in message if key not in MESSAGE_KEYS]
            errors.append(("E_UNKNOWN_KEY", f"{where}[{index}] has unknown key {unknown[0]!r}; allowed: "
                                            f"{', '.join(sorted(MESSAGE_KEYS))}"))
        role = message.get("role")
        if role in _PLAIN_ROLES and len(message) == 2 and type(message.get("content")) is str:
            # The common {"role", "content": str} message: the checks below reduce to the content's emptiness.
            if only_assistant and role != "assistant":
                errors.append(("E_UNKNOWN_ROLE", f"{where}[{index}] has role {role!r}; preference outputs are "
                                                 "assistant messages"))
                continue
            content = message["content"]
            if not content or content.isspace():  # `not content.strip()` without copying the text
                errors.append(("E_MISSING_CONTENT", f"{where}[{index}] ({role}) has empty content; write the message "
                                                    "text or remove the message"))
                continue
            result.overhead += TOKENS_PER_MESSAGE
            texts.append(role)
            texts.append(content)
            if role == "assistant":
                kinds.append(REPEATED)
                kinds.append(TRAINED)
                trained += 1
            else:
                kinds.append(REPEATED)
                kinds.append(REPEATED if role == "system" else PLAIN)
            continue
        at = f"{where}[{index}]"
        if role is None:
            result.errors.append(("E_MISSING_ROLE", f"{at} has no \"role\"; add one of system, user, assistant, tool"))
            continue
        if not isinstance(role, str) or role not in CHAT_ROLES:
            result.errors.append(("E_UNKNOWN_ROLE", f"{at} has role {role!r}; use one of system, user, assistant, tool"))
            continue
        if only_assistant and role != "assistant":
            result.errors.append(("E_UNKNOWN_ROLE", f"{at} has role {role!r}; preference outputs are assistant messages"))
            continue
        is_trained = role == "assistant" and message.get("weight", 1) == 1
        kind = TRAINED if is_trained else (REPEATED if role == "system" else PLAIN)
        result.overhead += TOKENS_PER_MESSAGE
        result.add(role, REPEATED)
        if "weight" in message:
            weight = message["weight"]
            if role != "assistant":
                result.errors.append(("E_BAD_WEIGHT", f"{at} is a {role} message with `weight`; only assistant "
                                                      "messages take a weight, remove it"))
            elif type(weight) is not int or weight not in (0, 1):
                result.errors.append(("E_BAD_WEIGHT", f"{at}.weight is {weight!r}; use 0 (do not train on this "
                                                      "message) or 1 (train on it)"))
        if "name" in message:
            name = message["name"]
            if not isinstance(name, str) or not name:
                result.errors.append(("E_FIELD_TYPE", f"{at}.name must be a non-empty string"))
            else:
                result.overhead += TOKENS_PER_NAME
                result.add(name, REPEATED)
        has_calls = _calls(message, at, role, result, kind)
        if role == "tool" and not isinstance(message.get("tool_call_id"), str):
            result.errors.append(("E_TOOL_CALL_ID", f"{at} is a tool message without a string \"tool_call_id\"; "
                                                    "set it to the id of the assistant tool call it answers"))
        _content(message, at, role, has_calls, result, kind)
        trained += is_trained
    return trained


def _calls(message: dict, at: str, role: str, result: Analysis, kind: int) -> bool:
    calls = message.get("tool_calls")
    legacy = message.get("function_call")
    if calls is None and legacy is None:
        return False
    if role != "assistant":
        result.errors.append(("E_BAD_TOOL_CALL", f"{at} is a {role} message with tool calls; only assistant "
                                                 "messages make tool calls"))
        return True
    functions = []
    if calls is not None:
        if not isinstance(calls, list) or not calls:
            result.errors.append(("E_BAD_TOOL_CALL", f"{at}.tool_calls must be a non-empty list"))
            return True
        for number, call in enumerate(calls):
            if not (isinstance(call, dict) and isinstance(call.get("id"), str) and call.get("type", "function") == "function"
                    and isinstance(call.get("function"), dict)):
                result.errors.append(("E_BAD_TOOL_CALL", f"{at}.tool_calls[{number}] must be "
                                                         "{\"id\": str, \"type\": \"function\", \"function\": {...}}"))
                return True
            functions.append((f"{at}.tool_calls[{number}].function", call["function"]))
    if legacy is not None:
        functions.append((f"{at}.function_call", legacy))
    for where, function in functions:
        if not (isinstance(function, dict) and isinstance(function.get("name"), str)
                and isinstance(function.get("arguments"), str)):
            result.errors.append(("E_BAD_TOOL_CALL", f"{where} must have a string \"name\" and \"arguments\" "
                                                     "(the arguments as a JSON string)"))
            return True
        result.add(function["name"], kind)
        result.add(function["arguments"], kind)
    return True


def _content(message: dict, at: str, role: str, has_calls: bool, result: Analysis, kind: int) -> None:
    content = message.get("content")
    if content is None:
        if not has_calls:
            result.errors.append(("E_MISSING_CONTENT", f"{at} ({role}) has no \"content\"; add the message text"))
        return
    if isinstance(content, str):
        if not content.strip() and not has_calls:
            result.errors.append(("E_MISSING_CONTENT", f"{at} ({role}) has empty content; write the message text "
                                                       "or remove the message"))
            return
        result.add(content, kind)
        return
    if isinstance(content, list) and content:
        texts = 0
        for number, part in enumerate(content):
            ptype = part.get("type") if isinstance(part, dict) else None
            if ptype == "text" and isinstance(part.get("text"), str):
                result.add(part["text"], kind)
                texts += bool(part["text"].strip())
            elif ptype == "image_url" and role == "user" and isinstance(part.get("image_url"), dict) \
                    and isinstance(part["image_url"].get("url"), str):
                texts += 1  # images are billed by the provider's image rule, not counted as text here
            else:
                result.errors.append(("E_CONTENT_TYPE", f"{at}.content[{number}] must be {{\"type\": \"text\", "
                                                        "\"text\": str} or, in user messages, {\"type\": "
                                                        "\"image_url\", \"image_url\": {\"url\": str}}"))
                return
        if not texts and not has_calls:
            result.errors.append(("E_MISSING_CONTENT", f"{at} ({role}) has only empty content parts"))
        return
    result.errors.append(("E_CONTENT_TYPE", f"{at}.content is a {_type(content)}; use a string or a non-empty "
                                            "list of {\"type\": \"text\", \"text\": ...} parts"))


def _preference(obj: dict, result: Analysis) -> None:
    prompt = obj.get("input")
    missing = [key for key in ("input", "preferred_output", "non_preferred_output") if key not in obj]
    if missing:
        result.errors.append(("E_MISSING_FIELD", f"missing {', '.join(missing)}; a preference example has input "
                                                 "{messages}, preferred_output and non_preferred_output"))
        return
    if not isinstance(prompt, dict):
        result.errors.append(("E_FIELD_TYPE", "`input` must be an object with `messages`"))
        return
    messages = prompt.get("messages")
    if not isinstance(messages, list) or not messages:
        code = "E_EMPTY_MESSAGES" if isinstance(messages, list) else "E_MISSING_MESSAGES"
        result.errors.append((code, "`input.messages` must be a non-empty list of {role, content} messages"))
        return
    _tools(prompt, result, "input.")
    _messages(messages, "input.messages", result)
    conversation = list(messages)
    for key in ("preferred_output", "non_preferred_output"):
        output = obj[key]
        if not isinstance(output, list) or not output:
            result.errors.append(("E_FIELD_TYPE", f"`{key}` must be a non-empty list of assistant messages"))
            continue
        _messages(output, key, result, only_assistant=True)
        conversation.extend(output)
    if result.errors:
        return
    if messages[0].get("role") != "system":
        result.warnings.append(("W_NO_SYSTEM", "no system message first in input.messages"))
    result.messages = len(conversation)
    result.overhead += 2 * TOKENS_PER_EXAMPLE  # two completions are primed: preferred and non-preferred
    result.conversation = conversation


def _required_text(obj: dict, key: str, result: Analysis, allow_empty: bool = False) -> str | None:
    if key not in obj:
        result.errors.append(("E_MISSING_FIELD", f"missing `{key}`"))
        return None
    value = obj[key]
    if not isinstance(value, str):
        result.errors.append(("E_FIELD_TYPE", f"`{key}` is a {_type(value)}; it must be a string"))
        return None
    if not allow_empty and not value.strip():
        result.errors.append(("E_EMPTY_TEXT", f"`{key}` is empty; write the text or drop the example"))
        return None
    return value


def _completion(obj: dict, result: Analysis) -> None:
    prompt = _required_text(obj, "prompt", result, allow_empty=True)
    completion = _required_text(obj, "completion", result)
    if prompt is None or completion is None:
        return
    result.add(prompt)
    result.add(completion, TRAINED)
    result.messages = 2


def _classification(obj: dict, result: Analysis) -> None:
    text = _required_text(obj, "text", result)
    if "label" not in obj:
        result.errors.append(("E_MISSING_FIELD", "missing `label`"))
        return
    label = obj["label"]
    if type(label) not in (str, int) or (isinstance(label, str) and not label.strip()):
        result.errors.append(("E_FIELD_TYPE", f"`label` is {label!r}; use a non-empty string or an integer class id"))
        return
    if text is None:
        return
    result.add(text)
    result.messages = 1
    result.label = str(label)


def _type(value: Any) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", int: "number", float: "number",
            type(None): "null"}.get(type(value), type(value).__name__)


# --- normalisation (prepare cleans with it; validate hashes normalised examples to find duplicates) ---

_ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")
_ODD_SPACES = re.compile("[\u00a0\u2007\u202f]")
_BLANK_RUNS = re.compile(r"\n{3,}")
MAX_CLEAN_DEPTH = 64
_CLEAN_DEPTH_CHECKED = 32


def clean_text(text: str) -> str:
    """NFC, no zero-width characters, `\\n` line ends, no trailing spaces on lines, at most one blank line in a row,
    no leading or trailing whitespace. Inner spacing stays: indentation in code answers matters."""
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
        # search first: substituting (or str.translate) on every non-ASCII string costs as much as tokenizing it
        if _has_invisible(text):
            text = _ODD_SPACES.sub(" ", _ZERO_WIDTH.sub("", text))
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.strip()
    if "\n" in text:  # one fast scan; most short texts have no line breaks at all
        if " \n" in text or "\t\n" in text:
            text = "\n".join(line.rstrip() for line in text.split("\n"))
        if "\n\n\n" in text:
            text = _BLANK_RUNS.sub("\n\n", text)
    return text


def clean(value: Any, depth: int = 0) -> Any:
    """`clean_text` applied to every string value (keys untouched); absurdly deep values are left as they are."""
    if isinstance(value, str):
        return clean_text(value)
    if depth > MAX_CLEAN_DEPTH:
        return value
    if isinstance(value, dict):
        return {key: clean(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list):
        return [clean(item, depth + 1) for item in value]
    return value


def canonical(obj: dict, fmt: DatasetFormat) -> dict:
    """The example as prepare writes it: only the format's own keys, every string cleaned."""
    keys = TOP_KEYS[fmt]
    return {key: clean(value, 1) for key, value in obj.items() if key in keys}


def _has_invisible(text: str) -> bool:
    """Whether the text holds a character that `clean_text` removes or replaces (the two regexes below); a needle wider than the text's storage (e.g. U+200B in a
    Latin-1 string) is rejected without a scan, and the others are single-character scans."""
    return ("\u00a0" in text or "\u200b" in text or "\u200c" in text or "\u200d" in text or "\u2060" in text
            or "\ufeff" in text or "\u2007" in text or "\u202f" in text)


def is_clean_text(text: str) -> bool:
    """Exactly `clean_text(text) == text`, without building the cleaned copy."""
    if not text.isascii() and (not unicodedata.is_normalized("NFC", text) or _has_invisible(text)):
        return False
    if not text:
        return True
    if "\r" in text or text[0].isspace() or text[-1].isspace():
        return False
    return "\n" not in text or not (" \n" in text or "\t\n" in text or "\n\n\n" in text)


def is_clean(value: list | dict, depth: int = 1) -> bool:
    """True only if `clean(value)` equals `value` (every string in it is clean); False also for deep values,
    which the caller then cleans the slow way."""
    for item in value.values() if type(value) is dict else value:
        kind = type(item)
        if kind is str:
            if not is_clean_text(item):
                return False
        elif (kind is dict or kind is list) and (depth >= _CLEAN_DEPTH_CHECKED or not is_clean(item, depth + 1)):
            return False
    return True
