"""The shared prompt builder: one model's constant parts around the slot, for every method.

``[before] <slot> [tail] [after]`` where ``before``/``after`` come from the model's
``prompt_parts`` (chat template or plain template), the slot holds text ids or soft
tokens, and ``tail`` is per-example plain text: the question, when only the context is
compressed (``compress="context"``: ``before`` then ends with ``Context:``). Training, evaluation and benchmarks all build batches here, so only
the slot's content ever differs between methods (docs/design.md "Ports").

The model's constant ``before`` part runs once (``prefix_cache``, a port member); hidden states of
every batch continue that cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from latentwire_core.coprocessor import resolve_cache_slots
from latentwire_core.latent_adapters import cross_attending, split_memory
from latentwire_core.ports import FrozenLM, PromptLM
from latentwire_core.slots import Segment, SlotBatch, assemble_batch
from latentwire_core.tasks import COMPRESS, Example, TaskSpec, compressed_text, plain_tail

__all__ = ["SlotPrompt", "eos_id", "is_kv_slot", "kv_rows", "pad_id"]


def is_kv_slot(lm: Any, seg: Segment) -> bool:
    """Whether ``seg`` is a deep-prefix slot (per-layer keys and values, ``lm.kv_width`` wide) rather than
    ids or input embeddings (``d_model`` wide)."""
    width = getattr(lm, "kv_width", None)
    return isinstance(seg, torch.Tensor) and width is not None and seg.shape[-1] == width != lm.d_model


def kv_rows(slots: Sequence[Segment]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row deep-prefix slots ``(M_i, kv_width)`` -> right-padded ``(B, M_max, kv_width)`` and mask."""
    rows = [s for s in slots if isinstance(s, torch.Tensor)]
    if len(rows) != len(slots):
        raise ValueError("a batch mixes deep-prefix slots with other slot kinds")
    m = max(r.shape[0] for r in rows)
    out = rows[0].new_zeros(len(rows), m, rows[0].shape[-1])
    mask = torch.zeros(len(rows), m, dtype=torch.long, device=rows[0].device)
    for i, r in enumerate(rows):
        out[i, : r.shape[0]] = r
        mask[i, : r.shape[0]] = 1
    return out, mask


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

    def is_kv(self, slots: Sequence[Segment]) -> bool:
        """Whether these slots are deep-prefix keys/values (all of them) rather than embeddings or ids."""
        kinds = {is_kv_slot(self.lm, s) for s in slots}
        if len(kinds) > 1:
            raise ValueError("a batch mixes deep-prefix slots with other slot kinds")
        return kinds == {True}

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
        """The batch and its last hidden states ``(B, T, d_model)`` (no logits computed here).

        Deep-prefix slots (:func:`is_kv_slot`) go into the reader's cache after the prefix instead; the
        batch then holds only what follows the slot (its labels stay aligned with the hidden states).
        """
        slots = resolve_cache_slots(slots, self.prefix)  # a coprocessor's entries after reading the prompt
        plain, memory = split_memory(slots)
        if memory is not None:  # latent adapters: every position reads the memory, the prefix too
            rows = self._rows(plain, tails, head=True)
            b = assemble_batch(rows, embed=self.lm.embed, answers=answers, pad_side="right", pad_id=self.pad)
            with self._reading(memory):
                h = self.lm.hidden_states(b.inputs_embeds, b.attention_mask, b.position_ids)
            return b, h
        if self.is_kv(slots):
            kv, kv_mask = kv_rows(slots)
            b = self.batch([[] for _ in slots], answers, tails)
            h = self.lm.hidden_states_kv(kv, kv_mask, b.inputs_embeds, b.attention_mask, prefix=self.prefix)  # type: ignore[attr-defined]
            return b, h
        b = self.batch(slots, answers, tails)
        h = self.lm.hidden_states(b.inputs_embeds, b.attention_mask, b.position_ids, prefix=self.prefix)
        return b, h

    def generate(
        self,
        slots: Sequence[Segment],
        tails: Sequence[Sequence[int]] | None = None,
        *,
        max_new_tokens: int,
        stop_at_line: bool = False,
    ) -> list[list[int]]:
        """Greedy answers' ids for each slot (ids, input embeddings, a memory slot, a deep prefix or a
        coprocessor's slot)."""
        slots = resolve_cache_slots(slots, self.prefix)
        plain, memory = split_memory(slots)
        if memory is not None:
            g = self.generation_batch(plain, tails)
            with self._reading(memory):
                return self.lm.generate(
                    g.inputs_embeds,
                    g.attention_mask,
                    max_new_tokens=max_new_tokens,
                    stop_at_line=stop_at_line,
                )
        if self.is_kv(slots):
            kv, kv_mask = kv_rows(slots)
            rows = self._rows([[] for _ in slots], tails, head=False)
            b = assemble_batch(rows, embed=self.lm.embed, pad_side="left", pad_id=self.pad)
            out: list[list[int]] = self.lm.generate_kv(  # type: ignore[attr-defined]
                kv,
                kv_mask,
                b.inputs_embeds,
                b.attention_mask,
                prefix=self.prefix,
                max_new_tokens=max_new_tokens,
                stop_at_line=stop_at_line,
            )
            return out
        g = self.generation_batch(slots, tails)
        return self.lm.generate(
            g.inputs_embeds, g.attention_mask, max_new_tokens=max_new_tokens, stop_at_line=stop_at_line
        )

    def _reading(self, memory: tuple[Any, torch.Tensor, torch.Tensor]) -> Any:
        """The context in which this reader's decoder layers cross-attend to ``memory`` (latent adapters)."""
        layers = getattr(self.lm, "decoder_layers", None)
        if layers is None:
            raise TypeError(
                f"{type(self.lm).__name__} exposes no decoder_layers: latent adapters cannot hook it"
            )
        adapters, mem, pad = memory
        return cross_attending(layers, adapters, mem, pad, reader=str(getattr(self.lm, "name", "the reader")))

    def generation_batch(
        self, slots: Sequence[Segment], tails: Sequence[Sequence[int]] | None = None
    ) -> SlotBatch:
        """Left-padded full prompts for ``generate`` (the KV cache there covers the prefix)."""
        rows = self._rows(slots, tails, head=True)
        return assemble_batch(rows, embed=self.lm.embed, pad_side="left", pad_id=self.pad)
