"""Hyperparameters as SageMaker passes them: `--name value` strings on the command line.

No torch here: the local runner and the tests parse hyperparameters without loading the training stack.
Unknown names fail (a typo such as `learning_rat` must not train silently with the default), except the keys
SageMaker adds for itself: the framework container's `sagemaker_*` ones and, in a tuning job, the reserved
`_tuning_objective_metric` (SageMaker adds the objective's metric name to every trial's hyperparameters).
Any name with a leading underscore is taken as SageMaker's: ours never start with one (the definition's
keys are fixed names), and we could not find a documented list of every reserved name.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields

METHODS = ("sft", "dpo", "classification")
PEFT_MODES = ("lora", "qlora", "full")


RESERVED_PREFIXES = ("sagemaker_", "_")
"""SageMaker's own hyperparameters: recorded in `extras`, never used as training settings."""


class HyperparameterError(ValueError):
    """A bad hyperparameter: the message is one line naming it and the fix."""


@dataclass(frozen=True)
class Hyperparameters:
    method: str = "sft"
    """sft (chat JSONL), dpo (preference JSONL) or classification (text/label JSONL, encoder models)."""
    peft: str = "lora"
    """lora, qlora (4-bit base, needs CUDA and bitsandbytes) or full fine-tuning."""
    epochs: float = 1.0
    """Passes over the training channel (fractions allowed)."""
    per_device_batch_size: int = 4
    """Examples (or packed sequences) per device per step."""
    gradient_accumulation_steps: int = 1
    """Micro-batches accumulated into one optimizer step."""
    learning_rate: float = 2e-4
    """Peak learning rate (linear decay, short warm-up)."""
    seed: int = 42
    """Seed for data order, initialisation of new weights (LoRA, classifier head) and dropout."""
    lora_r: int = 16
    """LoRA rank."""
    lora_alpha: int = 32
    """LoRA scaling numerator (scale = alpha / r)."""
    lora_dropout: float = 0.05
    """Dropout on the LoRA path."""
    max_length: int = 2048
    """Longest example in tokens; longer examples are truncated."""
    packing: bool = True
    """Padding-free batches: a step's examples lie end to end with no padding (the step still holds
    per_device_batch_size examples)."""
    save_steps: int = 100
    """Checkpoint every N optimizer steps (the spot-interruption granularity)."""
    eval_steps: int = 100
    """Evaluate on the validation channel every N steps."""
    logging_steps: int = 10
    """Print a metric line every N steps."""
    early_stopping_patience: int = 0
    """Stop after this many evaluations without a lower validation loss; 0 turns early stopping off."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass: less memory, about 30% slower."""
    max_steps: int = -1
    """Stop after this many optimizer steps (smoke tests); -1 trains for `epochs`."""
    beta: float = 0.1
    """DPO temperature (strength of the pull towards the reference model)."""
    warmup_ratio: float = 0.03
    """Fraction of the steps spent warming the learning rate up."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    save_total_limit: int = 2
    """Checkpoints kept on disk (and so in the checkpoint S3 prefix); the best one is always kept."""
    merge_adapter: bool = False
    """LoRA only: also save the adapter merged into the base weights (a standalone model for serving)."""
    extras: dict[str, str] = field(default_factory=dict)
    """Keys SageMaker passes for itself (`sagemaker_*`, `_tuning_objective_metric`); recorded, never used."""

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise HyperparameterError(f"method: {self.method!r} is not one of {', '.join(METHODS)}")
        if self.peft not in PEFT_MODES:
            raise HyperparameterError(f"peft: {self.peft!r} is not one of {', '.join(PEFT_MODES)}")
        for name in ("per_device_batch_size", "gradient_accumulation_steps", "lora_r", "lora_alpha",
                     "max_length", "save_steps", "eval_steps", "logging_steps"):
            if getattr(self, name) < 1:
                raise HyperparameterError(f"{name}: must be at least 1, got {getattr(self, name)}")
        if self.epochs <= 0 and self.max_steps <= 0:
            raise HyperparameterError("epochs: must be positive (or set max_steps)")
        if self.learning_rate <= 0:
            raise HyperparameterError(f"learning_rate: must be positive, got {self.learning_rate}")
        if not 0 <= self.lora_dropout < 1:
            raise HyperparameterError(f"lora_dropout: must be in [0, 1), got {self.lora_dropout}")
        if self.early_stopping_patience < 0:
            raise HyperparameterError("early_stopping_patience: must be 0 (off) or more")


def _to_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise HyperparameterError(f"{name}: {raw!r} is not a boolean (use true or false)")


def _convert(name: str, kind: type, raw: str):
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':  # JSON-quoted by some SDKs
        raw = raw[1:-1]
    if kind is bool:
        return _to_bool(name, raw)
    try:
        if kind is int:
            as_float = float(raw)
            if not as_float.is_integer():
                raise ValueError
            return int(as_float)
        return kind(raw)
    except ValueError:
        raise HyperparameterError(f"{name}: {raw!r} is not a valid {kind.__name__}") from None


_TYPES = {"str": str, "int": int, "float": float, "bool": bool}


def parse_args(argv: list[str]) -> Hyperparameters:
    """`["--epochs", "3", "--packing", "true", ...]` (also `--name=value`) -> Hyperparameters."""
    known = {f.name: _TYPES[f.type] for f in fields(Hyperparameters) if f.name != "extras"}
    values: dict[str, object] = {}
    extras: dict[str, str] = {}
    i = 0
    while i < len(argv):
        token = argv[i]
        if not token.startswith("--"):
            raise HyperparameterError(f"unexpected argument {token!r} (hyperparameters come as --name value)")
        name, eq, value = token[2:].partition("=")
        if not eq:
            if i + 1 >= len(argv) or argv[i + 1].startswith("--"):
                raise HyperparameterError(f"{name}: missing a value (pass --{name} VALUE)")
            value = argv[i + 1]
            i += 1
        i += 1
        name = name.replace("-", "_")
        if name.startswith(RESERVED_PREFIXES):
            extras[name] = value
        elif name in known:
            values[name] = _convert(name, known[name], value)
        else:
            raise HyperparameterError(f"{name}: unknown hyperparameter (known: {', '.join(sorted(known))})")
    return Hyperparameters(**values, extras=extras)


def as_dict(hp: Hyperparameters) -> dict[str, object]:
    out = dataclasses.asdict(hp)
    out.pop("extras")
    return out
