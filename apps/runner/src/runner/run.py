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
from latentwire_hf.features import build_feature_source
from latentwire_hf.frozen_lm import HFFrozenLM, load_frozen_lm
from latentwire_hf.models import cache_root, resolve_model_name
from latentwire_hf.pretrained import WireSpec, write_spec
from latentwire_hf.pretrained import build_wire as build_wire_from_spec
from runner.building import fit_anchor, fit_standardization, init_from, load_run_data, run_wire_spec
from runner.config import STAGES, Experiment, to_toml
from runner.evaluation import (
    embedding_report,
    example_budgets,
    resolve_model,
    wire_summary,
)
from runner.folder import RunFolder, RunFolderError, RunFolderMismatch, RunLock, read_manifest
from runner.stages import TrainingStages

__all__ = ["STAGES", "Run", "RunFolderError", "RunFolderMismatch", "RunLock"]

log = get_logger("runner")


class Run(TrainingStages):
    """One experiment's run folder and its stages (the training ones in :class:`.stages.TrainingStages`)."""

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
            train, evaluation, self._data_report, self._transfer_dropped = load_run_data(self.exp)
            self._data = (train, evaluation)
        return self._data

    def readers(self) -> dict[str, HFFrozenLM]:
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
        spec = run_wire_spec(self.exp, self.readers(), self.features())
        self.wire_spec = spec
        if self.is_main and not self.folder.read_only:  # what PretrainedWire.from_pretrained rebuilds it from
            write_spec(self.dir, spec)
        return build_wire_from_spec(spec)

    def fit_standardization(self, wire: LatentWire) -> None:
        """``[wire.lm_pool] standardize``, on a fresh wire only (see :func:`.building.fit_standardization`)."""
        fit_standardization(wire, self.exp, self.data()[0], self.features())

    def fit_anchor(self, wire: LatentWire, stage: str) -> None:
        """``[wire] anchor``, on a fresh wire only; the fit's R^2 per reader goes to ``<stage>/anchor.json``."""
        fit = fit_anchor(wire, self.exp, self.data()[0], self.features(), self.readers())
        if fit is None:
            return
        log.info("anchored_readers", stage=stage, **{n: round(f["r2"], 4) for n, f in fit.items()})
        if self.is_main and not self.folder.read_only:
            path = self.folder.metrics_log(stage).parent / "anchor.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(fit, indent=1))

    def init_from(self, wire: LatentWire, *, load: bool) -> dict[str, Any]:
        """``[wire] init_from``: see :func:`.building.init_from`; returns the readers this run trains."""
        assert self.wire_spec is not None
        return init_from(wire, self.exp, self.wire_spec, self.readers(), load=load)

    # --- stages ----------------------------------------------------------------------------------
    def _prepare(self) -> dict[str, Any]:
        train, evaluation = self.data()
        models = {
            n: {"d_model": lm.d_model, "embed_rms": lm.embed_rms, "chat_template": lm.has_chat_template}
            for n, lm in self.readers().items()
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
                "lm_coder": ev.lm_coder,
                "lm_coder_verify": ev.lm_coder_verify,
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
                cache_root() / "generations.sqlite", f"{name}:{self.readers()[name].fingerprint}"
            )

        preds, metrics = evaluate(
            ctx,
            evaluation,
            self.readers(),
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
                readers=self.readers(),
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
