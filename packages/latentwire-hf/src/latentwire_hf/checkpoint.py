"""Atomic, self-verifying checkpoints in safetensors + JSON (no pickle).

Layout: ``checkpoints/step_000040/{wire,optimizer,rng}.safetensors`` +
``{optimizer,scheduler,trainer}.json`` + ``digests.json`` (the SHA-256 of every other file
and the step), and ``checkpoints/latest.json`` naming the newest complete one. A checkpoint
is written to ``*.tmp``, flushed, then renamed, and ``latest.json`` is replaced atomically,
so a kill at any moment leaves the previous checkpoint usable.

On load every file is checked against its digest. :func:`latest_checkpoint` returns the
newest checkpoint that verifies: a corrupted or missing newest one is reported and the
previous complete one is used; a missing ``latest.json`` is not a reason to start over
(checkpoints are found by their own ``digests.json``). Pruning goes by step number and never
removes the checkpoint just written.
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from latentwire_core.jsonio import JSONDepthError, read_json
from latentwire_core.logs import get_logger
from latentwire_hf.cache import file_sha256

__all__ = ["CheckpointError", "latest_checkpoint", "load_checkpoint", "save_checkpoint", "verify_checkpoint"]

log = get_logger(__name__)
DIGESTS = "digests.json"


class CheckpointError(RuntimeError):
    """A missing, incomplete or corrupted checkpoint; the message names the file."""


def _atomic_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _split_state(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Optimizer state -> (tensors, JSON). Keys: ``state.<param>.<name>``."""
    tensors: dict[str, torch.Tensor] = {}
    plain: dict[str, Any] = {"param_groups": state["param_groups"], "state": {}}
    for pid, entry in state["state"].items():
        for k, v in entry.items():
            if isinstance(v, torch.Tensor):
                tensors[f"state.{pid}.{k}"] = v.detach().cpu().contiguous()
            else:
                plain["state"].setdefault(str(pid), {})[k] = v
    return tensors, plain


def _join_state(tensors: dict[str, torch.Tensor], plain: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {int(k): dict(v) for k, v in plain["state"].items()}
    for key, t in tensors.items():
        _, pid, name = key.split(".", 2)
        state.setdefault(int(pid), {})[name] = t
    return {"state": state, "param_groups": plain["param_groups"]}


def save_checkpoint(
    root: Path,
    step: int,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    trainer_state: dict[str, Any],
    keep: int = 2,
) -> Path:
    """Write checkpoint ``step`` atomically and prune all but the newest ``keep``.

    Raises:
        CheckpointError: the disk is full (one line naming the folder and its free space; the partial
            checkpoint is removed and the previous one stays the latest).
    """
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f"step_{step:06d}.tmp"
    try:
        return _save(root, tmp, step, model, optimizer, scheduler, trainer_state, keep)
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        shutil.rmtree(tmp, ignore_errors=True)
        free = shutil.disk_usage(root).free
        prev = latest_checkpoint(root)
        raise CheckpointError(
            f"{root}: no space left on the device while writing step {step} ({free / 2**20:.1f} MiB free); "
            f"the previous checkpoint ({prev.name if prev else 'none'}) is kept: free some space and run again"
        ) from None


def _save(
    root: Path,
    tmp: Path,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    trainer_state: dict[str, Any],
    keep: int,
) -> Path:
    final = root / f"step_{step:06d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(
        {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, tmp / "wire.safetensors"
    )
    tensors, plain = _split_state(optimizer.state_dict())
    save_file(tensors, tmp / "optimizer.safetensors")
    (tmp / "optimizer.json").write_text(json.dumps(plain))
    sched = {k: v for k, v in scheduler.state_dict().items() if k != "lr_lambdas"}
    (tmp / "scheduler.json").write_text(json.dumps(sched))
    rng = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["torch_cuda"] = torch.cuda.get_rng_state()
    save_file(rng, tmp / "rng.safetensors")
    py_state = random.getstate()
    meta = {"step": step, "python_random": [py_state[0], list(py_state[1]), py_state[2]], **trainer_state}
    (tmp / "trainer.json").write_text(json.dumps(meta))
    digests = {f.name: file_sha256(f) for f in sorted(tmp.iterdir())}
    (tmp / DIGESTS).write_text(json.dumps({"step": step, "sha256": digests}))
    for f in tmp.iterdir():
        with f.open("rb") as fh:
            os.fsync(fh.fileno())
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    _atomic_json(root / "latest.json", {"step": step, "path": final.name})
    # prune by step number (never by name), and never the checkpoint just written
    others = sorted((s, p) for s, p in _candidates(root) if p != final)
    for _, old in others[: max(len(others) - (keep - 1), 0)]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _step_of(path: Path) -> int | None:
    try:
        return int(json.loads((path / DIGESTS).read_text())["step"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        return int(path.name.removeprefix("step_"))
    except ValueError:
        return None


def _candidates(root: Path) -> list[tuple[int, Path]]:
    """Complete checkpoint folders (not ``*.tmp``) with their step numbers."""
    out = []
    for p in root.glob("step_*"):
        if p.is_dir() and not p.name.endswith(".tmp"):
            step = _step_of(p)
            if step is not None:
                out.append((step, p))
    return out


def verify_checkpoint(path: Path) -> None:
    """Check every file of a checkpoint against ``digests.json``.

    Raises:
        CheckpointError: the digests file is missing or unreadable, a file is missing,
            or a file's SHA-256 differs (it names the file).
    """
    try:
        digests = json.loads((path / DIGESTS).read_text())["sha256"]
    except FileNotFoundError as e:
        raise CheckpointError(f"{path / DIGESTS}: missing, so the checkpoint cannot be verified") from e
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise CheckpointError(f"{path / DIGESTS}: unreadable ({e})") from e
    for name, want in digests.items():
        f = path / name
        if not f.is_file():
            raise CheckpointError(f"{f}: missing from the checkpoint")
        if file_sha256(f) != want:
            raise CheckpointError(f"{f}: corrupted (SHA-256 differs from {DIGESTS})")


def latest_checkpoint(root: Path) -> Path | None:
    """The newest checkpoint that verifies, or ``None`` when there is none at all.

    ``latest.json`` names the newest; if it is missing or points nowhere, the checkpoints are
    found by their own ``digests.json``. A newest checkpoint that fails verification is
    reported (a warning naming the file) and the next older complete one is used.

    Raises:
        CheckpointError: checkpoints exist but none verifies (each problem is listed).
    """
    found = sorted(_candidates(root), reverse=True)  # newest step first
    pointer = root / "latest.json"
    if pointer.is_file():
        try:
            named = root / json.loads(pointer.read_text())["path"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            log.warning("checkpoint_pointer_unreadable", path=str(pointer), error=str(e))
        else:
            if not named.is_dir():
                log.warning("checkpoint_pointer_dangling", path=str(pointer), points_to=str(named))
    elif found:
        log.warning("checkpoint_pointer_missing_using_metadata", path=str(pointer), newest=str(found[0][1]))
    problems = []
    for _, path in found:
        try:
            verify_checkpoint(path)
        except CheckpointError as e:
            problems.append(str(e))
            log.warning("checkpoint_failed_verification_falling_back", checkpoint=str(path), error=str(e))
            continue
        if problems:
            log.warning("resuming_from_older_checkpoint", checkpoint=str(path), skipped=len(problems))
        return path
    if problems:
        raise CheckpointError(
            f"no checkpoint in {root} verifies: " + "; ".join(problems) + " (run with --fresh to start over)"
        )
    return None


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(f"{path}: missing from the checkpoint")
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(
            f"{path}: corrupted safetensors file ({e}); run with --fresh to start over"
        ) from e


def _load_json(path: Path) -> Any:
    try:
        return read_json(path)
    except FileNotFoundError as e:
        raise CheckpointError(f"{path}: missing from the checkpoint") from e
    except JSONDepthError as e:
        raise CheckpointError(f"{path}: corrupted JSON ({e}); run with --fresh to start over") from e


def load_weights(path: Path, model: torch.nn.Module) -> None:
    """Load only the wire weights of a checkpoint folder (for evaluation), after verifying its digests."""
    verify_checkpoint(path)
    state = _load_tensors(path / "wire.safetensors")
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise CheckpointError(f"{path / 'wire.safetensors'}: does not match this model ({e})") from e


def load_checkpoint(
    path: Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> dict[str, Any]:
    """Restore everything :func:`save_checkpoint` wrote (digests verified); returns ``trainer.json``'s content."""
    load_weights(path, model)
    optimizer.load_state_dict(
        _join_state(_load_tensors(path / "optimizer.safetensors"), _load_json(path / "optimizer.json"))
    )
    sched = _load_json(path / "scheduler.json")
    scheduler.load_state_dict({**scheduler.state_dict(), **sched})
    rng = _load_tensors(path / "rng.safetensors")
    torch.set_rng_state(rng["torch_cpu"])
    if "torch_cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state(rng["torch_cuda"])
    meta: dict[str, Any] = _load_json(path / "trainer.json")
    v, st, g = meta["python_random"]
    random.setstate((v, tuple(st), g))
    return meta
