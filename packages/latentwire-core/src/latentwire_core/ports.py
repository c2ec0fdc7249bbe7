"""Ports: the structural interfaces every LatentWire component satisfies.

Implementations never inherit from these; they match them structurally
(``typing.Protocol``), so a fake in a test and a Hugging Face model in
``latentwire_hf`` are interchangeable wherever a port is expected.

Shapes: ``B`` batch, ``T`` feature/token length, ``d_f`` feature width,
``M`` number of soft tokens, ``d_z`` interlingua width, ``d_model`` a frozen
LM's embedding width, ``V`` vocabulary size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import torch

__all__ = [
    "ComputeLM",
    "FeatureSource",
    "FrozenLM",
    "PromptLM",
]


@runtime_checkable
class FeatureSource(Protocol):
    """Turns texts into token features for the shared encoder."""

    @property
    def feature_dim(self) -> int:
        """Width ``d_f`` of the returned features."""
        ...

    def features(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode a batch of texts.

        Args:
            texts: ``B`` source texts.

        Returns:
            ``(features, mask)``: features ``(B, T, d_f)`` float, zero where padded;
            mask ``(B, T)`` bool, ``True`` on real tokens.
        """
        ...

    def read_text(self, text: str) -> str:
        """The part of ``text`` these features cover (a source truncates to its ``max_length``)."""
        ...


@runtime_checkable
class PromptLM(Protocol):
    """What building a prompt needs of a frozen LM: its tokenizer and chat format (no compute)."""

    name: str

    @property
    def special_ids(self) -> dict[str, int | None]:
        """``{"bos": .., "eos": .., "pad": ..}``; ``pad`` may equal ``eos``."""
        ...

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, no special tokens added."""
        ...

    def decode(self, ids: Sequence[int]) -> str: ...

    def prompt_parts(
        self, instruction: str, after: str = "", anchor: str = ""
    ) -> tuple[list[int], list[int]]:
        """Ids around the slot.

        Returns:
            ``(before, after)``: ``[BOS][user header] instruction`` and
            ``after [end of user turn][assistant header] anchor``.
        """
        ...


@runtime_checkable
class ComputeLM(Protocol):
    """What compute needs of a frozen LM: embeddings, hidden states, logits, generation.

    Every method must leave the model's parameters untouched; gradients flow only into the
    embeddings passed in. Where the model lives is the caller's choice (it loads it there).
    """

    @property
    def d_model(self) -> int: ...

    @property
    def vocab_size(self) -> int:
        """Rows of the input embedding table."""
        ...

    @property
    def embed_rms(self) -> float:
        """RMS of the embedding module's *output* over the vocabulary (cached)."""
        ...

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """Ids ``(B, T)`` -> embeddings ``(B, T, d_model)`` at the scale the model consumes."""
        ...

    def prefix_cache(self, ids: Sequence[int]) -> Any:
        """The constant prompt prefix ``ids`` run once; an opaque cache for :meth:`hidden_states`."""
        ...

    def hidden_states(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor | None = None,
        *,
        prefix: Any = None,
    ) -> torch.Tensor:
        """Last-layer hidden states ``(B, T, d_model)``, before the LM head.

        With ``prefix`` (from :meth:`prefix_cache`) the right-padded rows continue that prefix, and
        the states of the continuation alone come back.
        """
        ...

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """LM head on selected hidden states ``(N, d_model)`` -> ``(N, V)``."""
        ...

    def generate(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor,
        *,
        max_new_tokens: int,
        stop_at_line: bool = False,
    ) -> list[list[int]]:
        """Greedy generation from left-padded embeddings; stops at EOS.

        ``stop_at_line``: a row also stops once its decoded text holds a complete first line
        (:func:`latentwire_core.stopping.line_complete`); the ids up to that token are kept.
        """
        ...


@runtime_checkable
class FrozenLM(PromptLM, ComputeLM, Protocol):
    """A frozen causal LM that reads ``inputs_embeds``: both halves (what a reader of the wire is)."""
