"""What a config may ask of this machine: a bound for every numeric key, and an estimate of the
memory training its wire needs, both checked when an experiment file is loaded, before any work."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from latentwire_core.config import encoder_kind

if TYPE_CHECKING:  # for annotations only: config calls this module while it loads a file
    from runner.sections import Experiment

__all__ = ["NUMERIC_BOUNDS", "bound_errors", "machine_bytes", "memory_error", "wire_memory_bytes"]

# The largest value each numeric key may take: values past these exhaust memory or hang before
# doing anything useful. Every int/float key of an experiment has a bound here (a test checks the list is
# complete); the memory a config's wire would need is estimated as well (wire_memory_bytes).
_STEPS, _ITEMS, _TOKENS = 10_000_000, 100_000_000, 32_768
NUMERIC_BOUNDS: dict[str, float] = {
    "seed": 2**32 - 1,
    "data.train_limit": _ITEMS,
    "data.eval_limit": _ITEMS,
    "data.min_eval": _ITEMS,
    "data.min_train": _ITEMS,
    "features.layer": 1024,
    "features.max_length": _TOKENS,
    "wire.encoder.ratio": 4096,
    "wire.encoder.d_in": 65_536,
    "wire.encoder.d_z": 16_384,
    "wire.encoder.n_tokens": 4096,
    "wire.encoder.n_heads": 256,
    "wire.encoder.mlp_ratio": 16,
    "wire.encoder.dropout": 1,
    "wire.lm_pool.n_layers": 1024,
    "wire.refiner_layers": 16,
    "wire.adapter_hidden_mult": 16,
    "wire.lm_pool.lora_rank": 4096,
    "codec.group_size": 65_535,
    "eval.batch_size": 4096,
    "eval.bootstrap_resamples": 1_000_000,
    "eval.max_text_tokens": _TOKENS,
    "eval.kshot": 64,
    "eval.lm_coder_verify": 1_000_000,
    "eval.pca_rank": 16_384,
    "eval.pca_fit_examples": 1_000_000,
}
for _stage in ("pretrain", "train"):
    NUMERIC_BOUNDS.update(
        {
            f"{_stage}.steps": _STEPS,
            f"{_stage}.batch_size": 4096,
            f"{_stage}.grad_accum": 1024,
            f"{_stage}.lr": 1e6,  # a typo guard, not a safety one: a huge rate diverges and is stopped
            f"{_stage}.weight_decay": 10,
            f"{_stage}.warmup_steps": _STEPS,
            f"{_stage}.grad_clip": 1e6,
            f"{_stage}.log_every": _STEPS,
            f"{_stage}.ckpt_every": _STEPS,
            f"{_stage}.keep_checkpoints": 100_000,
            f"{_stage}.lr_encoder": 1e6,
            f"{_stage}.lr_adapters": 1e6,
            f"{_stage}.content_weight": 1000,
            f"{_stage}.content_margin": 1000,
            f"{_stage}.seed": 2**32 - 1,
            f"{_stage}.time_limit_s": 365 * 24 * 3600.0,  # a year of training time
        }
    )
NUMERIC_BOUNDS.update(
    {
        "pretrain.rec_fraction": 1,
        "pretrain.encode_words": 4096,
        "pretrain.continue_words": 4096,
        "pretrain.max_target_tokens": 4096,
        "pretrain.max_items": _ITEMS,
        "pretrain.curriculum_steps": _STEPS,
        "pretrain.curve_every": _STEPS,
        "pretrain.curve_n": 100_000,  # held-out spans per measurement (each is generated greedily)
        "pretrain.curve_words": 4096,
        "train.ce_weight": 1000,
        "train.first_token_weight": 1000,
        "train.kd_weight": 1000,
        "train.kd_k": 4096,
        "train.kd_temperature": 1000,
        "train.kd_top_k": 4096,
        "train.max_text_tokens": _TOKENS,
    }
)
# reader widths known before loading (registry models); a folder's own config.json gives its hidden_size
_WIDTHS = {
    "smollm2-135m": 576,
    "gemma3-270m": 640,
    "qwen2.5-coder-0.5b": 896,
    "tiny-llama": 32,
    "tiny-qwen2": 32,
    "tiny-gemma3": 32,
}


def _flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def bound_errors(exp: Experiment) -> list[str]:
    """One message per numeric key past its :data:`NUMERIC_BOUNDS` entry."""
    flat = _flat(attrs.asdict(exp, recurse=True))
    return [
        f"{key} must be <= {limit:g}, got {flat[key]!r}"
        for key, limit in NUMERIC_BOUNDS.items()
        if isinstance(flat.get(key), int | float) and not isinstance(flat[key], bool) and flat[key] > limit
    ]


def _reader_width(name: str) -> int:
    if name in _WIDTHS:
        return _WIDTHS[name]
    cfg = Path(name) / "config.json"
    try:
        data = json.loads(cfg.read_text(encoding="utf-8"))
        return int(data.get("hidden_size") or data.get("text_config", {}).get("hidden_size") or 0)
    except (OSError, ValueError, TypeError, AttributeError):
        return 0  # a hub id: unknown until loaded


def wire_memory_bytes(exp: Experiment) -> tuple[int, dict[str, int]]:
    """An estimate of the memory training the wire needs, before anything is built: fp32 parameters of
    the encoder and every reader's adapter with their gradients and two AdamW moments (16 bytes each), and
    the encoder's activations for one batch kept for the backward pass. The frozen readers and the
    ``lm_pool`` trunk are not counted (their size is the model's own). Returns ``(bytes, parts)``."""
    enc = exp.wire.encoder
    d_in = _reader_width(exp.features.source) or 384  # the [features] width (minilm-l6: 384)
    d_z, m, h = enc.d_z, enc.n_tokens, enc.mlp_ratio
    kind = encoder_kind(enc.kind)
    options = getattr(exp.wire, kind.name, None)  # its own table, [wire.<kind>] (None: it has none)
    enc_params = kind.params(attrs.evolve(enc, d_in=d_in), options)
    adapters = 0
    for name in exp.models.names:
        w = _reader_width(name)
        adapters += d_z * w + (2 * exp.wire.adapter_hidden_mult * w * w if exp.wire.adapter == "mlp" else 0)
    batch = max(exp.train.batch_size, exp.pretrain.batch_size if exp.pretrain.steps else 0)
    acts = batch * m * d_z * (8 + 3 * h) * 4 * 2
    parts = {"encoder parameters": enc_params * 16, "adapter parameters": adapters * 16, "activations": acts}
    return sum(parts.values()), parts


def machine_bytes() -> int | None:
    """Physical memory of this machine (None where the OS does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def memory_error(exp: Experiment) -> str | None:
    """A message naming the keys when the estimate exceeds 80% of this machine's memory, else None."""
    need, parts = wire_memory_bytes(exp)
    have = machine_bytes()
    if have is None or need <= 0.8 * have:
        return None
    detail = ", ".join(f"{k} {v / 2**30:.1f} GiB" for k, v in parts.items())
    return (
        f"the wire needs about {need / 2**30:.1f} GiB to train ({detail}) but this machine has "
        f"{have / 2**30:.1f} GiB: lower [wire.encoder] d_z / n_tokens / mlp_ratio or the batch_size"
    )
