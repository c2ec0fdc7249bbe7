"""Latent refiner (the seeds' option): a small Transformer over the received ``Z``, before the adapters.

It runs on the receiving side, shared by every reader, after the message is unpacked: the message is
still the encoder's ``Z``. Each layer is a pre-norm block (self-attention among the example's real slots,
then a gated MLP) whose residual is scaled by its own gate, initialised to 0: a fresh refiner is the
identity, so adding one leaves a wire's outputs exactly unchanged at step 0, and training opens the gates.
"""

from __future__ import annotations

import torch
from torch import nn

from latentwire_core.interlingua import GatedMLP, zero_past_counts

__all__ = ["LatentRefiner"]


class _Block(nn.Module):
    def __init__(self, d: int, n_heads: int) -> None:
        super().__init__()
        self.attn_norm = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, n_heads, batch_first=True)
        self.mlp_norm = nn.LayerNorm(d)
        self.mlp = GatedMLP(d, 2 * d)
        self.gate = nn.Parameter(torch.zeros(2))  # attention and MLP residuals; 0: the identity

    def forward(self, z: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        h = self.attn_norm(z)
        a, _ = self.attn(h, h, h, key_padding_mask=pad, need_weights=False)
        z = z + self.gate[0] * a
        out: torch.Tensor = z + self.gate[1] * self.mlp(self.mlp_norm(z))
        return out


class LatentRefiner(nn.Module):
    """``Z (B, M, d_z)`` -> refined ``Z`` of the same shape; slots past each row's count stay zero.

    Args:
        d_z: the latent width; n_layers: blocks; n_heads: attention heads (must divide ``d_z``).
    """

    def __init__(self, d_z: int, n_layers: int, n_heads: int) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"a refiner needs at least one layer, got {n_layers}")
        self.blocks = nn.ModuleList(_Block(d_z, n_heads) for _ in range(n_layers))

    def forward(self, z: torch.Tensor, counts: torch.Tensor | None = None) -> torch.Tensor:
        m = z.shape[1]
        if counts is None:
            pad = torch.zeros(z.shape[:2], dtype=torch.bool, device=z.device)
        else:
            pad = torch.arange(m, device=z.device)[None, :] >= counts.to(z.device)[:, None]
        pad[:, 0] = False  # a row always has its first slot (an empty text still gets M = 1)
        for block in self.blocks:
            z = block(z, pad)
        return zero_past_counts(z, counts)
