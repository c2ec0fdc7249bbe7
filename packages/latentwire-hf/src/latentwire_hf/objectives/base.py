"""The objective protocol and what every objective shares: slot rows, the content loss and the content probe."""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

import torch
from torch import nn

__all__ = [
    "Objective",
    "content_gap",
    "content_hinge",
    "encode",
    "roll_rows",
    "slot_rows",
    "unwrap",
    "with_content_loss",
]


class Objective(Protocol):
    """One training step's loss: ``(wire, item indices, readers, device) -> (loss, stats)``."""

    n_items: int

    def __call__(
        self, wire: nn.Module, idx: list[int], names: list[str], device: torch.device
    ) -> tuple[torch.Tensor, dict[str, float]]: ...

    def probe(
        self, wire: nn.Module, idx: list[int], names: list[str], device: torch.device
    ) -> dict[str, float]: ...


_T = TypeVar("_T")


def unwrap(wire: nn.Module) -> Any:
    return wire.module if hasattr(wire, "module") else wire


def encode(
    wire: nn.Module, features: Any, texts: list[str], names: list[str], device: torch.device
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """The batch's texts through the feature source and the wire: ``(name -> soft (B, M, d_model), counts)``."""
    feats, mask = features.features(texts)
    soft, counts = wire(feats.to(device), mask.to(device), names)
    return soft, counts


def slot_rows(soft: torch.Tensor, counts: torch.Tensor) -> list[torch.Tensor]:
    """``(B, M_max, d)`` -> per row its first ``M_b`` soft tokens."""
    return [soft[b, : int(c)] for b, c in enumerate(counts.tolist())]


def roll_rows(rows: list[_T]) -> list[_T]:
    """Row ``b`` gets row ``b + 1``'s soft tokens (the last gets the first's): another text's latent."""
    return rows[1:] + rows[:1]


def content_hinge(own: torch.Tensor, shuffled: torch.Tensor, *, margin: float) -> torch.Tensor:
    """The content loss: ``max(0, margin - (shuffled - own))``.

    ``own`` is a loss with each row's own latent, ``shuffled`` the same loss with another row's. It is
    zero once another text's latent costs the reader at least ``margin`` nats more than the text's own,
    and the constant ``margin`` when every latent is the same (nothing to tell apart).
    """
    return torch.clamp(margin - (shuffled - own), min=0.0)


def with_content_loss(
    objective: Any,
    wire: nn.Module,
    idx: list[int],
    names: list[str],
    device: torch.device,
    total: torch.Tensor,
    stats: dict[str, float],
) -> tuple[torch.Tensor, dict[str, float]]:
    """Add ``content_weight * content_hinge`` (a second forward with the latents rolled by one row)."""
    w = float(getattr(objective.cfg, "content_weight", 0.0))
    if w <= 0 or len(idx) < 2:
        return total, stats
    shuffled, _ = objective(wire, idx, names, device, shuffle=True, content_loss=False)
    hinge = content_hinge(total / len(names), shuffled / len(names), margin=objective.cfg.content_margin)
    stats = {**stats, "content_hinge": float(hinge.detach())}
    return total + w * hinge, stats


@torch.no_grad()
def content_gap(
    objective: Any, wire: nn.Module, idx: list[int], names: list[str], device: torch.device
) -> dict[str, float]:
    """``{reader}/ce``, ``{reader}/ce_shuffled`` and ``{reader}/content_gap`` for one batch, no gradients.

    The wire is put in eval mode for the probe (no dropout, no RNG drawn) and restored after.
    A batch of one row has no other latent to swap in, so it gives nothing.
    """
    if len(idx) < 2:
        return {}
    was_training = wire.training
    wire.eval()
    try:
        _, own = objective(wire, idx, names, device)
        _, other = objective(wire, idx, names, device, shuffle=True)
    finally:
        wire.train(was_training)
    out: dict[str, float] = {}
    for name in names:
        ce, ce_sh = own[f"{name}/ce"], other[f"{name}/ce"]
        out.update({f"{name}/probe_ce": ce, f"{name}/ce_shuffled": ce_sh, f"{name}/content_gap": ce_sh - ce})
        if f"{name}/rec_ce" in own and f"{name}/rec_ce" in other:
            out[f"{name}/rec_content_gap"] = other[f"{name}/rec_ce"] - own[f"{name}/rec_ce"]
    return out
