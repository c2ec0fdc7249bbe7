"""What a frozen reader's decoding uses beside the model: the constant prompt prefix's cached keys and
values, and the per-row stop once a generated answer's first line is complete."""

from __future__ import annotations

from collections.abc import Callable

import attrs
import torch
from transformers import StoppingCriteria

from latentwire_core.stopping import line_complete

__all__ = ["LineStop", "PrefixCache"]


@attrs.frozen
class PrefixCache:
    """Keys/values of a constant prompt prefix, computed once and reused by every batch.

    The prefix before the slot (BOS, system prompt, user header, instruction) is the
    same for every example of a task, so its attention states are frozen work.
    """

    ids: tuple[int, ...]
    layers: tuple[tuple[torch.Tensor, torch.Tensor], ...]  # per layer (1, heads, P, head_dim)

    @property
    def length(self) -> int:
        return len(self.ids)


class LineStop(StoppingCriteria):
    """Per-row stop once the decoded new tokens hold a complete first line."""

    def __init__(self, decode: Callable[[list[int]], str]) -> None:
        self.decode = decode

    def __call__(
        self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: object
    ) -> torch.BoolTensor:
        # generate() from inputs_embeds passes only the generated ids
        done = [line_complete(self.decode(row)) for row in input_ids.tolist()]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)  # type: ignore[return-value]
