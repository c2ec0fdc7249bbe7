"""Atomic checkpoints in safetensors + JSON (no pickle).

Layout: ``checkpoints/step_000040/{wire,optimizer,rng}.safetensors`` +
``{optimizer,scheduler,trainer}.json``, and ``checkpoints/latest.json`` naming the
newest complete one. A checkpoint is written to ``*.tmp``, flushed, then renamed,
and ``latest.json`` is replaced atomically, so a kill at any moment leaves the
previous checkpoint usable.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

__all__ = ["CheckpointError", "latest_checkpoint", "load_checkpoint", "save_checkpoint"]


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
    """Write checkpoint ``step`` atomically and prune all but the newest ``keep``."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:06d}"
    tmp = root / f"step_{step:06d}.tmp"
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
    for f in tmp.iterdir():
        with f.open("rb") as fh:
            os.fsync(fh.fileno())
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    _atomic_json(root / "latest.json", {"step": step, "path": final.name})
    ckpts = sorted(p for p in root.glob("step_*") if p.is_dir() and not p.name.endswith(".tmp"))
    for old in ckpts[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(root: Path) -> Path | None:
    """The newest complete checkpoint folder, or ``None`` when there is none."""
    pointer = root / "latest.json"
    if not pointer.is_file():
        return None
    try:
        name = json.loads(pointer.read_text())["path"]
    except (json.JSONDecodeError, KeyError) as e:
        raise CheckpointError(f"{pointer}: unreadable ({e}); delete it or run with --fresh") from e
    path = root / name
    if not path.is_dir():
        raise CheckpointError(f"{pointer} points to {path}, which does not exist; run with --fresh")
    return path


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
        return json.loads(path.read_text())
    except FileNotFoundError as e:
        raise CheckpointError(f"{path}: missing from the checkpoint") from e
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: corrupted JSON ({e}); run with --fresh to start over") from e


def load_weights(path: Path, model: torch.nn.Module) -> None:
    """Load only the wire weights of a checkpoint folder (for evaluation)."""
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
    """Restore everything :func:`save_checkpoint` wrote; returns ``trainer.json``'s content."""
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
