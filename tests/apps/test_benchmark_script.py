"""The efficiency benchmark runs on a finished run folder and writes its figures (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from test_runner_e2e import _exp  # type: ignore[import-not-found]

from runner.__main__ import main

REPO = Path(__file__).resolve().parents[2]


def test_latency_benchmark_writes_its_figures(tmp_path: Path, data_dir: Path) -> None:
    runs = tmp_path / "runs"
    assert main([str(_exp(tmp_path)), "--runs-dir", str(runs), "--stage", "prepare", "--stage", "train"]) == 0
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "latency.py"),
            str(runs / "tiny"),
            "--n",
            "4",
            "--batch",
            "2",
            "--new-tokens",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((runs / "tiny" / "report" / "efficiency.json").read_text())
    assert {(r["model"], r["method"]) for r in data["results"]} == {
        (m, k) for m in ("tiny-llama", "tiny-gemma3") for k in ("text", "latent")
    }
    for r in data["results"]:
        assert r["ttft_s_batch1"] > 0 and r["throughput_examples_per_s"] > 0 and r["peak_memory_mb"] > 0
    assert "TTFT" in (runs / "tiny" / "report" / "efficiency.md").read_text()
