"""Torch-free configs and names of ``latentwire_hf``: what an experiment file is validated against.

``TrainConfig`` (stage ``train``) and ``PretrainConfig`` (stage ``pretrain``) live here so the
runner can refuse a bad file before torch, transformers or accelerate load; ``training`` and
``objectives`` re-export them. The bundled model names and the ``lm_pool`` encoder name are
declared here too (the encoder's module registers it when first used).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from latentwire_core._validators import non_negative, one_of, positive
from latentwire_core.config import ENCODER_KINDS, INTERLINGUAS, EncoderKind, InterlinguaConfig
from latentwire_core.registry import UnknownNameError

__all__ = [
    "KNOWN_ENCODERS",
    "KNOWN_MODEL_NAMES",
    "LMPoolConfig",
    "LoopConfig",
    "PretrainConfig",
    "TrainConfig",
    "resolve_model_name",
]

INTERLINGUAS.declare_module("latentwire_hf.encoders.lm_pool", "INTERLINGUAS")

KNOWN_MODEL_NAMES = (
    "smollm2-135m",
    "gemma3-270m",
    "qwen2.5-coder-0.5b",
    "tiny-llama",
    "tiny-qwen2",
    "tiny-gemma3",
)
KNOWN_ENCODERS = ("minilm-l6",)


class ModelShapeError(ValueError):
    """A setting that does not fit the model it names (a layer past its depth); one line, exit 2."""


class ModelLoadError(ValueError):
    """A named model folder or hub id that cannot be loaded safely (custom code, an unknown layout)."""


def resolve_model_name(name: str) -> str:
    """Check a registry name (or something that looks like a hub id / local folder).

    Raises:
        UnknownNameError: neither a registry name, a local folder, nor ``org/name``.
    """
    if (
        name in KNOWN_MODEL_NAMES
        or name in KNOWN_ENCODERS
        or name == "bytes"
        or Path(name).is_dir()
        or "/" in name
    ):
        return name  # "bytes": the byte encoder, a [features] source only
    known = ", ".join(sorted([*KNOWN_MODEL_NAMES, *KNOWN_ENCODERS]))
    raise UnknownNameError(
        f"unknown model {name!r}; known: {known}; or give a hub id 'org/name' or a local folder"
    )


@attrs.frozen(kw_only=True)
class LMPoolConfig:
    """``[wire.lm_pool]``, the ``lm_pool`` encoder's own table (``[wire.lm_encoder]`` in files written before
    older files, still read): its trainable layers: copies of a causal LM's layers above the frozen
    ones whose states are cached as features (the first copied layer is the features' layer).

    Args:
        n_layers: how many layers are copied and trained.
        train: ``full`` (every copied weight trains) or ``lora`` (``peft`` LoRA of ``lora_rank``).
        causal: keep the LM's causal attention instead of full attention among real tokens.
        standardize: centre and scale each pooled dimension by training-text statistics, fitted
            once before training (a mid-depth LM state is mostly one direction shared by every text).
        lora_rank: the LoRA rank when ``train = "lora"``.
    """

    n_layers: int = attrs.field(default=2, validator=positive)
    train: str = attrs.field(default="full", validator=one_of("full", "lora"))
    causal: bool = False
    standardize: bool = False
    lora_rank: int = attrs.field(default=8, validator=positive)

    def encoder_kwargs(self, start_layer: int) -> dict[str, Any]:
        """``LMPoolEncoder``'s keyword arguments, as ``wire.json`` stores them (its ``lm_encoder`` key)."""
        return {
            "start_layer": start_layer,
            "n_layers": self.n_layers,
            "causal": self.causal,
            "train": self.train,
            "lora_rank": self.lora_rank,
            # only when on, so the identity (and fingerprint) of earlier wires stays as it was
            **({"standardize": True} if self.standardize else {}),
        }


def _lm_pool_params(icfg: InterlinguaConfig, options: LMPoolConfig) -> int:
    # the trained copies of the LM's layers (~12 d^2 each) and the projection; the frozen trunk is the model's
    return options.n_layers * 12 * icfg.d_in * icfg.d_in + icfg.d_in * icfg.d_z


ENCODER_KINDS["lm_pool"] = EncoderKind(
    name="lm_pool", needs_lm_features=True, options=LMPoolConfig, params=_lm_pool_params
)


@attrs.frozen(kw_only=True)
class LoopConfig:
    """The optimiser and loop settings every training stage shares (``[train]`` and ``[pretrain]`` both
    take these keys; each stage's own keys are in :class:`TrainConfig` / :class:`PretrainConfig`).

    Args:
        steps, batch_size, grad_accum: optimiser steps, items per micro-batch, micro-batches per step.
        lr, weight_decay, warmup_steps, grad_clip: AdamW with linear warm-up then cosine decay.
        log_every, ckpt_every, keep_checkpoints: logging and checkpoint cadence.
        model_schedule: ``all`` readers every step, or ``round_robin`` (one reader per step).
        mixed_precision: ``no`` or ``bf16``.
        content_probe: at each logged step, the loss on the next batch with its own vs another row's
            latent (no grad).
        lr_encoder, lr_adapters: per-component learning rates (0: ``lr``): the shared encoder's
            parameters and everything else (adapters, calibrations, <rec>/<cont>); the anchors use
            ~1e-4 and ~1e-3 (docs/design.md "What the CPU runs taught").
        content_weight, content_margin: content loss, + weight * max(0, margin - (CE with another
            row's latent - CE with its own)), per step.
        lr_schedule: ``cosine`` (warm-up, then cosine to 0 at ``steps``) or ``constant`` (warm-up, then
            flat: a long run that may be extended, or continued from a snapshot, keeps one schedule).
        time_limit_s: stop (with a checkpoint) once the kept trajectory's training seconds reach this
            (0: no limit); a bake-off's arms get equal compute this way.
    """

    steps: int = attrs.field(default=200, validator=positive)
    batch_size: int = attrs.field(default=16, validator=positive)
    grad_accum: int = attrs.field(default=1, validator=positive)
    lr: float = attrs.field(default=1e-3, validator=positive)
    weight_decay: float = attrs.field(default=0.01, validator=non_negative)
    warmup_steps: int = attrs.field(default=10, validator=non_negative)
    grad_clip: float = attrs.field(default=1.0, validator=positive)
    log_every: int = attrs.field(default=10, validator=positive)
    ckpt_every: int = attrs.field(default=50, validator=positive)
    keep_checkpoints: int = attrs.field(default=2, validator=positive)
    model_schedule: str = attrs.field(default="all", validator=one_of("all", "round_robin"))
    mixed_precision: str = attrs.field(default="no", validator=one_of("no", "bf16"))
    content_probe: bool = True
    lr_encoder: float = attrs.field(default=0.0, validator=non_negative)
    lr_adapters: float = attrs.field(default=0.0, validator=non_negative)
    content_weight: float = attrs.field(default=0.0, validator=non_negative)
    content_margin: float = attrs.field(default=1.0, validator=non_negative)
    lr_schedule: str = attrs.field(default="cosine", validator=one_of("cosine", "constant"))
    time_limit_s: float = attrs.field(default=0.0, validator=non_negative)
    seed: int = 0


@attrs.frozen(kw_only=True)
class TrainConfig(LoopConfig):
    """``[train]``: the task stage (the loop settings of :class:`LoopConfig`, then the task losses).

    Args:
        ce_weight, first_token_weight: the answer's cross-entropy and its first token's extra weight.
        kd_weight, kd_k, kd_temperature, kd_top_k: distillation from the reader reading the text.
        max_text_tokens: cap on the text a training item reads.
    """

    ce_weight: float = attrs.field(default=1.0, validator=non_negative)
    first_token_weight: float = attrs.field(default=0.5, validator=non_negative)
    kd_weight: float = attrs.field(default=0.0, validator=non_negative)
    kd_k: int = attrs.field(default=4, validator=positive)
    kd_temperature: float = attrs.field(default=1.0, validator=positive)
    kd_top_k: int = attrs.field(default=64, validator=positive)  # teacher logits cached per position
    max_text_tokens: int = attrs.field(default=512, validator=positive)


@attrs.frozen(kw_only=True)
class PretrainConfig(LoopConfig):
    """``[pretrain]``: reconstruction / continuation on unlabelled training text before the task (the loop
    settings of :class:`LoopConfig`, with its own defaults: no steps, batch 8, lr 1e-4, one reader per step).

    Args:
        steps: optimiser steps (0: no pretraining stage).
        rec_fraction: share of items that ask for reconstruction (ARC: 0.2); the rest continuation.
        encode_words: words of text per item that go through the encoder.
        continue_words: words the reader must continue with (continuation items).
        max_target_tokens: cap on the reader tokens scored per item.
        max_items: how many text windows to cut from the training texts.
        curriculum / curriculum_steps: reconstruction-first phases (REFRAG; "progressive cramming"): 100%
            reconstruction of spans of these many words (growing, e.g. [12, 24, 48]),
            ``curriculum_steps`` steps each, before the rec/cont mix.
        corpus: where the text comes from: ``task`` (the task's training split) or ``general`` (every
            offline text no task evaluates on, :mod:`latentwire_hf.data.corpus`).
        rec_eos: reconstruction targets end with the reader's EOS, so a reader learns where the text
            ends and greedy reconstruction can stop by itself (continuation targets never do).
        snapshot: a folder (relative to the working directory) the stage writes its bf16 snapshot to at
            every checkpoint, and resumes from when the run folder has no checkpoint
            (:mod:`latentwire_hf.snapshot`); empty: none.
        curve_every, curve_n: every this many steps, held-out reconstruction (NLL with the text's own
            and another text's latent, greedy exact match) on ``curve_n`` validation spans per reader,
            into ``pretrain/curves.jsonl`` (0: none). Needs ``corpus = "general"``.
        curve_words: the held-out spans' length in words (24 words are about 32 reader tokens).
    """

    steps: int = attrs.field(default=0, validator=non_negative)
    batch_size: int = attrs.field(default=8, validator=positive)
    lr: float = attrs.field(default=1e-4, validator=positive)
    model_schedule: str = attrs.field(default="round_robin", validator=one_of("all", "round_robin"))  # ARC
    rec_fraction: float = attrs.field(default=0.2, validator=non_negative)
    encode_words: int = attrs.field(default=48, validator=positive)
    continue_words: int = attrs.field(default=24, validator=positive)
    max_target_tokens: int = attrs.field(default=64, validator=positive)
    max_items: int = attrs.field(default=20000, validator=positive)
    curriculum: tuple[int, ...] = attrs.field(default=(), converter=tuple)
    curriculum_steps: int = attrs.field(default=0, validator=non_negative)
    corpus: str = attrs.field(default="task", validator=one_of("task", "general"))
    rec_eos: bool = False
    snapshot: str = ""
    curve_every: int = attrs.field(default=0, validator=non_negative)
    curve_n: int = attrs.field(default=100, validator=positive)
    curve_words: int = attrs.field(default=24, validator=positive)

    def __attrs_post_init__(self) -> None:
        if self.curve_every and self.corpus != "general":
            raise ValueError(
                "curve_every needs corpus = 'general' (its held-out spans are the corpus's validation part)"
            )
        if not 0.0 <= self.rec_fraction <= 1.0:
            raise ValueError(f"rec_fraction must be in [0, 1], got {self.rec_fraction}")
        if any(not 2 <= int(w) <= 4096 for w in self.curriculum):
            raise ValueError(f"curriculum spans must be 2 to 4096 words, got {list(self.curriculum)}")
        if self.curriculum_steps > 0 and not self.curriculum:
            raise ValueError(
                f"curriculum_steps = {self.curriculum_steps} needs the curriculum's spans (words per phase, "
                "e.g. curriculum = [12, 24, 48]); set curriculum_steps = 0 for no curriculum"
            )
        if self.curriculum and self.curriculum_steps == 0:
            raise ValueError(
                f"curriculum = {list(self.curriculum)} needs curriculum_steps > 0 (the steps of each phase)"
            )
        if len(self.curriculum) * self.curriculum_steps > self.steps:
            raise ValueError(
                f"curriculum: {len(self.curriculum)} phases x {self.curriculum_steps} steps exceed steps = {self.steps}"
            )

    def span_at(self, step: int) -> int | None:
        """The curriculum's reconstruction span (words) at ``step``, or None once the phases are over."""
        if not self.curriculum_steps:
            return None
        phase = step // self.curriculum_steps
        return int(self.curriculum[phase]) if phase < len(self.curriculum) else None
