"""Token counting with the model's real tokenizer: tiktoken (offline files) or a local Hugging Face tokenizer.

The chat rule, used for every tokenizer without a chat template (all OpenAI models):
    example tokens = 3 (reply priming) + sum over messages of
                     3 (framing) + tokens(role) + tokens(content text parts) + tokens(tool call names and
                     arguments) + [tokens(name) + 1 if the message has a name]
                     + tokens(compact JSON of top-level `tools`/`functions`)
This is OpenAI's documented accounting ("How to count tokens with tiktoken", OpenAI cookbook); images are not
counted (the provider bills them by its image rule). Trained-on ("assistant") tokens are the texts of assistant
messages with weight 1 (content and tool calls), without framing. A Hugging Face tokenizer that has a chat
template counts the whole example as `len(apply_chat_template(messages))` instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from jobs.data.formats import REPEATED, TRAINED, Analysis
from jobs.errors import FtopsError
from jobs.reference import azure_models

_CACHE_LIMIT = 50_000


class TokenCounter:
    """Counts a batch of analysed examples. Subclasses provide `lengths(texts)`."""

    name: str
    model_max_length: int | None = None
    templates: bool = False
    """Whether `chat_total` counts whole conversations (a Hugging Face tokenizer with a chat template)."""

    def __init__(self) -> None:
        self._cache: dict[str, int] = {}

    def lengths(self, texts: list[str]) -> list[int]:
        raise NotImplementedError

    def chat_total(self, analysis: Analysis) -> int | None:
        """The whole example through a chat template, when the tokenizer has one."""
        return None

    def count(self, batch: list[Analysis]) -> list[tuple[int, int]]:
        """(total, trained-on) tokens per example, with one tokenizer call for the whole batch."""
        cache = self._cache
        fresh: dict[str, None] = {}  # cacheable texts not yet cached, in first-seen order
        plain: list[str] = []  # every other text, in traversal order
        for analysis in batch:
            for text, kind in zip(analysis.texts, analysis.kinds):
                # Roles, names and system prompts repeat across examples: tokenize each once.
                if kind == REPEATED or len(text) <= 32:
                    if text not in cache:
                        fresh[text] = None
                else:
                    plain.append(text)
        todo = [*fresh, *plain]
        lengths = self.lengths(todo) if todo else []
        known = dict(zip(fresh, lengths))
        cache.update(known)
        plain_lengths = iter(lengths[len(known):])
        templated = self.chat_total if self.templates else None
        results = []
        for analysis in batch:
            total = analysis.overhead
            trained = 0
            for text, kind in zip(analysis.texts, analysis.kinds):
                n = cache[text] if kind == REPEATED or len(text) <= 32 else next(plain_lengths)
                total += n
                if kind == TRAINED:
                    trained += n
            if templated is not None and analysis.conversation is not None:
                whole = templated(analysis)
                if whole is not None:
                    total = whole
            results.append((total, trained))
        if len(cache) > _CACHE_LIMIT:
            cache.clear()
            cache.update(known)
        return results


class TiktokenCounter(TokenCounter):
    def __init__(self, encoding: str) -> None:
        super().__init__()
        import tiktoken

        from jobs.data import tokenizer_files

        tokenizer_files.ensure()
        try:
            self._encoding = tiktoken.get_encoding(encoding)
        except ValueError:
            raise FtopsError(f"unknown tiktoken encoding {encoding!r}", hint="use o200k_base or cl100k_base") from None
        self.name = encoding

    def lengths(self, texts: list[str]) -> list[int]:
        # One process per core already; tiktoken's thread pool would only add contention and per-item overhead.
        encode = self._encoding.encode_ordinary
        return [len(encode(text)) for text in texts]


class HuggingFaceCounter(TokenCounter):
    def __init__(self, path: Path) -> None:
        super().__init__()
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # we fork workers ourselves
        if not (path / "tokenizer_config.json").exists() and not (path / "tokenizer.json").exists():
            raise FtopsError("not a Hugging Face tokenizer directory (no tokenizer.json or tokenizer_config.json)",
                             source=path, hint="pass the directory that holds the model's tokenizer files")
        from transformers import AutoTokenizer

        try:
            self._tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise FtopsError(f"cannot load the tokenizer: {str(exc).splitlines()[0]}", source=path,
                             hint="pass a local tokenizer directory; ftops never downloads one") from None
        self.name = f"hf:{path.name}"
        limit = getattr(self._tokenizer, "model_max_length", None)
        self.model_max_length = limit if isinstance(limit, int) and limit < 1_000_000 else None
        self._template = bool(getattr(self._tokenizer, "chat_template", None))
        self.templates = self._template

    def lengths(self, texts: list[str]) -> list[int]:
        return [len(ids) for ids in self._tokenizer(texts, add_special_tokens=False)["input_ids"]]

    def chat_total(self, analysis: Analysis) -> int | None:
        if not self._template:
            return None
        try:
            ids = self._tokenizer.apply_chat_template(analysis.conversation, tokenize=True)
        except Exception:  # a template that rejects this conversation: fall back to the documented rule
            return None
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
        return len(ids)


@dataclass(frozen=True)
class ModelLimits:
    """What the chosen model allows; None where the provider sets no limit."""

    model: str | None
    max_example_tokens: int | None
    min_training_examples: int | None
    max_file_bytes: int | None


DEFAULT_MODEL = "gpt-4.1-mini-2025-04-14"


def resolve(model: str | None, tokenizer: Path | None) -> tuple[TokenCounter, ModelLimits]:
    """`--tokenizer PATH` (SageMaker models) wins; else `--model` (default gpt-4.1-mini) from models.yaml."""
    if tokenizer is not None:
        counter = HuggingFaceCounter(tokenizer)
        return counter, ModelLimits(model, None, None, None)
    catalog = azure_models()
    found = catalog.find(model or DEFAULT_MODEL)
    if found is None:
        known = ", ".join(catalog.models)
        raise FtopsError(f"unknown model {model!r}", field="--model",
                         hint=f"use one of {known}, or --tokenizer PATH for a Hugging Face model")
    key, spec = found
    return TiktokenCounter(spec.tokenizer), ModelLimits(key, spec.max_example_tokens, catalog.min_training_examples,
                                                       catalog.max_file_bytes)
