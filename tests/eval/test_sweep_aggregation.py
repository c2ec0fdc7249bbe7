"""A sweep's aggregation over seeds and its report (latentwire_eval.sweep), from finished points' files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from latentwire_eval.sweep import aggregate_sweep, write_sweep_report

# accuracy of (M, seed, method) on 4 examples
ACC = {
    (1, 0): {"latent": [1, 1, 0, 0], "token_budget": [0, 1, 0, 0]},
    (1, 1): {"latent": [1, 1, 1, 0], "token_budget": [0, 1, 0, 0]},
    (2, 0): {"latent": [1, 1, 1, 1], "token_budget": [1, 1, 0, 0]},
    (2, 1): {"latent": [1, 1, 1, 0], "token_budget": [1, 1, 0, 0]},
}


def _point(root: Path, m: int, seed: int) -> dict[str, object]:
    d = root / f"m{m}-s{seed}"
    (d / "eval").mkdir(parents=True)
    results, rows = [], []
    for method, acc in ACC[(m, seed)].items():
        wire = 30.0 + 4 * m if method == "latent" else 0.0
        results.append(
            {
                "model": "smollm2",
                "method": method,
                "metric": "accuracy",
                "value": float(np.mean(acc)),
                "n": len(acc),
                "wire_bytes": wire,
                "encoded_utf8_bytes": 40.0,
                "prompt_utf8_bytes": 60.0,
                "slot_tokens": float(m),
                "token_compression": 10.0 / m,
            }
        )
        rows += [
            {
                "example_id": f"e{i}",
                "model": "smollm2",
                "method": method,
                "group": f"e{i}",
                "accuracy": float(a),
            }
            for i, a in enumerate(acc)
        ]
    metrics = {"headline": "accuracy", "wire": {"header_bytes": 28}, "results": results}
    (d / "eval" / "metrics.json").write_text(json.dumps(metrics))
    pd.DataFrame(rows).to_parquet(d / "eval" / "predictions.parquet")
    return {"name": d.name, "dir": d, "params": {"wire.encoder.n_tokens": m}, "seed": seed}


def test_each_setting_is_the_mean_over_seeds_with_a_t_interval(tmp_path: Path) -> None:
    points = [_point(tmp_path, m, s) for m in (1, 2) for s in (0, 1)]
    results, tests = aggregate_sweep(points, n_resamples=200)
    row = results[(results["settings"] == "wire.encoder.n_tokens=1") & (results["method"] == "latent")].iloc[
        0
    ]
    per_seed = np.array([0.5, 0.75])
    lo, hi = sps.t.interval(0.95, 1, loc=per_seed.mean(), scale=sps.sem(per_seed))
    assert (row["mean"], row["n_seeds"], row["n_per_seed"]) == (0.625, 2, 4)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((lo, hi))
    assert row["payload_bytes"] == 34.0 - 28  # the message without its frame
    # paired by (seed, example), pooled over seeds: one test per setting and baseline, Holm over them all
    assert len(tests) == 2 and set(tests["n"]) == {8} and (tests["p_holm"] >= tests["p_value"]).all()
    t1 = tests[tests["settings"] == "wire.encoder.n_tokens=1"].iloc[0]
    assert t1["diff"] == pytest.approx((5 - 2) / 8)


def test_the_report_tables_every_setting_and_test(tmp_path: Path) -> None:
    points = [_point(tmp_path, m, s) for m in (1, 2) for s in (0, 1)]
    points.append({"name": "unfinished", "dir": tmp_path / "nothing", "params": {"x": 1}, "seed": 0})
    summary = write_sweep_report(tmp_path, points, title="M", n_resamples=200).read_text()
    rows = [ln for ln in summary.splitlines() if ln.startswith("| wire.encoder.n_tokens=")]
    assert len(rows) == 4 + 2  # 2 settings x 2 methods, then 2 paired tests
    latent_m2 = next(r for r in rows if "=2 | smollm2 | latent |" in r)
    cells = [c.strip() for c in latent_m2.strip("|").split("|")]
    assert cells[3].startswith("0.875 [") and cells[4:7] == ["2", "4", "38"]
    assert (tmp_path / "report" / "results.csv").is_file() and (tmp_path / "report" / "tests.csv").is_file()
    # each drawn chart's description beside its PNG (the dashboard draws the same chart from it)
    charts = {c["name"]: c for c in json.loads((tmp_path / "report" / "charts.json").read_text())}
    assert charts["quality_vs_bytes"]["x"] == "payload_bytes" and charts["quality_vs_bytes"]["log_x"]
    assert all((tmp_path / "report" / f"{n}.png").is_file() for n in charts)


def test_a_sweep_with_no_finished_point_says_so(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no finished point"):
        aggregate_sweep([{"name": "a", "dir": tmp_path, "params": {}, "seed": 0}])
