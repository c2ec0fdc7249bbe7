"""The task objective (stage ``train``), its cached teacher, and the soft-prompt control's objective."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

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
from latentwire_core.ports import FeatureSource, FrozenLM
from latentwire_core.prompting import SlotPrompt
from latentwire_core.slots import Segment
from latentwire_core.tasks import Example, TaskSpec, compressed_text
from latentwire_hf.objectives.base import content_gap, encode, roll_rows, slot_rows, unwrap, with_content_loss

__all__ = ["SoftPromptObjective", "TaskObjective", "TeacherCache"]


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
        readers: reader name -> frozen LM (the port).
        features: a feature source over the compressed texts.
        task: prompt / answer spec.
        examples: training examples.
        cfg: a ``TrainConfig`` (weights, KD settings).
        compress: ``source`` or ``context`` (what the wire carries; the question stays in text).
    """

    def __init__(
        self,
        *,
        readers: Mapping[str, FrozenLM],
        features: FeatureSource,
        task: TaskSpec,
        examples: Sequence[Example],
        cfg: Any,
        compress: str = "source",
    ) -> None:
        self.readers, self.features, self.task, self.examples, self.cfg = (
            dict(readers),
            features,
            task,
            list(examples),
            cfg,
        )
        self.compress = compress
        self.n_items = len(self.examples)
        self.prompts = {name: SlotPrompt(lm, task, compress=compress) for name, lm in self.readers.items()}
        self.answers = {
            name: [
                with_eos(lm.tokenize([task.answer_text(e)])[0], self.prompts[name].eos) for e in self.examples
            ]
            for name, lm in self.readers.items()
        }
        self.teacher = TeacherCache(k_positions=cfg.kd_k, top_k=cfg.kd_top_k)

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
        exs = [self.examples[i] for i in idx]
        texts = [compressed_text(e, self.compress) for e in exs]
        soft, counts = encode(
            wire, self.features, texts, names, device
        )  # name -> (B, M, d_model); M_i per row
        w = unwrap(wire)
        slots: dict[str, list[Segment]] = {
            n: [w.slot(r, n) for r in slot_rows(soft[n], counts)] for n in names
        }
        if shuffle:  # the probe's control: each question reads another example's latent
            slots = {n: roll_rows(r) for n, r in slots.items()}
        total, stats = self.answer_losses(idx, names, slots, device)
        if shuffle or not content_loss:
            return total, stats
        return with_content_loss(self, wire, idx, names, device, total, stats)

    def probe(
        self, wire: nn.Module, idx: list[int], names: list[str], device: torch.device
    ) -> dict[str, float]:
        """Answer CE with this example's latent vs another example's (see :func:`content_gap`)."""
        return content_gap(self, wire, idx, names, device)

    def answer_losses(
        self, idx: list[int], names: list[str], slots: Mapping[str, list[Segment]], device: torch.device
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Answer CE (+ first-token CE, + KD) of each reader given its slot contents for the batch."""
        exs = [self.examples[i] for i in idx]
        stats: dict[str, float] = {}
        total = torch.zeros((), device=device)
        for name in names:
            lm, prompt = self.readers[name], self.prompts[name]
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
        lm = self.readers[name]
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
        self, wire: nn.Module, idx: list[int], names: list[str], device: torch.device
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """``wire``: the objective protocol's name for the trained module; here it is the control's soft prompt
        (:class:`~latentwire_core.soft_prompt.SoftPromptControl`), which the loop trains in the wire's place."""
        exs = [self.task.examples[i] for i in idx]
        prompts = wire(names)  # name -> (M, d_model)
        slots: dict[str, list[Segment]] = {}
        for name in names:
            lm, sp = self.task.readers[name], self.task.prompts[name]
            ids = [sp.text_ids(e)[: self.max_text_tokens] for e in exs]
            with torch.no_grad():
                embs = [lm.embed(torch.tensor([i or [sp.eos]]))[0] for i in ids]
            slots[name] = [torch.cat([prompts[name].to(e.dtype), e.to(prompts[name].device)]) for e in embs]
        return self.task.answer_losses(idx, names, slots, device)

    def probe(
        self, wire: nn.Module, idx: list[int], names: list[str], device: torch.device
    ) -> dict[str, float]:
        """Nothing to swap: the soft prompt is the same for every example."""
        return {}


# --- content pretraining ------------------------------------------------------------------------
