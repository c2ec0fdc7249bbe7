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

from latentwire_core.latent_adapters import GatedCrossAttention
from latentwire_core.slots import CacheSlot, Segment

__all__ = ["Coprocessor", "resolve_cache_slots"]


class Coprocessor(GatedCrossAttention):
    """``slot (B, M, W)`` and the cached prompt ``(P, W)`` -> ``slot + gate * CrossAttention`` (gate 0 first):
    the latent adapters' gated block with the slot's entries as queries and the cache as memory.

    ``W`` is the reader's ``kv_width`` (every layer's key and value per position); attention runs at
    ``d_inner`` over ``n_heads``.
    """

    def forward(self, slot: torch.Tensor, cache: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        b = slot.shape[0]
        memory = cache.to(slot.device)[None].expand(b, -1, -1)
        pad = torch.zeros(memory.shape[:2], dtype=torch.bool, device=slot.device)  # every cached entry
        return super().forward(slot, memory, pad)


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
