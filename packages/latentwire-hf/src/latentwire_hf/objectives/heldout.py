"""Held-out reconstruction while content pretraining runs: does unseen text pass through the wire yet?

Every ``every`` steps, on fixed validation spans (text the run never trains on) and per reader: the
teacher-forced reconstruction NLL per target token with each span's own latent and with another span's
(the batch rolled by one row), and greedy reconstruction from ``[BOS] soft tokens <rec>`` with both,
scored by exact match (whitespace-normalised) and word F1. One JSON row per measurement goes to
``path``; a resumed run drops rows past its step, like the training log.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import torch
from torch import nn

from latentwire_core.ports import FeatureSource, FrozenLM
from latentwire_core.prompting import pad_id
from latentwire_core.slots import assemble_batch
from latentwire_hf.config import PretrainConfig
from latentwire_hf.objectives.base import encode, roll_rows
from latentwire_hf.objectives.content import ContentItem, ContentObjective

__all__ = ["HeldoutCurves", "word_f1"]


def _norm(text: str) -> list[str]:
    return text.split()


def word_f1(pred: str, gold: str) -> float:
    """Bag-of-words F1 over whitespace tokens (what reconstruction is scored by beside exact match)."""
    p, g = _norm(pred), _norm(gold)
    common = sum((Counter(p) & Counter(g)).values())
    if not p or not g or common == 0:
        return float(p == g)
    prec, rec = common / len(p), common / len(g)
    return 2 * prec * rec / (prec + rec)


class HeldoutCurves:
    """Held-out reconstruction of ``spans`` by each reader; call it after a training step.

    Args:
        readers, features: the run's frozen readers and (cached) feature source.
        spans: validation texts (never trained on).
        cfg: the pretraining config (its ``max_target_tokens`` and ``rec_eos`` shape the targets).
        path: the JSON Lines file the rows go to.
        every: measure when ``step % every == 0``, and at the loop's last step.
        max_new_tokens: the greedy decoding cap (a setting, never a span's gold length).
        batch_size: spans per forward pass.
    """

    def __init__(
        self,
        *,
        readers: Mapping[str, FrozenLM],
        features: FeatureSource,
        spans: Sequence[str],
        cfg: PretrainConfig,
        path: Path,
        every: int,
        max_new_tokens: int = 48,
        batch_size: int = 50,
    ) -> None:
        if len(spans) < 2:
            raise ValueError("held-out curves need at least 2 spans (the shuffled control swaps latents)")
        plain = attrs.evolve(cfg, curriculum=(), curriculum_steps=0, content_weight=0.0, curve_every=0)
        self.spans = list(spans)
        items = [ContentItem(mode="rec", encoded=s, target=s) for s in self.spans]
        self.objective = ContentObjective(readers=readers, features=features, items=items, cfg=plain)
        self.readers, self.features, self.cfg = dict(readers), features, plain
        self.path, self.every, self.batch_size = path, every, batch_size
        self.max_new_tokens = max_new_tokens

    def truncate(self, step: int) -> None:
        """Drop rows measured after ``step`` (a resumed run measures them again)."""
        if self.path.is_file():
            rows = [r for r in self.path.read_text().splitlines() if r.strip()]
            keep = [r for r in rows if json.loads(r)["step"] <= step]
            self.path.write_text("".join(r + "\n" for r in keep))

    def __call__(self, trainer: Any) -> None:
        step = int(trainer.step)
        if step % self.every != 0 and not getattr(trainer, "finishing", False):
            return
        row = self.measure(trainer.wire, trainer.acc.device)
        row["step"] = step
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")

    @torch.no_grad()
    def measure(self, wire: nn.Module, device: torch.device) -> dict[str, Any]:
        """``{reader}/nll``, ``/nll_shuffled``, ``/em``, ``/em_shuffled``, ``/f1``, ``/f1_shuffled``, ``n``."""
        was = wire.training
        wire.eval()
        t0 = time.perf_counter()
        sums: dict[str, float] = {}
        batches = [
            list(range(i, min(i + self.batch_size, len(self.spans))))
            for i in range(0, len(self.spans), self.batch_size)
        ]
        batches = [b for b in batches if len(b) >= 2]  # a one-span batch has no other latent to swap in
        n = sum(len(b) for b in batches)
        try:
            for idx in batches:
                names = list(self.readers)
                for shuffle, tag in ((False, ""), (True, "_shuffled")):
                    _, stats = self.objective(wire, idx, names, device, shuffle=shuffle, content_loss=False)
                    for name in names:
                        key = f"{name}/nll{tag}"
                        sums[key] = sums.get(key, 0.0) + stats[f"{name}/ce"] * len(idx)
                for name in names:
                    for key, value in self._greedy(wire, name, idx, device).items():
                        sums[key] = sums.get(key, 0.0) + value
        finally:
            wire.train(was)
        out: dict[str, Any] = {k: v / n for k, v in sums.items()}
        out.update(n=n, seconds=round(time.perf_counter() - t0, 1))
        return out

    def _greedy(self, wire: nn.Module, name: str, idx: list[int], device: torch.device) -> dict[str, float]:
        lm = self.readers[name]
        spans = [self.spans[i] for i in idx]
        soft, counts = encode(wire, self.features, spans, [name], device)
        out: dict[str, float] = {}
        for shuffle, tag in ((False, ""), (True, "_shuffled")):
            rows = self.objective.batch_rows(wire, name, soft[name], counts, idx, shuffle=False)
            if shuffle:
                slots = roll_rows([r[1] for r in rows])
                rows = [[r[0], s, r[2]] for r, s in zip(rows, slots, strict=True)]
            b = assemble_batch(rows, embed=lm.embed, pad_side="left", pad_id=pad_id(lm))
            gen = lm.generate(b.inputs_embeds, b.attention_mask, max_new_tokens=self.max_new_tokens)
            texts = [lm.decode(g) for g in gen]
            out[f"{name}/em{tag}"] = float(
                sum(_norm(t) == _norm(s) for t, s in zip(texts, spans, strict=True))
            )
            out[f"{name}/f1{tag}"] = float(sum(word_f1(t, s) for t, s in zip(texts, spans, strict=True)))
        return out
