"""What a training step optimises, apart from the loop that runs it (:class:`~latentwire_hf.training.Trainer`).

* :class:`TaskObjective` (stage ``train``): answer CE including EOS, first-token CE, and
  optionally KL to the same frozen reader prompted with the full text on the first K
  answer tokens. The teacher's top-k logits are computed once per (reader, example) and
  cached, so the teacher does not run every step.
* :class:`ContentObjective` (stage ``pretrain``): reconstruction (after the soft tokens and a
  learned ``<rec>`` vector the reader reproduces the encoded text) and continuation (after
  ``<cont>`` it continues the text), plain CE on the frozen reader (ARC-Encoder, arXiv:2510.20535).

An objective is called with the (possibly DDP-wrapped) wire, the batch's item indices and
the readers active this step; it returns the loss and the statistics to log. Its ``probe``
measures, without gradients, whether the wire carries content the reader uses: the same loss
with each row's soft tokens replaced by the next row's (another text's latent), and the
*content gap* ``ce_shuffled - ce`` (nats per target token; about 0 means the reader ignores
what the latent says about this particular text).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from typing import Any, Protocol, TypeVar

import attrs
import torch
from torch import nn

from latentwire_core import (
    answer_ce,
    first_token_accuracy,
    gather_at,
    kd_positions,
    kd_topk_kl,
    prediction_positions,
    with_eos,
)
from latentwire_core.coprocessor import resolve_cache_slots
from latentwire_core.latent_adapters import cross_attending, split_memory
from latentwire_core.ports import FrozenLM
from latentwire_core.prompting import SlotPrompt, is_kv_slot, kv_rows, pad_id
from latentwire_core.slots import CacheSlot, Segment, assemble_batch
from latentwire_core.synthetic import span_windows
from latentwire_core.tasks import Example, TaskSpec, compressed_text
from latentwire_hf.config import PretrainConfig

__all__ = [
    "ContentItem",
    "ContentObjective",
    "Objective",
    "PretrainConfig",
    "TaskObjective",
    "TeacherCache",
    "content_gap",
    "content_hinge",
    "content_items",
    "slot_rows",
]


class Objective(Protocol):
    """One training step's loss: ``(wire, item indices, readers, device) -> (loss, stats)``."""

    n_items: int

    def __call__(
        self, wire: nn.Module, idx: list[int], models: list[str], device: torch.device
    ) -> tuple[torch.Tensor, dict[str, float]]: ...

    def probe(
        self, wire: nn.Module, idx: list[int], models: list[str], device: torch.device
    ) -> dict[str, float]: ...


_T = TypeVar("_T")


def _unwrap(wire: nn.Module) -> Any:
    return wire.module if hasattr(wire, "module") else wire


def slot_rows(soft: torch.Tensor, counts: torch.Tensor) -> list[torch.Tensor]:
    """``(B, M_max, d)`` -> per row its first ``M_b`` soft tokens."""
    return [soft[b, : int(c)] for b, c in enumerate(counts.tolist())]


def _roll(rows: list[_T]) -> list[_T]:
    """Row ``b`` gets row ``b + 1``'s soft tokens (the last gets the first's): another text's latent."""
    return rows[1:] + rows[:1]


def content_hinge(own: torch.Tensor, shuffled: torch.Tensor, *, margin: float) -> torch.Tensor:
    """The content loss: ``max(0, margin - (shuffled - own))``.

    ``own`` is a loss with each row's own latent, ``shuffled`` the same loss with another row's. It is
    zero once another text's latent costs the reader at least ``margin`` nats more than the text's own,
    and the constant ``margin`` when every latent is the same (nothing to tell apart).
    """
    return torch.clamp(margin - (shuffled - own), min=0.0)


def _with_content_loss(
    objective: Any,
    wire: nn.Module,
    idx: list[int],
    models: list[str],
    device: torch.device,
    total: torch.Tensor,
    stats: dict[str, float],
) -> tuple[torch.Tensor, dict[str, float]]:
    """Add ``content_weight * content_hinge`` (a second forward with the latents rolled by one row)."""
    w = float(getattr(objective.cfg, "content_weight", 0.0))
    if w <= 0 or len(idx) < 2:
        return total, stats
    shuffled, _ = objective(wire, idx, models, device, shuffle=True, content_loss=False)
    hinge = content_hinge(total / len(models), shuffled / len(models), margin=objective.cfg.content_margin)
    stats = {**stats, "content_hinge": float(hinge.detach())}
    return total + w * hinge, stats


@torch.no_grad()
def content_gap(
    objective: Any, wire: nn.Module, idx: list[int], models: list[str], device: torch.device
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
        _, own = objective(wire, idx, models, device)
        _, other = objective(wire, idx, models, device, shuffle=True)
    finally:
        wire.train(was_training)
    out: dict[str, float] = {}
    for name in models:
        ce, ce_sh = own[f"{name}/ce"], other[f"{name}/ce"]
        out.update({f"{name}/probe_ce": ce, f"{name}/ce_shuffled": ce_sh, f"{name}/content_gap": ce_sh - ce})
        if f"{name}/rec_ce" in own and f"{name}/rec_ce" in other:
            out[f"{name}/rec_content_gap"] = other[f"{name}/rec_ce"] - own[f"{name}/rec_ce"]
    return out


class TeacherCache:
    """Top-k logits of a reader prompted with the full text, at the first K answer positions.

    Computed once per (reader, example id) and kept; ``get`` returns ``(ids (K_b, k), logits (K_b, k))``
    for each requested example, in order.
    """

    def __init__(self, *, k_positions: int, top_k: int) -> None:
        self.k_positions, self.top_k = k_positions, top_k
        self._store: dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor]] = {}
        self.computed = 0

    @torch.no_grad()
    def get(
        self,
        model: str,
        lm: FrozenLM,
        prompt: SlotPrompt,
        exs: Sequence[Example],
        answers: Sequence[Sequence[int]],
        *,
        max_text_tokens: int,
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        todo = [i for i, e in enumerate(exs) if (model, e.id) not in self._store]
        if todo:
            texts = [prompt.text_ids(exs[i])[:max_text_tokens] for i in todo]
            tails = prompt.tails([exs[i] for i in todo])
            b, h = prompt.hidden(texts, [answers[i] for i in todo], tails)
            pos = kd_positions(b.labels, self.k_positions)  # explicit per-row positions
            logits = lm.logits(gather_at(h, pos)).float()  # (N, V)
            top = logits.topk(min(self.top_k, logits.shape[-1]), dim=-1)
            for r, i in enumerate(todo):
                sel = (pos.rows == r).cpu()
                self._store[(model, exs[i].id)] = (top.indices.cpu()[sel], top.values.cpu()[sel])
            self.computed += len(todo)
        return [self._store[(model, e.id)] for e in exs]


class TaskObjective:
    """Fine-tuning on the task: answer CE (+ first-token CE, + cached top-k KD to the full-text reader).

    Args:
        lms: reader name -> frozen LM (the port).
        features: a feature source over the compressed texts.
        task: prompt / answer spec.
        examples: training examples.
        cfg: a ``TrainConfig`` (weights, KD settings).
        compress: ``source`` or ``context`` (what the wire carries; the question stays in text).
    """

    def __init__(
        self,
        *,
        lms: Mapping[str, FrozenLM],
        features: Any,
        task: TaskSpec,
        examples: Sequence[Example],
        cfg: Any,
        compress: str = "source",
    ) -> None:
        self.lms, self.features, self.task, self.examples, self.cfg = (
            dict(lms),
            features,
            task,
            list(examples),
            cfg,
        )
        self.compress = compress
        self.n_items = len(self.examples)
        self.prompts = {name: SlotPrompt(lm, task, compress=compress) for name, lm in self.lms.items()}
        self.answers = {
            name: [
                with_eos(lm.tokenize([task.answer_text(e)])[0], self.prompts[name].eos) for e in self.examples
            ]
            for name, lm in self.lms.items()
        }
        self.teacher = TeacherCache(k_positions=cfg.kd_k, top_k=cfg.kd_top_k)

    def __call__(
        self,
        wire: nn.Module,
        idx: list[int],
        models: list[str],
        device: torch.device,
        *,
        shuffle: bool = False,
        content_loss: bool = True,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        exs = [self.examples[i] for i in idx]
        feats, mask = self.features.features([compressed_text(e, self.compress) for e in exs])
        feats, mask = feats.to(device), mask.to(device)
        soft, counts = wire(feats, mask, models)  # name -> (B, M, d_model); M_i per row
        w = _unwrap(wire)
        slots: dict[str, list[Segment]] = {
            n: [w.slot(r, n) for r in slot_rows(soft[n], counts)] for n in models
        }
        if shuffle:  # the probe's control: each question reads another example's latent
            slots = {n: _roll(r) for n, r in slots.items()}
        total, stats = self.answer_losses(idx, models, slots, device)
        if shuffle or not content_loss:
            return total, stats
        return _with_content_loss(self, wire, idx, models, device, total, stats)

    def probe(
        self, wire: nn.Module, idx: list[int], models: list[str], device: torch.device
    ) -> dict[str, float]:
        """Answer CE with this example's latent vs another example's (see :func:`content_gap`)."""
        return content_gap(self, wire, idx, models, device)

    def answer_losses(
        self, idx: list[int], models: list[str], slots: Mapping[str, list[Segment]], device: torch.device
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Answer CE (+ first-token CE, + KD) of each reader given its slot contents for the batch."""
        exs = [self.examples[i] for i in idx]
        stats: dict[str, float] = {}
        total = torch.zeros((), device=device)
        for name in models:
            lm, prompt = self.lms[name], self.prompts[name]
            answers = [self.answers[name][i] for i in idx]
            batch, hidden = prompt.hidden(slots[name], answers, prompt.tails(exs))
            pos = prediction_positions(batch.labels)
            logits = lm.logits(gather_at(hidden, pos))  # (N, V): only where a target is
            ce = answer_ce(logits, pos.targets)
            first = pos.step == 0
            ft_ce = answer_ce(logits[first], pos.targets[first])
            loss = self.cfg.ce_weight * ce + self.cfg.first_token_weight * ft_ce
            stats[f"{name}/ce"] = float(ce.detach())
            stats[f"{name}/first_token_ce"] = float(ft_ce.detach())
            stats[f"{name}/first_token_acc"] = float(
                first_token_accuracy(logits[first].detach(), pos.targets[first])
            )
            if self.cfg.kd_weight > 0:
                kd = self._kd(name, exs, answers, hidden, batch.labels)
                loss = loss + self.cfg.kd_weight * kd
                stats[f"{name}/kd"] = float(kd.detach())
            stats[f"{name}/loss"] = float(loss.detach())
            total = total + loss
        return total, stats

    def _kd(
        self,
        name: str,
        exs: list[Example],
        answers: list[list[int]],
        hidden: torch.Tensor,
        labels: torch.Tensor,
    ) -> torch.Tensor:
        """KL to the same reader prompted with the full text, on the first K answer tokens (cached top-k)."""
        lm = self.lms[name]
        cached = self.teacher.get(
            name, lm, self.prompts[name], exs, answers, max_text_tokens=self.cfg.max_text_tokens
        )
        spos = kd_positions(labels, self.cfg.kd_k)
        t_ids = torch.cat([c[0] for c in cached]).to(hidden.device)  # (N, k), rows in order
        t_logits = torch.cat([c[1] for c in cached]).to(hidden.device)
        if t_ids.shape[0] != len(spos):
            raise RuntimeError("student and teacher KD positions are not paired")
        return kd_topk_kl(
            lm.logits(gather_at(hidden, spos)), t_ids, t_logits, temperature=self.cfg.kd_temperature
        )


class SoftPromptObjective:
    """The equal-training control: the task losses with ``[soft prompt P_k] + full text`` in the slot.

    Same examples, losses and prompt builder as :class:`TaskObjective`; only the slot differs.
    """

    def __init__(self, task_objective: TaskObjective, *, max_text_tokens: int) -> None:
        self.task = task_objective
        self.n_items = task_objective.n_items
        self.max_text_tokens = max_text_tokens

    def __call__(
        self, wire: nn.Module, idx: list[int], models: list[str], device: torch.device
    ) -> tuple[torch.Tensor, dict[str, float]]:
        exs = [self.task.examples[i] for i in idx]
        prompts = wire(models)  # name -> (M, d_model)
        slots: dict[str, list[Segment]] = {}
        for name in models:
            lm, sp = self.task.lms[name], self.task.prompts[name]
            ids = [sp.text_ids(e)[: self.max_text_tokens] for e in exs]
            with torch.no_grad():
                embs = [lm.embed(torch.tensor([i or [sp.eos]]))[0] for i in ids]
            slots[name] = [torch.cat([prompts[name].to(e.dtype), e.to(prompts[name].device)]) for e in embs]
        return self.task.answer_losses(idx, models, slots, device)

    def probe(
        self, wire: nn.Module, idx: list[int], models: list[str], device: torch.device
    ) -> dict[str, float]:
        """Nothing to swap: the soft prompt is the same for every example."""
        return {}


# --- content pretraining ------------------------------------------------------------------------


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
        lms: Mapping[str, FrozenLM],
        features: Any,
        items: Sequence[ContentItem],
        cfg: PretrainConfig,
        texts: Sequence[str] | None = None,
    ) -> None:
        if not items:
            raise ValueError("no pretraining text: the training split gave no window of text")
        self.lms, self.features, self.cfg = dict(lms), features, cfg
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
            targets = {
                name: [lm.tokenize([it.target])[0][: self.cfg.max_target_tokens] for it in items]
                for name, lm in self.lms.items()
            }
            self._pools[span] = (items, targets)
        return self._pools[span]

    def set_step(self, step: int) -> None:
        """Select the item pool of ``step`` (a curriculum phase or the rec/cont mix); a pure function
        of the step, so a resumed run draws the same items."""
        span = self.cfg.span_at(step) if hasattr(self.cfg, "span_at") else None
        self.span = span
        self.items, self.targets = self._pool(span)

    def _head_cache(self, name: str) -> Any:
        """The reader's ``[BOS]`` run once (what a deep prefix follows), or None without a BOS."""
        if name not in self._heads:
            bos = self.lms[name].special_ids["bos"]
            self._heads[name] = self.lms[name].prefix_cache([int(bos)]) if bos is not None else None
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
        lm = self.lms[name]
        bos = lm.special_ids["bos"]
        head: list[int] = [int(bos)] if bos is not None else []
        w = _unwrap(wire)
        slots = [w.slot(r, name) for r in slot_rows(soft, counts)]
        if shuffle:  # the probe's control: each window is read after another window's latent
            slots = _roll(slots)
        rows: list[list[Segment]] = []
        for i, s in zip(idx, slots, strict=True):
            marker = w.content_token(name, self.items[self.item_index(i)].mode).to(soft.dtype)  # (1, d_model)
            rows.append([head, s, marker])
        return rows

    def probe(
        self, wire: nn.Module, idx: list[int], models: list[str], device: torch.device
    ) -> dict[str, float]:
        """Reconstruction / continuation CE with this window's latent vs another's (:func:`content_gap`)."""
        return content_gap(self, wire, idx, models, device)

    def __call__(
        self,
        wire: nn.Module,
        idx: list[int],
        models: list[str],
        device: torch.device,
        *,
        shuffle: bool = False,
        content_loss: bool = True,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        its = [self.items[self.item_index(i)] for i in idx]
        feats, mask = self.features.features([it.encoded for it in its])
        feats, mask = feats.to(device), mask.to(device)
        soft, counts = wire(feats, mask, models)
        stats: dict[str, float] = {}
        total = torch.zeros((), device=device)
        for name in models:
            lm = self.lms[name]
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
        return _with_content_loss(self, wire, idx, models, device, total, stats)
