"""The shared prompt builder: one model's constant parts around the slot, for every method.

``[before] <slot> [tail] [after]`` where ``before``/``after`` come from the model's
``prompt_parts`` (chat template or plain template), the slot holds text ids or soft
tokens, and ``tail`` is per-example plain text: the question, when only the context is
compressed (``compress="context"``: ``before`` then ends with ``Context:``). Training, evaluation and benchmarks all build batches here, so only
the slot's content ever differs between methods (DESIGN.md section 2).

The model's constant ``before`` part runs once (``prefix_cache``, a port member); hidden states of
every batch continue that cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from latentwire_core.ports import FrozenLM, PromptLM
from latentwire_core.slots import Segment, SlotBatch, assemble_batch
from latentwire_core.tasks import COMPRESS, Example, TaskSpec, compressed_text, plain_tail

__all__ = ["SlotPrompt", "eos_id", "pad_id"]


def eos_id(lm: PromptLM) -> int:
    """The model's end-of-sequence id (every answer ends with it)."""
    eos = lm.special_ids["eos"]
    if eos is None:
        raise ValueError(f"{lm.name}: no EOS id; a prompt needs one to end answers")
    return int(eos)


def pad_id(lm: PromptLM) -> int:
    """The padding id: the model's own, else its EOS."""
    pad = lm.special_ids["pad"]
    return eos_id(lm) if pad is None else int(pad)


class SlotPrompt:
    """Prompt parts, cached prefix and special ids of one frozen model for one task.

    Args:
        lm: a :class:`~latentwire_core.ports.FrozenLM`.
        task: the task spec (instruction, after-text, anchor, label verbalisers).
        instruction: replaces ``task.instruction`` (k-shot prompts prepend demonstrations).
        compress: ``source`` (the slot carries the whole source) or ``context`` (the slot carries
            a QA example's context, its question follows in plain text).
    """

    def __init__(
        self, lm: FrozenLM, task: TaskSpec, *, instruction: str | None = None, compress: str = "source"
    ) -> None:
        if compress not in COMPRESS:
            raise ValueError(f"compress must be one of {COMPRESS}, got {compress!r}")
        self.lm, self.task, self.compress = lm, task, compress
        text = task.instruction if instruction is None else instruction
        if compress == "context":
            text += "Context:"  # the text slot then starts with " " + context, as the full text would
        self.before, self.after = lm.prompt_parts(text, task.after, task.anchor)
        self.prefix: Any = lm.prefix_cache(self.before)  # run once; every batch continues it
        self.eos, self.pad = eos_id(lm), pad_id(lm)
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
        """Right-padded batch of ``slot [tail] [after] answer``: it continues the cached ``before``."""
        rows = self._rows(slots, tails, head=False)
        return assemble_batch(rows, embed=self.lm.embed, answers=answers, pad_side="right", pad_id=self.pad)

    def hidden(
        self,
        slots: Sequence[Segment],
        answers: Sequence[Sequence[int]] | None = None,
        tails: Sequence[Sequence[int]] | None = None,
    ) -> tuple[SlotBatch, torch.Tensor]:
        """The batch and its last hidden states ``(B, T, d_model)`` (no logits computed here)."""
        b = self.batch(slots, answers, tails)
        h = self.lm.hidden_states(b.inputs_embeds, b.attention_mask, b.position_ids, prefix=self.prefix)
        return b, h

    def generation_batch(
        self, slots: Sequence[Segment], tails: Sequence[Sequence[int]] | None = None
    ) -> SlotBatch:
        """Left-padded full prompts for ``generate`` (the KV cache there covers the prefix)."""
        rows = self._rows(slots, tails, head=True)
        return assemble_batch(rows, embed=self.lm.embed, pad_side="left", pad_id=self.pad)
