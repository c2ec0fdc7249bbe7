"""The tiny readers the tests use (``tiny-llama``, ``tiny-qwen2``, ``tiny-gemma3``): two layers of the real
architectures, built in process with a byte-level tokenizer, no download."""

from __future__ import annotations

from typing import Any

from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import (
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)

__all__ = ["tiny_model", "tiny_tokenizer"]

_CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def tiny_tokenizer(
    *, chat: bool, bos: str = "<s>", eos: str = "</s>", pad: str | None = None
) -> PreTrainedTokenizerFast:
    """Byte-level tokenizer (256 byte tokens + specials), built in process for the tiny models."""
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    specials = [bos, eos, *(["<|im_start|>", "<|im_end|>"] if chat else []), *([pad] if pad else [])]
    vocab = {t: i for i, t in enumerate(specials + sorted(alphabet))}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(specials)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=eos, pad_token=pad or eos)
    if chat:
        fast.chat_template = _CHATML
        fast.eos_token = "<|im_end|>"
    return fast


def tiny_model(arch: str) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A randomly initialised two-layer ``llama``, ``qwen2`` or ``gemma3`` with its byte tokenizer (tests)."""
    chat = arch != "gemma3"
    tok = tiny_tokenizer(chat=chat, pad="<pad>" if arch == "gemma3" else None)
    common: dict[str, Any] = dict(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True,
        # larger than the 0.02 default so a random tiny model's outputs depend on its inputs
        # (tests of learning need a signal path from the slot to the logits)
        initializer_range=0.3,
    )
    model: PreTrainedModel
    if arch == "llama":
        model = LlamaForCausalLM(LlamaConfig(**common))
    elif arch == "qwen2":
        model = Qwen2ForCausalLM(Qwen2Config(**common))
    else:
        cfg = Gemma3TextConfig(**common, head_dim=8, sliding_window=16, query_pre_attn_scalar=8)
        model = Gemma3ForCausalLM(cfg)
    return model, tok
