"""Prompt-slot assembly: rows of id segments and soft-token segments -> one padded batch.

A row is ``[prefix ids, slot, suffix ids]`` where the slot holds text ids (text
baselines) or soft tokens ``(M, d_model)`` (latent). The same builder serves every
method, so only the slot's content differs between them (docs/design.md "Ports").

Labels are *unshifted*: ``labels[b, t]`` is the token at position ``t`` or
``IGNORE``; the loss shifts exactly once (docs/design.md "Correctness rules", rule 1). Only
answer positions are ever targets: BOS and prompt tokens never are, PAD never is
(masked by position, so PAD == EOS is safe), and EOS is when the caller appends it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeAlias

import attrs
import torch

__all__ = [
    "IGNORE",
    "CacheSlot",
    "MemorySlot",
    "Segment",
    "SlotBatch",
    "assemble_batch",
    "is_soft",
    "token_ids",
    "with_eos",
]

IGNORE = -100


@attrs.frozen(eq=False)
class MemorySlot:
    """A slot of soft tokens ``(M, d_model)`` that the reader's latent adapters also cross-attend to
    from its hidden states (:mod:`latentwire_core.latent_adapters`): the slot carries its memory, so a
    shuffled control or a probe that moves slots between rows moves the memory with them.
    ``SlotPrompt`` unpacks it (:func:`latentwire_core.latent_adapters.split_memory`)."""

    soft: torch.Tensor
    adapters: Any  # latentwire_core.latent_adapters.ReaderLatentAdapters of the reader

    def __len__(self) -> int:
        return int(self.soft.shape[0])


@attrs.frozen(eq=False)
class CacheSlot:
    """A deep-prefix slot ``(M, kv_width)`` that a coprocessor rewrites after reading the reader's cached
    prompt (:mod:`latentwire_core.coprocessor`); ``SlotPrompt`` resolves it into plain entries."""

    kv: torch.Tensor
    coprocessor: Any  # latentwire_core.coprocessor.Coprocessor of the reader

    def __len__(self) -> int:
        return int(self.kv.shape[0])


Segment: TypeAlias = Sequence[int] | torch.Tensor | MemorySlot | CacheSlot


def is_soft(seg: Segment) -> bool:
    """Whether a slot holds soft tokens (a tensor or a :class:`MemorySlot`) rather than token ids."""
    return isinstance(seg, torch.Tensor | MemorySlot | CacheSlot)


def token_ids(slots: Sequence[Segment]) -> list[Sequence[int]] | None:
    """The slots as token ids when every one is ids (a cacheable text prompt), else ``None``."""
    out = [s for s in slots if not isinstance(s, torch.Tensor | MemorySlot | CacheSlot)]
    return out if len(out) == len(slots) else None


PadSide = Literal["left", "right"]


@attrs.frozen(kw_only=True)
class SlotBatch:
    """A padded batch ready for ``model(inputs_embeds=..., attention_mask=..., position_ids=...)``.

    Attributes:
        inputs_embeds: ``(B, T, d_model)``.
        attention_mask: ``(B, T)`` int64, 0 on padding.
        position_ids: ``(B, T)`` int64, counting real tokens only (0 on padding).
        labels: ``(B, T)`` int64 unshifted targets, :data:`IGNORE` elsewhere.
        answer_start: ``(B,)`` position of each row's first answer token
            (the row's end if it has no answer).
        lengths: ``(B,)`` real tokens per row.
    """

    inputs_embeds: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    labels: torch.Tensor
    answer_start: torch.Tensor
    lengths: torch.Tensor


def with_eos(answer_ids: Sequence[int], eos_id: int) -> list[int]:
    """Append EOS so the model learns to stop."""
    return [*answer_ids, eos_id]


def assemble_batch(
    rows: Sequence[Sequence[Segment]],
    *,
    embed: Callable[[torch.Tensor], torch.Tensor],
    answers: Sequence[Sequence[int]] | None = None,
    pad_side: PadSide = "right",
    pad_id: int = 0,
) -> SlotBatch:
    """Build ``inputs_embeds``, masks and labels from per-row segments.

    Args:
        rows: per row, segments in order; each is a list of token ids or a float
            tensor ``(n, d_model)`` of soft tokens (already at the model's scale).
        embed: ids ``(1, n)`` -> ``(1, n, d_model)``, the frozen model's lookup.
        answers: per row, answer ids appended after the prompt and used as targets
            (append EOS yourself with :func:`with_eos`). ``None`` for generation.
        pad_side: ``"left"`` for generation, either for training.
        pad_id: id whose embedding fills padded positions (never attended).

    Returns:
        A :class:`SlotBatch`.
    """
    if pad_side not in ("left", "right"):
        raise ValueError(f"pad_side must be 'left' or 'right', got {pad_side!r}")
    if answers is not None and len(answers) != len(rows):
        raise ValueError(f"{len(rows)} rows but {len(answers)} answers")
    pieces: list[torch.Tensor] = []
    n_prompt: list[int] = []
    n_answer: list[int] = []
    answer_ids: list[list[int]] = []
    ref: torch.Tensor | None = None
    for i, row in enumerate(rows):
        parts = list(row)
        ans = list(answers[i]) if answers is not None else []
        embs: list[torch.Tensor] = []
        for seg in [*parts, ans]:
            if isinstance(seg, MemorySlot | CacheSlot):
                raise TypeError(f"row {i}: a {type(seg).__name__} reaches the batch only through SlotPrompt")
            if isinstance(seg, torch.Tensor):
                if seg.dim() != 2:
                    raise ValueError(f"row {i}: soft segment must be (n, d_model), got {tuple(seg.shape)}")
                embs.append(seg)
                ref = seg
            elif len(seg):
                ids = torch.tensor(list(seg), dtype=torch.long)
                e = embed(ids[None])[0]  # (n, d_model)
                embs.append(e)
                ref = e
        if not embs:
            raise ValueError(f"row {i} is empty")
        pieces.append(torch.cat([e.to(embs[0].dtype) for e in embs], dim=0))
        n_answer.append(len(ans))
        n_prompt.append(pieces[-1].shape[0] - len(ans))
        answer_ids.append(ans)
    assert ref is not None
    device, dtype = pieces[0].device, pieces[0].dtype
    b, t = len(pieces), max(p.shape[0] for p in pieces)
    pad_vec = embed(torch.tensor([[pad_id]], dtype=torch.long))[0, 0].to(device=device, dtype=dtype)
    embeds = pad_vec.expand(b, t, -1).clone()  # (B, T, d_model)
    mask = torch.zeros(b, t, dtype=torch.long, device=device)
    labels = torch.full((b, t), IGNORE, dtype=torch.long, device=device)
    answer_start = torch.zeros(b, dtype=torch.long, device=device)
    for i, p in enumerate(pieces):
        n = p.shape[0]
        off = t - n if pad_side == "left" else 0
        embeds[i, off : off + n] = p.to(device=device, dtype=dtype)
        mask[i, off : off + n] = 1
        a0 = off + n_prompt[i]
        answer_start[i] = a0
        if n_answer[i]:
            labels[i, a0 : a0 + n_answer[i]] = torch.tensor(answer_ids[i], dtype=torch.long, device=device)
    position_ids = (mask.cumsum(dim=1) - 1).clamp(min=0) * mask  # (B, T)
    return SlotBatch(
        inputs_embeds=embeds,
        attention_mask=mask,
        position_ids=position_ids,
        labels=labels,
        answer_start=answer_start,
        lengths=mask.sum(dim=1),
    )
