"""Training the shared encoder + adapters against frozen LMs, with ``accelerate``.

Several frozen models per step (``model_schedule="all"``) or one per step in turn
(``"round_robin"``, to save memory). Losses come from core: answer CE including
EOS, first-token CE, and K-token KD from the same frozen model prompted with the
full text. Resumable: the data order is a pure function of (seed, step), and
checkpoints carry optimizer, scheduler and RNG state.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import torch
from accelerate import Accelerator
from tqdm.auto import tqdm

from latentwire_core import (
    LatentWire,
    answer_ce,
    first_token_accuracy,
    gather_at,
    kd_kl,
    kd_positions,
    prediction_positions,
    with_eos,
)
from latentwire_core._validators import non_negative, one_of, positive
from latentwire_core.logs import get_logger
from latentwire_core.prompting import SlotPrompt
from latentwire_core.tasks import Example, TaskSpec
from latentwire_hf.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint

__all__ = ["TrainConfig", "Trainer", "answer_text"]

log = get_logger(__name__)


@attrs.frozen(kw_only=True)
class TrainConfig:
    steps: int = attrs.field(default=200, validator=positive)
    batch_size: int = attrs.field(default=16, validator=positive)
    grad_accum: int = attrs.field(default=1, validator=positive)
    lr: float = attrs.field(default=1e-3, validator=positive)
    weight_decay: float = attrs.field(default=0.01, validator=non_negative)
    warmup_steps: int = attrs.field(default=10, validator=non_negative)
    grad_clip: float = attrs.field(default=1.0, validator=positive)
    log_every: int = attrs.field(default=10, validator=positive)
    ckpt_every: int = attrs.field(default=50, validator=positive)
    keep_checkpoints: int = attrs.field(default=2, validator=positive)
    ce_weight: float = attrs.field(default=1.0, validator=non_negative)
    first_token_weight: float = attrs.field(default=0.5, validator=non_negative)
    kd_weight: float = attrs.field(default=0.0, validator=non_negative)
    kd_k: int = attrs.field(default=4, validator=positive)
    kd_temperature: float = attrs.field(default=1.0, validator=positive)
    max_text_tokens: int = attrs.field(default=256, validator=positive)
    model_schedule: str = attrs.field(default="all", validator=one_of("all", "round_robin"))
    mixed_precision: str = attrs.field(default="no", validator=one_of("no", "bf16"))
    seed: int = 0


def answer_text(ex: Example, task: TaskSpec) -> str:
    """The target continuation after the anchor (verbaliser for classification)."""
    if task.kind == "classification":
        if ex.label is None or not 0 <= ex.label < len(task.labels):
            raise ValueError(
                f"example {ex.id}: label {ex.label!r} outside {task.name}'s {len(task.labels)} labels"
            )
        return task.labels[ex.label]
    return " " + ex.answers[0]


def _lr_lambda(cfg: TrainConfig) -> Any:
    def f(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / (cfg.warmup_steps + 1)
        progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return f


class Trainer:
    """Wires features, the LatentWire module and frozen LMs into a resumable training loop.

    Args:
        wire: the trainable module (encoder + adapters).
        lms: model name -> frozen LM (``HFFrozenLM`` or a fake satisfying the port).
        features: a (cached) feature source.
        task: prompt/answer spec.
        examples: training examples (never evaluation ones).
        cfg: hyper-parameters.
        run_dir: the run folder (``train/metrics.jsonl`` and ``checkpoints/`` go there).
        accelerator: an ``Accelerator``; one is made (CPU unless CUDA is present) if omitted.
    """

    def __init__(
        self,
        *,
        wire: LatentWire,
        lms: Mapping[str, Any],
        features: Any,
        task: TaskSpec,
        examples: Sequence[Example],
        cfg: TrainConfig,
        run_dir: Path,
        accelerator: Accelerator | None = None,
    ) -> None:
        if not examples:
            raise ValueError("no training examples")
        self.cfg, self.task, self.examples, self.features = cfg, task, list(examples), features
        self.acc = accelerator or Accelerator(
            mixed_precision=cfg.mixed_precision if torch.cuda.is_available() else "no"
        )
        self.run_dir = run_dir
        self.ckpt_dir = run_dir / "checkpoints"
        self.metrics_path = run_dir / "train" / "metrics.jsonl"
        self.lms = dict(lms)
        for lm in self.lms.values():
            if hasattr(lm, "model"):
                lm.model.to(self.acc.device)
        self.prompts = {name: SlotPrompt(lm, task) for name, lm in self.lms.items()}
        self.answers = {
            name: [with_eos(lm.tokenize([answer_text(e, task)])[0], p.eos) for e in self.examples]
            for (name, lm), p in zip(self.lms.items(), self.prompts.values(), strict=True)
        }
        opt = torch.optim.AdamW(wire.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg))
        # the scheduler is stepped by hand: accelerate's wrapper would step it once per process
        self.wire, self.optimizer = self.acc.prepare(wire, opt)
        self.step = 0
        self._perms: dict[int, list[int]] = {}

    # --- data order: a pure function of (seed, global index) so a resumed run sees the same batches
    def _indices(self, step: int, micro: int) -> list[int]:
        n, world, rank = len(self.examples), self.acc.num_processes, self.acc.process_index
        per_step = self.cfg.batch_size * self.cfg.grad_accum * world
        start = step * per_step + (micro * world + rank) * self.cfg.batch_size
        out = []
        for i in range(start, start + self.cfg.batch_size):
            epoch, pos = divmod(i, n)
            if epoch not in self._perms:
                gen = torch.Generator().manual_seed(self.cfg.seed * 100_003 + epoch)
                self._perms = {epoch: torch.randperm(n, generator=gen).tolist()}
            out.append(self._perms[epoch][pos])
        return out

    def _active_models(self, step: int) -> list[str]:
        names = list(self.lms)
        return names if self.cfg.model_schedule == "all" else [names[step % len(names)]]

    def _micro_step(self, idx: list[int], models: list[str]) -> dict[str, float]:
        exs = [self.examples[i] for i in idx]
        feats, mask = self.features.features([e.source for e in exs])
        feats, mask = feats.to(self.acc.device), mask.to(self.acc.device)
        stats: dict[str, float] = {}
        with self.acc.autocast():
            soft = self.wire(feats, mask, models)  # name -> (B, M, d_model)
            total = torch.zeros((), device=self.acc.device)
            for name in models:
                lm, prompt = self.lms[name], self.prompts[name]
                answers = [self.answers[name][i] for i in idx]
                batch, hidden = prompt.hidden(list(soft[name]), answers)
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
        self.acc.backward(total / self.cfg.grad_accum)
        return stats

    def _kd(
        self,
        name: str,
        exs: list[Example],
        answers: list[list[int]],
        hidden: torch.Tensor,
        labels: torch.Tensor,
    ) -> torch.Tensor:
        """KL to the same frozen model prompted with the full text, at the first K answer tokens."""
        lm, prompt = self.lms[name], self.prompts[name]
        with torch.no_grad():
            texts = [ids[: self.cfg.max_text_tokens] for ids in lm.tokenize([e.source for e in exs])]
            tb, t_hidden = prompt.hidden(texts, answers)
            tpos = kd_positions(tb.labels, self.cfg.kd_k)
            t_logits = lm.logits(gather_at(t_hidden, tpos))
        spos = kd_positions(labels, self.cfg.kd_k)
        if not (torch.equal(spos.rows, tpos.rows) and torch.equal(spos.step, tpos.step)):
            raise RuntimeError("student and teacher KD positions are not paired")
        return kd_kl(lm.logits(gather_at(hidden, spos)), t_logits, temperature=self.cfg.kd_temperature)

    def _save(self) -> None:
        if self.acc.is_main_process:
            save_checkpoint(
                self.ckpt_dir,
                self.step,
                model=self.acc.unwrap_model(self.wire),
                optimizer=self.optimizer.optimizer
                if hasattr(self.optimizer, "optimizer")
                else self.optimizer,
                scheduler=self.scheduler,
                trainer_state={
                    "examples_seen": self.step
                    * self.cfg.batch_size
                    * self.cfg.grad_accum
                    * self.acc.num_processes
                },
                keep=self.cfg.keep_checkpoints,
            )
        self.acc.wait_for_everyone()

    def resume(self) -> int:
        """Load the newest checkpoint if there is one; returns the step to continue from."""
        path = latest_checkpoint(self.ckpt_dir)
        if path is None:
            return 0
        opt = self.optimizer.optimizer if hasattr(self.optimizer, "optimizer") else self.optimizer
        meta = load_checkpoint(
            path, model=self.acc.unwrap_model(self.wire), optimizer=opt, scheduler=self.scheduler
        )
        self.step = int(meta["step"])
        if self.acc.is_main_process and self.metrics_path.is_file():
            # drop rows logged after the checkpoint we resume from; they will be logged again
            rows = [r for r in self.metrics_path.read_text().splitlines() if r.strip()]
            keep = [r for r in rows if json.loads(r)["step"] <= self.step]
            self.metrics_path.write_text("".join(r + "\n" for r in keep))
        log.info("resumed", checkpoint=str(path), step=self.step)
        return self.step

    def train(self, *, stop_after: int | None = None) -> LatentWire:
        """Run until ``cfg.steps`` (or ``stop_after`` steps, to simulate a kill in tests)."""
        self.resume()
        self.metrics_path.parent.mkdir(parents=True, exist_ok=True)
        self.wire.train()
        bar = tqdm(
            total=self.cfg.steps,
            initial=self.step,
            desc="train",
            disable=not self.acc.is_local_main_process,
            leave=False,
        )
        window: dict[str, list[float]] = {}
        t0, seen = time.perf_counter(), 0
        done_here = 0
        while self.step < self.cfg.steps:
            models = self._active_models(self.step)
            for micro in range(self.cfg.grad_accum):
                sync = micro == self.cfg.grad_accum - 1
                ctx = (
                    self.acc.no_sync(self.wire)
                    if not sync and self.acc.num_processes > 1
                    else contextlib.nullcontext()
                )
                with ctx:
                    for k, v in self._micro_step(self._indices(self.step, micro), models).items():
                        window.setdefault(k, []).append(v)
                seen += self.cfg.batch_size * self.acc.num_processes
            self.acc.clip_grad_norm_(self.wire.parameters(), self.cfg.grad_clip)
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.step += 1
            done_here += 1
            bar.update(1)
            if self.step % self.cfg.log_every == 0 or self.step == self.cfg.steps:
                row = {k: sum(v) / len(v) for k, v in window.items()}
                row.update(
                    step=self.step,
                    lr=float(self.scheduler.get_last_lr()[0]),
                    examples_per_s=seen / (time.perf_counter() - t0),
                )
                if self.acc.is_main_process:
                    with self.metrics_path.open("a", encoding="utf-8") as f:
                        f.write(json.dumps(row) + "\n")
                bar.set_postfix({k: f"{v:.3f}" for k, v in row.items() if k.endswith("/loss")})
                log.info("train_step", **{k.replace("/", "."): round(v, 4) for k, v in row.items()})
                window, t0, seen = {}, time.perf_counter(), 0
            if self.step % self.cfg.ckpt_every == 0 or self.step == self.cfg.steps:
                self._save()
            if stop_after is not None and done_here >= stop_after:
                break
        bar.close()
        self.wire.eval()
        unwrapped: LatentWire = self.acc.unwrap_model(self.wire)
        return unwrapped
