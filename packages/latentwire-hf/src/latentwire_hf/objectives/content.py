"""The content objective (stage ``pretrain``): reconstruction and continuation of training text windows."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from typing import Any

import attrs
import torch
from torch import nn

from latentwire_core import (
    answer_ce,
    gather_at,
    prediction_positions,
)
from latentwire_core.coprocessor import resolve_cache_slots
from latentwire_core.latent_adapters import cross_attending, split_memory
from latentwire_core.ports import FeatureSource, FrozenLM
from latentwire_core.prompting import is_kv_slot, kv_rows, pad_id
from latentwire_core.slots import CacheSlot, Segment, assemble_batch
from latentwire_core.synthetic import span_windows
from latentwire_hf.config import PretrainConfig
from latentwire_hf.objectives.base import content_gap, encode, roll_rows, slot_rows, unwrap, with_content_loss

__all__ = ["ContentItem", "ContentObjective", "content_items"]


@attrs.frozen
class ContentItem:
    """One pretraining window: ``encoded`` goes through the wire, the reader produces ``target``."""

    mode: str  # "rec" | "cont"
    encoded: str
    target: str


def content_items(texts: Sequence[str], cfg: PretrainConfig) -> list[ContentItem]:
    """Cut training texts into windows of ``encode_words`` (+ ``continue_words``), modes drawn with the seed.

    Only training-split text may come here (never an evaluation text).
    """
    rng = random.Random(cfg.seed)
    out: list[ContentItem] = []
    span = cfg.encode_words + cfg.continue_words
    for text in dict.fromkeys(texts):
        words = text.split()
        for start in range(0, max(len(words) - cfg.encode_words, 0) + 1, span):
            enc = words[start : start + cfg.encode_words]
            cont = words[start + cfg.encode_words : start + span]
            if len(enc) < 4:
                continue
            mode = "rec" if (rng.random() < cfg.rec_fraction or not cont) else "cont"
            target = " ".join(enc) if mode == "rec" else " " + " ".join(cont)
            out.append(ContentItem(mode=mode, encoded=" ".join(enc), target=target))
    rng.shuffle(out)
    return out[: cfg.max_items]


class ContentObjective:
    """Reconstruction / continuation CE: ``[BOS] soft tokens <rec|cont> target`` on each frozen reader.

    ``<rec>``/``<cont>`` are learned per reader (``LatentWire.content_token``) and never targets;
    the targets are the reader's own tokens of the encoded text (rec) or of what follows it (cont),
    labels unshifted and shifted once in core.
    """

    def __init__(
        self,
        *,
        readers: Mapping[str, FrozenLM],
        features: FeatureSource,
        items: Sequence[ContentItem],
        cfg: PretrainConfig,
        texts: Sequence[str] | None = None,
    ) -> None:
        if not items:
            raise ValueError("no pretraining text: the training split gave no window of text")
        self.readers, self.features, self.cfg = dict(readers), features, cfg
        self.mix = list(items)
        self.n_items = len(self.mix)
        # curriculum phases: 100% reconstruction of spans cut from the same training text
        self._texts = list(dict.fromkeys(texts)) if texts is not None else [it.encoded for it in self.mix]
        self._pools: dict[int | None, tuple[list[ContentItem], dict[str, list[list[int]]]]] = {}
        self._heads: dict[str, Any] = {}
        self.set_step(0)

    def _pool(self, span: int | None) -> tuple[list[ContentItem], dict[str, list[list[int]]]]:
        if span not in self._pools:
            if span is None:
                items = self.mix
            else:
                items = [
                    ContentItem(mode="rec", encoded=w, target=w)
                    for t in self._texts
                    for w in span_windows(t, span)
                ]
                random.Random(f"{self.cfg.seed}|{span}").shuffle(items)
                if not items:
                    raise ValueError(f"curriculum: no training text has {span} words")
            targets = {name: self._targets(lm, items) for name, lm in self.readers.items()}
            self._pools[span] = (items, targets)
        return self._pools[span]

    def _targets(self, lm: FrozenLM, items: Sequence[ContentItem]) -> list[list[int]]:
        """Each item's target ids, cut to ``max_target_tokens``; with ``rec_eos`` a reconstruction that
        fits ends with EOS (one that had to be cut does not: its text goes on)."""
        cap, eos = self.cfg.max_target_tokens, lm.special_ids["eos"]
        out: list[list[int]] = []
        texts = [it.target for it in items]
        every = [ids for i in range(0, len(texts), 4096) for ids in lm.tokenize(texts[i : i + 4096])]
        for it, ids in zip(items, every, strict=True):
            if (
                getattr(self.cfg, "rec_eos", False)
                and it.mode == "rec"
                and eos is not None
                and len(ids) < cap
            ):
                ids = [*ids, int(eos)]
            out.append(ids[:cap])
        return out

    def set_step(self, step: int) -> None:
        """Select the item pool of ``step`` (a curriculum phase or the rec/cont mix); a pure function
        of the step, so a resumed run draws the same items."""
        span = self.cfg.span_at(step) if hasattr(self.cfg, "span_at") else None
        self.span = span
        self.items, self.targets = self._pool(span)

    def _head_cache(self, name: str) -> Any:
        """The reader's ``[BOS]`` run once (what a deep prefix follows), or None without a BOS."""
        if name not in self._heads:
            bos = self.readers[name].special_ids["bos"]
            self._heads[name] = self.readers[name].prefix_cache([int(bos)]) if bos is not None else None
        return self._heads[name]

    def item_index(self, i: int) -> int:
        """The trainer draws indices over the mix; a curriculum pool of another size wraps them."""
        return i % len(self.items)

    def batch_rows(
        self,
        wire: nn.Module,
        name: str,
        soft: torch.Tensor,
        counts: torch.Tensor,
        idx: list[int],
        *,
        shuffle: bool = False,
    ) -> list[list[Segment]]:
        lm = self.readers[name]
        bos = lm.special_ids["bos"]
        head: list[int] = [int(bos)] if bos is not None else []
        w = unwrap(wire)
        slots = [w.slot(r, name) for r in slot_rows(soft, counts)]
        if shuffle:  # the probe's control: each window is read after another window's latent
            slots = roll_rows(slots)
        rows: list[list[Segment]] = []
        for i, s in zip(idx, slots, strict=True):
            marker = w.content_token(name, self.items[self.item_index(i)].mode).to(soft.dtype)  # (1, d_model)
            rows.append([head, s, marker])
        return rows

    def probe(
        self, wire: nn.Module, idx: list[int], names: list[str], device: torch.device
    ) -> dict[str, float]:
        """Reconstruction / continuation CE with this window's latent vs another's (:func:`content_gap`)."""
        return content_gap(self, wire, idx, names, device)

    def __call__(
        self,
        wire: nn.Module,
        idx: list[int],
        names: list[str],
        device: torch.device,
        *,
        shuffle: bool = False,
        content_loss: bool = True,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        its = [self.items[self.item_index(i)] for i in idx]
        soft, counts = encode(wire, self.features, [it.encoded for it in its], names, device)
        stats: dict[str, float] = {}
        total = torch.zeros((), device=device)
        for name in names:
            lm = self.readers[name]
            rows = self.batch_rows(wire, name, soft[name], counts, idx, shuffle=shuffle)
            targets = [self.targets[name][self.item_index(i)] for i in idx]
            head = self._head_cache(name) if isinstance(rows[0][1], CacheSlot) else None
            resolved = resolve_cache_slots([r[1] for r in rows], head)  # a coprocessor reads [BOS]
            rows = [[r[0], s, r[2]] for r, s in zip(rows, resolved, strict=True)]
            if is_kv_slot(
                lm, rows[0][1]
            ):  # deep prefix: [BOS] cached, the slot's keys/values, <rec|cont> target
                kv, kv_mask = kv_rows([r[1] for r in rows])
                b = assemble_batch(
                    [[r[2]] for r in rows],
                    embed=lm.embed,
                    answers=targets,
                    pad_side="right",
                    pad_id=pad_id(lm),
                )
                hidden = lm.hidden_states_kv(  # type: ignore[attr-defined]
                    kv, kv_mask, b.inputs_embeds, b.attention_mask, prefix=self._head_cache(name)
                )
            else:
                plain, memory = split_memory([r[1] for r in rows])
                rows = [[r[0], p, r[2]] for r, p in zip(rows, plain, strict=True)]
                b = assemble_batch(rows, embed=lm.embed, answers=targets, pad_side="right", pad_id=pad_id(lm))
                reading = (
                    cross_attending(lm.decoder_layers, *memory, reader=name)  # type: ignore[attr-defined]
                    if memory is not None
                    else nullcontext()
                )
                with reading:
                    hidden = lm.hidden_states(b.inputs_embeds, b.attention_mask, b.position_ids)
            pos = prediction_positions(b.labels)
            logits = lm.logits(gather_at(hidden, pos))
            ce = answer_ce(logits, pos.targets)
            rec = torch.tensor([its[int(r)].mode == "rec" for r in pos.rows.tolist()], device=logits.device)
            stats[f"{name}/ce"] = float(ce.detach())
            if bool(rec.any()):
                stats[f"{name}/rec_ce"] = float(answer_ce(logits[rec].detach(), pos.targets[rec]))
            if bool((~rec).any()):
                stats[f"{name}/cont_ce"] = float(answer_ce(logits[~rec].detach(), pos.targets[~rec]))
            stats[f"{name}/loss"] = float(ce.detach())
            total = total + ce
        if self.span is not None:
            stats["rec_span_words"] = float(self.span)
        if shuffle or not content_loss:
            return total, stats
        return with_content_loss(self, wire, idx, names, device, total, stats)
