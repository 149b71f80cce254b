"""Secrets never reach a rendered file: values that look like keys, tokens, passwords or connection strings
are rejected with the field named. Jobs authenticate with roles and managed identities, never with values.

Three rules: a secret-looking *name* with a value (HF_TOKEN, DB_PASSWORD, api_key, ...), a secret-looking
*value* anywhere (AWS access keys, PEM keys, provider tokens, JWTs, connection strings, URLs with passwords),
and, for rendered files, Yelp's maintained `detect-secrets` detectors (some twenty key formats plus its base64
and hex entropy checks), which find keys under neutral names (an AWS secret key in `NOTES`, a WandB key, a
Stripe `sk_live_` key) that no list of names can.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import cache, lru_cache
from typing import Any

import orjson

SECRET_NAME = re.compile(
    r"(?i)(^|[_.:-])(pass(word|wd)?|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|"
    r"client[_-]?secret|credentials?|connection[_-]?string|conn[_-]?str|sas|auth)($|[_.:-])")
SECRET_VALUE = re.compile("|".join(f"(?P<{name}>{pattern})" for name, pattern in {
    "aws_access_key_id": r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b",
    "private_key": r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    "github_token": r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{30,})",
    "openai_key": r"\bsk-(?:proj-|svcacct-)?[A-Za-z0-9_-]{20,}",
    "huggingface_token": r"\bhf_[A-Za-z0-9]{30,}",
    "slack_token": r"\bxox[abprs]-[A-Za-z0-9-]{10,}",
    "google_api_key": r"\bAIza[0-9A-Za-z_-]{35}",
    "jwt": r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.",
    "connection_string": r"(?i:AccountKey|SharedAccessKey|SharedAccessSignature|Password|Pwd)\s*=\s*[^;\s]+",
    "sas_signature": r"[?&](?i:sig)=[A-Za-z0-9%+/=]{20,}",
    "url_credentials": r"\b[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@",
    "azure_storage_key": r"[A-Za-z0-9+/]{86}==",
}.items()))


# Substrings every SECRET_VALUE pattern needs: a clean document is cleared with `in` checks alone (Python's
# regex engine is slow on large texts with this many alternatives). All ASCII, so they are found in UTF-8 bytes
# exactly where they are in the decoded text.
_TRIGGERS = (b"AKIA", b"ASIA", b"AGPA", b"AIDA", b"AROA", b"PRIVATE KEY", b"ghp_", b"gho_", b"ghu_", b"ghs_",
             b"ghr_", b"github_pat_", b"xox", b"AIza", b"eyJ", b"@", b"==")
_TRIGGERS_LOWER = (b"accountkey", b"sharedaccess", b"password", b"pwd", b"sig=")


# One scan (twice as fast as a loop of `in` checks on documents of a few kB).
_TRIGGER = re.compile(b"|".join(map(re.escape, _TRIGGERS)))
# What `\w` matches among ASCII characters (str patterns): letters, digits and the underscore.
_ASCII_WORD = [chr(c).isalnum() or c == 0x5F for c in range(128)]
# Every alternative of SECRET_NAME contains one of these stems: data whose ASCII text (lowercased) holds none
# of them has no secret-looking name, so the walk over its keys can be skipped.
_NAME_STEMS = (b"pass", b"pwd", b"secret", b"token", b"api", b"key", b"credential", b"conn", b"sas", b"auth")


def _may_hold_secret_value(text: bytes) -> bool:
    """False when no SECRET_VALUE pattern can match anywhere in `text` (UTF-8); True means "look closer"."""
    if _TRIGGER.search(text):
        return True
    # bytes.lower() is str.lower() for ASCII; other text is lowered as str (a few non-ASCII letters lower to ASCII).
    lowered = text.lower() if text.isascii() else text.decode().lower().encode()
    for trigger in _TRIGGERS_LOWER:  # `in` on five needles beats one regex here (their first letters are common)
        if trigger in lowered:
            return True
    return _may_start_openai_key(text) or _may_hold_hf_token(text)


def _may_hold_hf_token(text: bytes) -> bool:
    """Whether some `hf_` is followed by 30 ASCII letters or digits (a plain `in` would flag every
    `hf_model_id` key). JSON escapes are never letters or digits, so the run is the same in the value."""
    start = text.find(b"hf_")
    while start != -1:
        run = text[start + 3:start + 33]
        if len(run) == 30 and run.isalnum():
            return True
        start = text.find(b"hf_", start + 1)
    return False


def _may_start_openai_key(text: bytes) -> bool:
    """Whether `\\bsk-` can match in the decoded text: some `sk-` at the start or after a non-word character.

    Decoding and running the regex over the whole document is slow, and `sk-` is common (`helpdesk-`), so each
    occurrence is judged by the byte before it; a non-ASCII byte (part of a character that may be a Unicode
    word character) counts as a possible boundary, and so does a backslash up to 6 bytes before it (`text`
    is JSON: `\\nsk-` or `\\u0020sk-` is a newline or space before `sk-` in the value), so the answer errs
    towards "look closer".
    """
    start = text.find(b"sk-")
    while start != -1:
        if (start == 0 or text[start - 1] >= 0x80 or not _ASCII_WORD[text[start - 1]]
                or b"\\" in text[max(0, start - 6):start]):
            return True
        start = text.find(b"sk-", start + 1)
    return False


def rendered_secret(data: Any, text: bytes, generated: Iterable[str] = ()) -> tuple[str, str] | None:
    """Secret-looking values in a rendered document (`text` is its serialised form).

    Names are checked where they are written (definition files and environment tags, by `find_secret`);
    here every value is checked again, so nothing from any source reaches a rendered file. `generated`: the
    content hashes ftops itself wrote into the document (idempotency key, dataset id), which look random.
    """
    found = find_secret(data) if _may_hold_secret_value(text) else None
    return found or detected_secret(data, generated)


# detect-secrets' detectors, minus the two it documents as noisy for this use: KeywordDetector (names; the
# SECRET_NAME rule above covers them) and IPPublicDetector (an address is not a credential). Entropy limits are
# detect-secrets' own defaults (base64 4.5, hex 3.0).
_SKIPPED_DETECTORS = {"KeywordDetector", "IPPublicDetector", "Base64HighEntropyString", "HexHighEntropyString"}
MIN_DETECTED_LENGTH = 16
"""Shorter values are left to the patterns above (every format detect-secrets knows is longer, and entropy says
nothing about a handful of characters)."""


@cache
def _detectors() -> list[Any]:
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.plugins.high_entropy_strings import Base64HighEntropyString, HexHighEntropyString

    plugins = [plugin() for plugin in get_mapping_from_secret_type_to_class().values()
               if plugin.__name__ not in _SKIPPED_DETECTORS]
    return plugins + [Base64HighEntropyString(limit=4.5), HexHighEntropyString(limit=3.0)]


@cache
def _regex_only() -> dict[int, tuple[re.Pattern[str], ...]]:
    """The detectors that are plain `RegexBasedDetector`s (by id), with their `denylist` patterns.

    Such a detector yields nothing for a line none of its patterns matches; searching the patterns directly
    answers that without the detector's per-call machinery (a set, generators, a findall per pattern), which
    was most of the cost of scanning a value. Detectors with their own analysis (JWT, entropy) always run.
    """
    from detect_secrets.plugins.base import BasePlugin, RegexBasedDetector

    covered = {}
    for plugin in _detectors():
        kind = type(plugin)
        if (isinstance(plugin, RegexBasedDetector) and kind.analyze_string is RegexBasedDetector.analyze_string
                and kind.analyze_line is BasePlugin.analyze_line):
            covered[id(plugin)] = tuple(plugin.denylist)
    return covered


@lru_cache(maxsize=65536)  # jobs of one render share most values: each distinct one is scanned once
def _detect(value: str) -> str | None:
    from detect_secrets.filters import heuristic

    line = orjson.dumps(value).decode()  # a quoted string, as the entropy detectors expect
    covered = _regex_only()
    for plugin in _detectors():
        patterns = covered.get(id(plugin))
        if patterns is not None and not any(pattern.search(line) for pattern in patterns):
            continue  # what findall would find nothing in: the detector yields nothing
        for secret in plugin.analyze_line(filename="rendered.json", line=line, line_number=0):
            candidate = secret.secret_value or ""
            if heuristic.is_sequential_string(candidate) or heuristic.is_potential_uuid(candidate) or \
                    heuristic.is_templated_secret(candidate):
                continue  # detect-secrets' own false-positive filters
            return secret.type
    return None


def detected_secret(data: Any, generated: Iterable[str] = ()) -> tuple[str, str] | None:
    """The first (dotted path, reason) of a string value detect-secrets recognises as a secret, or None.
    Substrings in `generated` (hashes ftops computed) are removed before scanning."""
    hashes = sorted((g for g in generated if g), key=len, reverse=True)
    # Whether any value is found, first, without paths (building a dotted path for every string of every job
    # was most of this scan's time); the path is worked out only for a document with a finding, by walking it
    # again in order to the first value found.
    if not any(_detect(_without(value, hashes)) for value in _long_values(data)):
        return None
    for path, value in _strings(data, ""):
        if len(value) < MIN_DETECTED_LENGTH:
            continue
        kind = _detect(_without(value, hashes))
        if kind:
            return path, f"detect-secrets finds a {kind}"
    return None  # not reached: the first walk found one


def _without(value: str, hashes: list[str]) -> str:
    for known in hashes:
        if known in value:
            value = value.replace(known, "")
    return value


def _long_values(data: Any) -> set[str]:
    """The distinct string values of `data` that are long enough to scan, in no particular order."""
    found: set[str] = set()
    stack = [data]
    pop, push, add = stack.pop, stack.extend, found.add
    while stack:
        item = pop()
        kind = type(item)
        if kind is dict:
            push(item.values())
        elif kind is list:
            push(item)
        elif kind is str:
            if len(item) >= MIN_DETECTED_LENGTH:
                add(item)
        elif isinstance(item, str):  # a str subclass: `_strings` yields it too
            if len(item) >= MIN_DETECTED_LENGTH:
                add(item)
        elif isinstance(item, dict):
            push(item.values())
        elif isinstance(item, list):
            push(item)
    return found


def _strings(data: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(data, str):
        yield path, data
    elif isinstance(data, dict):
        for key, value in data.items():
            yield from _strings(value, f"{path}.{key}" if path else str(key))
    elif isinstance(data, list):
        for index, item in enumerate(data):
            yield from _strings(item, f"{path}[{index}]")


def first_secret(data: Any) -> tuple[str, str] | None:
    """`find_secret(data)`, with the value patterns skipped when the data holds none of their substrings."""
    try:
        text = orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS)  # every string, unchanged or JSON-escaped
    except TypeError:  # a value JSON cannot hold (a set, bytes, a huge int): the long way
        return find_secret(data)
    values = _may_hold_secret_value(text)
    if not values and text.isascii():  # non-ASCII text may hold letters that IGNORECASE folds onto ASCII ones
        lowered = text.lower()
        if not any(stem in lowered for stem in _NAME_STEMS):
            return None
    return find_secret(data, values=values)


def find_secret(data: Any, path: str = "", *, values: bool = True) -> tuple[str, str] | None:
    """The first (dotted path, reason) that looks like a secret in `data` (names and values), or None.

    `values=False` checks names only (for data already known to hold no value pattern's substrings).
    """
    if isinstance(data, dict):
        for key, value in data.items():
            where = f"{path}.{key}" if path else str(key)
            if (isinstance(value, str) and value and isinstance(key, str) and SECRET_NAME.search(key)
                    and not key.startswith("ftops")):
                return where, f"{key!r} names a secret"
            found = find_secret(value, where, values=values)
            if found:
                return found
        # Tag lists and env lists carry the name in a sibling field ({"Key": "DB_PASSWORD", "Value": ...}).
        name = data.get("Key", data.get("key", data.get("Name", data.get("name"))))
        value = data.get("Value", data.get("value"))
        if isinstance(name, str) and isinstance(value, str) and value and SECRET_NAME.search(name):
            return f"{path}[{name}]", f"{name!r} names a secret"
    elif isinstance(data, list):
        for index, item in enumerate(data):
            found = find_secret(item, f"{path}[{index}]", values=values)
            if found:
                return found
    elif values and isinstance(data, str):
        match = SECRET_VALUE.search(data)
        if match:
            return path, f"the value looks like a {match.lastgroup.replace('_', ' ')}"
    return None
