"""The training loop for the shared encoder + adapters against frozen LMs, with ``accelerate``.

The loop owns the mechanics only: data order, gradient accumulation, clipping, the LR
schedule, logging, atomic checkpoints and exact resume. What a step optimises is an
objective (:mod:`latentwire_hf.objectives`): the task (stage ``train``) or content
pretraining (stage ``pretrain``). Several frozen readers per step (``model_schedule="all"``)
or one per step in turn (``"round_robin"``). Resumable: the data order is a pure function
of (seed, step), and checkpoints carry optimizer, scheduler and RNG state. At each logged step the
objective's content probe (``content_probe``) adds the loss with each row's own latent vs another
row's, on the next batch, so a run shows while it trains whether the wire carries content. A non-finite
loss stops training with :class:`NonFiniteLossError` before the optimiser step, so the last
checkpoint on disk stays the last good one.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from tqdm.auto import tqdm

from latentwire_core import LatentWire
from latentwire_core.logs import get_logger
from latentwire_core.ports import FeatureSource, FrozenLM
from latentwire_core.tasks import Example, TaskSpec
from latentwire_hf.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from latentwire_hf.config import LoopConfig, TrainConfig
from latentwire_hf.objectives import Objective, TaskObjective

__all__ = ["NonFiniteLossError", "TrainConfig", "Trainer", "param_groups"]

log = get_logger(__name__)


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN/inf loss or weights; the message names the step. Nothing was saved after it."""


def param_groups(wire: torch.nn.Module, cfg: Any) -> list[dict[str, Any]]:
    """The trainable parameters in two groups: the shared encoder (``lr_encoder``) and the rest
    (adapters, calibrations, content tokens: ``lr_adapters``); each falls back to ``lr`` when 0. The LR
    schedule scales both alike. One group when neither is set (the optimiser state is as before)."""
    lr_enc, lr_rest = float(getattr(cfg, "lr_encoder", 0.0)), float(getattr(cfg, "lr_adapters", 0.0))
    named = [(n, p) for n, p in wire.named_parameters() if p.requires_grad]
    if not lr_enc and not lr_rest:
        return [{"params": [p for _, p in named]}]
    enc = [p for n, p in named if n.split(".")[0] == "encoder"]
    rest = [p for n, p in named if n.split(".")[0] != "encoder"]
    groups = [
        {"params": enc, "lr": lr_enc or cfg.lr},
        {"params": rest, "lr": lr_rest or cfg.lr},
    ]
    return [g for g in groups if g["params"]]


class StepClock:
    """A training step's seconds: its wall time, but on a CPU never more than the CPU time the process
    spent in it. A process stopped (``kill -STOP``, a suspended laptop) spends no CPU time, so a pause
    does not count as training; with several threads the CPU time exceeds the wall time and the wall
    time is what counts. On a GPU the wall time counts (the host may wait on the device)."""

    def __init__(
        self,
        *,
        on_cpu: bool,
        wall: Callable[[], float] = time.perf_counter,
        cpu: Callable[[], float] = time.process_time,
    ) -> None:
        self.on_cpu, self.wall, self.cpu = on_cpu, wall, cpu
        self.wall0, self.cpu0 = wall(), cpu()

    def seconds(self) -> float:
        wall = self.wall() - self.wall0
        return min(wall, self.cpu() - self.cpu0) if self.on_cpu else wall


class Trainer:
    """A resumable training loop around one objective.

    Args:
        wire: the trainable module: a wire (encoder + adapters), or the equal-training control's soft prompt
            (:class:`~latentwire_core.soft_prompt.SoftPromptControl`, with its objective).
        readers: model name -> frozen LM (``HFFrozenLM`` or a fake satisfying the port).
        features: a (cached) feature source.
        task: prompt/answer spec.
        examples: training examples (never evaluation ones).
        cfg: the loop's settings (a ``TrainConfig``, or a ``PretrainConfig`` with ``objective``).
        ckpt_dir: where checkpoints go (and a resumed run finds them).
        metrics_path: the per-step JSONL log (a resumed run drops its rows past the checkpoint).
        accelerator: an ``Accelerator``; one is made (CPU unless CUDA is present) if omitted.
        objective: what a step optimises; default the task objective over ``examples``.
        compress: what the wire carries for the default task objective (``source`` / ``context``).
    """

    def __init__(
        self,
        *,
        wire: torch.nn.Module,
        readers: Mapping[str, FrozenLM],
        features: FeatureSource | None = None,
        task: TaskSpec | None = None,
        examples: Sequence[Example] = (),
        cfg: LoopConfig,
        ckpt_dir: Path,
        metrics_path: Path,
        accelerator: Accelerator | None = None,
        objective: Objective | None = None,
        compress: str = "source",
    ) -> None:
        self.cfg = cfg
        self.acc = accelerator or Accelerator(
            mixed_precision=cfg.mixed_precision if torch.cuda.is_available() else "no"
        )
        self.ckpt_dir, self.metrics_path = ckpt_dir, metrics_path
        self.readers = dict(readers)
        if objective is None:
            if task is None or not examples:
                raise ValueError("no training examples")
            if features is None:
                raise ValueError("the default task objective needs the wire's feature source (features=)")
            if not isinstance(wire, LatentWire):
                raise TypeError("the default task objective needs a LatentWire; pass objective= otherwise")
            objective = TaskObjective(
                readers=self.readers,
                features=features,
                task=task,
                examples=examples,
                cfg=cfg,
                compress=compress,
            )
        if objective.n_items == 0:
            raise ValueError("no training examples")
        self.objective = objective
        opt = torch.optim.AdamW(param_groups(wire, cfg), lr=cfg.lr, weight_decay=cfg.weight_decay)
        # the step the schedule's warm-up (re)started from: 0, or the step of an adopted snapshot
        self.schedule_offset = 0
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(opt, self._lr_factor)
        # the scheduler is stepped by hand: accelerate's wrapper would step it once per process
        self.wire, self.optimizer = self.acc.prepare(wire, opt)
        self.step = 0
        self.finishing = False
        # wall seconds of the steps on the kept trajectory (with their logging and probes, without the
        # checkpoint writes), summed over the processes that trained it: a killed run's steps after its
        # last checkpoint are redone and counted once. Saved in trainer.json, reported as the stage's
        # train_seconds (its `seconds` is the last process's wall time only)
        self.train_seconds = 0.0
        self._perms: dict[int, list[int]] = {}

    def _lr_factor(self, local: int) -> float:
        """The LR multiplier ``local`` scheduler steps after the (re)start: linear warm-up from 0, then
        flat (``constant``) or cosine to 0 at ``cfg.steps`` (transformers' cosine schedule, the same
        floats, when nothing was adopted)."""
        warm = self.cfg.warmup_steps
        if local < warm:
            ramp = float(local) / float(max(1, warm))
            if self.schedule_offset == 0 or self.cfg.lr_schedule == "constant":
                return ramp
        else:
            ramp = 1.0
        if self.cfg.lr_schedule == "constant":
            return 1.0
        step = local + self.schedule_offset
        progress = float(step - warm) / float(max(1, self.cfg.steps - warm))
        return ramp * max(0.0, 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * progress)))

    def adopt(self, state: Mapping[str, torch.Tensor], step: int, *, train_seconds: float = 0.0) -> None:
        """Start from another machine's weights at ``step`` (a snapshot): the data order continues from
        ``step``, the optimiser state is fresh and the warm-up restarts there. Only before training."""
        if latest_checkpoint(self.ckpt_dir) is not None:
            raise ValueError(f"{self.ckpt_dir} has checkpoints: resume from them, not from a snapshot")
        self.acc.unwrap_model(self.wire).load_state_dict(dict(state))
        self.step = self.schedule_offset = int(step)
        self.train_seconds = float(train_seconds)
        log.info("adopted_snapshot", step=self.step)

    # --- data order: a pure function of (seed, global index) so a resumed run sees the same batches
    def _indices(self, step: int, micro: int) -> list[int]:
        n, world, rank = self.objective.n_items, self.acc.num_processes, self.acc.process_index
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

    def batch_indices(self, step: int) -> list[int]:
        """The item indices this process draws at ``step`` (every micro-batch)."""
        return [i for micro in range(self.cfg.grad_accum) for i in self._indices(step, micro)]

    def drawn(self) -> list[tuple[int, int]]:
        """``(step, item index)`` of every item this process has trained on so far (a pure function of
        the seed and the step, so it holds across resumes)."""
        return [
            (step, i)
            for step in range(self.step)
            for micro in range(self.cfg.grad_accum)
            for i in self._indices(step, micro)
        ]

    def _set_step(self, step: int) -> None:
        """Tell a scheduled objective (the pretraining curriculum) which step's items to draw."""
        set_step = getattr(self.objective, "set_step", None)
        if set_step is not None:
            set_step(step)

    def _active_readers(self, step: int) -> list[str]:
        names = list(self.readers)
        return names if self.cfg.model_schedule == "all" else [names[step % len(names)]]

    def _micro_step(self, idx: list[int], names: list[str]) -> dict[str, float]:
        with self.acc.autocast():
            total, stats = self.objective(self.wire, idx, names, self.acc.device)
        if not bool(torch.isfinite(total.detach())):
            raise NonFiniteLossError(
                f"non-finite loss ({float(total.detach())}) at step {self.step + 1}; training stopped, "
                f"the last good checkpoint in {self.ckpt_dir} is kept (lower the lr or check the data)"
            )
        self.acc.backward(total / self.cfg.grad_accum)
        return stats

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
                    * self.acc.num_processes,
                    "train_seconds": round(self.train_seconds, 3),
                    "schedule_offset": self.schedule_offset,
                },
                keep=self.cfg.keep_checkpoints,
            )
        self.acc.wait_for_everyone()

    def resume(self) -> int:
        """Load the newest checkpoint if there is one; returns the step to continue from."""
        path = latest_checkpoint(self.ckpt_dir)
        if path is None:
            return self.step  # 0, or the step of an adopted snapshot
        opt = self.optimizer.optimizer if hasattr(self.optimizer, "optimizer") else self.optimizer
        meta = load_checkpoint(
            path, model=self.acc.unwrap_model(self.wire), optimizer=opt, scheduler=self.scheduler
        )
        self.step = int(meta["step"])
        self.train_seconds = float(meta.get("train_seconds", 0.0))  # absent in older checkpoints
        self.schedule_offset = int(meta.get("schedule_offset", 0))
        if self.acc.is_main_process and self.metrics_path.is_file():
            # drop rows logged after the checkpoint we resume from; they will be logged again
            rows = [r for r in self.metrics_path.read_text().splitlines() if r.strip()]
            keep = [r for r in rows if json.loads(r)["step"] <= self.step]
            self.metrics_path.write_text("".join(r + "\n" for r in keep))
        log.info("resumed", checkpoint=str(path), step=self.step)
        return self.step

    def train(
        self,
        *,
        stop_after: int | None = None,
        after_step: Callable[[Trainer], None] | None = None,
        after_save: Callable[[Trainer], None] | None = None,
    ) -> LatentWire:
        """Run until ``cfg.steps`` (or ``stop_after`` steps, to simulate a kill in tests, or until
        ``cfg.time_limit_s`` training seconds). ``after_step`` runs after every optimiser step (held-out
        curves decide themselves when to measure), ``after_save`` after every checkpoint (a snapshot)."""
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
        while self.step < self.cfg.steps and not 0 < self.cfg.time_limit_s <= self.train_seconds:
            clock = StepClock(on_cpu=self.acc.device.type == "cpu")
            self._set_step(self.step)
            names = self._active_readers(self.step)
            for micro in range(self.cfg.grad_accum):
                sync = micro == self.cfg.grad_accum - 1
                ctx = (
                    self.acc.no_sync(self.wire)
                    if not sync and self.acc.num_processes > 1
                    else contextlib.nullcontext()
                )
                with ctx:
                    for k, v in self._micro_step(self._indices(self.step, micro), names).items():
                        window.setdefault(k, []).append(v)
                seen += self.cfg.batch_size * self.acc.num_processes
            self.acc.clip_grad_norm_(self.wire.parameters(), self.cfg.grad_clip)
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            if not all(bool(torch.isfinite(p).all()) for p in self.wire.parameters() if p.requires_grad):
                raise NonFiniteLossError(
                    f"non-finite weights after step {self.step + 1}; training stopped before saving them, "
                    f"the last good checkpoint in {self.ckpt_dir} is kept (lower the lr)"
                )
            self.step += 1
            done_here += 1
            bar.update(1)
            if self.step % self.cfg.log_every == 0 or self.step == self.cfg.steps:
                row = {k: sum(v) / len(v) for k, v in window.items()}
                if self.cfg.content_probe:
                    # the next step's batch (not trained on yet): does the reader use this text's latent?
                    with self.acc.autocast():  # every reader, also those a round-robin step skipped
                        self._set_step(self.step)
                        nxt = self._indices(self.step, 0)
                        row.update(self.objective.probe(self.wire, nxt, list(self.readers), self.acc.device))
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
            self.train_seconds += clock.seconds()  # the step, its log and probe; a pause does not count
            out_of_time = 0 < self.cfg.time_limit_s <= self.train_seconds
            # the loop's last step (its end, its time limit or the simulated kill): a hook may measure it
            self.finishing = out_of_time or self.step == self.cfg.steps
            if after_step is not None:
                after_step(self)
            if self.step % self.cfg.ckpt_every == 0 or self.step == self.cfg.steps or out_of_time:
                self._save()
                if after_save is not None:
                    after_save(self)
            if stop_after is not None and done_here >= stop_after:
                break
            if out_of_time:
                log.info("time_limit_reached", step=self.step, train_seconds=round(self.train_seconds, 1))
                break
        bar.close()
        self.wire.eval()
        unwrapped: LatentWire = self.acc.unwrap_model(self.wire)
        return unwrapped
