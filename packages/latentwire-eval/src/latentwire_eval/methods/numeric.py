"""The numeric baselines through the same codec as the latent: the reader's own token embeddings averaged in
``M`` contiguous chunks (``mean_pool``; no learning, ``M x d_model`` values on the wire), and those chunks
on the top-``r`` principal components of *training-set* chunks (``pca``; ``r`` defaults to the latent's
``d_z`` so both send ``M x d_z`` numbers, the same byte budget)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from latentwire_core.tasks import Example
from latentwire_eval.methods.base import Method, Slots, register_method

if TYPE_CHECKING:
    import numpy as np
    import torch

    from latentwire_core.ports import FrozenLM

__all__ = ["PCA", "MeanPool", "PCABaseline"]


@register_method("mean_pool")
class MeanPool(Method):
    """The reader's own token embeddings averaged in ``M_i`` chunks, sent through the codec."""

    def slots(self, examples: Sequence[Example]) -> Slots:
        from latentwire_core.anchor import mean_pool_slot
        from latentwire_core.message import frame_bytes

        codec = self.ctx.codec
        assert codec is not None
        budgets = self.ctx.budgets
        rows = [mean_pool_slot(self.lm, self.text_ids(e), budgets[e.id])[None] for e in examples]
        payloads = [codec.encode(r)[0] for r in rows]  # (1, M_i, d_model) each
        rx = codec.decode_rows(payloads, [budgets[e.id] for e in examples], d_z=self.lm.d_model)
        frame = codec.cfg.frame  # framed alike
        sizes = [frame_bytes(frame, budgets[e.id]) + len(p) for e, p in zip(examples, payloads, strict=True)]
        return [r.to(self.ctx.device) for r in rx], sizes


@register_method("pca")
class PCA(Method):
    """Mean-pooled chunks on the top principal components of training-text chunks, through the codec."""

    fits_on_train = True

    def fit(self) -> None:
        import numpy as np

        from latentwire_core.logs import get_logger

        opt, train = self.ctx.options, self.ctx.train
        rank = int(opt.get("pca_rank", 0)) or int(opt["d_z"])
        fit = [self.text_ids(e) for e in train[: int(opt.get("pca_fit_examples", 1000))]]
        # fitted at the wire's mean M over the evaluation (its counts; n_tokens each for a fixed M)
        m_fit = max(1, round(float(np.mean(list(self.ctx.budgets.values())))))
        self.pca = PCABaseline(self.lm, fit, m=m_fit, rank=rank, seed=self.ctx.seed)  # training texts only
        get_logger("eval").info(
            "pca_fitted",
            model=self.reader,
            rank=self.pca.rank,
            explained_variance=round(self.pca.explained, 4),
        )

    def slots(self, examples: Sequence[Example]) -> Slots:
        import torch

        from latentwire_core.message import frame_bytes

        codec, budgets = self.ctx.codec, self.ctx.budgets
        assert codec is not None
        codes = [
            torch.tensor(self.pca.codes(self.text_ids(e), budgets[e.id]), dtype=torch.float32)
            for e in examples
        ]
        payloads = [codec.encode(c[None])[0] for c in codes]
        rx = codec.decode_rows(payloads, [budgets[e.id] for e in examples], d_z=self.pca.rank)
        return [self.pca.reconstruct(c.numpy()).to(self.ctx.device) for c in rx], [
            frame_bytes(codec.cfg.frame, budgets[e.id]) + len(p)
            for e, p in zip(examples, payloads, strict=True)
        ]


class PCABaseline:
    """Mean-pooled chunks compressed to ``rank`` principal components fitted on training texts."""

    def __init__(
        self, lm: FrozenLM, train_texts: Sequence[Sequence[int]], *, m: int, rank: int, seed: int = 0
    ) -> None:
        import torch
        from sklearn.decomposition import PCA as SkPCA

        from latentwire_core.anchor import mean_pool_slot

        chunks = torch.cat([mean_pool_slot(lm, ids, m) for ids in train_texts]).cpu().numpy()  # (N*m, d)
        rank = min(rank, chunks.shape[0], chunks.shape[1])
        self.lm, self.m, self.rank = lm, m, rank
        self.pca = SkPCA(n_components=rank, random_state=seed).fit(chunks)
        self.explained = float(self.pca.explained_variance_ratio_.sum())

    def codes(self, text_ids: Sequence[int], m: int | None = None) -> np.ndarray:
        """What crosses the wire: ``(m, rank)`` coefficients (``m`` defaults to the fitted M)."""
        import torch

        from latentwire_core.anchor import mean_pool_slot

        with torch.no_grad():
            pooled = mean_pool_slot(self.lm, text_ids, self.m if m is None else m)
        out: np.ndarray = self.pca.transform(pooled.cpu().numpy())
        return out

    def reconstruct(self, codes: np.ndarray) -> torch.Tensor:
        import torch

        return torch.as_tensor(self.pca.inverse_transform(codes), dtype=torch.float32)  # (m, d_model)
