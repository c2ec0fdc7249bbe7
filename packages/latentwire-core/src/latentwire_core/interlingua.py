"""Interlingua encoders: token features ``(B, T, d_f)`` -> soft tokens ``Z (B, M, d_z)``.

* ``perceiver``: M learned queries cross-attend over the features (Perceiver
  resampler / Q-Former style), then residual + gated MLP.
* ``mean_pool``: features averaged in M contiguous chunks of the real tokens,
  then projected (ARC-Encoder, arXiv:2510.20535; mean-pooling compressors).

Both honour the feature mask: padded positions never contribute, whatever they hold.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import torch
import torch.nn.functional as F
from torch import nn

from latentwire_core._validators import non_negative, one_of, positive
from latentwire_core.registry import Registry

__all__ = [
    "INTERLINGUAS",
    "InterlinguaConfig",
    "LearnedQueryPooler",
    "MeanPoolEncoder",
    "build_interlingua",
    "chunk_weights",
]


@attrs.frozen(kw_only=True)
class InterlinguaConfig:
    """Args:
    kind: registry name, ``"perceiver"`` or ``"mean_pool"``.
    d_in: feature width ``d_f``.
    d_z: interlingua width.
    n_tokens: ``M``, soft tokens on the wire.
    """

    kind: str = attrs.field(default="perceiver", validator=one_of("perceiver", "mean_pool"))
    d_in: int = attrs.field(default=384, validator=positive)
    d_z: int = attrs.field(default=256, validator=positive)
    n_tokens: int = attrs.field(default=8, validator=positive)
    n_heads: int = attrs.field(default=4, validator=positive)
    mlp_ratio: int = attrs.field(default=2, validator=positive)
    dropout: float = attrs.field(default=0.0, validator=non_negative)

    def __attrs_post_init__(self) -> None:
        if self.d_z % self.n_heads:
            raise ValueError(f"d_z ({self.d_z}) must be divisible by n_heads ({self.n_heads})")


INTERLINGUAS: Registry[Callable[[InterlinguaConfig], nn.Module]] = Registry("interlingua")


class GatedMLP(nn.Module):
    """SwiGLU feed-forward: ``W_o(silu(W_g x) * W_u x)``."""

    def __init__(self, d: int, hidden: int) -> None:
        super().__init__()
        self.gate = nn.Linear(d, hidden)
        self.up = nn.Linear(d, hidden)
        self.out = nn.Linear(hidden, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.out(F.silu(self.gate(x)) * self.up(x))
        return out


@INTERLINGUAS.register("perceiver")
class LearnedQueryPooler(nn.Module):
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

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        kv = self.in_norm(self.in_proj(features))  # (B, T, d_z)
        q = self.queries[None].expand(features.shape[0], -1, -1)  # (B, M, d_z)
        key_pad = ~mask.bool()
        key_pad[:, 0] &= mask.bool().any(dim=1)  # empty row: attend to a zero pad, not NaN
        kv = torch.where(key_pad[..., None], torch.zeros_like(kv), kv)  # pad content never leaks in
        attended, _ = self.attn(q, kv, kv, key_padding_mask=key_pad, need_weights=False)
        x = q + attended  # (B, M, d_z)
        x = x + self.mlp(self.mlp_norm(x))
        out: torch.Tensor = self.out_norm(x)
        return out


def chunk_weights(mask: torch.Tensor, n_chunks: int) -> torch.Tensor:
    """Averaging weights that split each row's real tokens into contiguous chunks.

    The ``L`` real positions of a row (wherever padding sits) are ranked
    ``0..L-1``; chunk ``j`` covers ranks ``[floor(jL/M), max(floor((j+1)L/M), start+1))``,
    so every chunk holds at least one token even when ``L < M``.

    Args:
        mask: ``(B, T)`` bool, real tokens.
        n_chunks: ``M``.

    Returns:
        ``(B, M, T)`` float weights; each ``(b, j)`` row sums to 1 (0 for an empty text).
    """
    mask = mask.bool()
    length = mask.sum(dim=1, keepdim=True)  # (B, 1)
    rank = torch.cumsum(mask.long(), dim=1) - 1  # (B, T) rank among real tokens
    j = torch.arange(n_chunks, device=mask.device)[None, :]  # (1, M)
    start = torch.div(j * length, n_chunks, rounding_mode="floor")  # (B, M)
    end = torch.div((j + 1) * length, n_chunks, rounding_mode="floor")
    start = torch.minimum(start, (length - 1).clamp(min=0))
    end = torch.maximum(end, start + 1).minimum(length)
    r = rank[:, None, :]  # (B, 1, T)
    inside = (r >= start[..., None]) & (r < end[..., None]) & mask[:, None, :]  # (B, M, T)
    w = inside.float()
    return w / w.sum(dim=-1, keepdim=True).clamp(min=1.0)


@INTERLINGUAS.register("mean_pool")
class MeanPoolEncoder(nn.Module):
    """Mean of features in M contiguous chunks, then a projection to ``d_z``."""

    def __init__(self, cfg: InterlinguaConfig) -> None:
        super().__init__()
        self.n_tokens, self.d_z = cfg.n_tokens, cfg.d_z
        self.proj = nn.Sequential(nn.Linear(cfg.d_in, cfg.d_z), nn.GELU(), nn.Linear(cfg.d_z, cfg.d_z))
        self.out_norm = nn.LayerNorm(cfg.d_z)

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        w = chunk_weights(mask, self.n_tokens).to(features.dtype)  # (B, M, T)
        # where(), not multiply: 0 * NaN in a padded slot would still poison the sum
        safe = torch.where(mask[..., None].bool(), features, torch.zeros_like(features))
        pooled = torch.bmm(w, safe)  # (B, M, d_f)
        out: torch.Tensor = self.out_norm(self.proj(pooled))
        return out


def build_interlingua(cfg: InterlinguaConfig) -> nn.Module:
    """Instantiate the encoder registered under ``cfg.kind``."""
    return INTERLINGUAS.get(cfg.kind)(cfg)
