"""The training stages of a run: content pretraining, the task, and the equal-training soft-prompt control.

:class:`TrainingStages` is the part of :class:`runner.run.Run` that trains; the run folder, the shared
pieces it uses (data, readers, features, the wire) and the other stages are the run's.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Protocol

import attrs

from latentwire_core import LatentWire
from latentwire_core.interlingua import slot_counts
from latentwire_core.logs import get_logger
from latentwire_core.soft_prompt import SoftPromptControl
from latentwire_core.tasks import Example, TaskSpec, compressed_text
from latentwire_hf.checkpoint import latest_checkpoint, load_weights
from latentwire_hf.data import data_dir_from_env
from latentwire_hf.frozen_lm import HFFrozenLM
from latentwire_hf.general import SnapshotKeeper, encoded_tokens, general_corpus, heldout_spans
from latentwire_hf.objectives import ContentObjective, SoftPromptObjective, TaskObjective, content_items
from latentwire_hf.objectives.heldout import HeldoutCurves
from latentwire_hf.pretrained import WireSpec
from latentwire_hf.snapshot import read_snapshot
from latentwire_hf.training import Trainer
from runner.config import Experiment, to_toml
from runner.folder import RunFolder

__all__ = ["RunPieces", "TrainingStages"]

log = get_logger("runner")


class RunPieces(Protocol):
    """What the training stages use of a run (:class:`runner.run.Run` has all of it)."""

    exp: Experiment
    folder: RunFolder
    task: TaskSpec
    wire_spec: WireSpec | None

    def data(self) -> tuple[list[Example], list[Example]]: ...
    def readers(self) -> dict[str, HFFrozenLM]: ...
    def features(self) -> Any: ...
    def build_wire(self) -> LatentWire: ...
    def init_from(self, wire: LatentWire, *, load: bool) -> dict[str, Any]: ...
    def fit_standardization(self, wire: LatentWire) -> None: ...
    def fit_anchor(self, wire: LatentWire, stage: str) -> None: ...
    def soft_prompt_control(self: RunPieces) -> SoftPromptControl: ...


class TrainingStages:
    """``pretrain``, ``train`` and ``control``: each trains with :class:`~latentwire_hf.training.Trainer`
    into the run folder's checkpoints, resuming from the last one. A mixin of :class:`runner.run.Run`:
    each stage's ``self`` is the run, typed by what it uses (:class:`RunPieces`)."""

    def _pretrain(self: RunPieces) -> dict[str, Any]:
        """Reconstruction / continuation on the training split's texts (never an evaluation text)."""
        pc = attrs.evolve(self.exp.pretrain, seed=self.exp.seed)
        if pc.steps == 0:
            return {"skipped": "pretrain.steps = 0"}
        train, _ = self.data()
        held: list[str] = []
        if pc.corpus == "general":  # every offline text no task evaluates on (latentwire_hf.data.corpus)
            d = self.exp.data.data_dir
            tokenizers = {n: lm.tokenize for n, lm in self.readers().items()}
            out = self.folder.metrics_log("pretrain").parent
            texts, held, _ = general_corpus(Path(d) if d else data_dir_from_env(), out, tokenizers)
        else:
            texts = [compressed_text(e, self.exp.wire.compress) for e in train]
        items = content_items(texts, pc)
        fs = self.features()  # windows are encoded (and cached) as the trainer draws them: the draw is
        # a seeded permutation of all items, so warming a prefix of the list would encode the wrong ones
        wire = self.build_wire()
        ckpts = self.folder.checkpoints("pretrain")
        snap = read_snapshot(Path(pc.snapshot)) if pc.snapshot else None
        fresh = latest_checkpoint(ckpts) is None
        readers = self.init_from(wire, load=fresh and snap is None)
        if fresh and snap is None and not self.exp.wire.init_from:
            self.fit_standardization(wire)
            self.fit_anchor(wire, "pretrain")
        objective = ContentObjective(readers=readers, features=fs, items=items, cfg=pc, texts=texts)
        metrics = self.folder.metrics_log("pretrain")
        trainer = Trainer(
            wire=wire, readers=readers, cfg=pc, ckpt_dir=ckpts, metrics_path=metrics, objective=objective
        )
        if fresh and snap is not None:  # a new machine: continue the committed snapshot's run
            trainer.adopt(
                snap.weights,
                snap.step,
                train_seconds=sum(float(snap.meta.get(k, 0.0)) for k in ("cpu_seconds", "gpu_seconds")),
            )
            log.info("pretrain_from_snapshot", snapshot=pc.snapshot, step=snap.step)
        trainer.resume()
        hooks: dict[str, Any] = {}
        curves = metrics.parent / "curves.jsonl"
        if pc.curve_every:
            probe = HeldoutCurves(
                readers=readers,
                features=fs,
                spans=heldout_spans(held, words=pc.curve_words, n=pc.curve_n, seed=self.exp.seed),
                cfg=pc,
                path=curves,
                every=pc.curve_every,
            )
            if snap is not None and fresh and snap.path.joinpath("curves.jsonl").is_file():
                shutil.copyfile(snap.path / "curves.jsonl", curves)  # the curves go on from the snapshot's
            probe.truncate(trainer.step)
            hooks["after_step"] = probe
        if pc.snapshot:
            if snap is not None and fresh and snap.path.joinpath("metrics.jsonl").is_file():
                shutil.copyfile(snap.path / "metrics.jsonl", metrics)
            assert self.wire_spec is not None
            hooks["after_save"] = SnapshotKeeper(
                dest=Path(pc.snapshot),
                spec=self.wire_spec,
                prior=snap,
                tokens_per_step=lambda s: encoded_tokens(trainer, objective, fs, s),
                curves={"metrics.jsonl": metrics, "curves.jsonl": curves},
                extra={"run": self.exp.name, "experiment": to_toml(self.exp)},
                start_step=trainer.step,
                start_seconds=trainer.train_seconds,
            )
        trainer.train(**hooks)
        seen: set[str] = set()
        for step, i in trainer.drawn():  # the windows actually trained on (curriculum phases included)
            objective.set_step(step)
            seen.add(objective.items[objective.item_index(i)].encoded)
        objective.set_step(trainer.step)
        return {
            "steps": trainer.step,
            "train_seconds": round(trainer.train_seconds, 1),
            "corpus": pc.corpus,
            "items": len(items),
            "rec_items": sum(it.mode == "rec" for it in items),
            "source_texts": len(dict.fromkeys(texts)),
            "distinct_windows_seen": len(seen),
        }

    def _train(self: RunPieces) -> dict[str, Any]:
        train, _ = self.data()
        wire = self.build_wire()
        pre = latest_checkpoint(self.folder.checkpoints("pretrain")) if self.exp.pretrain.steps else None
        fresh = latest_checkpoint(self.folder.checkpoints("train")) is None
        readers = self.init_from(wire, load=fresh and pre is None)
        if fresh and pre is None and not self.exp.wire.init_from:
            self.fit_standardization(wire)
            self.fit_anchor(wire, "train")
        if pre is not None and fresh:
            load_weights(pre, wire)  # fine-tuning starts from the content-pretrained wire
            log.info("initialised_from_pretrain", checkpoint=str(pre))
        trainer = Trainer(
            wire=wire,
            readers=readers,
            features=self.features(),
            task=self.task,
            examples=train,
            cfg=attrs.evolve(self.exp.train, seed=self.exp.seed),
            ckpt_dir=self.folder.checkpoints("train"),
            metrics_path=self.folder.metrics_log("train"),
            compress=self.exp.wire.compress,
        )
        trainer.train()
        drawn = {i for _, i in trainer.drawn()}
        return {
            "steps": trainer.step,
            "train_seconds": round(trainer.train_seconds, 1),
            "initialised_from": str(pre) if pre is not None else (self.exp.wire.init_from or None),
            "trained_readers": sorted(readers),
            "examples_seen": len(drawn),
            "distinct_texts_seen": len({compressed_text(train[i], self.exp.wire.compress) for i in drawn}),
            "groups_seen": len({train[i].group for i in drawn if train[i].group}),
        }

    def soft_prompt_control(self: RunPieces) -> SoftPromptControl:
        """The control's module: M = the wire's (fixed) M, or its mean M over the training split."""
        w, enc = self.exp.wire, self.exp.wire.encoder
        m = enc.n_tokens
        if enc.ratio > 0:
            train, _ = self.data()
            _, mask = self.features().features([compressed_text(e, w.compress) for e in train[:512]])
            m = max(1, round(float(slot_counts(mask, n_tokens=enc.n_tokens, ratio=enc.ratio).float().mean())))
        return SoftPromptControl({n: (lm.d_model, lm.embed_rms) for n, lm in self.readers().items()}, m)

    def _control(self: RunPieces) -> dict[str, Any]:
        """Train the equal-training soft-prompt control: same steps, data, losses as the wire."""
        if "text_soft_prompt" not in self.exp.eval.methods:
            return {"skipped": "text_soft_prompt is not an evaluation method"}
        train, _ = self.data()
        control = self.soft_prompt_control()
        cfg = attrs.evolve(self.exp.train, seed=self.exp.seed)
        w = self.exp.wire
        task_obj = TaskObjective(
            readers=self.readers(),
            features=self.features(),
            task=self.task,
            examples=train,
            cfg=cfg,
            compress=w.compress,
        )
        objective = SoftPromptObjective(task_obj, max_text_tokens=self.exp.eval.max_text_tokens)
        trainer = Trainer(
            wire=control,
            readers=self.readers(),
            cfg=cfg,
            ckpt_dir=self.folder.checkpoints("control"),
            metrics_path=self.folder.metrics_log("control"),
            objective=objective,
        )
        trainer.train()
        return {"steps": trainer.step, "soft_prompt_tokens": control.n_tokens}
