"""``report/summary.md`` rendered from an evaluation's metrics (latentwire_eval.report)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from eval_rows import two_reader_rows

from latentwire_core.tasks import get_task
from latentwire_eval.analysis import compute_metrics
from latentwire_eval.methods.combined import derive_joint_oracle
from latentwire_eval.report import write_report

SST2 = get_task("sst2")


def _metrics(tmp_path: Path) -> Path:
    preds = two_reader_rows()
    preds = pd.concat([preds, derive_joint_oracle(preds, SST2)], ignore_index=True)
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(compute_metrics(preds, task=SST2, n_resamples=200)))
    return path


def test_the_summary_tables_every_method_with_its_ci_and_every_paired_test(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"name": "demo", "seed": 3, "stages": {"train": {"seconds": 12.5}}}))
    summary = write_report(_metrics(tmp_path), tmp_path / "report", manifest_path=manifest).read_text()
    assert summary.startswith("# demo: sst2") and "seed 3" in summary and "train 12.5 s" in summary
    rows = {
        tuple(c.strip() for c in ln.strip("|").split("|")[:2]): [c.strip() for c in ln.strip("|").split("|")]
        for ln in summary.splitlines()
        if ln.startswith("| a |") or ln.startswith("| b |")
    }
    latent_a = rows[("a", "latent")]
    assert latent_a[2].startswith("0.") and "[" in latent_a[2]  # value [95% CI]
    assert latent_a[6] == "100" and rows[("a", "text")][6] == "–"  # wire bytes; text sends nothing
    assert "| a | accuracy | text |" in summary and "| b | accuracy | linear_probe |" in summary
    assert (tmp_path / "report" / "quality_vs_compression.png").is_file()
    assert "![quality_vs_compression.png](quality_vs_compression.png)" in summary
    # the chart's one description, written beside the PNG for the dashboard to draw the same chart
    (desc,) = json.loads((tmp_path / "report" / "charts.json").read_text())
    assert desc["name"] == "quality_vs_compression" and (desc["x"], desc["y"], desc["log_x"]) == (
        "slot_tokens",
        "value",
        True,
    )
    assert desc["metric"] == "accuracy" and desc["y_title"] == "accuracy (95% CI)"


def test_a_report_before_evaluation_names_the_missing_stage(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="run the evaluate stage first"):
        write_report(tmp_path / "metrics.json", tmp_path / "report")
