"""The same recipe under torchrun (2 CPU processes, gloo): both ranks train, rank 0 writes the run folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from experiments import tiny_experiment

pytestmark = pytest.mark.slow


def test_two_process_run_produces_one_run_folder(tmp_path: Path, data_dir: Path) -> None:
    runs = tmp_path / "runs"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29541",
        "-m",
        "runner",
        str(tiny_experiment(tmp_path)),
        "--runs-dir",
        str(runs),
    ]
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1", "LATENTWIRE_DATA": str(data_dir)},
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    run = runs / "tiny"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["machine"]["world_size"] == 2
    assert all(manifest["stages"][s]["status"] == "done" for s in ("prepare", "train", "evaluate", "report"))
    preds = pd.read_parquet(run / "eval" / "predictions.parquet")
    assert len(preds) == 2 * 3 * 12  # evaluated once, by rank 0
    steps = [json.loads(x)["step"] for x in (run / "train" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4]  # logged once, by rank 0
