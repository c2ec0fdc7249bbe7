"""Where does a soft token sit relative to the reader's own embeddings? (norms and nearest vocabulary)

Two questions a researcher asks of a latent that does (or does not) carry content:

* **Scale.** The per-token RMS of the soft tokens a reader receives, against the RMS of its
  own token embeddings. Calibration ``rms`` pins the first to the second; ``none`` and
  ``learned`` let it drift. Decodable compressed tokens have been reported at norms about 100×
  the embeddings' (Zeng & Tan, ACL 2026), so the ratio is worth seeing, not assuming.
* **Direction.** The cosine of each soft token with its nearest vocabulary embedding. Near 1,
  the wire has collapsed onto hard tokens; near the cosine a random direction gets, it uses the
  space freely. The nearest tokens themselves are listed for a look.

Inputs are what the reader actually received (after the codec and the adapter), so the figures
describe the wire as evaluated.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import torch

__all__ = ["embedding_diagnostics"]


@torch.no_grad()
def embedding_diagnostics(
    soft: Sequence[torch.Tensor],
    embed: Callable[[torch.Tensor], torch.Tensor],
    vocab_size: int,
    decode: Callable[[Sequence[int]], str],
    *,
    max_tokens: int = 256,
    chunk: int = 8192,
    seed: int = 0,
    top: int = 10,
) -> dict[str, Any]:
    """Norm and nearest-vocabulary statistics of soft tokens against a reader's embedding table.

    Args:
        soft: per example, the ``(M_i, d_model)`` vectors placed in the reader's slot.
        embed: ids ``(1, T)`` -> ``(1, T, d_model)``, the reader's embedding module (its scale included).
        vocab_size: rows of the embedding table.
        decode: ids -> text, for listing the nearest tokens.
        max_tokens: soft tokens sampled (seeded) for the nearest-vocabulary search, which costs
            ``max_tokens x vocab_size x d_model`` multiply-adds.

    Returns:
        ``soft_rms`` (median, p10, p90, mean over all soft tokens), ``embed_rms`` (the RMS over the
        whole vocabulary), ``rms_ratio`` (median soft RMS / embedding RMS), ``nearest_cos``
        (mean, median, p10, p90 over the sampled tokens), ``random_cos`` (the same for seeded random
        Gaussian directions: the chance level for this table), ``nearest_tokens`` (the ``top`` most
        frequent nearest tokens with their counts) and ``n_soft_tokens`` / ``n_sampled``.
    """
    rows = [s.detach().float().reshape(-1, s.shape[-1]) for s in soft if s.numel()]
    if not rows:
        raise ValueError("no soft tokens to diagnose")
    x = torch.cat(rows)  # (N, d)
    rms = x.pow(2).mean(-1).sqrt()
    gen = torch.Generator().manual_seed(seed)
    pick = torch.randperm(x.shape[0], generator=gen)[:max_tokens]
    xs = torch.nn.functional.normalize(x[pick], dim=-1)
    rnd = torch.nn.functional.normalize(torch.randn(xs.shape, generator=gen), dim=-1)
    best = torch.full((xs.shape[0],), -2.0)
    best_id = torch.zeros(xs.shape[0], dtype=torch.long)
    best_rnd = torch.full((xs.shape[0],), -2.0)
    total, count = 0.0, 0
    for start in range(0, vocab_size, chunk):
        ids = torch.arange(start, min(start + chunk, vocab_size))
        e = embed(ids[None])[0].float().cpu()  # (c, d)
        total += float(e.pow(2).sum())
        count += e.numel()
        en = torch.nn.functional.normalize(e, dim=-1)
        cos = xs.cpu() @ en.T  # (n, c)
        val, idx = cos.max(-1)
        better = val > best
        best = torch.where(better, val, best)
        best_id = torch.where(better, idx + start, best_id)
        best_rnd = torch.maximum(best_rnd, (rnd @ en.T).max(-1).values)
    embed_rms = (total / count) ** 0.5

    def q(t: torch.Tensor, p: float) -> float:
        return float(torch.quantile(t, p))

    freq = Counter(best_id.tolist()).most_common(top)
    return {
        "n_soft_tokens": int(x.shape[0]),
        "n_sampled": int(xs.shape[0]),
        "soft_rms": {
            "median": q(rms, 0.5),
            "p10": q(rms, 0.1),
            "p90": q(rms, 0.9),
            "mean": float(rms.mean()),
        },
        "embed_rms": embed_rms,
        "rms_ratio": q(rms, 0.5) / embed_rms,
        "nearest_cos": {
            "mean": float(best.mean()),
            "median": q(best, 0.5),
            "p10": q(best, 0.1),
            "p90": q(best, 0.9),
        },
        "random_cos": {"mean": float(best_rnd.mean()), "p90": q(best_rnd, 0.9)},
        "nearest_tokens": [{"token": decode([i]), "id": int(i), "count": int(c)} for i, c in freq],
    }
