"""The recipe: prepare -> pretrain -> train -> control -> evaluate -> report, into one run folder (docs/design.md "The run folder").

``pretrain`` (content pretraining) runs when ``[pretrain].steps > 0``; ``control`` trains the
equal-training soft-prompt control when ``text_soft_prompt`` is among the evaluation methods.

Each stage records its status in ``manifest.json``; a finished stage is skipped
when the same command runs again, training resumes from its last checkpoint and
evaluation from its last finished (model, method) pair. ``--fresh`` starts over.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import torch

from latentwire_core import LatentWire, QuantWireCodec
from latentwire_core.interlingua import slot_counts
from latentwire_core.logs import configure_logging, get_logger
from latentwire_core.message import (
    encoder_fingerprint,
)
from latentwire_core.registry import UnknownNameError
from latentwire_core.soft_prompt import SoftPromptControl
from latentwire_core.tasks import Example, compressed_text, get_task
from latentwire_eval.gencache import GenerationCache
from latentwire_eval.methods import METHODS, EvalContext, derangement
from latentwire_eval.pipeline import evaluate
from latentwire_eval.report import write_report
from latentwire_hf.checkpoint import latest_checkpoint, load_weights
from latentwire_hf.config import ModelShapeError
from latentwire_hf.data import DataError, load_train_eval
from latentwire_hf.features import build_feature_source
from latentwire_hf.frozen_lm import HFFrozenLM, load_frozen_lm
from latentwire_hf.models import cache_root, resolve_model_name
from latentwire_hf.objectives import ContentObjective, SoftPromptObjective, TaskObjective, content_items
from latentwire_hf.pretrained import WireSpec, spec_from_core, write_spec
from latentwire_hf.pretrained import build_wire as build_wire_from_spec
from latentwire_hf.training import Trainer
from runner.config import STAGES, Experiment, to_toml
from runner.eval_extras import (
    embedding_report,
    example_budgets,
    resolve_model,
    wire_summary,
)
from runner.folder import RunFolder, RunFolderError, RunFolderMismatch, RunLock, read_manifest

__all__ = ["STAGES", "Run", "RunFolderError", "RunFolderMismatch", "RunLock"]

log = get_logger("runner")


class Run:
    """One experiment's run folder and its stages."""

    def __init__(
        self,
        exp: Experiment,
        *,
        fresh: bool = False,
        root: Path | None = None,
        read_only: bool = False,
        reuse_training: Path | None = None,
    ) -> None:
        self.exp = exp
        self.folder = RunFolder((root or Path(exp.runs_dir)) / exp.name, read_only=read_only)
        self.dir = self.folder.dir
        self.task = get_task(exp.data.task)  # what the wire trains on
        self.eval_task = get_task(exp.eval_task)  # what it is scored on ([eval].task: a transfer evaluation)
        for i, name in enumerate(exp.models.names):
            try:
                resolve_model_name(name)
            except UnknownNameError as e:
                raise UnknownNameError(f"[models].names[{i}]: {e}") from None
        if exp.models.device == "cuda" and not torch.cuda.is_available():
            raise RunFolderError(
                "[models].device = 'cuda' but no CUDA device is available here; use 'auto' or 'cpu'"
            )
        # Under `accelerate launch` / torchrun every rank runs this recipe: all ranks train (DDP),
        # rank 0 alone prepares, evaluates, reports and writes the run folder's files.
        self.world, self.is_main = self.folder.world, self.folder.is_main
        self._state: Any = None
        if read_only:  # a reader (a benchmark): nothing in the folder is created, locked or changed
            if not self.folder.experiment_toml.is_file():
                raise RunFolderError(f"{self.dir}: not a run folder (no experiment.toml)")
            if self.folder.manifest_path.is_file():
                self.folder.manifest = read_manifest(self.folder.manifest_path)
        else:
            if self.world > 1:
                from accelerate import PartialState

                self._state = PartialState(cpu=not torch.cuda.is_available())
            self.folder.open_for_writing(to_toml(exp), fresh=fresh, name=exp.name, seed=exp.seed)
            self._barrier()
            configure_logging(self.folder.log_path if self.is_main else None)
            self.folder.load_manifest(
                name=exp.name,
                seed=exp.seed,
                machine={
                    "platform": platform.platform(),
                    "cpus": os.cpu_count(),
                    "device": self.device,
                    "world_size": self.world,
                    "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                },
            )
            if reuse_training is not None and self.is_main:  # an evaluation-only variant of a finished run
                adopted = self.folder.adopt_training(reuse_training, to_toml(exp))
                log.info("adopted_training", source=str(reuse_training), stages=adopted)
            self._barrier()
        self._lms: dict[str, HFFrozenLM] = {}
        self._features: Any = None
        self.wire_spec: WireSpec | None = None
        self._data: tuple[list[Example], list[Example]] | None = None
        self._transfer_dropped = 0  # a transfer evaluation's examples whose text the wire trained on

    @property
    def lock(self) -> RunLock | None:
        return self.folder.lock

    @property
    def manifest(self) -> dict[str, Any]:
        return self.folder.manifest

    @property
    def device(self) -> str:
        """Where this process puts the frozen readers and the encoder (each DDP rank on its own GPU)."""
        d = self.exp.models.device
        d = ("cuda" if torch.cuda.is_available() else "cpu") if d == "auto" else d
        if d == "cuda" and self.world > 1:
            return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        return d

    def _barrier(self) -> None:
        if self._state is not None:
            self._state.wait_for_everyone()

    def stage_done(self, stage: str) -> bool:
        return self.folder.stage_done(stage)

    def run(self, stages: tuple[str, ...] = STAGES) -> None:
        folder = self.folder
        for stage in stages:
            self._barrier()
            folder.refresh_stages()
            remade = folder.stage_done(stage)
            if remade:
                damaged = folder.damaged_outputs(stage)
                if not damaged:
                    log.info("stage_skipped_already_done", stage=stage)
                    continue
                # a finished artefact changed on disk: say so, and make it again
                log.warning("stage_output_damaged_rerunning", stage=stage, files=damaged)
                if stage == "evaluate":
                    shutil.rmtree(folder.eval_partial, ignore_errors=True)
            if stage not in ("train", "pretrain", "control") and not self.is_main:
                continue  # rank 0 does it; the barrier at the next stage waits for it
            fn: Callable[[], dict[str, Any] | None] = getattr(self, f"_{stage}")
            folder.begin_stage(stage)
            log.info("stage_start", stage=stage, run=str(self.dir))
            t0 = time.perf_counter()
            try:
                info = fn() or {}
            except BaseException as e:
                folder.fail_stage(stage, e)
                raise
            folder.finish_stage(stage, time.perf_counter() - t0, info)
            log.info("stage_done", stage=stage, seconds=folder.manifest["stages"][stage]["seconds"])
            if remade:  # what came after it was made from the old artefact: make it again too
                stale = folder.invalidate_after(stage, STAGES)
                if stale:
                    log.warning("later_stages_stale", after=stage, stages=stale)
        self._barrier()
        folder.finish()

    # --- shared, lazily built pieces -------------------------------------------------------------
    def data(self) -> tuple[list[Example], list[Example]]:
        if self._data is None:
            d = self.exp.data
            data_dir = Path(d.data_dir) if d.data_dir else None

            def load(task: str, train_limit: int) -> tuple[list[Example], list[Example], Any]:
                return load_train_eval(
                    task,
                    data_dir=data_dir,
                    train_limit=train_limit,
                    eval_limit=d.eval_limit,
                    on_error="skip" if d.on_error == "skip" else "raise",
                    eval_sampling="prefix" if d.eval_sampling == "prefix" else "seeded",
                    seed=self.exp.seed,
                    eval_split="validation" if d.eval_split == "validation" else "eval",
                )

            train, evaluation, report = load(d.task, d.train_limit)
            if self.exp.eval_task != d.task:  # a transfer evaluation: the other task's split, none of
                # whose texts the wire trained on
                _, evaluation, other = load(self.exp.eval_task, 0)
                report.skipped += other.skipped
                seen = {compressed_text(e, self.exp.wire.compress) for e in train}
                kept = [e for e in evaluation if compressed_text(e, self.exp.eval_compress) not in seen]
                self._transfer_dropped = len(evaluation) - len(kept)
                evaluation = kept
            for split, got, floor, limit, task in (
                ("eval", len(evaluation), d.min_eval, d.eval_limit, self.exp.eval_task),
                ("train", len(train), d.min_train, d.train_limit, d.task),
            ):
                if got < floor:
                    raise DataError(
                        f"{task}: the {split} split has {got} usable examples, below [data].min_{split} = "
                        f"{floor} (asked for up to {limit}); nothing was run"
                    )
                if got < limit:
                    log.warning("fewer_examples_than_asked", task=task, split=split, got=got, asked=limit)
            self._data = (train, evaluation)
            self._data_report = report
        return self._data

    def lms(self) -> dict[str, HFFrozenLM]:
        if not self._lms:
            for name in self.exp.models.names:
                self._lms[name] = load_frozen_lm(name, device=self.device, seed=self.exp.seed)
        return self._lms

    def features(self) -> Any:
        if self._features is None:
            f = self.exp.features
            self._features = build_feature_source(
                f.source, layer=f.layer, max_length=f.max_length, device=self.device
            )
        return self._features

    def build_wire(self) -> LatentWire:
        """This run's wire, untrained: its spec (``wire.json``, written here) built by the one constructor
        the benchmarks and ``PretrainedWire`` use (``latentwire_hf.pretrained.build_wire``). The readers and
        the feature source are loaded first, so the seeded initialisation never depends on what this
        process happened to load before."""
        w, f = self.exp.wire, self.exp.features
        lms = self.lms()
        for n, lm in lms.items():  # latent adapters: every chosen layer exists in every reader
            beyond = [i for i in w.latent_adapter_layers if i >= len(lm.decoder_layers)]
            if beyond:
                raise ModelShapeError(
                    f"[wire] latent_adapter_layers {beyond}: {n} has {len(lm.decoder_layers)} decoder layers"
                )
        cfg = w.to_core(self.features().feature_dim, content_tokens=self.exp.pretrain.steps > 0)
        spec = spec_from_core(
            cfg,
            features={"source": f.source, "layer": f.layer, "max_length": f.max_length},
            lm_encoder=w.lm_encoder.encoder_kwargs(f.layer) if w.encoder.kind == "lm_pool" else None,
            readers={n: (lm.d_model, lm.embed_rms) for n, lm in lms.items()},
            task=self.exp.data.task,
            compress=w.compress,
            codec=self.exp.codec,
            seed=self.exp.seed,
            kv={n: (lm.kv_width, lm.kv_rms) for n, lm in lms.items()}
            if w.inject in ("kv", "coprocessor")
            else None,
        )
        self.wire_spec = spec
        if self.is_main and not self.folder.read_only:  # what PretrainedWire.from_pretrained rebuilds it from
            write_spec(self.dir, spec)
        return build_wire_from_spec(spec)

    def fit_standardization(self, wire: LatentWire) -> None:
        """``[wire.lm_encoder] standardize``: set the encoder's per-dimension statistics from training texts
        (the first 256 distinct ones, in order; never an evaluation text). Called on a fresh wire only:
        a checkpoint or an ``init_from`` source carries its own."""
        encoder: Any = wire.encoder
        if not getattr(encoder, "standardize", False):
            return
        train, _ = self.data()
        texts = list(dict.fromkeys(compressed_text(e, self.exp.wire.compress) for e in train))[:256]
        fs = self.features()
        n = encoder.fit_standardization(fs.features(texts[i : i + 32]) for i in range(0, len(texts), 32))
        log.info("fitted_standardization", texts=len(texts), slots=n)

    def fit_anchor(self, wire: LatentWire, stage: str) -> None:
        """``[wire] anchor``: fit each reader's adapter to its ``mean_pool`` group means on the first 256
        distinct training texts (never an evaluation text); the fit's R^2 per reader goes to
        ``<stage>/anchor.json``. Called on a fresh wire only: a checkpoint carries the fitted adapters."""
        if not self.exp.wire.anchor:
            return
        from latentwire_core.anchor import anchor_wire

        train, _ = self.data()
        texts = list(dict.fromkeys(compressed_text(e, self.exp.wire.compress) for e in train))[:256]
        fit = anchor_wire(
            wire, self.features(), self.lms(), texts, max_text_tokens=self.exp.eval.max_text_tokens
        )
        log.info("anchored_readers", stage=stage, **{n: round(f["r2"], 4) for n, f in fit.items()})
        if self.is_main and not self.folder.read_only:
            path = self.folder.metrics_log(stage).parent / "anchor.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(fit, indent=1))

    def init_from(self, wire: LatentWire, *, load: bool) -> dict[str, Any]:
        """``[wire] init_from``: load a trained wire's encoder and readers into ``wire`` (when ``load``:
        a fresh start) and freeze them; returns the readers this run trains (the new ones)."""
        src = self.exp.wire.init_from
        if not src:
            return dict(self.lms())
        from latentwire_hf.pretrained import PretrainedWire

        source = PretrainedWire.from_pretrained(Path(src))
        assert self.wire_spec is not None
        if source.spec.encoder_identity() != self.wire_spec.encoder_identity():
            raise RunFolderError(
                f"init_from {src}: its encoder (interlingua, features, trunk) differs from this run's [wire]/[features]"
            )
        old = set(source.spec.readers)
        new = {n: lm for n, lm in self.lms().items() if n not in old}
        if not new:
            raise RunFolderError(
                f"init_from {src}: every reader of this run was trained there; nothing to add"
            )
        if load:
            own, theirs = wire.state_dict(), source.wire.state_dict()
            keep = {k: v for k, v in theirs.items() if k in own and own[k].shape == v.shape}
            wire.load_state_dict({**own, **keep})
            log.info("initialised_from_wire", source=src, tensors=len(keep), frozen_readers=sorted(old))
        for name, prm in wire.named_parameters():
            parts = name.split(".")
            prm.requires_grad_(not (parts[0] == "encoder" or any(r in parts for r in old)))
        return new

    # --- stages ----------------------------------------------------------------------------------
    def _prepare(self) -> dict[str, Any]:
        train, evaluation = self.data()
        models = {
            n: {"d_model": lm.d_model, "embed_rms": lm.embed_rms, "chat_template": lm.has_chat_template}
            for n, lm in self.lms().items()
        }
        fs = self.features()
        comp, eval_comp = self.exp.wire.compress, self.exp.eval_compress
        fs.warm([compressed_text(e, comp) for e in train], desc="features (train)")
        fs.warm([compressed_text(e, eval_comp) for e in evaluation], desc="features (eval)")
        rep = self._data_report
        info = {
            "n_train": len(train),
            "n_eval": len(evaluation),
            "skipped_rows": rep.skipped,
            "dropped_train_eval_overlap": rep.dropped_overlap,
            "eval_task": self.exp.eval_task,
            "dropped_eval_texts_trained_on": self._transfer_dropped,
            "models": models,
        }
        self.folder.data_json.parent.mkdir(exist_ok=True)
        self.folder.data_json.write_text(json.dumps(info, indent=1))
        return {"n_train": len(train), "n_eval": len(evaluation), "skipped_rows": len(rep.skipped)}

    def _pretrain(self) -> dict[str, Any]:
        """Reconstruction / continuation on the training split's texts (never an evaluation text)."""
        pc = self.exp.pretrain
        if pc.steps == 0:
            return {"skipped": "pretrain.steps = 0"}
        train, _ = self.data()
        texts = [compressed_text(e, self.exp.wire.compress) for e in train]
        items = content_items(texts, attrs.evolve(pc, seed=self.exp.seed))
        fs = self.features()  # windows are encoded (and cached) as the trainer draws them: the draw is
        # a seeded permutation of all items, so warming a prefix of the list would encode the wrong ones
        wire = self.build_wire()
        fresh = latest_checkpoint(self.folder.checkpoints("pretrain")) is None
        readers = self.init_from(wire, load=fresh)
        if fresh and not self.exp.wire.init_from:
            self.fit_standardization(wire)
            self.fit_anchor(wire, "pretrain")
        objective = ContentObjective(
            lms=readers,
            features=fs,
            items=items,
            cfg=attrs.evolve(pc, seed=self.exp.seed),
            texts=texts,
        )
        trainer = Trainer(
            wire=wire,
            lms=readers,
            cfg=attrs.evolve(pc, seed=self.exp.seed),
            ckpt_dir=self.folder.checkpoints("pretrain"),
            metrics_path=self.folder.metrics_log("pretrain"),
            objective=objective,
        )
        trainer.train()
        seen: set[str] = set()
        for step, i in trainer.drawn():  # the windows actually trained on (curriculum phases included)
            objective.set_step(step)
            seen.add(objective.items[objective.item_index(i)].encoded)
        objective.set_step(trainer.step)
        return {
            "steps": trainer.step,
            "train_seconds": round(trainer.train_seconds, 1),
            "items": len(items),
            "rec_items": sum(it.mode == "rec" for it in items),
            "source_texts": len(dict.fromkeys(texts)),
            "distinct_windows_seen": len(seen),
        }

    def _train(self) -> dict[str, Any]:
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
            lms=readers,
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

    def soft_prompt_control(self) -> SoftPromptControl:
        """The control's module: M = the wire's (fixed) M, or its mean M over the training split."""
        w, enc = self.exp.wire, self.exp.wire.encoder
        m = enc.n_tokens
        if enc.ratio > 0:
            train, _ = self.data()
            _, mask = self.features().features([compressed_text(e, w.compress) for e in train[:512]])
            m = max(1, round(float(slot_counts(mask, n_tokens=enc.n_tokens, ratio=enc.ratio).float().mean())))
        return SoftPromptControl({n: (lm.d_model, lm.embed_rms) for n, lm in self.lms().items()}, m)

    def _control(self) -> dict[str, Any]:
        """Train the equal-training soft-prompt control: same steps, data, losses as the wire."""
        if "text_soft_prompt" not in self.exp.eval.methods:
            return {"skipped": "text_soft_prompt is not an evaluation method"}
        train, _ = self.data()
        control = self.soft_prompt_control()
        cfg = attrs.evolve(self.exp.train, seed=self.exp.seed)
        w = self.exp.wire
        task_obj = TaskObjective(
            lms=self.lms(),
            features=self.features(),
            task=self.task,
            examples=train,
            cfg=cfg,
            compress=w.compress,
        )
        objective = SoftPromptObjective(task_obj, max_text_tokens=self.exp.eval.max_text_tokens)
        trainer = Trainer(
            wire=control,
            lms=self.lms(),
            cfg=cfg,
            ckpt_dir=self.folder.checkpoints("control"),
            metrics_path=self.folder.metrics_log("control"),
            objective=objective,
        )
        trainer.train()
        return {"steps": trainer.step, "soft_prompt_tokens": control.n_tokens}

    def eval_context(self, wire: LatentWire | None, control: SoftPromptControl | None = None) -> EvalContext:
        """What the evaluation methods may use (latentwire_eval.methods): the training split to fit on,
        each example's budget M_i, the wire, its codec and fingerprint, the shuffled control's partners."""
        train, evaluation = self.data()
        ev = self.exp.eval
        w = attrs.evolve(self.exp.wire, compress=self.exp.eval_compress)  # as the evaluated task sends it

        return EvalContext(
            task=self.eval_task,
            train=train,
            budgets=example_budgets(evaluation, wire, self.features(), w) if wire is not None else {},
            compress=w.compress,
            max_text_tokens=ev.max_text_tokens,
            seed=self.exp.seed,
            device=self.device,
            codec=QuantWireCodec(self.exp.codec),
            features=self.features(),
            wire=wire,
            fingerprint=self.fingerprint(wire) if wire is not None else b"",
            # latent_shuffled: each example receives another example's latent (a fixed derangement)
            partner=derangement(evaluation, self.exp.seed + 1),
            control=control,
            resolve_model=resolve_model,
            cache_path=cache_root() / "generations.sqlite" if ev.cache_generations else None,
            options={
                "kshot": ev.kshot,
                "pca_rank": ev.pca_rank,
                "pca_fit_examples": ev.pca_fit_examples,
                "llmlingua_scorer": ev.llmlingua_scorer,
                "tiktoken_cache": str(cache_root() / "tiktoken"),
                "features_source": self.exp.features.source,
                "d_z": w.encoder.d_z,
            },
        )

    def _evaluate(self) -> dict[str, Any]:
        _, evaluation = self.data()
        ev, w = self.exp.eval, self.exp.wire
        uses = set().union(*(METHODS.get(m).uses for m in ev.methods))
        wire = self.build_wire()
        if "wire" in uses:
            ckpt = latest_checkpoint(self.folder.checkpoints("train"))
            if ckpt is None:
                raise FileNotFoundError(
                    f"no checkpoint in {self.folder.checkpoints('train')}; run the train stage first"
                )
            load_weights(ckpt, wire)
        wire.eval()
        control: SoftPromptControl | None = None
        if "control" in uses:
            control = self.soft_prompt_control()
            cck = latest_checkpoint(self.folder.checkpoints("control"))
            if cck is None:
                raise FileNotFoundError(
                    f"no checkpoint in {self.folder.checkpoints('control')}; run the control stage"
                )
            load_weights(cck, control)
        ctx = self.eval_context(wire, control)

        def gen_cache(name: str) -> GenerationCache | None:
            if not ev.cache_generations or name.startswith("tiny-"):  # tiny readers are rebuilt per process
                return None
            return GenerationCache(
                cache_root() / "generations.sqlite", f"{name}:{self.lms()[name].fingerprint}"
            )

        preds, metrics = evaluate(
            ctx,
            evaluation,
            self.lms(),
            ev.methods,
            batch_size=ev.batch_size,
            gold_scores=ev.gold_scores,
            n_resamples=ev.bootstrap_resamples,
            partial_dir=self.folder.eval_partial,
            generation_cache=gen_cache,
        )
        preds.to_parquet(self.folder.predictions, index=False)
        metrics["wire"] = wire_summary(self.exp, ctx.budgets, preds)
        metrics["eval_split"] = self.exp.data.eval_split
        if self.exp.eval_task != self.exp.data.task:
            metrics["transfer"] = {"trained_on": self.exp.data.task, "evaluated_on": self.exp.eval_task}
        if (
            "latent" in ev.methods and w.inject == "embeddings"
        ):  # nearest-vocabulary diagnostics: embeddings only
            assert ctx.codec is not None
            metrics["embedding_diagnostics"] = embedding_report(
                evaluation,
                wire,
                ctx.codec,
                ctx.budgets,
                features=self.features(),
                lms=self.lms(),
                compress=self.exp.eval_compress,
                device=self.device,
                seed=self.exp.seed,
                fingerprint=ctx.fingerprint,
            )
        self.folder.eval_metrics.write_text(json.dumps(metrics, indent=1))
        return {"n_predictions": len(preds)}

    def fingerprint(self, wire: LatentWire) -> bytes:
        """The encoder fingerprint every message of this run carries (latentwire_core.message)."""
        assert self.wire_spec is not None, "build_wire() first"
        return encoder_fingerprint(wire.encoder, self.wire_spec.encoder_identity())

    def _report(self) -> dict[str, Any]:
        f = self.folder
        write_report(
            f.eval_metrics, f.report_dir, manifest_path=f.manifest_path, curves_path=f.metrics_log("train")
        )
        return {}
