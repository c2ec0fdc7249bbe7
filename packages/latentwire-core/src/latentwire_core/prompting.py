"""The shared prompt builder: one model's constant parts around the slot, for every method.

``[before] <slot> [after]`` where ``before``/``after`` come from the model's
``prompt_parts`` (chat template or plain template) and the slot holds text ids or
soft tokens. Training, evaluation and benchmarks all build batches here, so only
the slot's content ever differs between methods (DESIGN.md section 2).

A model that offers ``prefix_cache(ids)`` (the Hugging Face backend does) gets its
constant ``before`` part run once; its hidden states then continue that cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from latentwire_core.slots import Segment, SlotBatch, assemble_batch
from latentwire_core.tasks import TaskSpec

__all__ = ["SlotPrompt"]


class SlotPrompt:
    """Prompt parts, cached prefix and special ids of one frozen model for one task.

    Args:
        lm: a :class:`~latentwire_core.ports.FrozenLM` (optionally with ``prefix_cache``).
        task: the task spec (instruction, after-text, anchor, label verbalisers).
        instruction: replaces ``task.instruction`` (k-shot prompts prepend demonstrations).
    """

    def __init__(self, lm: Any, task: TaskSpec, *, instruction: str | None = None) -> None:
        self.lm, self.task = lm, task
        text = task.instruction if instruction is None else instruction
        self.before, self.after = lm.prompt_parts(text, task.after, task.anchor)
        self.prefix = lm.prefix_cache(self.before) if hasattr(lm, "prefix_cache") else None
        ids = lm.special_ids
        self.eos = int(ids["eos"])
        self.pad = int(ids["pad"] if ids["pad"] is not None else self.eos)
        self.label_ids: list[list[int]] = [lm.tokenize([lab])[0] for lab in task.labels]

    def batch(self, slots: Sequence[Segment], answers: Sequence[Sequence[int]] | None = None) -> SlotBatch:
        """Right-padded batch of ``[before] slot [after] answer`` (``before`` left out when cached)."""
        rows: list[list[Segment]] = (
            [[s, self.after] for s in slots]
            if self.prefix is not None
            else [[self.before, s, self.after] for s in slots]
        )
        return assemble_batch(rows, embed=self.lm.embed, answers=answers, pad_side="right", pad_id=self.pad)

    def hidden(
        self, slots: Sequence[Segment], answers: Sequence[Sequence[int]] | None = None
    ) -> tuple[SlotBatch, torch.Tensor]:
        """The batch and its last hidden states ``(B, T, d_model)`` (no logits computed here)."""
        b = self.batch(slots, answers)
        if self.prefix is not None:
            h: torch.Tensor = self.lm.hidden_states(
                b.inputs_embeds, b.attention_mask, b.position_ids, prefix=self.prefix
            )
        else:
            h = self.lm.hidden_states(b.inputs_embeds, b.attention_mask)
        return b, h

    def generation_batch(self, slots: Sequence[Segment]) -> SlotBatch:
        """Left-padded full prompts for ``generate`` (the KV cache there covers the prefix)."""
        rows = [[self.before, s, self.after] for s in slots]
        return assemble_batch(rows, embed=self.lm.embed, pad_side="left", pad_id=self.pad)
