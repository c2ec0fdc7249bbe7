"""The equal-training control: a soft prompt of the wire's size, trained like the wire, before the full text.

A latent that beats a zero-shot text prompt only after training may have learned the answer
*format* rather than carried the content. This control gets the same number of learned soft
tokens, the same steps, data and losses, but reads the full text in plain tokens after them:
``[before] P_k (M, d_model) text [tail] [after]``. Latent vs this control separates "the wire
carries content" from "training taught the format".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from latentwire_core.per_reader import ReaderParameters

__all__ = ["SoftPromptControl"]


class SoftPromptControl(nn.Module):
    """``M`` learned vectors per reader, at the reader's embedding scale.

    Args:
        readers: reader name -> ``(d_model, embed_rms)``.
        n_tokens: ``M``, the soft prompt's length (the wire's size).
    """

    def __init__(self, readers: Mapping[str, tuple[int, float]], n_tokens: int) -> None:
        super().__init__()
        if n_tokens < 1:
            raise ValueError(f"n_tokens must be >= 1, got {n_tokens}")
        self.n_tokens = n_tokens
        gen = torch.Generator().manual_seed(1234)  # its own generator: never shifts the caller's RNG
        self.prompts = ReaderParameters(
            {
                name: nn.Parameter(torch.randn(n_tokens, d, generator=gen) * rms)
                for name, (d, rms) in readers.items()
            }
        )

    def forward(self, names: Sequence[str]) -> dict[str, torch.Tensor]:
        """Reader name -> its soft prompt ``(M, d_model)`` (one call, for DDP)."""
        return {m: self.prompts[m] for m in names}

    @staticmethod
    def slot(prompt: torch.Tensor, text_embeds: torch.Tensor) -> torch.Tensor:
        """``(M, d)`` soft prompt + ``(T, d)`` embedded text -> the slot ``(M + T, d)``."""
        return torch.cat([prompt.to(text_embeds.dtype), text_embeds], dim=0)
