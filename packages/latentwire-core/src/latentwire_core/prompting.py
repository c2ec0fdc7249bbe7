"""The shared prompt builder: one model's constant parts around the slot, for every method.

``[before] <slot> [tail] [after]`` where ``before``/``after`` come from the model's
``prompt_parts`` (chat template or plain template), the slot holds text ids or soft
tokens, and ``tail`` is per-example plain text: the question, when only the context is
compressed (``compress="context"``: ``before`` then ends with ``Context:``). Training, evaluation and benchmarks all build batches here, so only
the slot's content ever differs between methods (DESIGN.md section 2).

A model that offers ``prefix_cache(ids)`` (the Hugging Face backend does) gets its
constant ``before`` part run once; its hidden states then continue that cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from latentwire_core.slots import Segment, SlotBatch, assemble_batch
from latentwire_core.tasks import COMPRESS, Example, TaskSpec, compressed_text, plain_tail

__all__ = ["SlotPrompt"]


class SlotPrompt:
    """Prompt parts, cached prefix and special ids of one frozen model for one task.

    Args:
        lm: a :class:`~latentwire_core.ports.FrozenLM` (optionally with ``prefix_cache``).
        task: the task spec (instruction, after-text, anchor, label verbalisers).
        instruction: replaces ``task.instruction`` (k-shot prompts prepend demonstrations).
        compress: ``source`` (the slot carries the whole source) or ``context`` (the slot carries
            a QA example's context, its question follows in plain text).
    """

    def __init__(
        self, lm: Any, task: TaskSpec, *, instruction: str | None = None, compress: str = "source"
    ) -> None:
        if compress not in COMPRESS:
            raise ValueError(f"compress must be one of {COMPRESS}, got {compress!r}")
        self.lm, self.task, self.compress = lm, task, compress
        text = task.instruction if instruction is None else instruction
        if compress == "context":
            text += "Context:"  # the text slot then starts with " " + context, as the full text would
        self.before, self.after = lm.prompt_parts(text, task.after, task.anchor)
        self.prefix = lm.prefix_cache(self.before) if hasattr(lm, "prefix_cache") else None
        ids = lm.special_ids
        self.eos = int(ids["eos"])
        self.pad = int(ids["pad"] if ids["pad"] is not None else self.eos)
        self.label_ids: list[list[int]] = [lm.tokenize([lab])[0] for lab in task.labels]

    def slot_text(self, ex: Example) -> str:
        """What a text method puts in the slot for ``ex`` (the compressed part, in plain text)."""
        return " " + ex.context if self.compress == "context" else compressed_text(ex, "source")

    def text_ids(self, ex: Example) -> list[int]:
        ids: list[int] = self.lm.tokenize([self.slot_text(ex)])[0]
        return ids

    def tails(self, examples: Sequence[Example]) -> list[list[int]] | None:
        """Per-example plain ids after the slot (the question in ``context`` mode), else ``None``."""
        if self.compress == "source":
            return None
        out: list[list[int]] = self.lm.tokenize([plain_tail(e, self.compress) for e in examples])
        return out

    def _rows(
        self, slots: Sequence[Segment], tails: Sequence[Sequence[int]] | None, *, head: bool
    ) -> list[list[Segment]]:
        if tails is not None and len(tails) != len(slots):
            raise ValueError(f"{len(slots)} slots but {len(tails)} tails")
        rows: list[list[Segment]] = []
        for i, s in enumerate(slots):
            row: list[Segment] = [self.before] if head else []
            row += [s, tails[i]] if tails is not None else [s]
            rows.append([*row, self.after])
        return rows

    def batch(
        self,
        slots: Sequence[Segment],
        answers: Sequence[Sequence[int]] | None = None,
        tails: Sequence[Sequence[int]] | None = None,
    ) -> SlotBatch:
        """Right-padded batch of ``[before] slot [tail] [after] answer`` (``before`` left out when cached)."""
        rows = self._rows(slots, tails, head=self.prefix is None)
        return assemble_batch(rows, embed=self.lm.embed, answers=answers, pad_side="right", pad_id=self.pad)

    def hidden(
        self,
        slots: Sequence[Segment],
        answers: Sequence[Sequence[int]] | None = None,
        tails: Sequence[Sequence[int]] | None = None,
    ) -> tuple[SlotBatch, torch.Tensor]:
        """The batch and its last hidden states ``(B, T, d_model)`` (no logits computed here)."""
        b = self.batch(slots, answers, tails)
        if self.prefix is not None:
            h: torch.Tensor = self.lm.hidden_states(
                b.inputs_embeds, b.attention_mask, b.position_ids, prefix=self.prefix
            )
        else:
            h = self.lm.hidden_states(b.inputs_embeds, b.attention_mask)
        return b, h

    def generation_batch(
        self, slots: Sequence[Segment], tails: Sequence[Sequence[int]] | None = None
    ) -> SlotBatch:
        """Left-padded full prompts for ``generate`` (the KV cache there covers the prefix)."""
        rows = self._rows(slots, tails, head=True)
        return assemble_batch(rows, embed=self.lm.embed, pad_side="left", pad_id=self.pad)
