"""``chunk_mean``: the features averaged in M contiguous chunks of the real tokens, then projected
(ARC-Encoder, arXiv:2510.20535; mean-pooling compressors). M is ``n_tokens``, or per example from
``ratio`` (:func:`latentwire_core.interlingua.slot_counts`). Formerly called ``mean_pool`` (the name of
the baseline method that mean-pools a reader's own embeddings); that name is still read as this one
(:data:`latentwire_core.config.RENAMED_ENCODER_KINDS`)."""

from __future__ import annotations

import torch
from torch import nn

from latentwire_core.config import INTERLINGUAS, InterlinguaConfig
from latentwire_core.interlingua import chunk_weights, slot_counts, zero_past_counts

__all__ = ["ChunkMeanEncoder"]


@INTERLINGUAS.register("chunk_mean")
class ChunkMeanEncoder(nn.Module):
    """Mean of features in M contiguous chunks, then a projection to ``d_z``."""

    def __init__(self, cfg: InterlinguaConfig) -> None:
        super().__init__()
        self.n_tokens, self.d_z, self.ratio = cfg.n_tokens, cfg.d_z, cfg.ratio
        self.proj = nn.Sequential(nn.Linear(cfg.d_in, cfg.d_z), nn.GELU(), nn.Linear(cfg.d_z, cfg.d_z))
        self.out_norm = nn.LayerNorm(cfg.d_z)

    def forward(
        self, features: torch.Tensor, mask: torch.Tensor, counts: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``counts`` (B,): per-row ``M_i`` (default: from ``n_tokens`` / ``ratio``)."""
        if counts is None and self.ratio > 0:
            counts = slot_counts(mask, n_tokens=self.n_tokens, ratio=self.ratio)
        w = chunk_weights(mask, self.n_tokens if counts is None else counts).to(features.dtype)  # (B, M, T)
        # where(), not multiply: 0 * NaN in a padded slot would still poison the sum
        safe = torch.where(mask[..., None].bool(), features, torch.zeros_like(features))
        pooled = torch.bmm(w, safe)  # (B, M, d_f)
        out: torch.Tensor = self.out_norm(self.proj(pooled))
        return zero_past_counts(out, counts)
