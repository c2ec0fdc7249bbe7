"""What every interlingua encoder shares: slot counts, chunk pooling weights, the gated MLP, and
:func:`build_interlingua`, which builds the kind a config names. The kinds themselves are one module
each (:mod:`latentwire_core.encoders`; ``lm_pool`` in ``latentwire_hf.encoders``).

M is either fixed (``n_tokens``) or set by a compression ratio per example:
``M_i = min(ceil(L_i / ratio), n_tokens)`` for a text of ``L_i`` real tokens
(:func:`slot_counts`). A batch then carries ``M_max`` slots; slots past ``M_i`` are zero
and never read (the caller cuts each row to its ``M_i``).

All honour the feature mask: padded positions never contribute, whatever they hold.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from latentwire_core.config import INTERLINGUAS, InterlinguaConfig

__all__ = [
    "INTERLINGUAS",
    "GatedMLP",
    "InterlinguaConfig",
    "build_interlingua",
    "chunk_weights",
    "slot_counts",
    "zero_past_counts",
]


def slot_counts(mask: torch.Tensor, *, n_tokens: int, ratio: float = 0.0) -> torch.Tensor:
    """Soft tokens per example: ``n_tokens`` (fixed), or ``clamp(ceil(L / ratio), 1, n_tokens)``.

    Args:
        mask: ``(B, T)`` real tokens of the compressed text.

    Returns:
        ``(B,)`` int64.
    """
    b = mask.shape[0]
    if ratio <= 0:
        return torch.full((b,), n_tokens, dtype=torch.long, device=mask.device)
    length = mask.bool().sum(dim=1).double()
    return torch.ceil(length / ratio).long().clamp(min=1, max=n_tokens)


def zero_past_counts(z: torch.Tensor, counts: torch.Tensor | None) -> torch.Tensor:
    """Zero the slots past each row's count: ``(B, M, d)`` -> same."""
    if counts is None:
        return z
    keep = torch.arange(z.shape[1], device=z.device)[None, :] < counts.to(z.device)[:, None]  # (B, M)
    return torch.where(keep[..., None], z, torch.zeros_like(z))


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


def chunk_weights(mask: torch.Tensor, n_chunks: int | torch.Tensor) -> torch.Tensor:
    """Averaging weights that split each row's real tokens into contiguous chunks.

    The ``L`` real positions of a row (wherever padding sits) are ranked
    ``0..L-1``; chunk ``j`` covers ranks ``[floor(jL/M), max(floor((j+1)L/M), start+1))``,
    so every chunk holds at least one token even when ``L < M``. With ``M = ceil(L / x)``
    the chunks are consecutive groups of about ``x`` tokens (ratio pooling).

    Args:
        mask: ``(B, T)`` bool, real tokens.
        n_chunks: ``M`` for every row, or ``(B,)`` per-row ``M_i`` (rows padded to ``max M_i``).

    Returns:
        ``(B, M_max, T)`` float weights; each ``(b, j < M_b)`` row sums to 1 (0 for an empty text),
        rows ``j >= M_b`` are 0.
    """
    mask = mask.bool()
    b = mask.shape[0]
    counts = (
        torch.full((b,), n_chunks, dtype=torch.long, device=mask.device)
        if isinstance(n_chunks, int)
        else n_chunks.to(device=mask.device, dtype=torch.long)
    )
    m_max = int(counts.max()) if b else 0
    m = counts[:, None]  # (B, 1)
    length = mask.sum(dim=1, keepdim=True)  # (B, 1)
    rank = torch.cumsum(mask.long(), dim=1) - 1  # (B, T) rank among real tokens
    j = torch.arange(m_max, device=mask.device)[None, :]  # (1, M)
    start = torch.div(j * length, m, rounding_mode="floor")  # (B, M)
    end = torch.div((j + 1) * length, m, rounding_mode="floor")
    start = torch.minimum(start, (length - 1).clamp(min=0))
    end = torch.maximum(end, start + 1).minimum(length)
    r = rank[:, None, :]  # (B, 1, T)
    valid = (j < m)[..., None]  # (B, M, 1) slots this row has
    inside = (r >= start[..., None]) & (r < end[..., None]) & mask[:, None, :] & valid  # (B, M, T)
    w = inside.float()
    return w / w.sum(dim=-1, keepdim=True).clamp(min=1.0)


def build_interlingua(cfg: InterlinguaConfig, **parts: object) -> nn.Module:
    """Instantiate the encoder registered under ``cfg.kind``."""
    module: nn.Module = INTERLINGUAS.get(cfg.kind)(cfg, **parts)
    return module
