"""Reader-anchored start: a fresh wire whose readers begin at ``mean_pool``.

The ``mean_pool`` baseline gives a reader the mean of its *own* token embeddings over each group of the
text: no training, and on ``recall`` it already carries some facts to Gemma3. An anchored wire starts
there without breaking the wire's contract (one shared message ``Z``, one adapter per reader): each
reader's adapter begins as the least-squares map from the fresh encoder's slots ``Z`` to that reader's
group means on training texts (ridge regression, :func:`ridge`), and its non-linear residual (the MLP
adapter's last layer) begins at zero. Training then moves both away from the anchor as it likes.

How close the start is to ``mean_pool`` is the fit's R^2 (``d_z`` numbers per slot predict ``d_model``
ones; logged per reader). With ``[wire] calibration = "none"`` the step-0 latent is the fitted group
means; ``rms`` / ``learned`` then rescale each example to the reader's embedding RMS, as for any latent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

from latentwire_core.adapters import LinearAdapter, ResidualMLPAdapter
from latentwire_core.interlingua import chunk_weights
from latentwire_core.ports import FeatureSource, FrozenLM
from latentwire_core.prompting import eos_id

if TYPE_CHECKING:
    from latentwire_core.wire import LatentWire

__all__ = ["anchor_adapter", "anchor_wire", "mean_pool_slot", "ridge"]


@torch.no_grad()
def mean_pool_slot(lm: FrozenLM, text_ids: Sequence[int], m: int) -> torch.Tensor:
    """Token embeddings ``(T, d_model)`` averaged in ``m`` contiguous chunks -> ``(m, d_model)``."""
    ids = list(text_ids) or [eos_id(lm)]
    emb: torch.Tensor = lm.embed(torch.tensor([ids]))[0].float()  # (T, d_model)
    w = chunk_weights(torch.ones(1, len(ids), dtype=torch.bool), m)[0].to(emb.device)  # (m, T)
    return w @ emb


def ridge(x: torch.Tensor, y: torch.Tensor, *, l2: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Least squares ``y ~ x W^T + b`` with a ridge of ``l2`` times the mean feature variance.

    Args:
        x: ``(N, d_in)`` inputs; y: ``(N, d_out)`` targets (N rows each, N >= 2).

    Returns:
        ``(weight (d_out, d_in), bias (d_out,), r2)``: an ``nn.Linear``'s parameters and the fit's R^2 on
        these rows (1 - residual / total sum of squares, over every output dimension).
    """
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(
            f"ridge needs (N, d_in) and (N, d_out) with the same N, got {tuple(x.shape)}, {tuple(y.shape)}"
        )
    if x.shape[0] < 2:
        raise ValueError(f"ridge needs at least 2 rows, got {x.shape[0]}")
    xd, yd = x.double(), y.double()
    mx, my = xd.mean(0), yd.mean(0)
    xc, yc = xd - mx, yd - my
    gram = xc.T @ xc
    lam = l2 * float(gram.diagonal().mean()) + 1e-12
    w = torch.linalg.solve(
        gram + lam * torch.eye(gram.shape[0], dtype=gram.dtype), xc.T @ yc
    )  # (d_in, d_out)
    resid = yc - xc @ w
    total = float(yc.pow(2).sum())
    r2 = 1.0 - float(resid.pow(2).sum()) / total if total > 0 else 0.0
    bias = my - mx @ w
    return w.T.to(x.dtype).contiguous(), bias.to(x.dtype), r2


@torch.no_grad()
def anchor_adapter(adapter: nn.Module, weight: torch.Tensor, bias: torch.Tensor) -> None:
    """Set an adapter to the affine map ``z -> z W^T + b``: its projection gets ``(weight, bias)`` and
    its non-linear residual (the ``mlp`` adapter's last layer) is zeroed, so it starts exactly linear.

    Raises:
        ValueError: an adapter kind with no such decomposition, or one with an output norm (a LayerNorm
            after the map would undo the fitted scale), or shapes that do not match.
    """
    if not isinstance(adapter, (LinearAdapter, ResidualMLPAdapter)):
        raise ValueError(
            f"a reader-anchored start needs a 'linear' or 'mlp' adapter, got {type(adapter).__name__}"
        )
    if not isinstance(adapter.norm, nn.Identity):
        raise ValueError("a reader-anchored start needs adapter_out_norm = false (a norm would undo the fit)")
    proj = adapter.proj
    assert isinstance(proj, nn.Linear)
    if tuple(weight.shape) != tuple(proj.weight.shape) or tuple(bias.shape) != tuple(proj.bias.shape):
        raise ValueError(
            f"anchor shapes {tuple(weight.shape)}, {tuple(bias.shape)} do not match the adapter's "
            f"{tuple(proj.weight.shape)}, {tuple(proj.bias.shape)}"
        )
    proj.weight.copy_(weight)
    proj.bias.copy_(bias)
    if isinstance(adapter, ResidualMLPAdapter):
        last = adapter.mlp[-1]
        assert isinstance(last, nn.Linear)
        last.weight.zero_()
        last.bias.zero_()


@torch.no_grad()
def anchor_wire(
    wire: LatentWire,
    features: FeatureSource,
    readers: Mapping[str, FrozenLM],
    texts: Sequence[str],
    *,
    max_text_tokens: int,
    batch_size: int = 32,
) -> dict[str, dict[str, float]]:
    """Anchor every reader of a fresh ``wire`` at its ``mean_pool`` group means on ``texts`` (training
    texts only): encode each text (its ``M_i`` slots), pool each reader's own embeddings of the same text
    in ``M_i`` groups (its first ``max_text_tokens`` tokens, as the ``mean_pool`` baseline does), fit
    :func:`ridge` per reader and set its adapter (:func:`anchor_adapter`).

    Returns:
        reader -> ``{"r2": fit R^2, "slots": rows fitted, "texts": texts}``.

    Raises:
        ValueError: a deep-prefix wire (its adapters emit keys and values, not embeddings), no texts,
            or an adapter :func:`anchor_adapter` cannot set.
    """
    if wire.cfg.inject != "embeddings":
        raise ValueError(
            "a reader-anchored start needs inject = 'embeddings' (mean_pool is input embeddings)"
        )
    texts = list(dict.fromkeys(texts))
    if not texts:
        raise ValueError("a reader-anchored start needs at least one training text")
    dev = next(wire.parameters()).device
    was_training = wire.training
    wire.eval()
    zs: list[torch.Tensor] = []
    targets: dict[str, list[torch.Tensor]] = {name: [] for name in readers}
    for start in range(0, len(texts), batch_size):
        chunk = texts[start : start + batch_size]
        feats, mask = features.features(chunk)
        feats, mask = feats.to(dev), mask.to(dev)
        counts = wire.counts(mask)
        z = wire.encode(feats, mask, counts).float().cpu()  # (B, M, d_z)
        for row, (text, m) in enumerate(zip(chunk, counts.tolist(), strict=True)):
            zs.append(z[row, :m])
            for name, lm in readers.items():
                ids = lm.tokenize([text])[0][:max_text_tokens]
                targets[name].append(mean_pool_slot(lm, ids, m).cpu())
    x = torch.cat(zs)
    out: dict[str, dict[str, float]] = {}
    for name in readers:
        weight, bias, r2 = ridge(x, torch.cat(targets[name]))
        adapter = wire.adapters.adapters[name]
        anchor_adapter(adapter, weight.to(dev), bias.to(dev))
        out[name] = {"r2": r2, "slots": float(x.shape[0]), "texts": float(len(texts))}
    wire.train(was_training)
    return out
