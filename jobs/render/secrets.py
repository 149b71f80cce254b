"""Secrets never reach a rendered file: values that look like keys, tokens, passwords or connection strings
are rejected with the field named. Jobs authenticate with roles and managed identities, never with values.

Three rules: a secret-looking *name* with a value (HF_TOKEN, DB_PASSWORD, api_key, ...), a secret-looking
*value* anywhere (AWS access keys, PEM keys, provider tokens, JWTs, connection strings, URLs with passwords),
and, for rendered files, Yelp's maintained `detect-secrets` detectors (some twenty key formats plus its base64
and hex entropy checks), which find keys under neutral names (an AWS secret key in `NOTES`, a WandB key, a
Stripe `sk_live_` key) that no list of names can.
"""

from __future__ import annotations

import bisect
import itertools
import math
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


def rendered_secret(data: Any, generated: Iterable[str] = ()) -> tuple[str, str] | None:
    """The first (dotted path, reason) of a secret in a rendered document, or None: `find_secret`'s name and
    value rules, then detect-secrets on every long value (`detected_secret`).

    Names are checked where they are written (definition files and environment tags), and here again, with
    every value, so nothing from any source reaches a rendered file. `generated`: the content hashes ftops
    itself wrote into the document (idempotency key, dataset id), which look random.

    The jobs of one render share most of their strings (template constants, the environment's names), so each
    distinct string is judged once per process: a document's strings are gathered in one walk, those already
    judged clean are removed with set operations, and only a document with a suspect string is walked again,
    in order, for the path to report.
    """
    _forget_if_full()
    strings, long_values = _gather(data)
    if not _no_pattern_in(strings):  # a value pattern, a secret-looking name or a non-string key
        found = find_secret(data)  # the full walk decides, in order
        if found:
            return found
    return _detected(data, long_values, generated)


def _forget_if_full() -> None:
    """Forget every judgement once too many are kept (a long-lived process renders many jobs)."""
    if len(_NO_PATTERN) + len(_NOTHING_DETECTED) + len(_LINES) > _MAX_JUDGED:
        clear_cache()


def _no_pattern_in(strings: set[Any]) -> bool:
    """Whether neither SECRET_VALUE nor SECRET_NAME can match any of `strings` (keys and values), each
    distinct string judged once per process; False means "look closer"."""
    unjudged = strings - _NO_PATTERN
    if not unjudged:
        return True
    if all(type(value) is str for value in unjudged) and not _may_match_a_pattern("\n".join(unjudged)):
        _NO_PATTERN.update(unjudged)
        return True
    return False


def rendered_secrets(items: list[tuple[Any, Iterable[str], bytes | None]]) -> list[tuple[str, str] | None]:
    """`rendered_secret(data, generated)` of each (data, generated, canonical) item.

    The items are judged together first: when none of their strings needs a closer look (the usual case: the
    jobs of a render share most strings, and each judgement is remembered), one pass of each rule clears them
    all. Otherwise each item is judged on its own, for its own first finding.

    `canonical`, when given, is `data` as `orjson` writes it with OPT_INDENT_2 (one key or value per line, and
    no line break within a string): the strings are then read from the distinct lines of all the documents,
    which share most of them, rather than by walking each document.
    """
    _forget_if_full()
    strings: set[Any] = set()
    by_generated: dict[tuple[str, ...], set[str]] = {}  # the documents of a dataset's jobs share their hashes
    documents_by_generated: dict[tuple[str, ...], list[bytes]] = {}
    for data, generated, canonical in items:
        if canonical is None:
            found, long_values = _gather(data)
            strings |= found
            group = tuple(generated)
            if group in by_generated:
                by_generated[group] |= long_values
            else:
                by_generated[group] = long_values
        else:
            documents_by_generated.setdefault(tuple(generated), []).append(canonical)
    for generated, documents in documents_by_generated.items():
        long_values = by_generated.setdefault(generated, set())
        for line in set(b"\n".join(documents).split(b"\n")):  # one split for the group's documents
            found = _LINES.get(line)
            if found is None:
                found = _LINES[line] = _line_strings(line)
            strings.update(found[0])
            long_values.update(found[1])
    items = [(data, generated) for data, generated, _ in items]
    scanned = set().union(*(_scanned(values, _hashes(generated)) for generated, values in by_generated.items()))
    unjudged = strings - _NO_PATTERN
    fresh = scanned - _NOTHING_DETECTED
    if unjudged and (any(type(value) is not str for value in unjudged)
                     or _may_match_a_pattern("\n".join(unjudged))):
        return [rendered_secret(data, generated) for data, generated in items]
    if any(_detect(value) for value in _to_look_at(list(fresh))):
        return [rendered_secret(data, generated) for data, generated in items]
    _NO_PATTERN.update(unjudged)
    _NOTHING_DETECTED.update(fresh)
    return [None] * len(items)


# A JSON string token (escapes included); in orjson's indented output a key's token is followed by ": ".
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')


def _line_strings(line: bytes) -> tuple[list[str], list[str]]:
    """The strings (keys and values) of one line of indented JSON, and its string values of at least
    MIN_DETECTED_LENGTH characters: `_gather` of the document, line by line."""
    strings, long_values = [], []
    for match in _JSON_STRING.finditer(line):
        token = match.group()
        value = orjson.loads(token) if b"\\" in token else token[1:-1].decode()
        strings.append(value)
        if len(value) >= MIN_DETECTED_LENGTH and line[match.end():match.end() + 2] != b": ":
            long_values.append(value)
    return strings, long_values


# SECRET_NAME, with ^ and $ at every line: the rules are tried on many strings at once, one per line.
_SECRET_NAME_LINES = re.compile(SECRET_NAME.pattern, re.MULTILINE)


def _may_match_a_pattern(lines: str) -> bool:
    """Whether SECRET_VALUE or SECRET_NAME can match one of the strings joined in `lines` (one per line).

    A match within a string is a match in the joined text (no value pattern is anchored; a name's ^ and $ hold
    at every line here), so False clears every string; a line break within a string, or a match across two,
    only adds a "look closer".
    """
    text = lines.encode()
    if _may_hold_secret_value(text):  # SECRET_VALUE's substrings (a regex with this many branches is slow)
        return True
    if text.isascii() and not any(stem in text.lower() for stem in _NAME_STEMS):
        return False
    return bool(_SECRET_NAME_LINES.search(lines))


# Strings (values and keys) that match neither SECRET_VALUE nor SECRET_NAME, and strings in which the detectors
# find nothing (values as they are scanned, hashes removed): what this process has already judged.
_NO_PATTERN: set[str] = set()
_NOTHING_DETECTED: set[str] = set()
# The strings of each line of indented JSON read so far (`_line_strings`): the environments of a render, and
# the jobs of each, share most lines.
_LINES: dict[bytes, tuple[list[str], list[str]]] = {}


def clear_cache() -> None:
    """Forget every judged string (a benchmark's cold run)."""
    _NO_PATTERN.clear()
    _NOTHING_DETECTED.clear()
    _LINES.clear()
    _detect.cache_clear()


def _gather(data: Any) -> tuple[set[Any], set[str]]:
    """The distinct strings and dict keys of `data` (what `find_secret` reads), and its distinct string values
    of at least MIN_DETECTED_LENGTH characters (what the detectors read)."""
    if type(data) is dict and all(type(value) is str for value in data.values()):  # a flat mapping (the names)
        values = data.values()
        return {*data, *values}, {value for value in values if len(value) >= MIN_DETECTED_LENGTH}
    strings: set[Any] = set()
    long_values: set[str] = set()
    stack = [data]
    pop, push, add, add_keys = stack.pop, stack.extend, strings.add, strings.update
    while stack:
        item = pop()
        kind = type(item)
        if kind is dict:
            add_keys(item)
            push(item.values())
        elif kind is list:
            push(item)
        elif kind is str or isinstance(item, str):  # a str subclass: `find_secret` reads it too
            add(item)
            if len(item) >= MIN_DETECTED_LENGTH:
                long_values.add(item)
        elif isinstance(item, dict):
            add_keys(item)
            push(item.values())
        elif isinstance(item, list):
            push(item)
    return strings, long_values


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


@cache
def _entropy_bounds() -> dict[int, tuple[re.Pattern[str], int]]:
    """The entropy detectors (by id), with the regex that finds their candidates and the longest candidate that
    cannot pass their limit.

    Shannon entropy over a string of n characters is at most log2(n) (all different), so a candidate no longer
    than 2**limit never exceeds the limit, whatever it holds; a margin keeps float rounding in the detector's
    own sum on the safe side. Checking the lengths of the detector's own matches replaces its per-call
    machinery (a set of PotentialSecret objects, an entropy sum per candidate) for the values it would reject.
    """
    from detect_secrets.plugins.high_entropy_strings import HighEntropyStringsPlugin

    bounds = {}
    for plugin in _detectors():
        if isinstance(plugin, HighEntropyStringsPlugin):
            longest = 1
            while math.log2(longest + 1) < plugin.entropy_limit - 1e-6:
                longest += 1
            bounds[id(plugin)] = (plugin.regex, longest)
    return bounds


_MAX_JUDGED = 500_000
"""Judged strings kept before forgetting them all (a long-lived process renders many jobs)."""


def _required(sequence: Any) -> frozenset[str] | None:
    """Strings one of which every match of a parsed regex `sequence` contains, or None when none is known.

    Runs of literal characters are required where they stand in the sequence (a group with no flags of its own
    is part of the sequence; an alternation requires one of its branches' requirements; a repeat of at least
    one its body's). The candidate whose shortest string is longest is kept.
    """
    from re import _constants as sre  # the parser's own opcodes (Python 3.11+; see `_pattern_needs`)

    items: list[tuple[Any, Any]] = []

    def flatten(seq: Any) -> None:
        for op, arg in seq:
            if op is sre.SUBPATTERN and not arg[1] and not arg[2]:
                flatten(arg[3])
            else:
                items.append((op, arg))

    flatten(sequence)
    candidates: list[frozenset[str]] = []
    run: list[str] = []
    for op, arg in [*items, (None, None)]:
        if op is sre.LITERAL:
            run.append(chr(arg))
            continue
        if run:
            candidates.append(frozenset(["".join(run)]))
            run = []
        if op is sre.BRANCH:
            branches = [_required(branch) for branch in arg[1]]
            if all(branches):
                candidates.append(frozenset().union(*branches))
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT) and arg[0] >= 1:
            body = _required(arg[2])
            if body:
                candidates.append(body)
    return max(candidates, key=lambda found: min(map(len, found)), default=None)


@cache
def _pattern_needs() -> dict[re.Pattern[str], tuple[frozenset[str], bool]]:
    """For each pattern of the plain regex detectors (and JWT's), what every match contains (`_required`) and
    whether it ignores case (its strings are then lowercased, and only ASCII text can be judged by them).
    Without Python's regex parser (a private module, `re._parser` since 3.11) every pattern simply runs."""
    try:
        from re import _parser
    except ImportError:  # pragma: no cover - a Python that moved it
        return {}
    needs = {}
    for pattern in _detector_patterns() or ():
        found = _required(_parser.parse(pattern.pattern, pattern.flags))
        ignore_case = bool(pattern.flags & re.IGNORECASE)
        if found and (not ignore_case or all(s.isascii() for s in found)):
            needs[pattern] = (frozenset(s.lower() for s in found) if ignore_case else found, ignore_case)
    return needs


@cache
def _detector_patterns() -> tuple[re.Pattern[str], ...] | None:
    """Every pattern whose matches are all the regex detectors can report, or None when some detector (other
    than the entropy ones, see `_entropy_bounds`) does its own analysis this pre-check cannot judge."""
    from detect_secrets.plugins.jwt import JwtTokenDetector

    covered, bounded, patterns = _regex_only(), _entropy_bounds(), []
    for plugin in _detectors():
        if id(plugin) in covered:
            patterns += covered[id(plugin)]
        elif isinstance(plugin, JwtTokenDetector):
            patterns += plugin.denylist  # it only filters its pattern's matches (is_formally_valid)
        elif id(plugin) not in bounded:
            return None
    return tuple(patterns)


@cache
def _pre_check() -> tuple[tuple[tuple[str, tuple[re.Pattern[str], ...]], ...], ...]:
    """`_pattern_needs` by needed string: (case-sensitive needles, lowercase needles, the patterns those need,
    the patterns with no needle)."""
    exact: dict[str, list[re.Pattern[str]]] = {}
    folded: dict[str, list[re.Pattern[str]]] = {}
    needs = _pattern_needs()
    for pattern, (strings, ignore_case) in needs.items():
        for needle in strings:
            (folded if ignore_case else exact).setdefault(needle, []).append(pattern)
    unconditional = tuple(p for p in _detector_patterns() or () if p not in needs)
    return (tuple((n, tuple(ps)) for n, ps in exact.items()), tuple((n, tuple(ps)) for n, ps in folded.items()),
            tuple(p for p, (_, ignore_case) in needs.items() if ignore_case), unconditional)


def _may_detect_any(values: list[str]) -> bool:
    """False when no detector can find anything in any of `values`; True means "ask `_detect`, value by value".

    Each detector reads one line per value (the value JSON-quoted); here it reads all those lines at once, one
    per row (JSON-quoted values hold no raw line break). A match within a row is a match in the joined text,
    with the same neighbours: what precedes a row's opening quote is a line break or the start (`\\W`, `^`),
    and what any pattern needs after a value's run is its closing quote. A match across rows can only add a
    "look closer". A pattern runs only when the text holds a string it needs (`_required`): one pass of a few
    patterns over a document's new values replaces one call per value and pattern, which was most of the cost
    of scanning the values no other job shares.
    """
    if not values:
        return False
    if _detector_patterns() is None:
        return True
    text = "\n".join([orjson.dumps(value).decode() for value in values])
    if any(pattern.search(text) for pattern in _patterns_for(text)):
        return True
    for regex, longest in _entropy_bounds().values():
        if any(len(found[1]) > longest for found in regex.findall(text)):
            return True
    return False


def _patterns_for(text: str) -> set[re.Pattern[str]]:
    """The detector patterns that can match in `text`: those with no needed string, and those whose needed
    string it holds (`_required`)."""
    exact, folded, case_free, unconditional = _pre_check()
    patterns = set(unconditional)
    for needed in [needed for needle, needed in exact if needle in text]:
        patterns.update(needed)
    if text.isascii():
        lowered = text.lower()
        for needed in [needed for needle, needed in folded if needle in lowered]:
            patterns.update(needed)
    else:  # case folding reaches beyond ASCII (K and the Kelvin sign): every case-free pattern runs
        patterns.update(case_free)
    return patterns


def _to_look_at(values: list[str]) -> list[str]:
    """The values `_detect` has to judge: those in whose row of `_may_detect_any`'s text a pattern matches
    or an entropy candidate is long enough, found in one pass over the text.

    A match spanning rows marks every row it spans: a match it hides (finditer's matches do not overlap)
    starts within it. Entropy candidates never span rows (their runs hold no line break), and within a row
    they are the ones the detector finds in that value's line.
    """
    if not values or _detector_patterns() is None:
        return values
    rows = [orjson.dumps(value).decode() for value in values]
    text = "\n".join(rows)
    starts = list(itertools.accumulate((len(row) + 1 for row in rows[:-1]), initial=0))
    marked: set[int] = set()
    lowered = text.lower() if text.isascii() else None
    needs = _pattern_needs()
    for pattern in _patterns_for(text):
        # A pattern with needed strings (`_required`) runs over the rows holding one: every match within a row
        # holds one, so it finds each of those, with the same neighbours (a line break or the start before a
        # row, one after it). The other rows cost it nothing (some patterns try every position).
        needles, ignore_case = needs.get(pattern, (None, False))
        haystack = lowered if ignore_case else text
        if needles and haystack is not None and not any("\n" in needle for needle in needles):
            chosen = sorted(_rows_holding(haystack, needles, starts))
            sub = "\n".join(rows[row] for row in chosen)
            sub_starts = list(itertools.accumulate((len(rows[row]) + 1 for row in chosen[:-1]), initial=0))
        else:
            chosen, sub, sub_starts = list(range(len(rows))), text, starts
        for match in pattern.finditer(sub):
            first = bisect.bisect_right(sub_starts, match.start()) - 1
            last = bisect.bisect_right(sub_starts, max(match.start(), match.end() - 1))
            marked.update(chosen[first:last])
    for regex, longest in _entropy_bounds().values():
        for match in regex.finditer(text):
            if len(match[2]) > longest:
                marked.add(bisect.bisect_right(starts, match.start()) - 1)
    return [values[row] for row in sorted(marked)]


def _rows_holding(text: str, needles: Iterable[str], starts: list[int]) -> set[int]:
    """The rows of `text` (starting at `starts`) in which one of `needles` occurs."""
    found: set[int] = set()
    for needle in needles:
        at = text.find(needle)
        while at != -1:
            row = bisect.bisect_right(starts, at) - 1
            found.add(row)
            # On to the next row: its start, or the end.
            at = text.find(needle, starts[row + 1]) if row + 1 < len(starts) else -1
    return found


@lru_cache(maxsize=65536)  # jobs of one render share most values: each distinct one is scanned once
def _detect(value: str) -> str | None:
    from detect_secrets.filters import heuristic

    line = orjson.dumps(value).decode()  # a quoted string, as the entropy detectors expect
    covered, bounded = _regex_only(), _entropy_bounds()
    for plugin in _detectors():
        patterns = covered.get(id(plugin))
        if patterns is not None and not any(pattern.search(line) for pattern in patterns):
            continue  # what findall would find nothing in: the detector yields nothing
        bound = bounded.get(id(plugin))
        if bound is not None and all(len(found[1]) <= bound[1] for found in bound[0].findall(line)):
            continue  # every quoted run is too short to pass the entropy limit
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
    return _detected(data, _gather(data)[1], generated)


def _hashes(generated: Iterable[str]) -> list[str]:
    return sorted((g for g in generated if g), key=len, reverse=True)


def _scanned(long_values: set[str], hashes: list[str]) -> set[str]:
    """The values as the detectors read them: a value holding a hash is scanned without it."""
    if not long_values or not hashes:
        return long_values
    needles = [h for h in hashes if not any(other != h and other in h for other in hashes)]
    hashed = {value for value in long_values for needle in needles if needle in value}
    return (long_values - hashed).union(_without(value, hashes) for value in hashed)


def _detected(data: Any, long_values: set[str], generated: Iterable[str]) -> tuple[str, str] | None:
    hashes = _hashes(generated)
    fresh = _scanned(long_values, hashes) - _NOTHING_DETECTED  # each string is scanned once per process
    if not _may_detect_any(list(fresh)):
        _NOTHING_DETECTED.update(fresh)
        return None
    suspect = False
    for value in fresh:
        if _detect(value):
            suspect = True
            break
        _NOTHING_DETECTED.add(value)
    if not suspect:
        return None
    # The path is worked out only for a document with a finding, walking it again in order to the first one.
    for path, value in _strings(data, ""):
        if len(value) < MIN_DETECTED_LENGTH:
            continue
        kind = _detect(_without(value, hashes))
        if kind:
            return path, f"detect-secrets finds a {kind}"
    return None  # not reached: a value above was found


def _without(value: str, hashes: list[str]) -> str:
    for known in hashes:
        if known in value:
            value = value.replace(known, "")
    return value


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
    """`find_secret(data)`, judging each distinct string once per process as `rendered_secret` does (the
    definitions of a fork share most keys and values)."""
    _forget_if_full()
    return None if _no_pattern_in(_gather(data)[0]) else find_secret(data)


def find_secret(data: Any, path: str = "") -> tuple[str, str] | None:
    """The first (dotted path, reason) that looks like a secret in `data` (names and values), or None."""
    if isinstance(data, dict):
        for key, value in data.items():
            where = f"{path}.{key}" if path else str(key)
            if (isinstance(value, str) and value and isinstance(key, str) and SECRET_NAME.search(key)
                    and not key.startswith("ftops")):
                return where, f"{key!r} names a secret"
            found = find_secret(value, where)
            if found:
                return found
        # Tag lists and env lists carry the name in a sibling field ({"Key": "DB_PASSWORD", "Value": ...}).
        name = data.get("Key", data.get("key", data.get("Name", data.get("name"))))
        value = data.get("Value", data.get("value"))
        if isinstance(name, str) and isinstance(value, str) and value and SECRET_NAME.search(name):
            return f"{path}[{name}]", f"{name!r} names a secret"
    elif isinstance(data, list):
        for index, item in enumerate(data):
            found = find_secret(item, f"{path}[{index}]")
            if found:
                return found
    elif isinstance(data, str):
        match = SECRET_VALUE.search(data)
        if match:
            return path, f"the value looks like a {match.lastgroup.replace('_', ' ')}"
    return None
