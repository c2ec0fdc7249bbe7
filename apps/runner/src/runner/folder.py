"""The run folder (docs/design.md "The run folder"): its layout, manifest, stage states, lock and rank gating.

This module is the only place that spells a run folder's paths for writing; libraries are given
explicit paths (the trainer its checkpoint folder and metrics log, the report its files). A reader
(a benchmark, a study script) opens a folder with ``RunFolder(path, read_only=True)``: nothing
in it is created, locked or rewritten.

Torch-free, so the sweep planner and the CLI can read a folder's state without loading models.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tomllib
from pathlib import Path
from typing import Any

from latentwire_core.jsonio import JSONDepthError, read_json
from runner.provenance import git_dirty, git_revision, now, rank_info, versions

__all__ = [
    "EVAL_ONLY_TABLES",
    "STAGE_OUTPUTS",
    "TRAINING_STAGES",
    "RunFolder",
    "RunFolderError",
    "RunFolderMismatch",
    "RunLock",
    "training_identity",
]

# What each stage leaves behind; their digests go in the manifest and are checked when a stage is skipped.
STAGE_OUTPUTS: dict[str, tuple[str, ...]] = {
    "prepare": ("prepare/data.json",),
    "train": ("wire.json",),  # what PretrainedWire.from_pretrained rebuilds the wire from
    "evaluate": ("eval/predictions.parquet", "eval/metrics.json"),
    "report": ("report/summary.md",),
}


# The stages that make the trained wire, and the folders they leave it in (adopt_training copies these).
TRAINING_STAGES: dict[str, tuple[str, ...]] = {
    "prepare": ("prepare",),
    "pretrain": ("pretrain",),
    "train": ("checkpoints", "train"),
}
# Config tables that only evaluation reads: runs differing only in them train the same wire.
EVAL_ONLY_TABLES = ("codec", "eval")
# ... and the [data] keys that only choose the evaluation examples (the training examples are the
# first train_limit of the training file either way, e.g. eval_split = "eval" or "validation")
EVAL_ONLY_DATA_KEYS = ("eval_limit", "eval_sampling", "min_eval", "eval_split")


def _with_defaults(cfg: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    out = dict(cfg)
    for k, v in defaults.items():
        if k not in out:
            out[k] = v
        elif isinstance(out[k], dict) and isinstance(v, dict):
            out[k] = _with_defaults(out[k], v)
    return out


def _resolved(resolved_toml: str) -> dict[str, Any]:
    """A run's resolved config in today's layout (``migrate_wire``), with every key it lacks at
    today's default (a run folder written before a key existed ran with what is now its default)."""
    from runner.config import Experiment, migrate_wire, to_toml

    cfg, _ = migrate_wire(tomllib.loads(resolved_toml))
    return _with_defaults(cfg, tomllib.loads(to_toml(Experiment(name="defaults"))))


def training_identity(resolved_toml: str) -> dict[str, Any]:
    """A resolved config without what does not change training: its name, ``[codec]``, ``[eval]``
    and the [data] keys that choose the evaluation examples (``EVAL_ONLY_DATA_KEYS``)."""
    cfg = _resolved(resolved_toml)
    out = {k: v for k, v in cfg.items() if k not in ("name", *EVAL_ONLY_TABLES)}
    if isinstance(out.get("data"), dict):
        out["data"] = {k: v for k, v in out["data"].items() if k not in EVAL_ONLY_DATA_KEYS}
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

    @staticmethod
    def holder(run_dir: Path) -> str | None:
        """The PID holding ``run_dir``'s lock now, or None (a quick look that takes nothing: the runner
        uses it to refuse a second runner before loading torch; the lock itself is taken later)."""
        import fcntl

        path = run_dir.parent / f".{run_dir.name}.lock"
        if not path.is_file():
            return None
        with path.open("r") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return fh.read().strip() or "unknown"
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        return None

    def release(self) -> None:
        import fcntl

        if not self._fh.closed:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_manifest(path: Path) -> dict[str, Any]:
    try:
        data = read_json(path)
    except JSONDepthError as e:
        raise RunFolderError(
            f"{path}: corrupted ({e}); remove this file and run again: the finished checkpoints and "
            "evaluation files are kept and resumed (--fresh would delete the whole run)"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("stages", {}), dict):
        raise RunFolderError(f"{path}: not a run manifest (expected an object with 'stages')")
    return data


def _same_config(path: Path, resolved_toml: str) -> bool:
    """The folder's resolved TOML holds the same values (however it was formatted when written)."""
    try:
        return _resolved(path.read_text(encoding="utf-8")) == _resolved(resolved_toml)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise RunFolderError(f"{path}: unreadable ({e}); run with --fresh to start over") from None


class RunFolder:
    """One run folder: where each file lives, and (unless ``read_only``) its manifest and lock.

    Args:
        path: the folder (``<runs_dir>/<name>``).
        read_only: open it to read (a benchmark, a study): no lock, no directory made, no write.
    """

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.dir = path
        self.read_only = read_only
        self.world, self.is_main = rank_info()
        self.lock: RunLock | None = None
        self.manifest: dict[str, Any] = {}

    # --- layout ------------------------------------------------------------------------------------
    @property
    def experiment_toml(self) -> Path:
        return self.dir / "experiment.toml"

    @property
    def manifest_path(self) -> Path:
        return self.dir / "manifest.json"

    @property
    def log_path(self) -> Path:
        return self.dir / "log.jsonl"

    @property
    def data_json(self) -> Path:
        return self.dir / "prepare" / "data.json"

    def checkpoints(self, stage: str = "train") -> Path:
        """A training stage's checkpoints: ``checkpoints/`` for ``train``, ``<stage>/checkpoints/`` else."""
        return self.dir / "checkpoints" if stage == "train" else self.dir / stage / "checkpoints"

    def metrics_log(self, stage: str = "train") -> Path:
        """A training stage's per-step log, ``<stage>/metrics.jsonl``."""
        return self.dir / stage / "metrics.jsonl"

    @property
    def eval_partial(self) -> Path:
        """Finished (reader, method) tables of an interrupted evaluation."""
        return self.dir / "eval" / "partial"

    @property
    def predictions(self) -> Path:
        return self.dir / "eval" / "predictions.parquet"

    @property
    def eval_metrics(self) -> Path:
        return self.dir / "eval" / "metrics.json"

    @property
    def report_dir(self) -> Path:
        return self.dir / "report"

    @property
    def summary(self) -> Path:
        return self.report_dir / "summary.md"

    # --- writing: the main rank of a runner only ---------------------------------------------------
    def open_for_writing(self, resolved_toml: str, *, fresh: bool, name: str, seed: int) -> None:
        """Lock the folder, check it holds this config (or start it), and load or begin its manifest.

        Raises :class:`RunFolderMismatch` (another config's run; nothing changed) or
        :class:`RunFolderError` (locked by a live runner, or a corrupted manifest).
        """
        if self.read_only:
            raise RunFolderError(f"{self.dir} was opened read-only")
        if self.is_main:
            self.lock = RunLock(self.dir)  # one writer per run folder
            if fresh and self.dir.exists():
                shutil.rmtree(self.dir)
            if self.experiment_toml.is_file() and not _same_config(self.experiment_toml, resolved_toml):
                raise RunFolderMismatch(
                    f"{self.dir} holds a run of a different config; nothing was changed. "
                    "Use --fresh to start it over or give the experiment another name."
                )
            self.dir.mkdir(parents=True, exist_ok=True)
            if not self.experiment_toml.is_file():
                self.experiment_toml.write_text(resolved_toml)

    def load_manifest(self, *, name: str, seed: int, machine: dict[str, Any]) -> None:
        """Read the manifest (or begin one) and stamp it with versions, git state and ``machine``."""
        self.manifest = (
            read_manifest(self.manifest_path)
            if self.manifest_path.is_file()
            else {"name": name, "seed": seed, "created": now(), "stages": {}}
        )
        self.manifest.update(
            versions=versions(), git_revision=git_revision(), git_dirty=git_dirty(), machine=machine
        )
        self.save_manifest()

    def save_manifest(self) -> None:
        if not self.is_main or self.read_only:
            return
        tmp = self.manifest_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.manifest, indent=1))
        os.replace(tmp, self.manifest_path)

    def refresh_stages(self) -> None:
        """Re-read the stage states (another rank may have finished a stage meanwhile)."""
        if self.manifest_path.is_file():
            self.manifest["stages"] = read_manifest(self.manifest_path).get("stages", {})

    def stage_done(self, stage: str) -> bool:
        return bool(self.manifest.get("stages", {}).get(stage, {}).get("status") == "done")

    def begin_stage(self, stage: str) -> dict[str, Any]:
        entry: dict[str, Any] = self.manifest["stages"].setdefault(stage, {})
        entry.update(status="running", start=now())
        self.save_manifest()
        return entry

    def fail_stage(self, stage: str, error: BaseException) -> None:
        self.manifest["stages"][stage].update(
            status="failed", error=f"{type(error).__name__}: {error}", end=now()
        )
        self.save_manifest()

    def finish_stage(self, stage: str, seconds: float, info: dict[str, Any]) -> None:
        """Mark ``stage`` done with its facts and the SHA-256 of what it left behind."""
        entry = self.manifest["stages"][stage]
        entry.update(status="done", end=now(), seconds=round(seconds, 1), **info)
        entry["outputs"] = {
            rel: sha256(self.dir / rel) for rel in STAGE_OUTPUTS.get(stage, ()) if (self.dir / rel).is_file()
        }
        self.save_manifest()

    def adopt_training(self, src: Path, resolved_toml: str) -> list[str]:
        """Take the finished training stages (``TRAINING_STAGES``) of the run in ``src`` instead of
        training again; returns the stages adopted (those already done here are kept).

        ``src`` must hold a run whose config equals this one but for its name, ``[codec]`` and
        ``[eval]`` and the [data] keys that choose evaluation examples (a study's evaluation-only
        variants share one training; a wire chosen on the validation split is evaluated on the
        evaluation split without training again). The stages' folders are copied; each adopted stage
        records ``adopted_from`` and ``source_seconds`` (its own ``seconds`` is 0: no compute was
        spent here). ``prepare`` (which records the evaluation examples) is adopted only when the
        whole ``[data]`` table and ``[eval] task`` agree; else it runs here. Stops at the first stage ``src`` has not
        finished.
        """
        source = RunFolder(src, read_only=True)
        if not (source.experiment_toml.is_file() and source.manifest_path.is_file()):
            raise RunFolderError(
                f"reuse training from {src}: not a run folder (no experiment.toml / manifest)"
            )
        theirs = source.experiment_toml.read_text(encoding="utf-8")
        other, mine = training_identity(theirs), training_identity(resolved_toml)
        if other != mine:
            diff = sorted(k for k in set(other) | set(mine) if other.get(k) != mine.get(k))
            raise RunFolderError(
                f"reuse training from {src}: its config differs beyond [codec]/[eval] and the evaluation "
                f"examples (in {', '.join(diff)})"
            )
        a, b = _resolved(theirs), _resolved(resolved_toml)
        # prepare records the evaluation examples: theirs only where the same task's same examples
        same_data = a.get("data") == b.get("data") and a["eval"].get("task") == b["eval"].get("task")
        stages = read_manifest(source.manifest_path).get("stages", {})
        adopted = []
        for stage, folders in TRAINING_STAGES.items():
            if self.stage_done(stage):
                continue
            entry = stages.get(stage, {})
            if entry.get("status") != "done":
                break
            if stage == "prepare" and not same_data:
                continue  # other evaluation examples: this run prepares its own (features are cached)
            for rel in folders:
                if (src / rel).is_dir():
                    shutil.rmtree(self.dir / rel, ignore_errors=True)
                    shutil.copytree(src / rel, self.dir / rel)
            outputs = {k: v for k, v in entry.get("outputs", {}).items() if k != "wire.json"}  # its own
            self.manifest["stages"][stage] = {
                **entry,
                "outputs": outputs,
                "seconds": 0.0,
                "source_seconds": entry.get("seconds"),
                "adopted_from": str(src),
            }
            adopted.append(stage)
        self.save_manifest()
        return adopted

    def finish(self) -> None:
        self.manifest["finished"] = now()
        self.save_manifest()

    def invalidate_after(self, stage: str, order: tuple[str, ...]) -> list[str]:
        """Mark every finished stage after ``stage`` (in ``order``) ``stale``, so it is made again from
        what ``stage`` just remade (a report is never left describing an older evaluation)."""
        stages = self.manifest.get("stages", {})
        later = [s for s in order[order.index(stage) + 1 :] if stages.get(s, {}).get("status") == "done"]
        for s in later:
            stages[s]["status"] = "stale"
        if later:
            self.save_manifest()
        return later

    def damaged_outputs(self, stage: str) -> list[str]:
        """A finished stage's artefacts that are missing or no longer match their recorded SHA-256."""
        recorded = self.manifest.get("stages", {}).get(stage, {}).get("outputs", {})
        bad = []
        for rel in STAGE_OUTPUTS.get(stage, ()):
            path = self.dir / rel
            if rel == "wire.json" and rel not in recorded:
                continue  # a run folder from before its digest was recorded
            if not path.is_file():
                bad.append(f"{rel} (missing)")
            elif rel in recorded and sha256(path) != recorded[rel]:
                bad.append(f"{rel} (changed or corrupted)")
        return bad

    def status(self) -> str:
        """``new`` (no manifest), ``done`` (reported) or ``partial`` (read-only; never raises)."""
        if not self.manifest_path.is_file():
            return "new"
        try:
            stages = json.loads(self.manifest_path.read_text()).get("stages", {})
        except (OSError, json.JSONDecodeError, AttributeError):
            return "partial"
        return "done" if stages.get("report", {}).get("status") == "done" else "partial"
