"""Input perturbations for robustness: the same test set with changed case, whitespace, typos, punctuation,
truncation or reordered instructions.

Each perturbation is deterministic in (seed, example id), so a resumed or repeated evaluation asks exactly
the same questions. They touch the prompt only (user turns; reordering prefers the system instructions),
never the expected answer.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable
from dataclasses import replace

from jobs.errors import ConfigError
from jobs.eval.examples import Example

Perturb = Callable[[str, random.Random], str]


def case(text: str, rng: random.Random) -> str:
    mode = rng.choice(("lower", "upper", "swap"))
    return {"lower": text.lower(), "upper": text.upper(), "swap": text.swapcase()}[mode]


def whitespace(text: str, rng: random.Random) -> str:
    words = text.split()
    out = []
    for word in words:
        out.append(word)
        out.append(rng.choice(("  ", " ", "\t", " \n ", "   ")))
    return rng.choice(("  ", "\n", "\t ")) + "".join(out).rstrip() + rng.choice(("   ", "\n\n", " \t"))


def _typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(word) - 1)
    kind = rng.choice(("swap", "drop", "double"))
    if kind == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if kind == "drop":
        return word[:i] + word[i + 1:]
    return word[:i] + word[i] + word[i:]


def typos(text: str, rng: random.Random, rate: float = 0.15) -> str:
    """Swap, drop or double one letter in about `rate` of the words of 4+ letters (at least one)."""
    parts = re.split(r"(\s+)", text)
    eligible = [i for i, p in enumerate(parts) if len(p) >= 4 and p.isalpha()]
    if not eligible:
        return text
    chosen = {i for i in eligible if rng.random() < rate} or {rng.choice(eligible)}
    return "".join(_typo(p, rng) if i in chosen else p for i, p in enumerate(parts))


_PUNCTUATION = re.compile(r"[.,;:!?'\"()\-]")


def punctuation(text: str, rng: random.Random) -> str:
    """Drop the punctuation, or (half the time) double it, as hurried writers do."""
    if rng.random() < 0.5:
        return re.sub(r"\s+", " ", _PUNCTUATION.sub("", text)).strip()
    return _PUNCTUATION.sub(lambda m: m.group(0) * 2, text) + rng.choice(("!!", "??", "..."))


def truncation(text: str, rng: random.Random, keep: float = 0.75) -> str:
    """Cut off the end of the message (the last quarter of its words; a one-word message stays)."""
    words = text.split()
    if len(words) < 2:
        return text
    return " ".join(words[:max(1, int(len(words) * keep))])


_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


def reorder(text: str, rng: random.Random) -> str:
    """Shuffle the sentences (or lines) of an instruction; a one-sentence text stays as it is."""
    sentences = [s for s in _SENTENCE.split(text.strip()) if s.strip()]
    if len(sentences) < 2:
        return text
    shuffled = sentences[:]
    for _ in range(5):  # a shuffle that returns the original order is no perturbation
        rng.shuffle(shuffled)
        if shuffled != sentences:
            break
    return " ".join(shuffled)


PERTURBATIONS: dict[str, Perturb] = {"case": case, "whitespace": whitespace, "typos": typos,
                                     "punctuation": punctuation, "truncation": truncation, "reorder": reorder}
OUT_OF_DOMAIN = "out_of_domain"
CLEAN = "clean"


def _rng(seed: int, name: str, example_id: str) -> random.Random:
    return random.Random(int.from_bytes(hashlib.sha256(f"{seed}:{name}:{example_id}".encode()).digest()[:8], "big"))


def perturb_example(example: Example, name: str, seed: int = 0) -> Example:
    """`example` with its prompt perturbed by `name`; reordering shuffles the system turn if there is one."""
    fn = PERTURBATIONS[name]
    rng = _rng(seed, name, example.id)
    messages = [dict(m) for m in example.messages]
    if name == "reorder":
        system = [m for m in messages if m["role"] == "system" and len(_SENTENCE.split(m["content"].strip())) > 1]
        targets = system[:1] or [m for m in messages if m["role"] == "user"][-1:]
    else:
        targets = [m for m in messages if m["role"] == "user"]
    for message in targets:
        message["content"] = fn(message["content"], rng)
    return replace(example, messages=tuple(messages))


def perturbed_set(examples: list[Example], name: str, seed: int = 0) -> list[Example]:
    if name not in PERTURBATIONS:
        raise ConfigError(f"unknown perturbation {name!r}", field="evaluation.robustness.perturbations",
                          hint=f"known perturbations: {', '.join(PERTURBATIONS)}")
    return [perturb_example(e, name, seed) for e in examples]
