"""A tiny offline stand-in for a pre-trained causal LM: random weights, a tokenizer trained here, nothing downloaded.

A small Llama (hidden 64, 2 layers by default) and a byte-level BPE tokenizer trained with `tokenizers` on the
text it is given; its chat template marks assistant turns with `{% generation %}` so assistant-only loss works.
The tests' fixtures and `ftops local seed-model` share this builder. Heavy imports stay inside the functions.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n"
    "{% if message['role'] == 'assistant' %}"
    "{% generation %}{{ message['content'] }}<|end|>\n{% endgeneration %}"
    "{% else %}{{ message['content'] }}<|end|>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
SPECIAL = ["<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]


def build_tokenizer(out: Path, corpus: Iterable[str], vocab_size: int = 512):
    """Train a byte-level BPE on `corpus`, attach the chat template, save it to `out`; returns the tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>",
                                   additional_special_tokens=SPECIAL[1:])
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)
    return fast


def build_causal_lm(out: Path, corpus: Iterable[str], *, hidden: int = 64, layers: int = 2, seed: int = 0,
                    vocab_size: int = 512, max_positions: int = 512) -> Path:
    """A random-weight Llama and its tokenizer saved to `out` (what a `model` channel holds)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tokenizer(out, corpus, vocab_size=vocab_size)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 2,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=max_positions, tie_word_embeddings=True,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=None)
    LlamaForCausalLM(config).save_pretrained(out)
    return out
