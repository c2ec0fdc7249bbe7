"""``perceiver``: M learned queries cross-attend over the masked features (Perceiver resampler /
Q-Former style), then residual + gated MLP. M is always ``n_tokens`` (``ratio`` is refused: see
:data:`latentwire_core.config.ENCODER_KINDS`)."""

from __future__ import annotations

import torch
from torch import nn

from latentwire_core.config import INTERLINGUAS, InterlinguaConfig
from latentwire_core.interlingua import GatedMLP, zero_past_counts

__all__ = ["PerceiverEncoder"]


@INTERLINGUAS.register("perceiver")
class PerceiverEncoder(nn.Module):
    """M learned queries attend over the masked features, then residual + gated MLP."""

    def __init__(self, cfg: InterlinguaConfig) -> None:
        super().__init__()
        self.n_tokens, self.d_z = cfg.n_tokens, cfg.d_z
        self.in_proj = nn.Linear(cfg.d_in, cfg.d_z)
        self.in_norm = nn.LayerNorm(cfg.d_z)
        self.queries = nn.Parameter(torch.randn(cfg.n_tokens, cfg.d_z) * cfg.d_z**-0.5)
        self.attn = nn.MultiheadAttention(cfg.d_z, cfg.n_heads, dropout=cfg.dropout, batch_first=True)
        self.mlp_norm = nn.LayerNorm(cfg.d_z)
        self.mlp = GatedMLP(cfg.d_z, cfg.mlp_ratio * cfg.d_z)
        self.out_norm = nn.LayerNorm(cfg.d_z)

    def forward(
        self, features: torch.Tensor, mask: torch.Tensor, counts: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``counts`` (B,): keep the first ``M_i`` query outputs per row (variable M)."""
        kv = self.in_norm(self.in_proj(features))  # (B, T, d_z)
        q = self.queries[None].expand(features.shape[0], -1, -1)  # (B, M, d_z)
        key_pad = ~mask.bool()
        key_pad[:, 0] &= mask.bool().any(dim=1)  # empty row: attend to a zero pad, not NaN
        kv = torch.where(key_pad[..., None], torch.zeros_like(kv), kv)  # pad content never leaks in
        attended, _ = self.attn(q, kv, kv, key_padding_mask=key_pad, need_weights=False)
        x = q + attended  # (B, M, d_z)
        x = x + self.mlp(self.mlp_norm(x))
        out: torch.Tensor = self.out_norm(x)
        if counts is not None:
            out = zero_past_counts(out[:, : int(counts.max())], counts)
        return out
