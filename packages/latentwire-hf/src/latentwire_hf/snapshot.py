"""A long run's snapshot: a small copy of its wire that lives in the repository and outlives the machine.

A run folder's checkpoints (optimizer, RNG, fp32 weights) resume a killed run bit-identically, but
they stay on the machine that wrote them. A snapshot is what a *new* machine resumes from: a
``save_pretrained`` folder whose weights are stored in bf16 (so a 20M-parameter wire fits the 40 MB a
repository file may take), plus ``snapshot.json`` (the step, the data position, tokens seen, CPU and GPU
seconds, the commit) and the run's curves so far. It is overwritten in place, each file through a
temporary name, so a kill mid-write leaves the previous snapshot's files or the new ones, each whole.

Resuming from a snapshot restores the weights (rounded to bf16) and the step, so the data order
continues where it stopped (it is a pure function of the seed and the step); the optimiser state is
fresh and its warm-up restarts (``Trainer.adopt``). That resume is therefore not bit-identical to an
uninterrupted run; a resume from the run folder's own checkpoints still is.

    from latentwire_hf.snapshot import read_snapshot, write_snapshot
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from latentwire_core.jsonio import read_json
from latentwire_hf.cache import file_sha256
from latentwire_hf.checkpoint import CheckpointError
from latentwire_hf.pretrained import SPEC_FILE, WEIGHTS_FILE, WireSpec, write_spec

__all__ = ["SNAPSHOT_FILE", "Snapshot", "read_snapshot", "write_snapshot"]

SNAPSHOT_FILE = "snapshot.json"
MAX_BYTES = 40 * 1000 * 1000  # a repository file's limit for a shipped or snapshotted wire


def git_commit(cwd: Path | None = None) -> str:
    """The checkout's commit (``unknown`` outside a git checkout)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def write_snapshot(
    dest: Path,
    *,
    wire: torch.nn.Module,
    spec: WireSpec,
    step: int,
    state: Mapping[str, Any],
    curves: Mapping[str, Path] = {},
) -> Path:
    """Write (or overwrite) the snapshot in ``dest``.

    Args:
        wire: the trained module; its state is stored in bf16 (floating tensors; others as they are).
        spec: its ``wire.json`` description.
        step: optimiser steps done (the data position: the next step draws batch ``step``).
        state: what else ``snapshot.json`` records (tokens seen, seconds, the run's name, ...).
        curves: file name in ``dest`` -> the run file to copy there (metrics, held-out curves).

    Raises:
        CheckpointError: the weights would exceed 40 MB.
    """
    dest.mkdir(parents=True, exist_ok=True)
    weights = {
        k: (v.detach().to(torch.bfloat16) if v.is_floating_point() else v.detach()).cpu().contiguous()
        for k, v in wire.state_dict().items()
    }
    tmp = dest / (WEIGHTS_FILE + ".tmp")
    save_file(weights, str(tmp))
    size = tmp.stat().st_size
    if size > MAX_BYTES:
        tmp.unlink()
        raise CheckpointError(f"{dest}: the snapshot's weights are {size / 1e6:.1f} MB, over the 40 MB limit")
    os.replace(tmp, dest / WEIGHTS_FILE)
    write_spec(dest, spec)
    for name, src in curves.items():
        if src.is_file():
            part = dest / (name + ".tmp")
            shutil.copyfile(src, part)
            os.replace(part, dest / name)
    meta = {
        "step": int(step),
        "weights_sha256": file_sha256(dest / WEIGHTS_FILE),
        "weights_dtype": "bfloat16",
        "commit": git_commit(),  # the checkout's commit now; ``state`` may name the code that ran instead
        **dict(state),
    }
    part = dest / (SNAPSHOT_FILE + ".tmp")
    part.write_text(json.dumps(meta, indent=1, sort_keys=True))
    os.replace(part, dest / SNAPSHOT_FILE)
    return dest


class Snapshot:
    """A read snapshot: its ``snapshot.json``, ``wire.json`` and weights (verified against the digest)."""

    def __init__(self, path: Path, meta: dict[str, Any], spec: WireSpec, weights: dict[str, torch.Tensor]):
        self.path, self.meta, self.spec, self.weights = path, meta, spec, weights

    @property
    def step(self) -> int:
        return int(self.meta["step"])

    def load_into(self, wire: torch.nn.Module) -> None:
        """Copy the (bf16) weights into ``wire``'s own dtype; a key or shape mismatch names the snapshot."""
        try:
            wire.load_state_dict(self.weights)
        except RuntimeError as e:
            raise CheckpointError(f"{self.path}: the snapshot does not fit this run's wire ({e})") from None


def read_snapshot(path: Path) -> Snapshot | None:
    """The snapshot in ``path``, or None when there is none.

    Raises:
        CheckpointError: the folder has a snapshot whose files are damaged or do not match.
    """
    meta_path = path / SNAPSHOT_FILE
    if not meta_path.is_file():
        return None
    try:
        meta = read_json(meta_path, max_bytes=16 * 2**20)
        int(meta["step"])
    except (OSError, ValueError, KeyError, TypeError) as e:  # JSONDepthError is a ValueError
        raise CheckpointError(f"{meta_path}: not a readable snapshot description ({e})") from None
    weights_path = path / WEIGHTS_FILE
    if not weights_path.is_file() or file_sha256(weights_path) != meta.get("weights_sha256"):
        raise CheckpointError(f"{weights_path}: missing or does not match the digest in {meta_path}")
    spec = WireSpec.read(path / SPEC_FILE)
    try:
        weights = load_file(str(weights_path))
    except Exception as e:  # safetensors raises its own error types
        raise CheckpointError(f"{weights_path}: unreadable ({e})") from None
    return Snapshot(path, meta, spec, weights)
