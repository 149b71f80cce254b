"""A model on this machine, loaded with transformers: the local runner's `model.tar.gz` or a model directory.

Causal LMs answer with greedy decoding through the tokenizer's chat template; a LoRA adapter is loaded on
its base model; sequence classifiers answer with the predicted label name. Generation runs one prompt at a
time under a lock: a CPU model gains nothing from threads.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from jobs.errors import ConfigError
from jobs.eval.store import Answer
from jobs.eval.targets.base import Generation, Messages, Target


def unpack_model(archive: Path, into: Path) -> Path:
    """Unpack model.tar.gz safely (no absolute paths or `..`) and return the directory that holds config.json."""
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(into, filter="data")
    for candidate in [into, *sorted(p.parent for p in into.rglob("config.json")),
                      *sorted(p.parent for p in into.rglob("adapter_config.json"))]:
        if (candidate / "config.json").exists() or (candidate / "adapter_config.json").exists():
            return candidate
    raise ConfigError("no model in the archive (no config.json or adapter_config.json)", source=archive)


def fetch_s3_archive(s3_client: Any, uri: str, into: Path) -> Path:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    target = into / "model.tar.gz"
    s3_client.download_file(bucket, key, str(target))
    return target


class LocalModelTarget(Target):
    kind = "local"
    concurrency = 1

    def __init__(self, model_dir: Path, *, base_model_dir: Path | None = None, name: str | None = None) -> None:
        self.model_dir = model_dir
        self.base_model_dir = base_model_dir
        self._name = name or model_dir.name
        self._lock = threading.Lock()
        self._loaded: tuple[Any, Any, bool] | None = None

    @classmethod
    def from_archive(cls, archive: Path, *, base_model_dir: Path | None = None, name: str | None = None) -> "LocalModelTarget":
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()[:12]
        tmp = Path(tempfile.mkdtemp(prefix="ftops-eval-model-"))
        return cls(unpack_model(archive, tmp), base_model_dir=base_model_dir, name=name or f"model-{digest}")

    @property
    def identity(self) -> str:
        return f"{self.kind}:{self._name}"

    def _load(self) -> tuple[Any, Any, bool]:
        if self._loaded is not None:
            return self._loaded
        import torch  # noqa: F401 - transformers needs it; fail here with a clear error if absent
        from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

        directory = self.model_dir
        adapter = directory / "adapter_config.json"
        if adapter.exists() and not (directory / "config.json").exists():
            from peft import PeftModel

            base = self.base_model_dir or Path(json.loads(adapter.read_text()).get("base_model_name_or_path", ""))
            if not (base / "config.json").exists():
                raise ConfigError("a LoRA adapter needs its base model on this machine", source=adapter,
                                  field="base_model_name_or_path", hint="pass the base model directory")
            model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), directory)
            tok_dir = directory if (directory / "tokenizer_config.json").exists() else base
            tokenizer = AutoTokenizer.from_pretrained(tok_dir)
            classifier = False
        else:
            config = AutoConfig.from_pretrained(directory)
            classifier = any(a.endswith("ForSequenceClassification") for a in (config.architectures or []))
            loader = AutoModelForSequenceClassification if classifier else AutoModelForCausalLM
            model = loader.from_pretrained(directory)
            tokenizer = AutoTokenizer.from_pretrained(directory)
        model.eval()
        self._loaded = (model, tokenizer, classifier)
        return self._loaded

    def answer(self, messages: Messages, generation: Generation) -> Answer:
        import torch

        started = time.monotonic()
        with self._lock:
            model, tokenizer, classifier = self._load()
            torch.manual_seed(generation.seed)
            with torch.no_grad():
                if classifier:
                    text = "\n".join(m["content"] for m in messages if m["role"] != "system")
                    inputs = tokenizer(text, return_tensors="pt", truncation=True)
                    label_id = int(model(**inputs).logits.argmax(-1)[0])
                    answer = str(model.config.id2label.get(label_id, label_id))
                else:
                    answer = self._generate(model, tokenizer, messages, generation)
        return Answer(answer, (time.monotonic() - started) * 1000, 1)

    @staticmethod
    def _generate(model: Any, tokenizer: Any, messages: Messages, generation: Generation) -> str:
        if getattr(tokenizer, "chat_template", None):
            ids = tokenizer.apply_chat_template([dict(m) for m in messages], add_generation_prompt=True,
                                                return_tensors="pt", return_dict=True)
            input_ids = ids["input_ids"]
            attention = ids.get("attention_mask")
        else:
            encoded = tokenizer("\n".join(m["content"] for m in messages) + "\n", return_tensors="pt")
            input_ids, attention = encoded["input_ids"], encoded.get("attention_mask")
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        output = model.generate(input_ids=input_ids, attention_mask=attention, max_new_tokens=generation.max_tokens,
                                do_sample=False, pad_token_id=pad)
        return tokenizer.decode(output[0, input_ids.shape[1]:], skip_special_tokens=True).strip()

    def close(self) -> None:
        self._loaded = None
