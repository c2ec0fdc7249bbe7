"""Coprocessor (the seeds' "KV cache manipulation", ``[wire] inject = "coprocessor"``).

A deep prefix (``inject = "kv"``) maps the received ``Z`` to key/value entries that go into the reader's
cache after the prompt before the slot. The coprocessor also *reads that cache*: a small network whose
queries are the slot's entries and whose keys and values are the reader's cached prompt entries (every
layer's key and value per position, the same layout as a slot) writes a gated residual onto the slot's
entries before they are appended. Its gate starts at 0, so a fresh coprocessor wire's readers compute
exactly what the deep-prefix wire of the same weights computes (Liu et al. 2024, "Deliberation in latent
space via differentiable cache augmentation", in a small form: the frozen reader never changes).

In this project's prompt layout the cache before the slot holds the task's instruction (the question of
``compress = "context"`` follows the slot in text), so what the coprocessor reads is the same for every
example of a task: it adapts the entries to the prompt, not to the question.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from latentwire_core.slots import CacheSlot, Segment

__all__ = ["Coprocessor", "resolve_cache_slots"]


class Coprocessor(nn.Module):
    """``slot (B, M, W)`` and the cached prompt ``(P, W)`` -> ``slot + gate * CrossAttention`` (gate 0 first).

    ``W`` is the reader's ``kv_width`` (every layer's key and value per position); attention runs at
    ``d_inner`` over ``n_heads``.
    """

    def __init__(self, width: int, d_inner: int, n_heads: int) -> None:
        super().__init__()
        if d_inner % n_heads:
            raise ValueError(f"coprocessor: {n_heads} heads must divide the inner width {d_inner}")
        self.s_norm = nn.LayerNorm(width)
        self.c_norm = nn.LayerNorm(width)
        self.q = nn.Linear(width, d_inner, bias=False)
        self.kv = nn.Linear(width, 2 * d_inner, bias=False)
        self.out = nn.Linear(d_inner, width, bias=False)
        self.gate = nn.Parameter(torch.zeros(()))  # 0: the deep prefix unchanged
        self.n_heads = n_heads

    def forward(self, slot: torch.Tensor, cache: torch.Tensor) -> torch.Tensor:
        b, m, _ = slot.shape
        p = cache.shape[0]
        dtype = self.q.weight.dtype
        q = self.q(self.s_norm(slot.to(dtype))).view(b, m, self.n_heads, -1).transpose(1, 2)  # (B, H, M, d)
        k, v = self.kv(self.c_norm(cache.to(slot.device, dtype))).chunk(2, dim=-1)  # (P, d_inner) each
        k = k.view(1, p, self.n_heads, -1).transpose(1, 2).expand(b, -1, -1, -1)
        v = v.view(1, p, self.n_heads, -1).transpose(1, 2).expand(b, -1, -1, -1)
        a = nn.functional.scaled_dot_product_attention(q, k, v)
        delta = self.out(a.transpose(1, 2).reshape(b, m, -1))
        out: torch.Tensor = slot + (self.gate * delta).to(slot.dtype)
        return out


def cache_rows(prefix: Any) -> torch.Tensor:
    """A cached prompt (``PrefixCache``: per layer keys and values ``(1, heads, P, dim)``) as ``(P, W)``
    rows in a deep-prefix slot's layout (per position: every layer's key then value, heads x dim each)."""
    per = torch.stack([torch.stack([k[0], v[0]]) for k, v in prefix.layers])  # (L, 2, heads, P, dim)
    p = per.shape[3]
    return per.permute(3, 0, 1, 2, 4).reshape(p, -1)


def resolve_cache_slots(slots: Sequence[Segment], prefix: Any) -> list[Segment]:
    """Coprocessor slots -> the deep-prefix entries they become after reading ``prefix`` (the cache the
    entries follow; ``None``: nothing cached, the entries pass unchanged); other slots unchanged. A batch
    is all coprocessor slots or none."""
    kinds = {isinstance(s, CacheSlot) for s in slots}
    if kinds != {True}:
        if True in kinds:
            raise ValueError("a batch mixes coprocessor slots with other slot kinds")
        return list(slots)
    cs = [s for s in slots if isinstance(s, CacheSlot)]
    if prefix is None:  # nothing cached before the slot (a reader without BOS in pretraining): unchanged
        return [s.kv for s in cs]
    if any(s.coprocessor is not cs[0].coprocessor for s in cs):
        raise ValueError("a batch's coprocessor slots belong to different readers")
    m = max(s.kv.shape[0] for s in cs)
    batch = cs[0].kv.new_zeros(len(cs), m, cs[0].kv.shape[-1])
    for i, s in enumerate(cs):  # each query reads the cache alone: padding rows are cut below
        batch[i, : s.kv.shape[0]] = s.kv
    res = cs[0].coprocessor(batch, cache_rows(prefix))
    return [res[i, : s.kv.shape[0]] for i, s in enumerate(cs)]
