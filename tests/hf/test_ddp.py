"""Two-process DDP on CPU. docs/design.md "Scale": `accelerate launch --cpu --num_processes 2` starts only one
process with accelerate 1.15 on a CPU-only machine, so the CPU test uses torchrun (gloo) with
``Accelerator(cpu=True)``; `accelerate launch` is the GPU form."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

pytestmark = pytest.mark.slow


def test_two_process_ddp_trains_identical_replicas_on_disjoint_data(tmp_path: Path) -> None:
    worker = Path(__file__).with_name("ddp_worker.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29533",
        str(worker),
        str(tmp_path),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (tmp_path / "rank0.txt").read_text(), (tmp_path / "rank1.txt").read_text()
    assert r0.startswith("2 ") and r1.startswith("2 ")
    assert r0.split(" ", 1)[1] != r1.split(" ", 1)[1]  # each rank saw its own shard of the batch
    a, b = load_file(tmp_path / "rank0.safetensors"), load_file(tmp_path / "rank1.safetensors")
    for k in a:
        assert torch.equal(a[k], b[k]), k  # gradients were averaged: replicas stay identical
    assert (tmp_path / "run" / "checkpoints" / "latest.json").is_file()
