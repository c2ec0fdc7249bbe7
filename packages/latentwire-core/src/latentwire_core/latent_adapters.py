"""Latent adapters (the seeds' option): gated cross-attention from a reader's hidden states to its slot.

A reader still receives its soft tokens in the prompt's slot; at the chosen decoder layers it also reads
them again: after layer ``l`` its hidden states ``h`` become ``h + g_l * CrossAttention(norm(h), memory)``,
where ``memory`` is the example's soft tokens ``(M_i, d_model)`` (padding slots never attended) and the
gate ``g_l`` starts at 0. A fresh wire's readers therefore compute exactly what they computed without
adapters, and training opens the gates (Flamingo's gated cross-attention; the reader's weights stay
frozen: the blocks belong to the wire and run through forward hooks on the reader's decoder layers).

Every position of the prompt reads the memory, so ``SlotPrompt`` runs the whole prompt (no cached
prefix) in teacher-forced and in greedy paths alike; generation then reads it at each new token.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from latentwire_core.slots import MemorySlot, Segment

__all__ = ["GatedCrossAttention", "ReaderLatentAdapters", "cross_attending", "split_memory"]


class GatedCrossAttention(nn.Module):
    """``h (B, T, d_model)``, memory ``(B, M, d_model)`` -> ``h + gate * attention`` (gate 0 at start).

    Queries, keys and values are projected to ``d_inner`` (split over ``n_heads``) and back to ``d_model``.
    """

    def __init__(self, d_model: int, d_inner: int, n_heads: int) -> None:
        super().__init__()
        if d_inner % n_heads:
            raise ValueError(f"latent adapters: {n_heads} heads must divide the inner width {d_inner}")
        self.h_norm = nn.LayerNorm(d_model)
        self.m_norm = nn.LayerNorm(d_model)
        self.q = nn.Linear(d_model, d_inner, bias=False)
        self.kv = nn.Linear(d_model, 2 * d_inner, bias=False)
        self.out = nn.Linear(d_inner, d_model, bias=False)
        self.gate = nn.Parameter(torch.zeros(()))  # 0: the reader as without adapters
        self.n_heads = n_heads

    def forward(self, h: torch.Tensor, memory: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        """``pad (B, M)`` is True on padding slots (never attended)."""
        b, t, _ = h.shape
        m = memory.shape[1]
        x = self.h_norm(h.to(self.q.weight.dtype))
        q = self.q(x).view(b, t, self.n_heads, -1).transpose(1, 2)  # (B, H, T, d)
        k, v = self.kv(self.m_norm(memory.to(self.q.weight.dtype))).chunk(2, dim=-1)
        k = k.reshape(b, m, self.n_heads, -1).transpose(1, 2)
        v = v.reshape(b, m, self.n_heads, -1).transpose(1, 2)
        allowed = ~pad.to(h.device)[:, None, None, :]  # (B, 1, 1, M)
        a = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        delta = self.out(a.transpose(1, 2).reshape(b, t, -1))
        out: torch.Tensor = h + (self.gate * delta).to(h.dtype)
        return out


class ReaderLatentAdapters(nn.Module):
    """One reader's blocks, one per chosen decoder layer (indices from 0, counted in that reader)."""

    def __init__(self, layers: Sequence[int], d_model: int, d_inner: int, n_heads: int) -> None:
        super().__init__()
        if not layers or any(int(i) < 0 for i in layers) or len(set(layers)) != len(layers):
            raise ValueError(f"latent adapter layers must be distinct indices >= 0, got {list(layers)}")
        self.layers = tuple(sorted(int(i) for i in layers))
        self.blocks = nn.ModuleDict(
            {str(i): GatedCrossAttention(d_model, d_inner, n_heads) for i in self.layers}
        )


def split_memory(
    slots: Sequence[Segment],
) -> tuple[list[Segment], tuple[ReaderLatentAdapters, torch.Tensor, torch.Tensor] | None]:
    """Slots -> (what goes into the prompt, ``(adapters, memory (B, M_max, d), pad (B, M_max))``).

    Without :class:`~latentwire_core.slots.MemorySlot` s the slots come back unchanged with ``None``; a
    batch is all memory slots of one reader's adapters or none.
    """
    kinds = {isinstance(s, MemorySlot) for s in slots}
    if kinds != {True}:
        if True in kinds:
            raise ValueError("a batch mixes memory slots (latent adapters) with other slot kinds")
        return list(slots), None
    mem = [s for s in slots if isinstance(s, MemorySlot)]
    adapters = mem[0].adapters
    if any(s.adapters is not adapters for s in mem):
        raise ValueError("a batch's memory slots belong to different latent adapters")
    rows = [s.soft for s in mem]
    m = max(1, max(r.shape[0] for r in rows))
    memory = rows[0].new_zeros(len(rows), m, rows[0].shape[-1])
    pad = torch.ones(len(rows), m, dtype=torch.bool, device=rows[0].device)
    for i, r in enumerate(rows):
        memory[i, : r.shape[0]] = r
        pad[i, : r.shape[0]] = False
    pad[:, 0] = False  # an empty row still attends somewhere (a zero slot): no NaN from an all-masked row
    return [s.soft for s in mem], (adapters, memory, pad)


@contextmanager
def cross_attending(
    decoder_layers: Sequence[nn.Module],
    adapters: ReaderLatentAdapters,
    memory: torch.Tensor,
    pad: torch.Tensor,
    *,
    reader: str = "the reader",
) -> Iterator[None]:
    """While open, the chosen decoder layers' outputs read ``memory`` through ``adapters`` (forward hooks,
    removed on exit even after an error). A layer index the reader lacks is refused by name."""
    depth = len(decoder_layers)
    beyond = [i for i in adapters.layers if i >= depth]
    if beyond:
        raise ValueError(f"latent adapter layers {beyond} are beyond {reader}'s {depth} decoder layers")

    def hook_for(block: GatedCrossAttention) -> Any:
        def hook(_module: nn.Module, _args: Any, output: Any) -> Any:
            h = output[0] if isinstance(output, tuple) else output
            if h.shape[0] != memory.shape[0]:
                raise ValueError(f"{h.shape[0]} rows read {memory.shape[0]} memories")
            new = block(h, memory.to(h.device), pad)
            return (new, *output[1:]) if isinstance(output, tuple) else new

        return hook

    handles = [
        decoder_layers[i].register_forward_hook(hook_for(adapters.blocks[str(i)]))  # type: ignore[arg-type]
        for i in adapters.layers
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
