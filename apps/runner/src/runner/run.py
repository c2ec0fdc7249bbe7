"""The recipe: prepare -> pretrain -> train -> control -> evaluate -> report, into one run folder (DESIGN.md section 5).

``pretrain`` (content pretraining) runs when ``[pretrain].steps > 0``; ``control`` trains the
equal-training soft-prompt control when ``text_soft_prompt`` is among the evaluation methods.

Each stage records its status in ``manifest.json``; a finished stage is skipped
when the same command runs again, training resumes from its last checkpoint and
evaluation from its last finished (model, method) pair. ``--fresh`` starts over.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from latentwire_core import LatentWire, QuantWireCodec
from latentwire_core.interlingua import build_interlingua, slot_counts
from latentwire_core.logs import configure_logging, get_logger
from latentwire_core.message import (
    FORMAT_VERSION,
    HEADER_BYTES,
    encoder_fingerprint,
    message_bytes,
    pack,
    unpack,
)
from latentwire_core.registry import UnknownNameError
from latentwire_core.soft_prompt import SoftPromptControl
from latentwire_core.tasks import Example, compressed_text, get_task
from latentwire_eval.baselines import (
    LLMLinguaBaseline,
    PCABaseline,
    fit_linear_probe,
    kshot_instruction,
    mean_pool_slot,
)
from latentwire_eval.diagnostics import embedding_diagnostics
from latentwire_eval.evaluate import Prompt, evaluate_method, token_budget_slot
from latentwire_eval.gencache import GenerationCache
from latentwire_eval.metrics import metric_fns
from latentwire_eval.report import compute_metrics, derive_joint_oracle, write_report
from latentwire_hf.checkpoint import latest_checkpoint, load_weights
from latentwire_hf.data import DataError, load_train_eval
from latentwire_hf.features import build_feature_source
from latentwire_hf.frozen_lm import load_frozen_lm
from latentwire_hf.models import KNOWN_MODELS, cache_root, load_causal_lm, resolve_model_name
from latentwire_hf.objectives import ContentObjective, SoftPromptObjective, TaskObjective, content_items
from latentwire_hf.pretrained import WireSpec, spec_from_core, write_spec
from latentwire_hf.training import Trainer
from runner.config import STAGES, Experiment, to_toml

__all__ = ["STAGES", "Run", "RunFolderError", "RunFolderMismatch", "RunLock"]

log = get_logger("runner")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], capture_output=True, text=True, cwd=Path(__file__).parent, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _git_revision() -> str | None:
    return _git("rev-parse", "HEAD") or None


def _git_dirty() -> bool | None:
    """Whether tracked files differ from ``HEAD`` (the revision alone does not say what ran)."""
    out = _git("status", "--porcelain", "--untracked-files=no")
    return None if out is None else bool(out)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0]}
    for pkg in ("torch", "transformers", "accelerate", "latentwire-core", "latentwire-hf", "latentwire-eval"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    return out


class RunFolderMismatch(RuntimeError):
    """The run folder holds another config's run; nothing was changed."""


class RunFolderError(RuntimeError):
    """A run folder that is locked by another runner, or whose files are unreadable; the message names it."""


class RunLock:
    """An exclusive lock on a run folder: ``<runs>/.<name>.lock`` holding the owner's PID.

    ``flock`` is released by the kernel when its process dies, so a lock left by a killed
    runner is taken over safely (no PID guessing); a live holder makes a second runner stop
    with its PID in the message, before anything is written.
    """

    def __init__(self, run_dir: Path) -> None:
        import fcntl

        self.path = run_dir.parent / f".{run_dir.name}.lock"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("a+")
        try:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._fh.seek(0)
            holder = self._fh.read().strip() or "unknown"
            self._fh.close()
            raise RunFolderError(
                f"{run_dir} is in use by another runner (PID {holder}); wait for it or stop it"
            ) from None
        self._fh.seek(0)
        self._fh.truncate()
        self._fh.write(str(os.getpid()))
        self._fh.flush()

    def release(self) -> None:
        import fcntl

        if not self._fh.closed:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()


# What each stage leaves behind; their digests go in the manifest and are checked when a stage is skipped.
STAGE_OUTPUTS: dict[str, tuple[str, ...]] = {
    "prepare": ("prepare/data.json",),
    "evaluate": ("eval/predictions.parquet", "eval/metrics.json"),
    "report": ("report/summary.md",),
}


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunFolderError(f"{path}: corrupted ({e}); run with --fresh to start over") from None
    if not isinstance(data, dict) or not isinstance(data.get("stages", {}), dict):
        raise RunFolderError(f"{path}: not a run manifest (expected an object with 'stages')")
    return data


class Run:
    """One experiment's run folder and its stages."""

    def __init__(self, exp: Experiment, *, fresh: bool = False, root: Path | None = None) -> None:
        self.exp = exp
        self.dir = (root or Path(exp.runs_dir)) / exp.name
        self.task = get_task(exp.data.task)
        for i, name in enumerate(exp.models.names):
            try:
                resolve_model_name(name)
            except UnknownNameError as e:
                raise UnknownNameError(f"[models].names[{i}]: {e}") from None
        if exp.models.device == "cuda" and not torch.cuda.is_available():
            raise RunFolderError(
                "[models].device = 'cuda' but no CUDA device is available here; use 'auto' or 'cpu'"
            )
        resolved = to_toml(exp)
        # Under `accelerate launch` / torchrun every rank runs this recipe: all ranks train (DDP),
        # rank 0 alone prepares, evaluates, reports and writes the run folder's files.
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.is_main = int(os.environ.get("RANK", "0")) == 0
        self._state: Any = None
        if self.world > 1:
            from accelerate import PartialState

            self._state = PartialState(cpu=not torch.cuda.is_available())
        cfg_path = self.dir / "experiment.toml"
        self.lock: RunLock | None = RunLock(self.dir) if self.is_main else None  # one writer per run folder
        if self.is_main:
            if fresh and self.dir.exists():
                shutil.rmtree(self.dir)
            if cfg_path.is_file() and cfg_path.read_text() != resolved:
                raise RunFolderMismatch(
                    f"{self.dir} holds a run of a different config; nothing was changed. "
                    "Use --fresh to start it over or give the experiment another name."
                )
            self.dir.mkdir(parents=True, exist_ok=True)
            if not cfg_path.is_file():
                cfg_path.write_text(resolved)
        self._barrier()
        configure_logging(self.dir / "log.jsonl" if self.is_main else None)
        self.manifest_path = self.dir / "manifest.json"
        self.manifest: dict[str, Any] = (
            _read_manifest(self.manifest_path)
            if self.manifest_path.is_file()
            else {
                "name": exp.name,
                "seed": exp.seed,
                "created": _now(),
                "stages": {},
            }
        )
        self.manifest.update(
            versions=_versions(),
            git_revision=_git_revision(),
            git_dirty=_git_dirty(),
            machine={
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
                "device": self.device,
                "world_size": self.world,
                "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            },
        )
        self._save_manifest()
        self._lms: dict[str, Any] = {}
        self._features: Any = None
        self.wire_spec: WireSpec | None = None
        self._data: tuple[list[Example], list[Example]] | None = None

    @property
    def device(self) -> str:
        d = self.exp.models.device
        return ("cuda" if torch.cuda.is_available() else "cpu") if d == "auto" else d

    def _barrier(self) -> None:
        if self._state is not None:
            self._state.wait_for_everyone()

    def _save_manifest(self) -> None:
        if not self.is_main:
            return
        tmp = self.manifest_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.manifest, indent=1))
        os.replace(tmp, self.manifest_path)

    def stage_done(self, stage: str) -> bool:
        return bool(self.manifest["stages"].get(stage, {}).get("status") == "done")

    def run(self, stages: tuple[str, ...] = STAGES) -> None:
        for stage in stages:
            self._barrier()
            if self.manifest_path.is_file():  # another rank may have finished a stage meanwhile
                self.manifest["stages"] = _read_manifest(self.manifest_path).get("stages", {})
            if self.stage_done(stage):
                damaged = self._damaged_outputs(stage)
                if not damaged:
                    log.info("stage_skipped_already_done", stage=stage)
                    continue
                # a finished artefact changed on disk: say so, and make it again
                log.warning("stage_output_damaged_rerunning", stage=stage, files=damaged)
                if stage == "evaluate":
                    shutil.rmtree(self.dir / "eval" / "partial", ignore_errors=True)
            if stage not in ("train", "pretrain", "control") and not self.is_main:
                continue  # rank 0 does it; the barrier at the next stage waits for it
            fn: Callable[[], dict[str, Any] | None] = getattr(self, f"_{stage}")
            entry = self.manifest["stages"].setdefault(stage, {})
            entry.update(status="running", start=_now())
            self._save_manifest()
            log.info("stage_start", stage=stage, run=str(self.dir))
            t0 = time.perf_counter()
            try:
                info = fn() or {}
            except BaseException as e:
                entry.update(status="failed", error=f"{type(e).__name__}: {e}", end=_now())
                self._save_manifest()
                raise
            entry.update(status="done", end=_now(), seconds=round(time.perf_counter() - t0, 1), **info)
            entry["outputs"] = {
                rel: _sha256(self.dir / rel)
                for rel in STAGE_OUTPUTS.get(stage, ())
                if (self.dir / rel).is_file()
            }
            self._save_manifest()
            log.info("stage_done", stage=stage, seconds=entry["seconds"])
        self._barrier()
        self.manifest["finished"] = _now()
        self._save_manifest()

    def _damaged_outputs(self, stage: str) -> list[str]:
        """A finished stage's artefacts that are missing or no longer match their recorded SHA-256."""
        recorded = self.manifest["stages"].get(stage, {}).get("outputs", {})
        bad = []
        for rel in STAGE_OUTPUTS.get(stage, ()):
            path = self.dir / rel
            if not path.is_file():
                bad.append(f"{rel} (missing)")
            elif rel in recorded and _sha256(path) != recorded[rel]:
                bad.append(f"{rel} (changed or corrupted)")
        return bad

    # --- shared, lazily built pieces -------------------------------------------------------------
    def data(self) -> tuple[list[Example], list[Example]]:
        if self._data is None:
            d = self.exp.data
            data_dir = Path(d.data_dir) if d.data_dir else None
            train, evaluation, report = load_train_eval(
                d.task,
                data_dir=data_dir,
                train_limit=d.train_limit,
                eval_limit=d.eval_limit,
                on_error="skip" if d.on_error == "skip" else "raise",
                eval_sampling="prefix" if d.eval_sampling == "prefix" else "seeded",
                seed=self.exp.seed,
            )
            for split, got, floor, limit in (
                ("eval", len(evaluation), d.min_eval, d.eval_limit),
                ("train", len(train), d.min_train, d.train_limit),
            ):
                if got < floor:
                    raise DataError(
                        f"{d.task}: the {split} split has {got} usable examples, below [data].min_{split} = "
                        f"{floor} (asked for up to {limit}); nothing was run"
                    )
                if got < limit:
                    log.warning("fewer_examples_than_asked", task=d.task, split=split, got=got, asked=limit)
            self._data = (train, evaluation)
            self._data_report = report
        return self._data

    def lms(self) -> dict[str, Any]:
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
        torch.manual_seed(self.exp.seed)
        w = self.exp.wire
        cfg = w.to_core(self.features().feature_dim, content_tokens=self.exp.pretrain.steps > 0)
        encoder = None
        if w.encoder == "lm_pool":  # a fresh copy of the LM: the feature source dropped its upper layers
            trunk, _ = load_causal_lm(self.exp.features.source, seed=self.exp.seed)
            encoder = build_interlingua(
                cfg.interlingua,
                lm=trunk,
                start_layer=self.exp.features.layer,
                n_layers=w.encoder_layers,
                causal=w.encoder_causal,
                train=w.encoder_train,
                lora_rank=w.lora_rank,
                standardize=w.encoder_standardize,
            )
            del trunk
        models = {n: (lm.d_model, lm.embed_rms) for n, lm in self.lms().items()}
        f = self.exp.features
        lm_encoder = (
            {
                "start_layer": f.layer,
                "n_layers": w.encoder_layers,
                "causal": w.encoder_causal,
                "train": w.encoder_train,
                "lora_rank": w.lora_rank,
                # only when on, so the identity (and fingerprint) of earlier wires stays as it was
                **({"standardize": True} if w.encoder_standardize else {}),
            }
            if w.encoder == "lm_pool"
            else None
        )
        spec = spec_from_core(
            cfg,
            features={"source": f.source, "layer": f.layer, "max_length": f.max_length},
            lm_encoder=lm_encoder,
            readers=models,
            task=self.exp.data.task,
            compress=w.compress,
            codec=self.exp.codec,
            seed=self.exp.seed,
        )
        self.wire_spec = spec
        if self.is_main:  # what PretrainedWire.from_pretrained(run folder) rebuilds the wire from
            write_spec(self.dir, spec)
        return LatentWire(cfg, models, encoder=encoder)

    def fit_standardization(self, wire: LatentWire) -> None:
        """``[wire] encoder_standardize``: set the encoder's per-dimension statistics from training texts
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
        comp = self.exp.wire.compress
        fs.warm([compressed_text(e, comp) for e in train], desc="features (train)")
        fs.warm([compressed_text(e, comp) for e in evaluation], desc="features (eval)")
        rep = self._data_report
        info = {
            "n_train": len(train),
            "n_eval": len(evaluation),
            "skipped_rows": rep.skipped,
            "dropped_train_eval_overlap": rep.dropped_overlap,
            "models": models,
        }
        (self.dir / "prepare").mkdir(exist_ok=True)
        (self.dir / "prepare" / "data.json").write_text(json.dumps(info, indent=1))
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
        fresh = latest_checkpoint(self.dir / "pretrain" / "checkpoints") is None
        readers = self.init_from(wire, load=fresh)
        if fresh and not self.exp.wire.init_from:
            self.fit_standardization(wire)
        objective = ContentObjective(
            lms=readers,
            features=fs,
            items=items,
            cfg=pc,
            n_tokens=self.exp.wire.n_tokens,
            ratio=self.exp.wire.ratio,
        )
        trainer = Trainer(
            wire=wire,
            lms=readers,
            cfg=attrs.evolve(pc, seed=self.exp.seed),
            run_dir=self.dir,
            objective=objective,
            stage="pretrain",
        )
        trainer.train()
        return {
            "steps": trainer.step,
            "items": len(items),
            "rec_items": sum(it.mode == "rec" for it in items),
        }

    def _train(self) -> dict[str, Any]:
        train, _ = self.data()
        wire = self.build_wire()
        pre = latest_checkpoint(self.dir / "pretrain" / "checkpoints") if self.exp.pretrain.steps else None
        fresh = latest_checkpoint(self.dir / "checkpoints") is None
        readers = self.init_from(wire, load=fresh and pre is None)
        if fresh and pre is None and not self.exp.wire.init_from:
            self.fit_standardization(wire)
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
            run_dir=self.dir,
            compress=self.exp.wire.compress,
        )
        trainer.train()
        return {
            "steps": trainer.step,
            "initialised_from": str(pre) if pre is not None else (self.exp.wire.init_from or None),
            "trained_readers": sorted(readers),
        }

    def _budgets(self, evaluation: list[Example], wire: LatentWire) -> dict[str, int]:
        """Soft tokens per example (``M_i``): the budget every method gets for that example."""
        w = self.exp.wire
        if w.ratio <= 0:
            return {e.id: w.n_tokens for e in evaluation}
        out: dict[str, int] = {}
        fs = self.features()
        for i in range(0, len(evaluation), 64):
            chunk = evaluation[i : i + 64]
            _, mask = fs.features([compressed_text(e, w.compress) for e in chunk])
            out.update(zip([e.id for e in chunk], wire.counts(mask).tolist(), strict=True))
        return out

    def soft_prompt_control(self) -> SoftPromptControl:
        """The control's module: M = the wire's (fixed) M, or its mean M over the training split."""
        w = self.exp.wire
        m = w.n_tokens
        if w.ratio > 0:
            train, _ = self.data()
            _, mask = self.features().features([compressed_text(e, w.compress) for e in train[:512]])
            m = max(1, round(float(slot_counts(mask, n_tokens=w.n_tokens, ratio=w.ratio).float().mean())))
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
            n_tokens=w.n_tokens,
            ratio=w.ratio,
        )
        objective = SoftPromptObjective(task_obj, max_text_tokens=self.exp.eval.max_text_tokens)
        trainer = Trainer(
            wire=control, lms=self.lms(), cfg=cfg, run_dir=self.dir, objective=objective, stage="control"
        )
        trainer.train()
        return {"steps": trainer.step, "soft_prompt_tokens": control.n_tokens}

    def _evaluate(self) -> dict[str, Any]:
        train, evaluation = self.data()
        ev, w = self.exp.eval, self.exp.wire
        methods = [x for x in ev.methods if x not in ("joint", "oracle", "linear_probe")]
        wire = self.build_wire()
        ckpt = latest_checkpoint(self.dir / "checkpoints")
        if {"latent", "latent_shuffled"} & set(methods):
            if ckpt is None:
                raise FileNotFoundError(
                    f"no checkpoint in {self.dir / 'checkpoints'}; run the train stage first"
                )
            load_weights(ckpt, wire)
        wire.eval()
        control: SoftPromptControl | None = None
        if "text_soft_prompt" in methods:
            control = self.soft_prompt_control()
            cck = latest_checkpoint(self.dir / "control" / "checkpoints")
            if cck is None:
                raise FileNotFoundError(
                    f"no checkpoint in {self.dir / 'control' / 'checkpoints'}; run the control stage"
                )
            load_weights(cck, control)
        codec = QuantWireCodec(self.exp.codec)
        budgets = self._budgets(evaluation, wire)
        # latent_shuffled: each example receives another example's latent (a fixed derangement)
        order = list(range(len(evaluation)))
        random.Random(self.exp.seed + 1).shuffle(order)
        partner = {
            evaluation[order[i]].id: evaluation[order[(i + 1) % len(order)]] for i in range(len(order))
        }
        partial = self.dir / "eval" / "partial"
        partial.mkdir(parents=True, exist_ok=True)
        frames: list[pd.DataFrame] = []
        bar = tqdm(total=len(self.lms()) * len(methods) * len(evaluation), desc="evaluate", leave=False)

        def gen_cache(name: str, lm: Any) -> GenerationCache | None:
            if not ev.cache_generations or name.startswith("tiny-"):  # tiny readers are rebuilt per process
                return None
            return GenerationCache(cache_root() / "generations.sqlite", f"{name}:{lm.fingerprint}")

        lingua = None
        for name, lm in self.lms().items():
            plain: Prompt | None = None  # built once per model: its prefix cache is a forward pass
            for method in methods:
                out = partial / f"{name}__{method}.parquet"
                if out.is_file():  # finished before an interruption
                    frames.append(pd.read_parquet(out))
                    bar.update(len(evaluation))
                    continue
                if method == "text_kshot":
                    instr = kshot_instruction(
                        self.task, train, k=ev.kshot, seed=self.exp.seed, compress=w.compress
                    )
                    prompt = Prompt(lm, self.task, instruction=instr, compress=w.compress)
                else:
                    plain = plain or Prompt(lm, self.task, compress=w.compress)
                    prompt = plain
                if method == "llmlingua" and lingua is None:
                    folder = cache_root() / "models" / ev.llmlingua_scorer
                    if ev.llmlingua_scorer in KNOWN_MODELS and not folder.is_dir():
                        load_causal_lm(ev.llmlingua_scorer)  # converts it into the cache once
                    scorer = folder if folder.is_dir() else Path(ev.llmlingua_scorer)
                    lingua = LLMLinguaBaseline(
                        scorer, tiktoken_cache=cache_root() / "tiktoken", device=self.device
                    )
                slot_fn, encoded = self._slot_fn(
                    method, name, lm, prompt, wire, codec, train, lingua, budgets, partner, control
                )
                res = evaluate_method(
                    prompt,
                    evaluation,
                    slot_fn,
                    method=method,
                    batch_size=ev.batch_size,
                    gold_scores=ev.gold_scores,
                    own_confidence="joint" in ev.methods and method == "latent",
                    progress=bar.update,
                    encoded=encoded,
                    cache=gen_cache(name, lm),
                )
                df = pd.DataFrame(res.rows)
                df.to_parquet(out.with_suffix(".tmp"), index=False)
                os.replace(out.with_suffix(".tmp"), out)
                frames.append(df)
                log.info(
                    "evaluated",
                    model=name,
                    method=method,
                    n=len(df),
                    **{k: round(float(df[k].mean()), 4) for k in ("accuracy", "em", "f1") if k in df},
                )
        bar.close()
        if "linear_probe" in ev.methods:
            frames.append(self._linear_probe(train, evaluation))
        preds = pd.concat(frames, ignore_index=True)
        if {"joint", "oracle"} & set(ev.methods):
            derived = derive_joint_oracle(preds, self.task)
            preds = pd.concat([preds, derived[derived["model"].isin(set(ev.methods))]], ignore_index=True)
        m_i = preds["example_id"].map(budgets)
        preds["n_tokens"] = m_i
        for prec in ("fp16", "int8", "int4"):  # the latent's wire at every precision, scales included
            c = QuantWireCodec(attrs.evolve(self.exp.codec, precision=prec))
            sizes = {m: message_bytes(c, n_tokens=int(m), d_z=w.d_z) for m in set(budgets.values())}
            preds[f"latent_wire_bytes_{prec}"] = m_i.map(sizes)
        preds.to_parquet(self.dir / "eval" / "predictions.parquet", index=False)
        metrics = compute_metrics(
            preds,
            task=self.task,
            eval_labels=[e.label for e in evaluation],
            n_resamples=ev.bootstrap_resamples,
            seed=self.exp.seed,
        )
        mean_m = float(np.mean(list(budgets.values())))
        metrics["wire"] = {
            "n_tokens": w.n_tokens if w.ratio <= 0 else mean_m,
            "ratio": w.ratio,
            "compress": w.compress,
            "encoder": w.encoder,
            "d_z": w.d_z,
            "precision": self.exp.codec.precision,
            "bytes": {p: float(preds[f"latent_wire_bytes_{p}"].mean()) for p in ("fp16", "int8", "int4")},
            "message_format": FORMAT_VERSION,
            "header_bytes": HEADER_BYTES,  # of every message's bytes above: header + CRC32
        }
        if "latent" in methods:
            metrics["embedding_diagnostics"] = self._embedding_diagnostics(evaluation, wire, codec, budgets)
        if self.task.scoring == "squad_v2":
            metrics["no_answer_phrase"] = (
                f"predictions equal to {self.task.no_answer!r} (normalised) are scored as the empty answer"
            )
            # the reference every v2 number must beat: abstain on every question
            fns = metric_fns(self.task)
            metrics["always_abstain"] = {
                name: float(np.mean([fn("", self.task.golds(e)) for e in evaluation]))
                for name, fn in fns.items()
            } | {"n": len(evaluation), "no_answer_share": float(np.mean([not e.answers for e in evaluation]))}
        (self.dir / "eval" / "metrics.json").write_text(json.dumps(metrics, indent=1))
        return {"n_predictions": len(preds)}

    def fingerprint(self, wire: LatentWire) -> bytes:
        """The encoder fingerprint every message of this run carries (latentwire_core.message)."""
        assert self.wire_spec is not None, "build_wire() first"
        return encoder_fingerprint(wire.encoder, self.wire_spec.encoder_identity())

    @torch.no_grad()
    def _embedding_diagnostics(
        self, evaluation: list[Example], wire: LatentWire, codec: QuantWireCodec, budgets: dict[str, int]
    ) -> dict[str, Any]:
        """Per reader: soft-token RMS and nearest-vocabulary cosine, before and after calibration,
        on the first 64 evaluation examples as the reader receives them (after the codec)."""
        w = self.exp.wire
        chunk = evaluation[:64]
        feats, mask = self.features().features([compressed_text(e, w.compress) for e in chunk])
        counts = [budgets[e.id] for e in chunk]
        cnt = torch.tensor(counts, dtype=torch.long, device=self.device)
        z = wire.encode(feats.to(self.device), mask.to(self.device), cnt)
        rx = codec.decode_rows(codec.encode_rows(z, cnt), counts, d_z=w.d_z)
        out: dict[str, Any] = {"n_examples": len(chunk), "calibration": w.calibration}
        for name, lm in self.lms().items():
            raw = [wire.adapters(r[None].to(self.device), name)[0] for r in rx]
            soft = [wire.to_model(r[None].to(self.device), name)[0] for r in rx]
            out[name] = {
                "received": embedding_diagnostics(
                    soft, lm.embed, lm.vocab_size, lm.decode, seed=self.exp.seed
                ),
                "before_calibration": embedding_diagnostics(
                    raw, lm.embed, lm.vocab_size, lm.decode, seed=self.exp.seed
                ),
            }
        return out

    def _slot_fn(
        self,
        method: str,
        name: str,
        lm: Any,
        prompt: Prompt,
        wire: LatentWire,
        codec: QuantWireCodec,
        train: list[Example],
        lingua: Any,
        budgets: dict[str, int],
        partner: dict[str, Example],
        control: SoftPromptControl | None = None,
    ) -> tuple[Callable[[Any], tuple[list[Any], list[int]]], Callable[[Example], str]]:
        """The method's slot filler and what it read of each example's compressed text."""
        ev, w = self.exp.eval, self.exp.wire
        comp = w.compress
        fs = self.features()
        fingerprint = self.fingerprint(wire)

        def text_ids(e: Example) -> list[int]:
            return prompt.text_ids(e)[: ev.max_text_tokens]

        def read(ids: list[int]) -> str:
            return str(lm.decode(ids))

        def no_context(e: Example) -> list[int]:
            if comp == "context" or not e.question:
                return []
            return list(lm.tokenize([f"Question: {e.question}"])[0])

        def to_reader(z_rows: list[torch.Tensor]) -> list[torch.Tensor]:
            if len({z.shape[0] for z in z_rows}) == 1:  # one M for the batch: one batched call
                return list(wire.to_model(torch.stack(z_rows).to(self.device), name))  # (B, M, d_model)
            return [wire.to_model(z[None].to(self.device), name)[0] for z in z_rows]  # (M_i, d_model)

        @torch.no_grad()
        def latent_of(texts: list[str], counts: list[int]) -> tuple[list[Any], list[int]]:
            feats, mask = fs.features(texts)
            cnt = torch.tensor(counts, dtype=torch.long)
            z = wire.encode(feats.to(self.device), mask.to(self.device), cnt.to(self.device))  # (B, M, d_z)
            # what crosses the wire: one message (format v1: header, codec payload, CRC32) per example
            msgs = [pack(z[i, : counts[i]], codec, fingerprint) for i in range(len(counts))]
            rx = [unpack(m, fingerprint=fingerprint)[0] for m in msgs]
            return list(to_reader(rx)), [len(m) for m in msgs]

        def latent(exs: Any) -> tuple[list[Any], list[int]]:
            return latent_of([compressed_text(e, comp) for e in exs], [budgets[e.id] for e in exs])

        def shuffled(exs: Any) -> tuple[list[Any], list[int]]:  # another example's text, this one's M
            return latent_of(
                [compressed_text(partner[e.id], comp) for e in exs], [budgets[e.id] for e in exs]
            )

        def mean_pool(exs: Any) -> tuple[list[Any], list[int]]:
            rows = [mean_pool_slot(lm, text_ids(e), budgets[e.id])[None] for e in exs]  # (1, M_i, d_model)
            payloads = [codec.encode(r)[0] for r in rows]
            rx = codec.decode_rows(payloads, [budgets[e.id] for e in exs], d_z=lm.d_model)
            return [r.to(self.device) for r in rx], [HEADER_BYTES + len(p) for p in payloads]  # framed alike

        def token_budget(e: Example) -> list[int]:
            if comp == "context":
                return text_ids(e)[: budgets[e.id]]
            return token_budget_slot(lm, e, budgets[e.id])

        def llmlingua(e: Example) -> list[int]:
            if comp == "context":
                return list(lingua.context_slot(lm, e.context, budgets[e.id]))
            return list(lingua.slot(lm, e, budgets[e.id]))

        def encoder_read(e: Example) -> str:
            return str(fs.read_text(compressed_text(e, comp)))

        @torch.no_grad()
        def soft_prompt(exs: Any) -> tuple[list[Any], list[int]]:  # learned prompt + the full text
            assert control is not None
            p = control.prompts[name].detach().to(self.device)
            rows = [
                SoftPromptControl.slot(p, lm.embed(torch.tensor([text_ids(e) or [prompt.eos]]))[0])
                for e in exs
            ]
            return rows, [0] * len(exs)

        def ids_fn(f: Callable[[Example], list[int]]) -> Callable[[Any], tuple[list[Any], list[int]]]:
            return lambda exs: ([f(e) for e in exs], [0] * len(exs))

        def ids_read(f: Callable[[Example], list[int]]) -> Callable[[Example], str]:
            return lambda e: read(f(e))

        if method == "pca":
            rank = ev.pca_rank or w.d_z
            fit = [text_ids(e) for e in train[: ev.pca_fit_examples]]
            m_fit = w.n_tokens if w.ratio <= 0 else max(1, round(float(np.mean(list(budgets.values())))))
            pca = PCABaseline(
                lm, fit, m=m_fit, rank=rank, seed=self.exp.seed
            )  # fitted on training texts only
            log.info("pca_fitted", model=name, rank=pca.rank, explained_variance=round(pca.explained, 4))

            def pca_slots(exs: Any) -> tuple[list[Any], list[int]]:
                codes = [
                    torch.tensor(pca.codes(text_ids(e), budgets[e.id]), dtype=torch.float32) for e in exs
                ]
                payloads = [codec.encode(c[None])[0] for c in codes]
                rx = codec.decode_rows(payloads, [budgets[e.id] for e in exs], d_z=pca.rank)
                return [pca.reconstruct(c.numpy()).to(self.device) for c in rx], [
                    HEADER_BYTES + len(p) for p in payloads
                ]

            return pca_slots, ids_read(text_ids)
        table: dict[str, tuple[Callable[[Any], tuple[list[Any], list[int]]], Callable[[Example], str]]] = {
            "text": (ids_fn(text_ids), ids_read(text_ids)),
            "text_kshot": (ids_fn(text_ids), ids_read(text_ids)),
            "text_soft_prompt": (soft_prompt, ids_read(text_ids)),
            "no_context": (ids_fn(no_context), lambda e: ""),
            "token_budget": (ids_fn(token_budget), ids_read(token_budget)),
            "llmlingua": (ids_fn(llmlingua), ids_read(llmlingua)),
            "latent": (latent, encoder_read),
            "latent_shuffled": (shuffled, lambda e: encoder_read(partner[e.id])),
            "mean_pool": (mean_pool, ids_read(text_ids)),
        }
        return table[method]

    def _linear_probe(self, train: list[Example], evaluation: list[Example]) -> pd.DataFrame:
        """Logistic regression on masked-mean frozen features, fitted on train (a reference, no LLM)."""
        fs = self.features()

        def pooled(exs: list[Example]) -> Any:
            out = []
            for i in range(0, len(exs), 256):
                f, mk = fs.features([e.source for e in exs[i : i + 256]])
                out.append(((f * mk[..., None]).sum(1) / mk.sum(1, keepdim=True).clamp(min=1)).numpy())
            return np.concatenate(out)

        t0 = time.perf_counter()
        predict = fit_linear_probe(pooled(train), [int(e.label or 0) for e in train], seed=self.exp.seed)
        t1 = time.perf_counter()
        labels, proba = predict(pooled(evaluation))
        latency = (time.perf_counter() - t1) / max(len(evaluation), 1)
        rows = []
        for e, y, p in zip(evaluation, labels, proba, strict=True):
            out = self.task.labels[int(y)].strip()
            gold = self.task.labels[int(e.label or 0)].strip()
            rows.append(
                {
                    "example_id": e.id,
                    "model": f"{self.exp.features.source} probe",
                    "method": "linear_probe",
                    "source": e.source,
                    "output": out,
                    "gold": gold,
                    "accuracy": float(out == gold),
                    "slot_tokens": 0,
                    "wire_bytes": 0,
                    "prompt_utf8_bytes": len(e.source.encode("utf-8")),
                    "latency_s": latency,
                    "label_logprobs": np.log(p + 1e-12).tolist(),
                    "confidence": float(p.max()),
                }
            )
        log.info(
            "linear_probe",
            fit_seconds=round(t1 - t0, 2),
            accuracy=round(float(np.mean([r["accuracy"] for r in rows])), 4),
        )
        return pd.DataFrame(rows)

    def _report(self) -> dict[str, Any]:
        write_report(self.dir)
        return {}
