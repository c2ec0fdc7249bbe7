"""``lm_pool``: an encoder initialised from a pretrained causal LM, pooled at a compression ratio.

ARC-Encoder (arXiv:2510.20535) and Feldman & Artzi (arXiv:2510.20797): the encoders that make
soft tokens carry a text's content are pretrained LMs, trained, mean-pooled over consecutive
groups of hidden states. Here, for a CPU budget:

* the LM's first ``start_layer`` layers stay frozen; their hidden states are the cached
  features (``[features] source = "<lm>", layer = start_layer``), computed once per text;
* the next ``n_layers`` layers are trainable copies (``train = "full"``), or frozen copies
  with LoRA on their attention and MLP projections (``train = "lora"``, through ``peft``);
  attention among them is non-causal by default (every real token sees every real token;
  padding is never attended), as in ARC-Encoder;
* the LM's final norm, then the mean over consecutive groups of ``ratio`` tokens
  (``M_i = ceil(L_i / ratio)`` slots, capped by ``n_tokens``), then a linear map to ``d_z``;
* optionally (``standardize``) each pooled dimension is centred and scaled by statistics of
  training texts, fitted once before training (:meth:`LMPoolEncoder.fit_standardization`) and
  kept as buffers. Why: a mid-depth LM state is mostly one direction shared by every token
  (measured on SmolLM2-135M layer 12 after its final norm, pooled at 4x over SQuAD contexts: 74%
  of the energy lies in the mean vector, pairwise cosine 0.75, three "massive" dimensions 18-77x
  the median; ``scripts/pooled_state_stats.py``), so without it three quarters of ``Z`` is the same for every text and the content
  must be dug out of the rest by training.

Llama- and Qwen2-family decoder layers are supported (their layers take rotary position
embeddings from the model's ``rotary_emb``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel

from latentwire_core.interlingua import (
    INTERLINGUAS,
    InterlinguaConfig,
    chunk_weights,
    slot_counts,
    zero_past_counts,
)

__all__ = ["LMPoolEncoder", "attention_bias", "run_decoder_layers"]


def attention_bias(mask: torch.Tensor, *, causal: bool, dtype: torch.dtype) -> torch.Tensor:
    """Additive ``(B, 1, T, T)`` bias: 0 where query ``q`` may attend key ``k``, a large negative else.

    Real queries attend real keys (only earlier ones when ``causal``); a padded query attends
    only itself, so no row is fully masked (no NaN) and nothing real ever reads padding.
    """
    m = mask.bool()
    t = m.shape[1]
    eye = torch.eye(t, dtype=torch.bool, device=m.device)
    allowed = m[:, None, :] & m[:, :, None]  # (B, T, T): both real
    if causal:
        allowed = allowed & torch.ones(t, t, dtype=torch.bool, device=m.device).tril()
    allowed = allowed | (eye & ~m[:, :, None])  # padded query -> itself
    bias = torch.zeros(allowed.shape, dtype=dtype, device=m.device)
    bias = bias.masked_fill(~allowed, torch.finfo(dtype).min)
    return bias[:, None]


def run_decoder_layers(
    layers: nn.ModuleList,
    rotary: nn.Module,
    hidden: torch.Tensor,
    mask: torch.Tensor,
    *,
    causal: bool,
) -> torch.Tensor:
    """Run decoder layers on ``hidden (B, T, d)`` with mask ``(B, T)``; padded positions are zeroed.

    Positions count real tokens (right or left padding alike), so a row's states do not
    depend on how much padding the batch gave it.
    """
    keep = mask.bool()[..., None]
    h = torch.where(keep, hidden, torch.zeros_like(hidden))
    pos = ((mask.long().cumsum(1) - 1).clamp(min=0) * mask.long()).to(h.device)  # (B, T)
    cos, sin = rotary(h, pos)
    bias = attention_bias(mask.to(h.device), causal=causal, dtype=h.dtype)
    for layer in layers:
        out = layer(h, attention_mask=bias, position_ids=pos, position_embeddings=(cos, sin))
        h = out[0] if isinstance(out, tuple) else out
        h = torch.where(keep, h, torch.zeros_like(h))  # 0 * NaN in a padded slot must never reach a sum
    return h


def _lora(layers: nn.ModuleList, *, rank: int) -> nn.Module:
    from peft import LoraConfig, get_peft_model

    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    wrapped = nn.Module()
    wrapped.layers = layers
    cfg = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=targets, lora_dropout=0.0, bias="none")
    return get_peft_model(wrapped, cfg)  # type: ignore[arg-type]  # peft types the model as PreTrainedModel


@INTERLINGUAS.register("lm_pool")
class LMPoolEncoder(nn.Module):
    """Trainable LM layers over frozen cached lower-layer states, ratio mean-pooling, projection to ``d_z``.

    Args:
        cfg: ``d_in`` must equal the LM's hidden size; ``ratio`` and ``n_tokens`` set M.
        lm: the pretrained causal LM whose layers are copied (it is not modified).
        start_layer: index of the first copied layer (= the cached features' layer).
        n_layers: how many layers are copied and trained.
        causal: keep the LM's causal attention instead of full attention among real tokens.
        train: ``full`` (every copied weight trains) or ``lora`` (``peft`` LoRA of ``lora_rank``).
        standardize: centre and scale each pooled dimension by training-text statistics (buffers
            ``feat_mean``/``feat_std``, identity until :meth:`fit_standardization` is called).
    """

    feat_mean: torch.Tensor  # (d_in,), a buffer when standardize
    feat_std: torch.Tensor

    def __init__(
        self,
        cfg: InterlinguaConfig,
        *,
        lm: PreTrainedModel,
        start_layer: int,
        n_layers: int,
        causal: bool = False,
        train: str = "full",
        lora_rank: int = 8,
        standardize: bool = False,
    ) -> None:
        super().__init__()
        body = getattr(lm, lm.base_model_prefix)
        total = len(body.layers)
        if not 0 <= start_layer < total or not 1 <= n_layers <= total - start_layer:
            from latentwire_hf.config import ModelShapeError

            raise ModelShapeError(
                f"lm_pool: layers [{start_layer}, {start_layer + n_layers}) ([features] layer + [wire.lm_pool] "
                f"n_layers) do not fit the LM's {total} layers"
            )
        if cfg.d_in != lm.config.hidden_size:
            raise ValueError(f"lm_pool: d_in {cfg.d_in} != the LM's hidden size {lm.config.hidden_size}")
        if train not in ("full", "lora"):
            raise ValueError(f"lm_pool: train must be 'full' or 'lora', got {train!r}")
        self.n_tokens, self.ratio, self.causal, self.d_z = cfg.n_tokens, cfg.ratio, causal, cfg.d_z
        layers = copy.deepcopy(nn.ModuleList(body.layers[start_layer : start_layer + n_layers]))
        for layer in layers:
            attn: Any = layer.self_attn
            attn.config = copy.copy(attn.config)
            attn.config._attn_implementation = "sdpa"
            attn.is_causal = causal
        layers.requires_grad_(train == "full")
        self.layers: nn.Module = layers if train == "full" else _lora(layers, rank=lora_rank)
        self.rotary = copy.deepcopy(body.rotary_emb)
        self.norm = copy.deepcopy(body.norm).requires_grad_(True)
        self.proj = nn.Linear(cfg.d_in, cfg.d_z)
        self.standardize = standardize
        if standardize:  # buffers only when asked, so older checkpoints keep their exact keys
            self.register_buffer("feat_mean", torch.zeros(cfg.d_in))
            self.register_buffer("feat_std", torch.ones(cfg.d_in))

    def _layer_list(self) -> nn.ModuleList:
        if isinstance(self.layers, nn.ModuleList):
            return self.layers
        peft_model: Any = self.layers
        mods: nn.ModuleList = peft_model.base_model.model.layers
        return mods

    def forward(
        self, features: torch.Tensor, mask: torch.Tensor, counts: torch.Tensor | None = None
    ) -> torch.Tensor:
        """features ``(B, T, d_in)`` (the LM's states at ``start_layer``), mask ``(B, T)`` -> ``Z (B, M, d_z)``."""
        if counts is None:
            counts = slot_counts(mask, n_tokens=self.n_tokens, ratio=self.ratio)
        pooled = self._pooled(features, mask, counts)  # (B, M, d_in)
        if self.standardize:
            pooled = (pooled - self.feat_mean) / self.feat_std
        return zero_past_counts(self.proj(pooled), counts)

    def _pooled(self, features: torch.Tensor, mask: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        h = run_decoder_layers(self._layer_list(), self.rotary, features, mask, causal=self.causal)
        h = self.norm(h)  # (B, T, d_in)
        h = torch.where(mask.bool()[..., None], h, torch.zeros_like(h))
        w = chunk_weights(mask, counts).to(h.dtype)  # (B, M, T)
        return torch.bmm(w, h)  # (B, M, d_in): mean of each consecutive group

    @torch.no_grad()
    def fit_standardization(
        self, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], *, eps: float = 1e-4
    ) -> int:
        """Set ``feat_mean``/``feat_std`` from pooled slots of training texts; returns the slots used.

        Args:
            batches: ``(features (B, T, d_in), mask (B, T))`` of *training* texts (never evaluation ones).
            eps: floor on each dimension's standard deviation.
        """
        if not self.standardize:
            raise ValueError("lm_pool: built without standardize")
        total, sq, n = None, None, 0
        for feats, mask in batches:
            dev = self.proj.weight.device
            feats, mask = feats.to(dev), mask.to(dev)
            counts = slot_counts(mask, n_tokens=self.n_tokens, ratio=self.ratio)
            pooled = self._pooled(feats, mask, counts).double()
            real = torch.arange(pooled.shape[1], device=dev)[None] < counts[:, None]  # (B, M)
            rows = pooled[real]  # (N, d_in)
            total = rows.sum(0) if total is None else total + rows.sum(0)
            sq = rows.pow(2).sum(0) if sq is None else sq + rows.pow(2).sum(0)
            n += rows.shape[0]
        if total is None or sq is None or n < 2:
            raise ValueError("lm_pool: fit_standardization needs at least two pooled slots")
        mean = total / n
        std = (sq / n - mean.pow(2)).clamp(min=0).sqrt().clamp(min=eps)
        self.feat_mean.copy_(mean.to(self.feat_mean.dtype))
        self.feat_std.copy_(std.to(self.feat_std.dtype))
        return n
